import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sampleBaseUuid } from '../src/index.ts';

const mainPath = fileURLToPath(new URL('../src/main.ts', import.meta.url));

async function waitForFile(path: string, exited: () => boolean): Promise<string> {
  for (;;) {
    const content = await readFile(path, 'utf8').catch(() => '');
    if (content.endsWith('\n')) return content.trim();
    if (exited()) throw new Error('the stand-in exited before it wrote its url');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('npm start serves the sample scripts, prints them, and stops on SIGTERM', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'standin-main-'));
  const urlFile = join(directory, 'url');
  const child = spawn(process.execPath, [mainPath], {
    env: {
      PATH: process.env.PATH,
      PYTHON_SCHEDULER_AUTH_TOKEN: 'main-test-secret',
      SEATABLE_STANDIN_URL_FILE: urlFile,
      SEATABLE_STANDIN_LOG_LEVEL: 'silent',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    const url = await waitForFile(urlFile, () => child.exitCode !== null);

    const taskFile = await fetch(
      `${url}/api/v2.1/dtable/${sampleBaseUuid}/run-script/hello.py/task/file/`,
      { headers: { authorization: 'Token main-test-secret' } },
    );
    const link = (await taskFile.json()) as { script_url: string };
    const source = await (await fetch(link.script_url)).text();

    assert.match(source, /print\("Hello/);
    assert.match(stdout, new RegExp(`SeaTable stand-in on ${url}`));
    assert.match(stdout, /hello\.py/);
    assert.match(stdout, /context\.py/);
    assert.match(stdout, /fail\.py/);
    assert.doesNotMatch(stdout, /main-test-secret/);
  } finally {
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    await rm(directory, { recursive: true, force: true });
  }
});

test('npm start refuses a bad setting with one line naming it', async () => {
  const child = spawn(process.execPath, [mainPath], {
    env: { PATH: process.env.PATH, SEATABLE_STANDIN_PORT: 'abc' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });

  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));

  assert.equal(code, 2);
  assert.equal(stderr.trim(), 'SEATABLE_STANDIN_PORT: must be a port number (0-65535), got "abc"');
});
