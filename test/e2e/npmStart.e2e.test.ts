import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createTestDatabase, type TestDatabase } from '../support/mariadb.ts';
import { freePort } from '../support/nats.ts';

// `npm start` as a user sees it: scripts/start.sh with the nats-server and the stand-in it
// starts itself (on a free port and in a directory of this file's own) and this file's own
// database, then the two curl commands it prints, run as printed.
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

interface RunAnswer {
  script: { state: string; success: boolean | null; return_code: number | null; output: string };
}

let database: TestDatabase;
let runDir: string;
let schedulerPort: number;
let start: ChildProcess;
let printed = '';
let exitCode: Promise<number | null>;

before(async () => {
  database = await createTestDatabase('npm_start');
  runDir = await mkdtemp(join(tmpdir(), 'pipeline-npm-start-'));
  schedulerPort = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PIPELINE_LOCAL_NATS_PORT: String(await freePort()),
    DB_HOST: database.host,
    DB_PORT: String(database.port),
    DB_ROOT_PASSWD: database.password,
    DATABASE_NAME: database.name,
    SCHEDULER_PORT: String(schedulerPort),
    PYTHON_SCHEDULER_AUTH_TOKEN: 'npm-start-e2e-token',
    PIPELINE_RUN_DIR: runDir,
    STARTER_ID: 'npm-start-e2e',
  };
  delete env.NATS_URL;
  delete env.SEATABLE_SERVER_URL;
  start = spawn('bash', ['scripts/start.sh'], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  start.stdout?.on('data', (chunk: Buffer) => {
    printed += chunk.toString();
  });
  let diagnostics = '';
  start.stderr?.on('data', (chunk: Buffer) => {
    diagnostics += chunk.toString();
  });
  exitCode = new Promise((resolve) => start.once('exit', resolve));
  while (!/^poll its result:\n.+\n/m.test(printed)) {
    if (start.exitCode !== null) throw new Error(`npm start exited early:\n${diagnostics}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
});

after(async () => {
  if (start && start.exitCode === null) {
    start.kill('SIGTERM');
    await exitCode;
  }
  await database?.drop();
  if (runDir) await rm(runDir, { recursive: true, force: true });
});

function printedCommand(heading: string): string {
  const lines = printed.split('\n');
  const command = lines[lines.indexOf(heading) + 1]?.trim();
  assert.ok(command, `npm start printed no command after "${heading}"`);
  return command;
}

describe('npm start', () => {
  test('prints one ready line with the scheduler URL', () => {
    const ready = printed.split('\n').filter((line) => line.startsWith('ready: '));

    assert.equal(ready.length, 1);
    assert.match(ready[0]!, new RegExp(`http://127\\.0\\.0\\.1:${schedulerPort}`));
  });

  test('runs the sample hello.py through the printed curl commands', async () => {
    const submit = printedCommand('submit the sample hello.py:');
    const poll = printedCommand('poll its result:');

    const submitted = await run('bash', ['-c', submit]);
    const scriptId = /script_id (\d+)/.exec(submitted.stdout)?.[1];
    assert.ok(scriptId, `no script_id in ${JSON.stringify(submitted.stdout)}`);

    let answer: RunAnswer | undefined;
    for (let attempt = 0; attempt < 240; attempt++) {
      const polled = await run('bash', ['-c', `id=${scriptId}; ${poll}`]);
      answer = JSON.parse(polled.stdout) as RunAnswer;
      if (answer.script.state === 'finished') break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }

    assert.equal(answer?.script.state, 'finished');
    assert.equal(answer?.script.success, true);
    assert.equal(answer?.script.return_code, 0);
    assert.match(answer?.script.output ?? '', /Hello from the SeaTable Python pipeline!/);
  });

  test('stops everything it started on SIGTERM, a run in progress and its container too', async () => {
    // A script of one's own that runs far longer than the stopping waits.
    const standin = (await readFile(join(runDir, 'standin.url'), 'utf8')).trim();
    const baseUuid = /"dtable_uuid":"([^"]+)"/.exec(printedCommand('submit the sample hello.py:'));
    assert.ok(baseUuid, 'no base in the printed submit command');
    const auth = { Authorization: 'Token npm-start-e2e-token' };
    const put = await fetch(`${standin}/standin/scripts/${baseUuid[1]}/long.py/`, {
      method: 'PUT',
      headers: auth,
      body: 'import time\nprint("working", flush=True)\ntime.sleep(300)\n',
    });
    assert.ok(put.ok, `PUT long.py: ${put.status}`);
    const submitted = await fetch(`http://127.0.0.1:${schedulerPort}/run-script/`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        dtable_uuid: baseUuid[1],
        script_name: 'long.py',
        owner: 'sample-user@example.invalid',
        org_id: -1,
        context_data: null,
        scripts_running_limit: -1,
        operate_from: 'manualy',
      }),
    });
    const { script_id: scriptId } = (await submitted.json()) as { script_id: number };
    for (let state = ''; state !== 'running'; ) {
      const polled = await fetch(
        `http://127.0.0.1:${schedulerPort}/run-script/${scriptId}/?dtable_uuid=${baseUuid[1]}&script_name=long.py`,
        { headers: auth },
      );
      state = ((await polled.json()) as RunAnswer).script.state;
      if (state === 'finished') assert.fail('long.py finished before the stop');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const containers = () =>
      run('docker', [
        'ps',
        '-aq',
        '--filter',
        'label=org.seatable.pipeline.starter-id=npm-start-e2e',
      ]).then(({ stdout }) => stdout.trim().split('\n').filter(Boolean).length);
    assert.ok((await containers()) >= 1, 'the run has a container');

    const children = (await readFile(join(runDir, 'pids'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => {
        const [name, pid] = line.split(' ');
        return { name, pid: Number(pid) };
      });

    start.kill('SIGTERM');
    const code = await exitCode;

    assert.equal(code, 0);
    assert.deepEqual(
      children.map((child) => child.name),
      ['nats', 'standin', 'scheduler', 'starter'],
    );
    for (const child of children) {
      assert.throws(() => process.kill(child.pid, 0), { code: 'ESRCH' }, `${child.name} lives`);
    }
    await assert.rejects(fetch(`http://127.0.0.1:${schedulerPort}/ping/`));
    assert.equal(await containers(), 0, 'a container of the starter is left');
  });
});
