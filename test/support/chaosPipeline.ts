import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type SeaTableStandin, startSeaTableStandin } from '@pipeline/seatable-standin';
import Docker from 'dockerode';
import { canRunSecondEngine, type DockerEngine, startDockerEngine } from './dockerEngine.ts';
import { type MariaDbServer, startMariaDbServer } from './mariadbServer.ts';
import { freePort, type NatsServer, startNatsServer } from './nats.ts';
import { baseUuid, testRunnerImage } from './pipeline.ts';
import { type ServiceProcess, serviceProcess } from './serviceProcess.ts';

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export { canRunSecondEngine };

/** Labels of every runner container (packages/runner/src/containerOptions.ts). */
export const starterIdLabel = 'org.seatable.pipeline.starter-id';
export const runIdLabel = 'org.seatable.pipeline.run-id';
export const poolLabel = 'org.seatable.pipeline.pool';

export interface ChaosPipelineOptions {
  label: string;
  timeoutSeconds: number;
  graceSeconds: number;
  slotsPerStarter: number;
}

/**
 * The pipeline as separate processes that a test may kill, each on servers of the test's
 * own: a nats-server (restartable on its port and store), a mariadbd (stoppable), a second
 * Docker engine in its own network namespace (restartable), the SeaTable stand-in in this
 * process, the scheduler as a child process and two starters as child processes, one on the
 * machine's Docker engine and one on the second engine.
 */
export interface ChaosPipeline {
  url: string;
  token: string;
  env: Record<string, string>;
  database: string;
  nats: NatsServer;
  mariadb: MariaDbServer;
  engine: DockerEngine;
  standin: SeaTableStandin;
  scheduler: ServiceProcess;
  /** By starter id; the first runs on the machine's engine, the second on `engine`. */
  starters: Map<string, ServiceProcess>;
  /** The starter on the second engine. */
  engineStarterId: string;
  logDirectory: string;
  request(path: string, init?: RequestInit & { auth?: boolean }): Promise<Response>;
  query<T = Record<string, unknown>>(sql: string, values?: unknown[]): Promise<T[]>;
  /** Starts the scheduler (again) and waits until it answers. */
  startScheduler(): Promise<void>;
  /** Waits until `count` starters send heartbeats. */
  waitForFleet(count: number, timeoutMs?: number): Promise<void>;
  /** Containers of this pipeline's starters on both engines: engine, id, state, run. */
  containersLeft(): Promise<string[]>;
  /** `pipeline rebuild --into <scratch>`: whether the rebuilt tables are identical. */
  rebuildIsIdentical(): Promise<{ identical: boolean; output: string }>;
  stop(): Promise<void>;
}

export async function startChaosPipeline(options: ChaosPipelineOptions): Promise<ChaosPipeline> {
  const label = options.label.replace(/[^a-z0-9]/gi, '').toLowerCase();
  const logDirectory = await mkdtemp(`/tmp/pl-${label}-logs-`);
  const nats = await startNatsServer();
  const mariadb = await startMariaDbServer(label);
  const engine = await startDockerEngine(label, [testRunnerImage]);
  const token = randomBytes(16).toString('hex');
  const standin = await startSeaTableStandin({ secret: token });
  const database = `pipeline_${label}`;
  await mariadb.query(
    `CREATE DATABASE ${database} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
  );
  const port = await freePort();
  const env: Record<string, string> = {
    PYTHON_SCHEDULER_AUTH_TOKEN: token,
    SEATABLE_SERVER_URL: standin.url,
    NATS_URL: nats.url,
    PIPELINE_SUBJECT_PREFIX: `chaos${label}`,
    DB_HOST: mariadb.host,
    DB_PORT: String(mariadb.port),
    DB_USER: mariadb.user,
    DB_PASSWD: mariadb.password,
    DATABASE_NAME: database,
    SCHEDULER_HOST: '127.0.0.1',
    SCHEDULER_PORT: String(port),
    TIME_ZONE: 'Europe/Berlin',
    PYTHON_PROCESS_TIMEOUT: String(options.timeoutSeconds),
    PIPELINE_WATCHDOG_GRACE_SECONDS: String(options.graceSeconds),
    PIPELINE_WATCHDOG_INTERVAL_SECONDS: '1',
    PYTHON_RUNNER_IMAGE: testRunnerImage,
    PYTHON_RUNNER_CONTAINER_MEMORY: '256m',
    PYTHON_RUNNER_PIDS_LIMIT: '128',
    PYTHON_STARTER_THREAD_COUNT: String(options.slotsPerStarter),
    LOG_LEVEL: process.env.CHAOS_LOG_LEVEL ?? 'warn',
  };
  const url = `http://127.0.0.1:${port}`;
  const scheduler = serviceProcess({
    name: 'scheduler',
    entry: 'packages/scheduler/src/main.ts',
    env,
    logFile: join(logDirectory, 'scheduler.log'),
  });
  const mainStarterId = `${label}-starter-main`;
  const engineStarterId = `${label}-starter-engine2`;
  const starters = new Map<string, ServiceProcess>([
    [
      mainStarterId,
      serviceProcess({
        name: mainStarterId,
        entry: 'packages/starter/src/main.ts',
        env: { ...env, STARTER_ID: mainStarterId },
        logFile: join(logDirectory, `${mainStarterId}.log`),
      }),
    ],
    [
      engineStarterId,
      serviceProcess({
        name: engineStarterId,
        entry: 'packages/starter/src/main.ts',
        env: {
          ...env,
          STARTER_ID: engineStarterId,
          DOCKER_HOST: engine.host,
          // The second engine has no bridge: its runs get no network at all.
          PYTHON_RUNNER_NETWORK: 'none',
        },
        logFile: join(logDirectory, `${engineStarterId}.log`),
      }),
    ],
  ]);

  const request = async (path: string, init: RequestInit & { auth?: boolean } = {}) => {
    const headers = new Headers(init.headers);
    if (init.auth !== false) headers.set('Authorization', `Token ${token}`);
    return await fetch(`${url}${path}`, { ...init, headers, signal: AbortSignal.timeout(15_000) });
  };

  const pipeline: ChaosPipeline = {
    url,
    token,
    env,
    database,
    nats,
    mariadb,
    engine,
    standin,
    scheduler,
    starters,
    engineStarterId,
    logDirectory,
    request,
    query: (sql, values) => mariadb.query(sql, values, database),
    async startScheduler() {
      scheduler.start();
      for (let attempt = 0; ; attempt++) {
        const answer = await fetch(`${url}/ping/`).then(
          (response) => response.status,
          () => 0,
        );
        if (answer === 200) return;
        if (!scheduler.running) throw new Error(`the scheduler exited; see ${logDirectory}`);
        if (attempt > 600) throw new Error('the scheduler never answered /ping/');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async waitForFleet(count, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const response = await request('/admin/fleet/').catch(() => undefined);
        if (response?.status === 200) {
          const fleet = (await response.json()) as { starters: unknown[] };
          if (fleet.starters.length >= count) return;
        } else {
          await response?.arrayBuffer();
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      throw new Error(`the fleet never had ${count} starters`);
    },
    async containersLeft() {
      const left: string[] = [];
      for (const [name, docker] of [
        ['main engine', new Docker()],
        ['second engine', engine.docker],
      ] as const) {
        const containers = await docker.listContainers({
          all: true,
          filters: { label: [starterIdLabel] },
        });
        for (const container of containers) {
          if (!starters.has(container.Labels[starterIdLabel] ?? '')) continue;
          const runId = container.Labels[runIdLabel];
          // A warm-pool container being prepared or waiting for a run holds nothing of any
          // run: not left over. One that stopped is, until its starter removes it.
          const preparing = container.State === 'created' || container.State === 'running';
          if (runId === undefined && poolLabel in container.Labels && preparing) continue;
          left.push(
            `${name} ${container.Id.slice(0, 12)} ${container.State} run ${runId ?? 'none (pool)'}`,
          );
        }
      }
      return left;
    },
    async rebuildIsIdentical() {
      const scratch = `${database}_rebuilt_${randomBytes(3).toString('hex')}`;
      // Which runs differ, first, so that a failed comparison says what to look at however
      // the report is cut.
      const differingRuns = async () => {
        const columns = [
          'state',
          'success',
          'return_code',
          'created_at',
          'started_at',
          'finished_at',
          'context_data',
          'output',
        ];
        const select = (from: string, to: string) =>
          `SELECT '${from}' AS side, a.id, ${columns.map((c) => `a.${c} AS ${from}_${c}, b.${c} AS ${to}_${c}`).join(', ')}
             FROM \`${from === 'live' ? database : scratch}\`.script_log a
             LEFT JOIN \`${from === 'live' ? scratch : database}\`.script_log b ON b.id = a.id
             WHERE NOT (${columns.map((c) => `a.${c} <=> b.${c}`).join(' AND ')})`;
        const rows = await mariadb
          .query<Record<string, unknown>>(
            `${select('live', 'rebuilt')} UNION ALL ${select('rebuilt', 'live')} LIMIT 4`,
          )
          .catch((error: unknown) => [{ error: String(error) }]);
        return `differing runs: ${JSON.stringify(rows).slice(0, 1200)}\n`;
      };
      try {
        const { stdout } = await run(
          process.execPath,
          ['packages/scheduler/src/cli/pipeline.ts', 'rebuild', '--into', scratch],
          { cwd: repoRoot, env: { PATH: process.env.PATH ?? '', ...env }, maxBuffer: 1 << 24 },
        );
        const identical = /^identical:/m.test(stdout);
        if (identical) return { identical, output: stdout };
        return { identical, output: `${await differingRuns()}${stdout}` };
      } catch (error) {
        const failed = error as { stdout?: string; stderr?: string; message: string };
        return {
          identical: false,
          output: `${await differingRuns()}${failed.stdout ?? ''}${failed.stderr ?? failed.message}`,
        };
      } finally {
        await mariadb.query(`DROP DATABASE IF EXISTS \`${scratch}\``).catch(() => {});
      }
    },
    async stop() {
      for (const starter of starters.values()) await starter.kill('SIGTERM');
      await scheduler.kill('SIGTERM');
      await standin.stop().catch(() => {});
      await engine.destroy().catch(() => {});
      await mariadb.destroy().catch(() => {});
      await nats.stop().catch(() => {});
      if (!process.env.CHAOS_KEEP_LOGS) await rm(logDirectory, { recursive: true, force: true });
    },
  };

  try {
    await pipeline.startScheduler();
    for (const starter of starters.values()) starter.start();
    await pipeline.waitForFleet(starters.size);
  } catch (error) {
    await pipeline.stop().catch(() => {});
    throw error;
  }
  return pipeline;
}

export { baseUuid };
