/**
 * The starter's run slots: how many requests it may hold at once, from fetch to the end of
 * the run. The consumer fetches only as many requests as there are free slots.
 */
export class RunSlots {
  readonly size: number;
  private held = 0;
  private waiters: Array<() => void> = [];

  constructor(size: number) {
    if (!Number.isSafeInteger(size) || size < 1) {
      throw new RangeError(`slots must be a positive integer, got ${size}`);
    }
    this.size = size;
  }

  get busy(): number {
    return this.held;
  }

  get free(): number {
    return this.size - this.held;
  }

  /** Takes a slot; the caller checked that one is free. */
  take(): void {
    if (this.held >= this.size) throw new Error('no free run slot');
    this.held++;
  }

  release(): void {
    if (this.held === 0) throw new Error('released a run slot that was not taken');
    this.held--;
    this.wake();
  }

  /** Resolves when a slot is free, or when `signal` aborts. */
  whenFree(signal: AbortSignal): Promise<void> {
    if (this.free > 0 || signal.aborted) return Promise.resolve();
    return this.waitFor(() => this.free > 0, signal);
  }

  /** Resolves when no slot is held. */
  whenIdle(): Promise<void> {
    if (this.held === 0) return Promise.resolve();
    return this.waitFor(() => this.held === 0);
  }

  private waitFor(condition: () => boolean, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (condition() || signal?.aborted) {
          signal?.removeEventListener('abort', check);
          resolve();
          return;
        }
        this.waiters.push(check);
      };
      signal?.addEventListener('abort', check, { once: true });
      this.waiters.push(check);
    });
  }

  private wake(): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const check of waiting) check();
  }
}
