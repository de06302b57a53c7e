import { setTimeout as sleep } from 'node:timers/promises';
import type { MikroORM } from '@mikro-orm/mariadb';
import type { Logger } from 'pino';
import { inTransaction, type Sql } from '../db/sql.ts';
import { addToMonthlyTotals, type CountedRun } from '../http/read/monthlyTotals.ts';
import { addDays, sqlUtc } from '../http/read/zonedTime.ts';
import { localDate } from '../http/runView.ts';

export interface RetentionOptions {
  orm: MikroORM;
  logger: Logger;
  /** Run logs requested longer ago than this are deleted (`DELETE_LOG_DAYS`); 0 keeps them all. */
  logDays: number;
  /** Statistics days older than this are deleted (`DELETE_STATISTICS_DAYS`); 0 keeps them all. */
  statisticsDays: number;
  /** @default () => new Date() */
  now?: () => Date;
  /** The zone whose calendar days the statistics rows count (`TIME_ZONE`). @default 'UTC' */
  timeZone?: string;
  /** Time between two passes. @default 86_400_000 (a day) */
  intervalMs?: number;
  /** Rows deleted per statement, so no statement holds its locks for long. @default 1000 */
  batchSize?: number;
  /** Pause between two batches, to leave the database to the projector. @default 20 */
  batchPauseMs?: number;
}

export interface RetentionPass {
  runLogsDeleted: number;
  statisticsDeleted: number;
}

/** Each daily statistics table, its owner column, and how that owner is named in monthly totals. */
const statisticsTables = [
  { table: 'user_run_script_statistics', column: 'username', owner: 'username' },
  { table: 'org_run_script_statistics', column: 'org_id', owner: 'orgId' },
  { table: 'dtable_run_script_statistics', column: 'dtable_uuid', owner: 'dtableUuid' },
] as const;

type StatisticsTable = (typeof statisticsTables)[number];

interface ExpiredDay {
  id: number;
  owner: string | number;
  day: string;
  runs: number | null;
  run_time: number | null;
}

/**
 * Deletes what is past its keeping time, in small batches: each batch selects the ids of
 * the oldest expired rows through the time index, then deletes exactly those rows by
 * primary key. A run's details and output pieces go before the run, so an interrupted
 * pass leaves nothing behind that a later pass would not find again.
 */
export async function deleteExpiredRows(
  options: RetentionOptions,
  shouldStop: () => boolean = () => false,
): Promise<RetentionPass> {
  const now = (options.now ?? (() => new Date()))();
  const batch = new BatchDeleter(options, shouldStop);
  let runLogsDeleted = 0;
  let statisticsDeleted = 0;

  if (options.logDays > 0) {
    const cutoff = sqlUtc(new Date(now.getTime() - options.logDays * 86_400_000));
    runLogsDeleted += await batch.deleteRuns('created_at < ? ORDER BY created_at, id', cutoff);
    // Rows from before the original had `created_at` are aged by their start.
    runLogsDeleted += await batch.deleteRuns(
      'created_at IS NULL AND started_at < ? ORDER BY started_at, id',
      cutoff,
    );
  }

  if (options.statisticsDays > 0) {
    const today = localDate(now, options.timeZone ?? 'UTC');
    const firstKeptDay = addDays(today, -options.statisticsDays);
    for (const table of statisticsTables) {
      statisticsDeleted += await batch.deleteStatistics(table, firstKeptDay);
    }
  }
  return { runLogsDeleted, statisticsDeleted };
}

class BatchDeleter {
  readonly #options: RetentionOptions;
  readonly #shouldStop: () => boolean;
  readonly #size: number;

  constructor(options: RetentionOptions, shouldStop: () => boolean) {
    this.#options = options;
    this.#shouldStop = shouldStop;
    this.#size = options.batchSize ?? 1000;
  }

  async deleteRuns(condition: string, cutoff: string): Promise<number> {
    return await this.#inBatches('script_log', condition, cutoff, async (ids) => {
      await this.#run('DELETE FROM run_detail WHERE run_id IN (?)', ids);
      await this.#run('DELETE FROM run_output_chunk WHERE run_id IN (?)', ids);
      await this.#run('DELETE FROM script_log WHERE id IN (?)', ids);
    });
  }

  /**
   * Deletes a batch of daily rows and takes them off the monthly totals in the same
   * transaction, so the totals stay the sums of the daily rows that remain.
   */
  async deleteStatistics(statistics: StatisticsTable, firstKeptDay: string): Promise<number> {
    let deleted = 0;
    while (!this.#shouldStop()) {
      const batchSize = await inTransaction(this.#options.orm, async (sql) => {
        const days = await sql.all<ExpiredDay>(
          `SELECT id, ${statistics.column} AS owner, ${sql.dialect.dayText('run_date')} AS day,
             total_run_count AS runs, total_run_time AS run_time
           FROM ${statistics.table} WHERE run_date < ? ORDER BY run_date, id LIMIT ?${sql.dialect.forUpdate}`,
          [firstKeptDay, this.#size],
        );
        if (days.length === 0) return 0;
        await sql.run(`DELETE FROM ${statistics.table} WHERE id IN (?)`, [
          days.map((day) => Number(day.id)),
        ]);
        for (const day of days) await subtractFromMonth(sql, statistics, day);
        return days.length;
      });
      deleted += batchSize;
      if (batchSize < this.#size) break;
      await sleep(this.#options.batchPauseMs ?? 20);
    }
    await this.#options.orm.em
      .getConnection()
      .execute(
        `DELETE FROM ${statistics.table}_monthly WHERE month <= ? AND total_run_count <= 0`,
        [firstKeptDay],
        'run',
      );
    return deleted;
  }

  async #inBatches(
    table: string,
    condition: string,
    cutoff: string,
    deleteIds: (ids: number[]) => Promise<void>,
  ): Promise<number> {
    let deleted = 0;
    while (!this.#shouldStop()) {
      const rows = await this.#options.orm.em
        .getConnection()
        .execute<{ id: number }[]>(
          `SELECT id FROM ${table} WHERE ${condition} LIMIT ?`,
          [cutoff, this.#size],
          'all',
        );
      if (rows.length === 0) break;
      await deleteIds(rows.map((row) => Number(row.id)));
      deleted += rows.length;
      if (rows.length < this.#size) break;
      await sleep(this.#options.batchPauseMs ?? 20);
    }
    return deleted;
  }

  async #run(sql: string, ids: number[]): Promise<void> {
    await this.#options.orm.em.getConnection().execute(sql, [ids], 'run');
  }
}

async function subtractFromMonth(
  sql: Sql,
  statistics: StatisticsTable,
  day: ExpiredDay,
): Promise<void> {
  const counted: CountedRun = {
    runDate: day.day,
    runCount: -Number(day.runs ?? 0),
    runTime: -Number(day.run_time ?? 0),
  };
  if (statistics.owner === 'orgId') counted.orgId = Number(day.owner);
  else counted[statistics.owner] = String(day.owner);
  await addToMonthlyTotals(sql, counted);
}

/**
 * Runs a retention pass now and then every `intervalMs`. A failed pass is logged and the
 * next one runs on schedule; `stop()` cancels the schedule and waits for a running pass
 * to finish its current batch.
 */
export function startRetention(options: RetentionOptions): { stop(): Promise<void> } {
  const log = options.logger.child({ component: 'retention' });
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();

  const pass = async (): Promise<void> => {
    const startedAt = Date.now();
    try {
      const outcome = await deleteExpiredRows(options, () => stopped);
      log.info({ ...outcome, durationMs: Date.now() - startedAt }, 'retention pass finished');
    } catch (err) {
      log.error({ err }, 'retention pass failed');
    }
    if (!stopped) {
      timer = setTimeout(() => {
        running = pass();
      }, options.intervalMs ?? 86_400_000);
      timer.unref();
    }
  };

  running = pass();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
