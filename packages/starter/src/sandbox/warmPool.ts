import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { delay, retryDelayMs } from '../retry.ts';
import { type PreparedSandbox, prepareSandbox } from './preparedSandbox.ts';
import { RemovalRetry } from './removalRetry.ts';
import { type SandboxContainer, type SandboxRuntime, shortId } from './sandboxRuntime.ts';

/** What the pool asks the engine besides the container lifecycle. */
export interface PoolEngine {
  /** The image's id, or null when the engine does not have it. */
  imageId(image: string): Promise<string | null>;
  isRunning(container: SandboxContainer): Promise<boolean>;
}

export interface WarmPoolOptions {
  sandbox: SandboxRuntime;
  engine: PoolEngine;
  /** Prepared sandboxes kept waiting. */
  size: number;
  /** Without a run for this long the pool empties; the next run refills it. */
  idleMs: number;
  image: string;
  /** The create options of a prepared container with `profileHash` in its pool label. */
  createOptions: (profileHash: string) => Docker.ContainerCreateOptions;
  log: Logger;
}

interface Waiting {
  prepared: PreparedSandbox;
  profileHash: string;
}

/**
 * Containers prepared ahead of demand: created from the run's sandbox profile, attached and
 * started, their entrypoint waiting on standard input for a hand-over. `take` gives one
 * to exactly one run, which removes it after; nothing of a run ever goes back into the
 * pool. The pool refills in the background, one container at a time, and empties after
 * `idleMs` without a run. A container made from another profile or image than the current
 * one (the profile hash in its pool label) is removed instead of being handed out, and so
 * is one that stopped while it waited: the run then starts cold.
 */
export class WarmPool {
  private readonly options: WarmPoolOptions;
  private readonly log: Logger;
  private readonly waiting: Waiting[] = [];
  private readonly closing = new AbortController();
  private refilling: Promise<void> | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private dormant = false;
  private currentHash: string | null = null;
  private readonly baseHash: string;
  /** Removals the engine refused (it restarted, say): tried again until the container is gone. */
  private readonly removals: RemovalRetry;

  constructor(options: WarmPoolOptions) {
    this.options = options;
    this.removals = new RemovalRetry(options.sandbox);
    this.log = options.log.child({ component: 'warm-pool' });
    // The profile part of the hash; the image's id is added when the pool looks it up.
    this.baseHash = createHash('sha256')
      .update(JSON.stringify(options.createOptions('')))
      .digest('hex');
  }

  /** How many prepared sandboxes wait now. */
  get size(): number {
    return this.waiting.length;
  }

  start(): void {
    if (this.options.size <= 0) return;
    this.touch();
    this.refill();
  }

  /**
   * A prepared sandbox for a run, or null when none is ready (the run starts cold). Each
   * one is checked with the engine first: one that stopped while it waited is removed and
   * the next one tried.
   */
  async take(runLog: Logger): Promise<PreparedSandbox | null> {
    if (this.options.size <= 0 || this.closing.signal.aborted) return null;
    this.touch();
    if (this.dormant) {
      this.dormant = false;
      runLog.info('warm pool was emptied while idle, starting cold and refilling');
      this.refill();
      return null;
    }
    for (let entry = this.waiting.shift(); entry; entry = this.waiting.shift()) {
      const { prepared } = entry;
      const ids = { containerId: shortId(prepared.container.id) };
      let reason: string | null = null;
      if (entry.profileHash !== this.currentHash) reason = 'made from an older profile or image';
      else if (prepared.stopped) reason = 'stopped while waiting';
      else if (!(await this.options.engine.isRunning(prepared.container).catch(() => false))) {
        reason = 'not running any more';
      }
      if (reason === null) {
        this.refill();
        return prepared;
      }
      runLog.warn({ ...ids, reason }, 'prepared sandbox not used, trying the next');
      void this.discard(prepared);
    }
    runLog.info('no prepared sandbox ready, starting cold');
    this.refill();
    return null;
  }

  /**
   * Stops refilling and leaves the prepared sandboxes where they are, as a crash would: the
   * next start-up's sweep removes them. For a starter that gives up at once.
   */
  abandon(): void {
    this.closing.abort();
    if (this.idleTimer) clearTimeout(this.idleTimer);
  }

  /** Stops refilling and removes every prepared sandbox. */
  async close(): Promise<void> {
    this.closing.abort();
    if (this.idleTimer) clearTimeout(this.idleTimer);
    await this.refilling;
    await this.retire(() => true, 'the starter is stopping');
    // As the runs' removals: a few seconds more, then the next start's sweep.
    await this.removals.close(10_000);
  }

  private touch(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.closing.signal.aborted || this.dormant) return;
      this.dormant = true;
      void this.retire(() => true, 'no run for the idle time');
    }, this.options.idleMs);
    this.idleTimer.unref();
  }

  // TODO(#7): the pool refills one container at a time and a run never waits for one being
  // prepared, so in a burst larger than the pool the rest start cold; preparing several at
  // once would compete for the same CPUs with the runs, so it stays one until measured.
  private refill(): void {
    if (this.refilling || this.dormant || this.closing.signal.aborted) return;
    this.refilling = this.fill().finally(() => {
      this.refilling = null;
    });
  }

  private async fill(): Promise<void> {
    let failures = 0;
    while (
      !this.closing.signal.aborted &&
      !this.dormant &&
      this.waiting.length < this.options.size
    ) {
      try {
        const profileHash = await this.profileHash();
        if (profileHash !== this.currentHash) {
          if (this.currentHash !== null)
            this.log.info('image or profile changed, retiring the pool');
          this.currentHash = profileHash;
          await this.retire((entry) => entry.profileHash !== profileHash, 'profile changed');
        }
        const prepared = await prepareSandbox(
          this.options.sandbox,
          0,
          this.options.createOptions(profileHash),
          true,
          this.log,
          this.removals,
        );
        if (this.closing.signal.aborted || this.dormant) {
          await this.discard(prepared);
          return;
        }
        const entry = { prepared, profileHash };
        this.waiting.push(entry);
        void prepared.exited.catch(() => null).then(() => this.lostWhileWaiting(entry));
        this.log.debug({ containerId: shortId(prepared.container.id) }, 'sandbox prepared');
        failures = 0;
      } catch (error) {
        failures++;
        const waitMs = retryDelayMs(failures, 500);
        this.log.warn({ err: error, retryInMs: waitMs }, 'preparing a sandbox failed');
        await delay(waitMs, this.closing.signal);
      }
    }
  }

  private lostWhileWaiting(entry: Waiting): void {
    const index = this.waiting.indexOf(entry);
    if (index < 0) return;
    this.waiting.splice(index, 1);
    this.log.warn(
      { containerId: shortId(entry.prepared.container.id) },
      'prepared sandbox stopped while waiting, removed',
    );
    void this.discard(entry.prepared);
    this.refill();
  }

  private async profileHash(): Promise<string> {
    const imageId = await this.options.engine.imageId(this.options.image);
    if (imageId === null) throw new Error(`runner image ${this.options.image} is gone`);
    return createHash('sha256').update(`${this.baseHash}\n${imageId}`).digest('hex').slice(0, 16);
  }

  private async retire(which: (entry: Waiting) => boolean, reason: string): Promise<void> {
    const leaving = this.waiting.filter(which);
    if (leaving.length === 0) return;
    for (const entry of leaving) this.waiting.splice(this.waiting.indexOf(entry), 1);
    this.log.info({ count: leaving.length, reason }, 'removing prepared sandboxes');
    await Promise.all(leaving.map((entry) => this.discard(entry.prepared)));
  }

  private async discard(prepared: PreparedSandbox): Promise<void> {
    prepared.closeStreams();
    await this.options.sandbox.remove(prepared.container).catch((error: unknown) => {
      this.removals.retry(
        prepared.container,
        error,
        this.log.child({ containerId: shortId(prepared.container.id) }),
      );
    });
  }
}
