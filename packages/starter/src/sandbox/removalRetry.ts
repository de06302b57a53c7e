import type { Logger } from 'pino';
import { retryDelayMs } from '../retry.ts';
import type { SandboxContainer, SandboxRuntime } from './sandboxRuntime.ts';

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
  private readonly sandbox: Pick<SandboxRuntime, 'remove'>;
  private readonly firstDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly closing = new AbortController();
  private readonly retrying = new Map<string, Promise<void>>();

  constructor(sandbox: Pick<SandboxRuntime, 'remove'>, options: RemovalRetryOptions = {}) {
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

  /** Waits up to `ms` for the retries in progress, then stops retrying. */
  async close(ms: number): Promise<void> {
    const all = Promise.all(this.retrying.values());
    await Promise.race([all, pause(ms, this.closing.signal)]);
    this.closing.abort();
    await all;
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
