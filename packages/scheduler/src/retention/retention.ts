import { setTimeout as sleep } from 'node:timers/promises';
import type { MikroORM } from '@mikro-orm/mariadb';
import type { Logger } from 'pino';
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

const statisticsTables = [
  'user_run_script_statistics',
  'org_run_script_statistics',
  'dtable_run_script_statistics',
];

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
      statisticsDeleted += await batch.deleteRows(
        table,
        'run_date < ? ORDER BY run_date, id',
        firstKeptDay,
      );
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

  async deleteRows(table: string, condition: string, cutoff: string): Promise<number> {
    return await this.#inBatches(table, condition, cutoff, async (ids) => {
      await this.#run(`DELETE FROM ${table} WHERE id IN (?)`, ids);
    });
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
