import type { MikroORM } from '@mikro-orm/mariadb';
import { endWithoutResult, outputTexts } from '@pipeline/events';
import type { Logger } from 'pino';
import { fromSqlDateTime, sqlOf, toSqlDateTime } from '../db/sql.ts';
import type { FleetView } from '../fleet/fleetView.ts';
import type { RunEventLog } from '../messaging/eventLog.ts';

export interface LostRunWatchdogDeps {
  orm: MikroORM;
  eventLog: Pick<RunEventLog, 'lastEventOf' | 'decisionOf' | 'appendIfUnchanged'>;
  /** Which starters still send heartbeats. */
  fleet: Pick<FleetView, 'isAlive'>;
  /** `PYTHON_PROCESS_TIMEOUT`: a run's own deadline. */
  timeoutSeconds: number;
  /** Extra time after the deadline before a silent starter's run counts as lost. */
  graceSeconds: number;
  intervalSeconds: number;
  logger: Logger;
  now?: () => Date;
}

const candidatesPerSweep = 500;

interface OpenClaimedRun {
  id: number;
  started_at: string | null;
  claimed_at: string | null;
  starter_id: string;
}

/**
 * Ends runs that a starter claimed but will never finish: past their deadline plus a grace
 * period, and their starter has no live heartbeat in the fleet bucket. The run gets a
 * `RunFinished {lost: true}` (never a second execution), appended only if nothing was
 * appended for the run since the watchdog looked, so a late real result still wins.
 */
export class LostRunWatchdog {
  private readonly deps: LostRunWatchdogDeps;
  private readonly logger: Logger;
  private readonly now: () => Date;
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<number> | undefined;

  constructor(deps: LostRunWatchdogDeps) {
    this.deps = deps;
    this.logger = deps.logger.child({ component: 'watchdog' });
    this.now = deps.now ?? (() => new Date());
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.sweepOnce(), this.deps.intervalSeconds * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.sweeping?.catch(() => 0);
  }

  /** One pass; resolves with the number of runs it ended. Never throws. */
  async sweepOnce(): Promise<number> {
    if (this.sweeping) return await this.sweeping;
    this.sweeping = this.sweep()
      .catch((error: unknown) => {
        this.logger.warn({ err: error }, 'lost-run sweep failed, retrying at the next interval');
        return 0;
      })
      .finally(() => {
        this.sweeping = undefined;
      });
    return await this.sweeping;
  }

  private async sweep(): Promise<number> {
    const now = this.now();
    const cutoff = new Date(
      now.getTime() - (this.deps.timeoutSeconds + this.deps.graceSeconds) * 1000,
    );
    const candidates = await sqlOf(this.deps.orm).all<OpenClaimedRun>(
      `SELECT s.id, CAST(s.started_at AS CHAR) AS started_at, CAST(d.claimed_at AS CHAR) AS claimed_at,
              d.starter_id
       FROM script_log s JOIN run_detail d ON d.run_id = s.id
       WHERE s.state IN ('pending', 'running') AND d.starter_id IS NOT NULL
         AND COALESCE(s.started_at, d.claimed_at) < ?
       ORDER BY s.id LIMIT ${candidatesPerSweep}`,
      [toSqlDateTime(cutoff)],
    );
    if (candidates.length === 0) return 0;

    let ended = 0;
    for (const run of candidates) {
      // The life that claimed the run: a starter restarted under the same id lost it (#4).
      const claimedAt = fromSqlDateTime(run.claimed_at) ?? undefined;
      const life = await this.claimingLife(run.id);
      if (await this.deps.fleet.isAlive(run.starter_id, claimedAt, life)) continue;
      if (await this.endAsLost(run, now)) ended += 1;
    }
    return ended;
  }

  /** The starter life recorded in the run's claim, when its starter sent one. */
  private async claimingLife(runId: number): Promise<string | undefined> {
    const decision = await this.deps.eventLog.decisionOf(runId);
    const event = decision?.event;
    return event?.type === 'RunClaimed' ? event.data.starterLife : undefined;
  }

  private async endAsLost(run: OpenClaimedRun, now: Date): Promise<boolean> {
    const last = await this.deps.eventLog.lastEventOf(run.id);
    const lastType = last?.event?.type;
    // The projector has not caught up with an end that is already in the log.
    if (lastType === 'RunFinished' || lastType === 'RunRejected') return false;

    const startedAt = fromSqlDateTime(run.started_at);
    const event = endWithoutResult({
      runId: run.id,
      at: now,
      output: outputTexts.lost,
      starterId: run.starter_id,
      startedAt,
      lost: true,
    });
    const appended = await this.deps.eventLog.appendIfUnchanged(event, last?.seq ?? 0);
    if (appended.outcome === 'appended') {
      this.logger.warn({ runId: run.id, starterId: run.starter_id }, 'run ended as lost');
      return true;
    }
    return false;
  }
}
