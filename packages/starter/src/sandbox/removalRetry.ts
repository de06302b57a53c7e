import type { Logger } from 'pino';
import { retryDelayMs } from '../retry.ts';
import type { SandboxContainer, SandboxRuntime } from './sandboxRuntime.ts';

/** What the retries need of the engine: removing a container and finding one by labels. */
export type RemovalRuntime = Pick<SandboxRuntime, 'remove' | 'listByLabels'>;

export interface RemovalRetryOptions {
  /** The first wait after a refused removal; it doubles from there. @default 1000 */
  firstDelayMs?: number;
  /** The longest wait between two attempts. @default 60000 */
  maxDelayMs?: number;
}

/**
 * Removes, in the background, the containers the engine refused to remove when their run
 * ended: it tries again with a growing back-off until the engine removes each one, so a
 * busy or briefly failing engine never leaves a finished run's container behind. The run's
 * result does not wait for it. Should the starter stop first, the next start's orphan sweep
 * (by the starter id label) removes what is left.
 */
export class RemovalRetry {
  private readonly sandbox: RemovalRuntime;
  private readonly firstDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly closing = new AbortController();
  private readonly retrying = new Map<string, Promise<void>>();

  constructor(sandbox: RemovalRuntime, options: RemovalRetryOptions = {}) {
    this.sandbox = sandbox;
    this.firstDelayMs = options.firstDelayMs ?? 1_000;
    this.maxDelayMs = options.maxDelayMs ?? 60_000;
  }

  /** Containers whose removal is still being retried. */
  get pending(): number {
    return this.retrying.size;
  }

  /** Takes over a container whose removal just failed with `error`. */
  retry(container: SandboxContainer, error: unknown, log: Logger): void {
    if (this.retrying.has(container.id) || this.closing.signal.aborted) return;
    log.warn({ err: error }, 'container removal failed, retrying in the background');
    const attempts = this.keepRemoving(container, log).finally(() => {
      this.retrying.delete(container.id);
    });
    this.retrying.set(container.id, attempts);
  }

  /**
   * Takes over a create request that failed without the engine's answer (`error`): the
   * engine may have made the container before it stopped or the connection broke, and then
   * nobody knows its id. Once the engine answers again, the containers carrying `labels`
   * (the request's own create id) are removed; a listing that fails is tried again later.
   */
  sweepUnansweredCreate(labels: Record<string, string>, error: unknown, log: Logger): void {
    const key = `create:${Object.values(labels).join(',')}`;
    if (this.retrying.has(key) || this.closing.signal.aborted) return;
    log.warn(
      { err: error },
      'container create got no answer; looking for the container once the engine is back',
    );
    const attempts = this.keepSweeping(labels, log).finally(() => {
      this.retrying.delete(key);
    });
    this.retrying.set(key, attempts);
  }

  /** Waits up to `ms` for the retries in progress, then stops retrying. */
  async close(ms: number): Promise<void> {
    const all = Promise.all(this.retrying.values());
    await Promise.race([all, pause(ms, this.closing.signal)]);
    this.closing.abort();
    await all;
  }

  private async keepSweeping(labels: Record<string, string>, log: Logger): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      await pause(retryDelayMs(attempt, this.firstDelayMs, this.maxDelayMs), this.closing.signal);
      if (this.closing.signal.aborted) {
        log.warn({ attempt }, 'unanswered create not looked into at shutdown; the next start does');
        return;
      }
      let found: SandboxContainer[];
      try {
        found = await this.sandbox.listByLabels(labels);
      } catch (error) {
        log.warn({ err: error, attempt }, 'engine not answering yet for the unanswered create');
        continue;
      }
      if (found.length === 0) log.info({ attempt }, 'unanswered create made no container');
      for (const container of found) {
        const containerLog = log.child({ containerId: container.id.slice(0, 12) });
        try {
          await this.sandbox.remove(container);
          containerLog.warn({ attempt }, 'container of an unanswered create removed');
        } catch (error) {
          this.retry(container, error, containerLog);
        }
      }
      return;
    }
  }

  private async keepRemoving(container: SandboxContainer, log: Logger): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const waitMs = retryDelayMs(attempt, this.firstDelayMs, this.maxDelayMs);
      await pause(waitMs, this.closing.signal);
      if (this.closing.signal.aborted) {
        log.warn({ attempt }, 'container removal given up at shutdown; the next start removes it');
        return;
      }
      try {
        await this.sandbox.remove(container);
        log.info({ attempt }, 'container removed on a retry');
        return;
      } catch (error) {
        log.warn({ err: error, attempt }, 'container removal failed again');
      }
    }
  }
}

/** Waits `ms` or until `signal` aborts; the timer never keeps the process alive. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    signal.addEventListener('abort', done, { once: true });
  });
}
