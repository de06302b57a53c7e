import type { Logger } from 'pino';
import { delay, retryDelayMs } from '../retry.ts';

/**
 * Whether this starter's Docker engine answers. An engine call that got no answer at all
 * (refused or broken connection, no HTTP status) marks it away; from then on the starter
 * takes no run requests, which other starters can run meanwhile, until a ping answers
 * again. Without it a starter whose engine restarts claims every request it is offered and
 * fails each one at `docker create`.
 */
export class EngineGate {
  private readonly ping: () => Promise<unknown>;
  private readonly log: Logger;
  private readonly firstDelayMs: number;
  private readonly maxDelayMs: number;
  private away = false;

  constructor(
    ping: () => Promise<unknown>,
    log: Logger,
    options: { firstDelayMs?: number; maxDelayMs?: number } = {},
  ) {
    this.ping = ping;
    this.log = log;
    this.firstDelayMs = options.firstDelayMs ?? 250;
    this.maxDelayMs = options.maxDelayMs ?? 5_000;
  }

  get answering(): boolean {
    return !this.away;
  }

  /** Told of an engine call that got no answer. */
  noAnswer(operation: string, error: unknown): void {
    if (this.away) return;
    this.away = true;
    this.log.warn(
      { err: error, operation },
      'Docker engine not answering: taking no runs until it answers again',
    );
  }

  /** Resolves at once while the engine answers; otherwise once a ping does (or `signal`). */
  async whenAnswering(signal: AbortSignal): Promise<void> {
    for (let attempt = 1; this.away && !signal.aborted; attempt++) {
      try {
        await this.ping();
        this.away = false;
        this.log.info({ attempts: attempt }, 'Docker engine answers again: taking runs');
        return;
      } catch {
        await delay(retryDelayMs(attempt, this.firstDelayMs, this.maxDelayMs), signal);
      }
    }
  }
}
