import { randomBytes } from 'node:crypto';
import {
  loadConfig as loadSchedulerConfig,
  type RunningScheduler,
  startScheduler,
} from '@pipeline/scheduler';
import { type SeaTableStandin, startSeaTableStandin } from '@pipeline/seatable-standin';
import {
  loadConfig as loadStarterConfig,
  type RunningStarter,
  startStarter,
} from '@pipeline/starter';
import { type Logger, pino } from 'pino';
import { createTestDatabase, type TestDatabase } from './mariadb.ts';
import { type NatsServer, startNatsServer } from './nats.ts';

/** The runner image the tests use: the offline build (`packages/runner/offline/build.sh`). */
export const testRunnerImage =
  process.env.PYTHON_RUNNER_IMAGE ?? 'seatable-pipeline-runner:offline';

/**
 * Counts what `count` finds until it is 0, for up to 10 s, and returns the last count. A
 * run's result is published before its container is torn down, so a container may still
 * be on its way out when the run is seen finished.
 */
export async function untilNoneLeft(count: () => Promise<number>): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const left = await count();
    if (left === 0 || attempt >= 200) return left;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export const baseUuid = '6a1f3c2e-9b7d-4e21-8f0a-0c5d2b7e9a11';

export interface PipelineOptions {
  /** Names the test's database, subjects and starter. */
  label: string;
  /** Extra variables for both services (the contract's names), e.g. `PYTHON_PROCESS_TIMEOUT`. */
  env?: Record<string, string>;
  /** Starters to run, each with its own id; default 1. */
  starters?: number;
  /** Runs against the empty database before the scheduler starts (an original's tables, say). */
  prepareDatabase?: (db: TestDatabase) => Promise<void>;
}

export interface RunView {
  id: number;
  dtable_uuid: string;
  owner: string;
  org_id: number;
  script_name: string;
  context_data: unknown;
  started_at: string;
  finished_at: string | null;
  success: boolean | null;
  return_code: number | null;
  output: string | null;
  operate_from: string;
  state: 'pending' | 'running' | 'finished';
  created_at: string;
}

export interface Submitted {
  status: number;
  /** The `script_id`, or -1 when the submission was refused. */
  id: number;
  text: string;
  scriptName: string;
}

export interface Submission {
  script: string;
  scriptName?: string;
  body?: Record<string, unknown>;
  headers?: Record<string, string>;
}

/**
 * The whole pipeline in this process, the way SeaTable sees it: its own NATS server and
 * database, the SeaTable stand-in, one scheduler and its starters on the real Docker engine.
 */
export interface Pipeline {
  url: string;
  token: string;
  standin: SeaTableStandin;
  db: TestDatabase;
  nats: NatsServer;
  starterIds: string[];
  env: Record<string, string>;
  /** Serves `script` under a fresh name (or `scriptName`) and submits a standard run of it. */
  submit(submission: Submission): Promise<Submitted>;
  /** Polls GET /run-script/<id>/ every 200 ms until the run is finished. */
  waitFinished(id: number, scriptName: string, timeoutMs?: number): Promise<RunView>;
  request(path: string, init?: RequestInit & { auth?: boolean }): Promise<Response>;
  stopStarters(): Promise<void>;
  stop(): Promise<void>;
}

let scriptCounter = 0;

export async function startPipeline(options: PipelineOptions): Promise<Pipeline> {
  const label = options.label.replace(/[^a-z0-9]/gi, '').toLowerCase();
  const nats = await startNatsServer();
  const db = await createTestDatabase(label);
  await options.prepareDatabase?.(db);
  const token = randomBytes(16).toString('hex');
  const standin = await startSeaTableStandin({ secret: token });
  const env: Record<string, string> = {
    PYTHON_SCHEDULER_AUTH_TOKEN: token,
    SEATABLE_SERVER_URL: standin.url,
    NATS_URL: nats.url,
    PIPELINE_SUBJECT_PREFIX: `e2e${label}`,
    DB_HOST: db.host,
    DB_PORT: String(db.port),
    DB_USER: db.user,
    DB_PASSWD: db.password,
    DATABASE_NAME: db.name,
    SCHEDULER_HOST: '127.0.0.1',
    SCHEDULER_PORT: '0',
    TIME_ZONE: 'Europe/Berlin',
    PYTHON_PROCESS_TIMEOUT: '10',
    PYTHON_RUNNER_IMAGE: testRunnerImage,
    PYTHON_RUNNER_CONTAINER_MEMORY: '256m',
    PYTHON_RUNNER_PIDS_LIMIT: '128',
    PYTHON_RUNNER_TMPFS_MOUNT_SIZE_IN_BYTES: String(100 * 1024 * 1024),
    PYTHON_STARTER_THREAD_COUNT: '4',
    // Cold starts unless a test asks for the warm pool: a test that counts a starter's
    // containers then sees only those of its runs.
    PYTHON_STARTER_POOL_SIZE: '0',
    // The machine's firewall is not the tests' to change; the network abuse test isolates a
    // runner network in a network namespace of its own instead.
    PYTHON_RUNNER_NETWORK_ISOLATION: 'off',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...options.env,
  };
  const logger: Logger = pino({ level: env.LOG_LEVEL ?? 'silent' });
  const starters: RunningStarter[] = [];
  const starterIds: string[] = [];
  let scheduler: RunningScheduler | undefined;
  try {
    scheduler = await startScheduler(loadSchedulerConfig(env), logger);
    for (let index = 0; index < (options.starters ?? 1); index++) {
      const starterId = `${label}-starter-${index}-${randomBytes(3).toString('hex')}`;
      starterIds.push(starterId);
      starters.push(
        await startStarter(loadStarterConfig({ ...env, STARTER_ID: starterId }), logger),
      );
    }
  } catch (error) {
    // Leave nothing running behind a failed start, or the test process never ends.
    for (const starter of starters) await starter.stop().catch(() => {});
    await scheduler?.stop().catch(() => {});
    await standin.stop().catch(() => {});
    await db.drop().catch(() => {});
    await nats.stop().catch(() => {});
    throw error;
  }
  const running = scheduler;

  const request = async (path: string, init: RequestInit & { auth?: boolean } = {}) => {
    const headers = new Headers(init.headers);
    if (init.auth !== false) headers.set('Authorization', `Token ${token}`);
    return await fetch(`${running.url}${path}`, { ...init, headers });
  };

  let startersStopped = false;
  const stopStarters = async () => {
    if (startersStopped) return;
    startersStopped = true;
    for (const starter of starters) await starter.stop();
  };

  return {
    url: running.url,
    token,
    standin,
    db,
    nats,
    starterIds,
    env,
    request,
    async submit(submission) {
      scriptCounter += 1;
      const scriptName = submission.scriptName ?? `s${scriptCounter}-${label}.py`;
      const dtableUuid = String(submission.body?.dtable_uuid ?? baseUuid);
      standin.setScript({ dtableUuid, scriptName, source: submission.script });
      const response = await request('/run-script/', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...submission.headers },
        body: JSON.stringify({
          dtable_uuid: baseUuid,
          script_name: scriptName,
          context_data: null,
          owner: 'user-a@example.invalid',
          org_id: -1,
          scripts_running_limit: -1,
          operate_from: 'manualy',
          ...submission.body,
        }),
      });
      const text = await response.text();
      let id = -1;
      if (response.status === 200) id = (JSON.parse(text) as { script_id: number }).script_id;
      return { status: response.status, id, text, scriptName };
    },
    async waitFinished(id, scriptName, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      const query = `dtable_uuid=${baseUuid}&script_name=${encodeURIComponent(scriptName)}`;
      let last: RunView | undefined;
      while (Date.now() < deadline) {
        const response = await request(`/run-script/${id}/?${query}`);
        if (response.status === 200) {
          last = ((await response.json()) as { script: RunView }).script;
          if (last.state === 'finished') return last;
        } else {
          await response.arrayBuffer();
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      throw new Error(`run ${id} not finished after ${timeoutMs} ms: ${JSON.stringify(last)}`);
    },
    stopStarters,
    async stop() {
      await stopStarters();
      await running.stop();
      await standin.stop();
      await db.drop();
      await nats.stop();
    },
  };
}
