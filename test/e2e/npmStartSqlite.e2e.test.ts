import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { sampleBaseUuid, sampleOwner } from '../../packages/seatable-standin/src/index.ts';
import { freePort } from '../support/nats.ts';

// The first run: `npm start` with no database variable at all, so the scheduler keeps its
// read model in a SQLite file under the run directory and no database server is involved;
// then the two curl commands it prints, run as printed, and the run's statistics read back
// through the contract's endpoints.
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

interface RunAnswer {
  script: { state: string; success: boolean | null; return_code: number | null; output: string };
}

let runDir: string;
let schedulerPort: number;
let start: ChildProcess;
let printed = '';
let diagnostics = '';

let exitCode: Promise<number | null>;

before(async () => {
  runDir = await mkdtemp(join(tmpdir(), 'pipeline-npm-start-'));
  schedulerPort = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PIPELINE_LOCAL_NATS_PORT: String(await freePort()),
    SCHEDULER_PORT: String(schedulerPort),
    PYTHON_SCHEDULER_AUTH_TOKEN: 'npm-start-e2e-token',
    PIPELINE_RUN_DIR: runDir,
    STARTER_ID: 'npm-start-sqlite-e2e',
  };
  for (const name of [
    'NATS_URL',
    'SEATABLE_SERVER_URL',
    'PIPELINE_SQLITE_FILE',
    'DB_HOST',
    'DB_PORT',
    'DB_USER',
    'DB_PASSWD',
    'DB_PASSWORD',
    'DB_ROOT_USER',
    'DB_ROOT_PASSWD',
    'DATABASE_NAME',
    'DB_NAME',
  ]) {
    delete env[name];
  }
  start = spawn('bash', ['scripts/start.sh'], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  start.stdout?.on('data', (chunk: Buffer) => {
    printed += chunk.toString();
  });
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
  if (runDir) await rm(runDir, { recursive: true, force: true });
});

function printedCommand(heading: string): string {
  const lines = printed.split('\n');
  const command = lines[lines.indexOf(heading) + 1]?.trim();
  assert.ok(command, `npm start printed no command after "${heading}"`);
  return command;
}

/** A GET on the scheduler with the token `npm start` was given. */
async function contract(path: string): Promise<unknown> {
  const response = await fetch(`http://127.0.0.1:${schedulerPort}${path}`, {
    headers: { authorization: 'Token npm-start-e2e-token' },
  });
  assert.equal(response.status, 200, path);
  return await response.json();
}

describe('npm start without a database', () => {
  test('says it keeps the read model in a SQLite file of the run directory', async () => {
    const sqliteFile = join(runDir, 'scheduler.sqlite');

    assert.ok(
      diagnostics.includes(`start: database: the SQLite file ${sqliteFile} (PIPELINE_SQLITE_FILE`),
      diagnostics,
    );
    assert.ok((await stat(sqliteFile)).size > 0);
    assert.match(await readFile(join(runDir, 'env'), 'utf8'), /^PIPELINE_SQLITE_FILE=/m);
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

    // Its statistics, as SeaTable's admin pages read them.
    const month = new Date().toISOString().slice(0, 7);
    const byBase = (await contract('/admin/statistics/by-base/?org_id=-1')) as {
      results: { base_uuid: string; number_of_runs: number; successful_runs: number }[];
      total_count: number;
    };
    assert.equal(byBase.total_count, 1);
    assert.deepEqual(
      byBase.results.map(({ base_uuid, number_of_runs, successful_runs }) => ({
        base_uuid,
        number_of_runs,
        successful_runs,
      })),
      [{ base_uuid: sampleBaseUuid, number_of_runs: 1, successful_runs: 1 }],
    );
    const byUser = (await contract(
      `/admin/statistics/scripts-running/by-user/?month=${month}`,
    )) as { count: number; results: { username: string; total_run_count: number }[] };
    assert.deepEqual(
      byUser.results.map(({ username, total_run_count }) => ({ username, total_run_count })),
      [{ username: sampleOwner, total_run_count: 1 }],
    );
    assert.deepEqual(
      await contract(`/scripts-running-count/?username=${encodeURIComponent(sampleOwner)}`),
      { count: 1 },
    );
    const logs = (await contract(`/tasks/${sampleBaseUuid}/hello.py/logs/`)) as {
      count: number;
      task_logs: { id: number; success: boolean }[];
    };
    assert.deepEqual(
      [logs.count, logs.task_logs[0]?.id, logs.task_logs[0]?.success],
      [1, Number(scriptId), true],
    );
  });

  test('stops everything it started on SIGTERM', async () => {
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
    // The scheduler gave its file back, so the next `npm start` opens it again.
    await assert.rejects(stat(join(runDir, 'scheduler.sqlite.lock')), { code: 'ENOENT' });
    assert.ok((await stat(join(runDir, 'scheduler.sqlite'))).size > 0);
  });
});
