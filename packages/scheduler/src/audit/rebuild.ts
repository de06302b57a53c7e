import { randomBytes } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/mariadb';
import type { Logger } from 'pino';
import { type DatabaseSettings, openDatabase } from '../db/orm.ts';
import { sqlOf } from '../db/sql.ts';
import type { RunEventLog } from '../messaging/eventLog.ts';
import { RunProjection } from '../projection/runProjection.ts';
import { deleteExpiredRows } from '../retention/retention.ts';
import { deferSecondaryIndexes } from './deferredIndexes.ts';
import {
  differingTables,
  readModelTables,
  snapshotOfReadModel,
  summarizeReadModel,
  type TableSummary,
} from './readModelChecksum.ts';

export interface RebuildDeps {
  /** The live read model. */
  orm: MikroORM;
  database: DatabaseSettings;
  eventLog: RunEventLog;
  timeZone: string;
  retention: { logDays: number; statisticsDays: number };
  logger: Logger;
  /** Told how far the projection is, about once a second. */
  onProgress?: (progress: RebuildProgress) => void;
  now?: () => Date;
}

export interface RebuildOptions {
  /** Project into this schema (created when missing) instead of a scratch one. */
  into?: string;
  /** Swap the rebuilt tables in (always, without `into`). */
  swap: boolean;
  /** Rebuild even when runs of the read model are not in the log (they are lost). */
  force: boolean;
}

export interface RebuildProgress {
  events: number;
  total: number;
  eventsPerSecond: number;
}

export interface RebuildReport {
  schema: string;
  before: TableSummary[];
  after: TableSummary[];
  /** Tables whose rows differ between the live read model and the rebuilt one. */
  differing: string[];
  events: number;
  /** The last sequence projected: the live read model's when the rebuild began. */
  position: number;
  seconds: number;
  swapped: boolean;
  /** Runs of the live read model that the log does not have (lost by the rebuild). */
  runsNotInLog: number;
}

/** The rebuild would lose rows the log does not have; nothing was replaced. */
export class RebuildRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RebuildRefusedError';
  }
}

const schemaName = /^[A-Za-z0-9_$]{1,64}$/;

/**
 * Projects the whole log again, from its first sequence, into fresh tables of a second
 * schema, then compares them with the live read model (row counts and checksums) and, for
 * an in-place rebuild or with `swap`, renames them over the live ones in one atomic
 * `RENAME TABLE`, so the API serves the old tables until the new ones are complete. An
 * in-place rebuild drops the scratch schema (holding the old tables) afterwards; `into`
 * keeps it.
 *
 * Runs the live read model has and the log does not (runs whose events the stream's max age
 * already dropped, or an adopted original's history while the scheduler is still importing
 * it) would be lost: the rebuild then refuses, unless forced. An adopted original's history
 * that is imported is in the log (`RunImported`, `StatisticsImported`) and is rebuilt.
 */
export async function rebuildReadModel(
  deps: RebuildDeps,
  options: RebuildOptions,
): Promise<RebuildReport> {
  if (deps.database.sqliteFile !== undefined) {
    // TODO(#8): a SQLite rebuild would project into a second file and swap the files.
    throw new Error(
      'rebuild needs MariaDB (DB_HOST); with PIPELINE_SQLITE_FILE, stop the scheduler, delete the file and start it again',
    );
  }
  const live = deps.database.name;
  const schema = options.into ?? `${live}_rebuild_${randomBytes(3).toString('hex')}`;
  if (!schemaName.test(schema)) throw new Error(`--into: "${schema}" is not a schema name`);
  if (schema === live)
    throw new Error('--into: the rebuild needs a schema other than the live one');
  const swap = options.swap || options.into === undefined;
  const liveSql = sqlOf(deps.orm);

  // The live tables and their checkpoint in one snapshot, and the rebuild projects up to that
  // same checkpoint and not beyond: the two are then comparable row by row however busy the
  // live projector is meanwhile.
  const snapshot = await snapshotOfReadModel(deps.orm, live);
  const before = snapshot.tables;
  await createEmptyReadModel(deps.orm, live, schema);
  const addIndexes = await deferSecondaryIndexes(liveSql, schema, readModelTables);
  const target = await openDatabase({ ...deps.database, name: schema, poolSize: 4 });
  try {
    const startedAt = performance.now();
    const { events, position } = await projectWholeLog(deps, target, snapshot.position);
    await addIndexes();
    const seconds = (performance.now() - startedAt) / 1000;
    // Before retention: a run that retention deletes from the rebuilt tables is in the log.
    const runsNotInLog = await countRunsNotIn(deps.orm, live, schema);
    // The live tables lost what retention deleted; the log still has it.
    await deleteExpiredRows({
      orm: target,
      logger: deps.logger,
      logDays: deps.retention.logDays,
      statisticsDays: deps.retention.statisticsDays,
      timeZone: deps.timeZone,
      ...(deps.now ? { now: deps.now } : {}),
    });
    const after = await summarizeReadModel(sqlOf(target), schema);
    const report: RebuildReport = {
      schema,
      before,
      after,
      differing: differingTables(before, after),
      events,
      position,
      seconds,
      swapped: false,
      runsNotInLog,
    };
    const importing = await adoptionImportUnfinished(deps.orm, deps.eventLog.naming.stream);
    if ((runsNotInLog > 0 || importing) && swap && !options.force) {
      throw new RebuildRefusedError(
        importing
          ? "the scheduler has not finished importing the adopted original's history into the log; " +
              'a rebuild now would lose part of it, so nothing was replaced. Start the scheduler and let it finish, or pass --force.'
          : `${runsNotInLog} runs of the read model are not in the log (expired from the stream); ` +
              'a rebuild would lose them, so nothing was replaced. Pass --force to rebuild without them.',
      );
    }
    if (swap) {
      await swapTables(deps.orm, live, schema);
      report.swapped = true;
    }
    return report;
  } finally {
    await target.close(true).catch(() => {});
    if (options.into === undefined) await dropSchema(deps.orm, schema).catch(() => {});
  }
}

/** The read-model tables of `live`, empty, in `schema` (same columns, keys and indexes). */
async function createEmptyReadModel(orm: MikroORM, live: string, schema: string): Promise<void> {
  const sql = sqlOf(orm);
  await sql.run(
    `CREATE DATABASE IF NOT EXISTS \`${schema}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
  );
  for (const table of readModelTables) {
    await sql.run(`DROP TABLE IF EXISTS \`${schema}\`.\`${table}\``);
    await sql.run(`CREATE TABLE \`${schema}\`.\`${table}\` LIKE \`${live}\`.\`${table}\``);
  }
}

/**
 * Projects from the first sequence up to the live read model's checkpoint (`livePosition`),
 * or, when the live tables have none (or one past the log's end), up to the last sequence
 * there was when it began.
 */
async function projectWholeLog(
  deps: RebuildDeps,
  target: MikroORM,
  livePosition: number,
): Promise<{ events: number; position: number; seconds: number }> {
  const { state } = await deps.eventLog.jetStreamManager.streams.info(deps.eventLog.naming.stream);
  const startedAt = performance.now();
  if (state.messages === 0) return { events: 0, position: 0, seconds: 0 };
  const until =
    livePosition >= state.first_seq && livePosition <= state.last_seq
      ? livePosition
      : state.last_seq;
  const total = Math.min(state.messages, until - state.first_seq + 1);
  const projection = new RunProjection({
    orm: target,
    eventLog: deps.eventLog,
    timeZone: deps.timeZone,
    logger: deps.logger,
    // Big batches: fewer commits, and a run's events fall more often into one batch, so its
    // row is written once, already finished.
    batchSize: 5000,
    until,
  });
  const applied = () => Math.max(0, projection.position - state.first_seq + 1);
  const timer = setInterval(() => {
    const seconds = (performance.now() - startedAt) / 1000;
    deps.onProgress?.({
      events: Math.min(applied(), total),
      total,
      eventsPerSecond: seconds > 0 ? applied() / seconds : 0,
    });
  }, 1000);
  projection.start();
  try {
    await projection.waitFor(until);
  } finally {
    clearInterval(timer);
    await projection.stop();
  }
  return { events: total, position: until, seconds: (performance.now() - startedAt) / 1000 };
}

async function adoptionImportUnfinished(orm: MikroORM, stream: string): Promise<boolean> {
  const rows = await sqlOf(orm).all<{ stream: string }>(
    'SELECT stream FROM pipeline_adoption WHERE stream = ? AND imported_at IS NULL',
    [stream],
  );
  return rows.length > 0;
}

async function countRunsNotIn(orm: MikroORM, live: string, schema: string): Promise<number> {
  const [row] = await sqlOf(orm).all<{ missing: number | string }>(
    `SELECT COUNT(*) AS missing FROM \`${live}\`.script_log kept
     WHERE NOT EXISTS (SELECT 1 FROM \`${schema}\`.script_log rebuilt WHERE rebuilt.id = kept.id)`,
  );
  return Number(row?.missing ?? 0);
}

/**
 * One `RENAME TABLE` for every table, atomic in MariaDB: the live schema gets the rebuilt
 * tables and `schema` the old ones. A projector following the live tables sees the
 * checkpoint move and resumes from it.
 */
async function swapTables(orm: MikroORM, live: string, schema: string): Promise<void> {
  const renames = readModelTables.flatMap((table) => [
    `\`${live}\`.\`${table}\` TO \`${schema}\`.\`${table}__old\``,
    `\`${schema}\`.\`${table}\` TO \`${live}\`.\`${table}\``,
    `\`${schema}\`.\`${table}__old\` TO \`${schema}\`.\`${table}\``,
  ]);
  await sqlOf(orm).run(`RENAME TABLE ${renames.join(', ')}`);
}

async function dropSchema(orm: MikroORM, schema: string): Promise<void> {
  await sqlOf(orm).run(`DROP DATABASE IF EXISTS \`${schema}\``);
}
