import { randomUUID } from 'node:crypto';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { type Naming, newClaimKeys } from '@pipeline/events';
import {
  PIPELINE_LABEL,
  PIPELINE_LABEL_VALUE,
  pooledContainerCreateOptions,
  RUN_ID_LABEL,
  runnerNetworkCreateOptions,
  STARTER_ID_LABEL,
} from '@pipeline/runner';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { describeConfig, type StarterConfig } from './config.ts';
import { createStreamIfMissing, RunRequestConsumer } from './consuming/runRequestConsumer.ts';
import { RunSlots } from './consuming/runSlots.ts';
import { dockerClient, engineEndpoint } from './dockerConnection.ts';
import { LiveOutput } from './execution/liveOutput.ts';
import { RunExecution } from './execution/runExecution.ts';
import { fleetEntryTtlMs, Heartbeat } from './fleet/heartbeat.ts';
import { runningVersion } from './metrics/buildInfo.ts';
import { MeasuredPublisher } from './metrics/measuredPublisher.ts';
import { MeasuredSandbox } from './metrics/measuredSandbox.ts';
import { type StarterHttpServer, startStarterHttp } from './metrics/starterHttp.ts';
import { StarterMetrics } from './metrics/starterMetrics.ts';
import { RunEventPublisher } from './publishing/runEventPublisher.ts';
import { delay, retryDelayMs, settleWithin } from './retry.ts';
import { DockerSandbox } from './sandbox/dockerSandbox.ts';
import { EngineGate } from './sandbox/engineGate.ts';
import { removeDepartedStartersContainers, removeOrphans } from './sandbox/orphanSweep.ts';
import { ensureRunnerIsolation } from './sandbox/runnerNetwork.ts';
import { WarmPool } from './sandbox/warmPool.ts';

export interface RunningStarter {
  readonly starterId: string;
  /** Where `/healthz`, `/readyz` and `/metrics` answer; null when `PYTHON_STARTER_METRICS_PORT` is off. */
  readonly httpUrl: string | null;
  /** Stops taking requests, lets the runs in progress finish and report, then disconnects. */
  stop(): Promise<void>;
  /**
   * Gives up at once, as a crash would: results not yet stored are lost (their runs end as
   * lost) and its containers stay until the next start's sweep.
   */
  abort(): Promise<void>;
  /** Gives up at once as `abort` does, but removes its containers first (a second SIGTERM). */
  stopNow(): Promise<void>;
}

/**
 * Starts a starter in this process: checks the engine and the runner image, removes the
 * containers of its earlier life, connects to NATS (retrying for ever) and starts pulling.
 */
export async function startStarter(config: StarterConfig, logger: Logger): Promise<RunningStarter> {
  const log = logger.child({ starterId: config.starterId });
  log.info(describeConfig(config), 'starter starting');

  const docker = dockerClient(config.docker);
  const sandbox = new DockerSandbox(docker, log, RUN_ID_LABEL, engineEndpoint(config.docker));
  const engineGate = new EngineGate(() => docker.ping(), log);
  sandbox.onNoAnswer = (operation, error) => engineGate.noAnswer(operation, error);
  if (!(await sandbox.imageExists(config.sandbox.image))) {
    throw new Error(
      `runner image ${config.sandbox.image} is not on the Docker engine (PYTHON_RUNNER_IMAGE)`,
    );
  }
  if (!builtInNetworks.has(config.sandbox.network)) {
    const created = await sandbox.ensureNetwork(runnerNetworkCreateOptions(config.sandbox.network));
    if (created) log.info({ network: config.sandbox.network }, 'runner network created');
  }
  // Before NATS and before any work: a starter whose sandboxes reach the pipeline stops here.
  await ensureRunnerIsolation(config, { docker, log });
  await removeOrphans(sandbox, { [STARTER_ID_LABEL]: config.starterId }, log);

  const nc = await connectNats(config);
  void logConnectionStatus(nc, log);
  const js = jetstream(nc);
  const installation = { [LOG_LABEL]: await logIdentity(nc, config.naming, log) };
  const hardStop = new AbortController();
  const publisher = new RunEventPublisher(js, config.naming, log, hardStop.signal);
  const metrics = new StarterMetrics();
  const measuredSandbox = new MeasuredSandbox(sandbox, metrics);
  const pool =
    config.pool.size > 0
      ? new WarmPool({
          sandbox: measuredSandbox,
          engine: sandbox,
          size: config.pool.size,
          idleMs: config.pool.idleSeconds * 1000,
          image: config.sandbox.image,
          createOptions: (profileHash) =>
            pooledContainerCreateOptions(config.sandbox, {
              starterId: config.starterId,
              labels: installation,
              profileHash,
            }),
          log,
        })
      : null;
  const execution = new RunExecution(
    measuredSandbox,
    new MeasuredPublisher(publisher, metrics),
    {
      starterId: config.starterId,
      containerLabels: installation,
      outputLimit: config.outputLimit,
      stopGraceSeconds: config.stopGraceSeconds,
      timeZone: config.timeZone,
      alternativeFileServerRoot: config.alternativeFileServerRoot,
      sandbox: config.sandbox,
      onOutputDropped: (bytes) => metrics.countDroppedOutput(bytes),
    },
    new LiveOutput({ connection: nc, naming: config.naming }),
    pool,
  );

  const slots = new RunSlots(config.slots);
  metrics.watchSlots(slots);
  const startedAt = new Date().toISOString();
  // This process's life: in every claim and heartbeat, so the watchdog can tell a restart
  // under the same STARTER_ID from the life that claimed a run.
  const starterLife = randomUUID();
  let draining = false;
  const heartbeat = new Heartbeat({
    js,
    naming: config.naming,
    log,
    describe: () => ({
      starterId: config.starterId,
      host: config.host,
      slots: config.slots,
      busy: slots.busy,
      draining,
      startedAt,
      starterLife,
      version: runningVersion(),
    }),
  });
  const consumer = new RunRequestConsumer({
    nc,
    js,
    naming: config.naming,
    starterId: config.starterId,
    starterLife,
    claimKeys: newClaimKeys(),
    host: config.host,
    slots,
    log,
    ready: (signal) => engineGate.whenAnswering(signal),
    execute: (assignment, runLog) => execution.execute(assignment, runLog),
  });
  // Before the starter joins the fleet, so a port in use stops it before it takes work.
  const http = await startHttp(config, metrics, nc, docker, heartbeat, log);
  await sweepDepartedStarters(sandbox, heartbeat, config.starterId, installation, log);
  // In the fleet before the first container exists, so another starter's sweep spares it.
  await heartbeat.beat();
  heartbeat.start();
  pool?.start();
  consumer.start();
  log.info({ slots: config.slots }, 'starter ready');

  /**
   * Stops at once: nothing more reaches the log, and the runs in progress end as lost through
   * the watchdog. With `removeContainers` its containers go too, running scripts and the warm
   * pool alike, as the next start's sweep would remove them, so that no script runs on
   * meanwhile.
   */
  const giveUp = async (removeContainers: boolean): Promise<void> => {
    hardStop.abort();
    pool?.abandon();
    void execution.removals.close(0);
    heartbeat.stop();
    if (removeContainers) {
      const swept = removeOrphans(sandbox, { [STARTER_ID_LABEL]: config.starterId }, log).catch(
        (error: unknown) => {
          log.warn({ err: error }, 'could not remove the containers; the next start removes them');
          return 0;
        },
      );
      await settleWithin(swept, stopNowSweepMs, 0);
    }
    await http?.close();
    await nc.close();
  };
  let stopped: Promise<void> | null = null;
  return {
    starterId: config.starterId,
    httpUrl: http?.url ?? null,
    stop() {
      stopped ??= (async () => {
        draining = true;
        log.info({ busy: slots.busy }, 'starter draining');
        // Prepared sandboxes hold no run: they go first, and no new ones are made.
        const poolClosed = pool?.close();
        await heartbeat.beat();
        await consumer.stop();
        await poolClosed;
        await execution.removalsDone();
        await execution.removals.close(removalDrainMs);
        heartbeat.stop();
        await heartbeat.withdraw(config.starterId);
        await nc.drain().catch(() => nc.close());
        await http?.close();
        log.info('starter stopped');
      })();
      return stopped;
    },
    abort: () => giveUp(false),
    stopNow: () => giveUp(true),
  };
}

/**
 * `/healthz`, `/readyz` and `/metrics`. Ready: NATS answers a round trip, the engine a ping,
 * and the fleet bucket took a heartbeat lately (else the scheduler counts this starter as
 * gone and its runs as lost, whatever NATS and Docker say).
 */
async function startHttp(
  config: StarterConfig,
  metrics: StarterMetrics,
  nc: NatsConnection,
  docker: Docker,
  heartbeat: Heartbeat,
  log: Logger,
): Promise<StarterHttpServer | null> {
  if (!config.http) return null;
  return await startStarterHttp({
    ...config.http,
    metrics,
    log,
    checks: {
      nats: async () => {
        if (nc.isClosed()) throw new Error('the NATS connection is closed');
        await nc.flush();
      },
      docker: async () => {
        await docker.ping();
      },
      heartbeat: async () => {
        const last = heartbeat.lastBeatAt;
        if (last === null) throw new Error('no heartbeat stored in the fleet bucket yet');
        const ageMs = Date.now() - last.getTime();
        if (ageMs > fleetEntryTtlMs) {
          throw new Error(`last heartbeat stored ${Math.round(ageMs / 1000)} s ago`);
        }
      },
    },
  });
}

/**
 * Removes containers of starters that left the fleet. Skipped when the fleet cannot be
 * read: a starter whose heartbeat we cannot see may still be alive.
 */
async function sweepDepartedStarters(
  sandbox: DockerSandbox,
  heartbeat: Heartbeat,
  starterId: string,
  installation: Record<string, string>,
  log: Logger,
): Promise<void> {
  const alive = await heartbeat.fleetMembers();
  if (!alive) return;
  alive.add(starterId);
  await removeDepartedStartersContainers(
    sandbox,
    { [PIPELINE_LABEL]: PIPELINE_LABEL_VALUE, ...installation },
    STARTER_ID_LABEL,
    alive,
    log,
  );
}

/**
 * Names this installation's log: the stream's name and creation time. Containers carry it,
 * so that the departed-starter sweep touches only containers of starters of the same log,
 * never those of another installation (or test) sharing the Docker engine.
 */
async function logIdentity(nc: NatsConnection, naming: Naming, log: Logger): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      const jsm = await jetstreamManager(nc);
      await createStreamIfMissing(jsm, naming);
      const info = await jsm.streams.info(naming.stream);
      return `${naming.stream}@${info.created}`;
    } catch (error) {
      const waitMs = retryDelayMs(attempt, 500);
      log.warn({ err: error, attempt, retryInMs: waitMs }, 'stream not reachable yet');
      await delay(waitMs);
    }
  }
}

/** How long a stopping starter goes on retrying refused container removals. */
const removalDrainMs = 10_000;
/** How long a starter stopping at once waits for its containers' removal. */
const stopNowSweepMs = 5_000;

/** The label naming the log a container's run belongs to. */
const LOG_LABEL = 'org.seatable.pipeline.log';

/** Docker's own networks, which exist on every engine and cannot be created. */
const builtInNetworks = new Set(['bridge', 'host', 'none', 'default']);

async function connectNats(config: StarterConfig): Promise<NatsConnection> {
  return await connect({
    servers: config.nats.servers,
    name: `starter ${config.starterId}`,
    ...(config.nats.user ? { user: config.nats.user, pass: config.nats.password ?? '' } : {}),
    ...(config.nats.token ? { token: config.nats.token } : {}),
    // A starter outlives NATS restarts: it keeps its results and reconnects for ever.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1_000,
    waitOnFirstConnect: true,
  });
}

async function logConnectionStatus(nc: NatsConnection, log: Logger): Promise<void> {
  for await (const status of nc.status()) {
    if (status.type === 'disconnect') log.warn({ server: status.server }, 'nats disconnected');
    else if (status.type === 'reconnect') log.info({ server: status.server }, 'nats reconnected');
    else if (status.type === 'error') log.warn({ err: status.error }, 'nats connection error');
  }
}
