import type { MikroORM } from '@mikro-orm/mariadb';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { importAdoptedHistory } from './adoption/adoptedHistory.ts';
import { checkStreamRetention } from './audit/retentionCheck.ts';
import { ClaimResponder } from './claims/claimResponder.ts';
import { FairSharePolicy } from './claims/fairShare.ts';
import type { SchedulerConfig } from './config.ts';
import { migrateDatabase, openDatabase } from './db/orm.ts';
import { ReadModelRegistry } from './db/readModelRegistry.ts';
import { lockSqliteFile } from './db/sqliteFileLock.ts';
import { FleetView } from './fleet/fleetView.ts';
import { NoticeBook } from './fleet/noticeBook.ts';
import { buildApp } from './http/app.ts';
import { LiveOutputHub } from './http/live/liveOutputHub.ts';
import { RunEventLog } from './messaging/eventLog.ts';
import { ensureEventLog, StartupError } from './messaging/streamSetup.ts';
import { MeasuredRunAdmission } from './metrics/measuredAdmission.ts';
import { checkReadiness } from './metrics/readiness.ts';
import { SchedulerMetrics } from './metrics/schedulerMetrics.ts';
import { ScrapeSampler } from './metrics/scrapeSampler.ts';
import { RunProjection } from './projection/runProjection.ts';
import { startRetention } from './retention/retention.ts';
import { SeaTableClient } from './seatable/seatableClient.ts';
import { LostRunWatchdog } from './watchdog/lostRuns.ts';

export interface RunningScheduler {
  /** Where the HTTP API listens, e.g. `http://127.0.0.1:5055`. */
  url: string;
  /** Stops accepting requests, drains the claim and projection work, closes NATS and MariaDB. */
  stop(): Promise<void>;
}

const startRetryDelaysMs = [500, 1000, 2000, 5000];

/**
 * Starts one scheduler: NATS (reconnecting for ever), the log, MariaDB (migrated), the
 * projector, the claim responder, the watchdog and the HTTP API. Several can run side by
 * side: claims are a queue group, and the projector serialises on its checkpoint row.
 */
export async function startScheduler(
  config: SchedulerConfig,
  logger: Logger,
): Promise<RunningScheduler> {
  const { sqliteFile } = config.database;
  const releaseSqliteFile = sqliteFile === undefined ? null : await lockSqliteFile(sqliteFile);
  const connection = await connectNats(config, logger);
  const orm = await untilReady('database', logger, () => openMigratedDatabase(config, logger));
  const eventLog = await untilReady('event log', logger, () =>
    RunEventLog.open(connection, config.naming),
  );
  const setUpLog = () =>
    ensureEventLog(eventLog.jetStreamManager, config.naming, config.stream, orm, logger);
  await untilReady('event log stream', logger, setUpLog);
  const registry = await untilReady('scheduler registry', logger, () =>
    ReadModelRegistry.join(eventLog.jetStream, config.naming, sqliteFile ? 'sqlite' : 'mariadb'),
  ).catch(async (error: unknown) => {
    await orm.close(true).catch(() => {});
    await connection.close().catch(() => {});
    await releaseSqliteFile?.();
    throw error;
  });
  // Before anything is served: see importAdoptedHistory.
  await untilReady('adopted history import', logger, () =>
    importAdoptedHistory({ orm, eventLog, logger }),
  );
  checkStreamRetention(config.stream, config.retention, logger);
  watchConnection(connection, logger, setUpLog);

  const seatable = new SeaTableClient({
    serverUrl: config.seatableServerUrl,
    authToken: config.authToken,
  });
  const metrics = new SchedulerMetrics();
  const projection = new RunProjection({
    orm,
    eventLog,
    timeZone: config.timeZone,
    logger,
    onCommitted: (events) => metrics.countProjected(events),
  });
  const fleet = new FleetView({ jetStream: eventLog.jetStream, naming: config.naming });
  const fairShare = new FairSharePolicy({
    orm,
    totalSlots: () => fleet.totalSlots(),
    seatable,
    claimNotification: new NoticeBook(eventLog.jetStream, config.naming).claim,
    rules: {
      windowSeconds: config.fairShare.windowSeconds,
      rateLimitShare: config.fairShare.rateLimitShare,
      deferMsPerQueuedRun: 20,
      minDeferMs: 1000,
      maxDeferMs: 15_000,
    },
    logger: logger.child({ component: 'fair-share' }),
  });
  const claims = new ClaimResponder({
    decideFairShare: fairShare.check,
    connection,
    eventLog,
    seatable,
    dtableWebUrl: config.seatableServerUrl,
    timeoutSeconds: config.processTimeoutSeconds,
    logger,
  });
  const watchdog = new LostRunWatchdog({
    orm,
    fleet,
    eventLog,
    timeoutSeconds: config.processTimeoutSeconds,
    graceSeconds: config.watchdogGraceSeconds,
    intervalSeconds: config.watchdogIntervalSeconds,
    logger,
  });
  const liveOutput = new LiveOutputHub({
    connection,
    naming: config.naming,
    limit: config.outputLimit,
    // The longest a run can live: its deadline, then the watchdog's grace and round.
    maxAgeMs:
      (config.processTimeoutSeconds +
        config.watchdogGraceSeconds +
        config.watchdogIntervalSeconds +
        60) *
      1000,
    logger: logger.child({ component: 'live-output' }),
  });
  projection.start();
  claims.start();
  liveOutput.start();
  watchdog.start();
  const retention = startRetention({
    orm,
    logger,
    logDays: config.retention.logDays,
    statisticsDays: config.retention.statisticsDays,
    timeZone: config.timeZone,
  });

  const admission = new MeasuredRunAdmission(
    { orm, eventLog, seatable, timeZone: config.timeZone, logger },
    metrics,
  );
  const sampler = new ScrapeSampler({ orm, eventLog, fleet, logger });
  const app = await buildApp({
    authToken: config.authToken,
    timeZone: config.timeZone,
    maxBodyBytes: config.http.maxBodyBytes,
    logger,
    orm,
    admission,
    eventLog,
    fleet,
    liveOutput,
    observability: {
      metrics,
      sample: () => sampler.sample(),
      readiness: () => checkReadiness({ connection, eventLog, orm }),
    },
  });
  const url = await app.listen({ host: config.http.host, port: config.http.port });
  logger.info({ url }, 'scheduler listening');

  let stopping: Promise<void> | undefined;
  return {
    url,
    stop() {
      stopping ??= shutDown(logger, [
        ['http', () => app.close()],
        ['live output', async () => liveOutput.stop()],
        ['claims', () => claims.stop()],
        ['watchdog', () => watchdog.stop()],
        ['retention', () => retention.stop()],
        ['projection', () => projection.stop()],
        ['scheduler registry', () => registry.leave()],
        ['nats', () => connection.drain()],
        ['database', () => orm.close()],
        ['SQLite file lock', async () => await releaseSqliteFile?.()],
      ]);
      return stopping;
    },
  };
}

async function connectNats(config: SchedulerConfig, logger: Logger): Promise<NatsConnection> {
  const connection = await connect({
    servers: config.nats.servers,
    user: config.nats.user,
    pass: config.nats.password,
    token: config.nats.token,
    name: 'pipeline-scheduler',
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    waitOnFirstConnect: true,
  });
  logger.info({ server: connection.getServer() }, 'connected to NATS');
  return connection;
}

async function openMigratedDatabase(config: SchedulerConfig, logger: Logger): Promise<MikroORM> {
  const orm = await openDatabase({ ...config.database });
  try {
    const applied = await migrateDatabase(orm);
    if (applied.length > 0) logger.info({ migrations: applied }, 'database migrated');
    return orm;
  } catch (error) {
    await orm.close(true).catch(() => {});
    throw error;
  }
}

/** Retries a start-up step while its service is not there yet, so start order does not matter. */
async function untilReady<T>(what: string, logger: Logger, step: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (error) {
      if (error instanceof StartupError) throw error;
      const delayMs =
        startRetryDelaysMs[Math.min(attempt - 1, startRetryDelaysMs.length - 1)] ?? 5000;
      logger.warn(
        { err: error, dependency: what, attempt, delayMs },
        'dependency not ready, retrying',
      );
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

/** Logs the connection's ups and downs and re-creates the stream after a reconnect (BC-16). */
function watchConnection(
  connection: NatsConnection,
  logger: Logger,
  setUpLog: () => Promise<void>,
): void {
  void (async () => {
    for await (const status of connection.status()) {
      if (status.type === 'disconnect') logger.warn({ server: status.server }, 'NATS disconnected');
      if (status.type === 'reconnect') {
        logger.info({ server: status.server }, 'NATS reconnected');
        await setUpLog().catch((error: unknown) =>
          logger.error({ err: error }, 'event log check after reconnect failed'),
        );
      }
    }
  })();
}

/** Runs every step even when one fails (each failure is logged), in order. */
async function shutDown(logger: Logger, steps: [string, () => Promise<unknown>][]): Promise<void> {
  for (const [name, step] of steps) {
    try {
      await step();
    } catch (error) {
      logger.warn({ err: error, step: name }, 'shutdown step failed');
    }
  }
  logger.info('scheduler stopped');
}
