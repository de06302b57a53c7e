import type { MikroORM } from '@mikro-orm/mariadb';
import { consumerNames, type StarterHeartbeat } from '@pipeline/events';
import type { Logger } from 'pino';
import { sqlOf } from '../db/sql.ts';
import type { FleetView } from '../fleet/fleetView.ts';
import type { RunEventLog } from '../messaging/eventLog.ts';
import { readCheckpoint } from '../projection/checkpoint.ts';
import type { ScrapeSample } from './schedulerMetrics.ts';

export interface ScrapeSamplerDeps {
  orm: MikroORM;
  eventLog: RunEventLog;
  fleet: Pick<FleetView, 'liveStarters'>;
  logger: Logger;
  /** How long one source may take before its gauges read NaN for this scrape. @default 2000 */
  sourceTimeoutMs?: number;
}

/**
 * Reads the values Prometheus wants at scrape time: the log's last sequence against the
 * projection checkpoint, the starters' consumer and the fleet bucket. Each source runs at
 * once with its own deadline, so a hung NATS or MariaDB costs a scrape at most one
 * deadline and never hangs `/metrics`.
 */
export class ScrapeSampler {
  private readonly deps: ScrapeSamplerDeps;
  private readonly timeoutMs: number;

  constructor(deps: ScrapeSamplerDeps) {
    this.deps = deps;
    this.timeoutMs = deps.sourceTimeoutMs ?? 2000;
  }

  async sample(): Promise<ScrapeSample> {
    const [projectionLag, startersQueue, fleet] = await Promise.all([
      this.withinDeadline('projection', () => this.projectionLag()),
      this.withinDeadline('starters_queue', () => this.startersQueue()),
      this.withinDeadline('fleet', () => this.fleet()),
    ]);
    return { projectionLag, startersQueue, fleet };
  }

  private async projectionLag(): Promise<number> {
    const { jetStreamManager, naming } = this.deps.eventLog;
    const [stream, checkpoint] = await Promise.all([
      jetStreamManager.streams.info(naming.stream),
      readCheckpoint(sqlOf(this.deps.orm)),
    ]);
    return Math.max(0, stream.state.last_seq - checkpoint);
  }

  private async startersQueue(): Promise<NonNullable<ScrapeSample['startersQueue']>> {
    const { jetStreamManager, naming } = this.deps.eventLog;
    const consumer = await jetStreamManager.consumers.info(naming.stream, consumerNames.starters);
    return {
      pending: consumer.num_pending,
      ackPending: consumer.num_ack_pending,
      redelivered: consumer.num_redelivered,
    };
  }

  private async fleet(): Promise<NonNullable<ScrapeSample['fleet']>> {
    return fleetSlots(await this.deps.fleet.liveStarters());
  }

  private async withinDeadline<T>(source: string, read: () => Promise<T>): Promise<T | null> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'expired'>((resolve) => {
      timer = setTimeout(() => resolve('expired'), this.timeoutMs);
    });
    const reading = read().catch((error: unknown) => {
      this.deps.logger.warn({ err: error, source }, 'metrics source failed');
      return null;
    });
    try {
      const value = await Promise.race([reading, expired]);
      if (value !== 'expired') return value;
      this.deps.logger.warn({ source, timeoutMs: this.timeoutMs }, 'metrics source timed out');
      return null;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Busy counts every live starter's runs; free only the slots of starters taking work. */
export function fleetSlots(
  starters: readonly StarterHeartbeat[],
): NonNullable<ScrapeSample['fleet']> {
  let busy = 0;
  let free = 0;
  for (const starter of starters) {
    busy += starter.busy;
    if (!starter.draining) free += Math.max(0, starter.slots - starter.busy);
  }
  return { starters: starters.length, busy, free };
}
