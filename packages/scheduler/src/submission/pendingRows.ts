import type { MikroORM } from '@mikro-orm/mariadb';
import type { RunRequested } from '@pipeline/events';
import { sqlOf } from '../db/sql.ts';
import { insertRequestedRuns } from '../projection/runRows.ts';

interface PendingRow {
  runId: number;
  event: RunRequested;
  settle: (error?: unknown) => void;
}

/**
 * Writes the pending rows of accepted submissions in groups: while one statement is in
 * flight, the rows that arrive wait and go together in the next. Under load one INSERT
 * carries many submissions; alone, a row goes at once.
 */
export class PendingRowWriter {
  private readonly orm: MikroORM;
  private readonly maxRows: number;
  private queue: PendingRow[] = [];
  private flushing = false;

  constructor(orm: MikroORM, maxRows = 200) {
    this.orm = orm;
    this.maxRows = maxRows;
  }

  write(runId: number, event: RunRequested): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({
        runId,
        event,
        settle: (error) => (error === undefined ? resolve() : reject(error)),
      });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const group = this.queue.splice(0, this.maxRows);
        try {
          await insertRequestedRuns(sqlOf(this.orm), group);
          for (const row of group) row.settle();
        } catch (error) {
          for (const row of group) row.settle(error ?? new Error('pending rows not written'));
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}
