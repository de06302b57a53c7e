/** Back-off for retried NATS and engine calls: 250 ms doubling to 5 s, with jitter. */
export function retryDelayMs(attempt: number, firstMs = 250, maxMs = 5_000): number {
  const exponential = Math.min(maxMs, firstMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exponential * (0.8 + Math.random() * 0.4));
}

/** Waits `ms`, or less if `signal` aborts (then it resolves; callers check the signal). */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** `work`'s result, or `timedOut` once `ms` passed; the timer never outlives the race. */
export async function settleWithin<T, F>(
  work: Promise<T>,
  ms: number,
  timedOut: F,
): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  const expiry = new Promise<F>((resolve) => {
    timer = setTimeout(() => resolve(timedOut), ms);
  });
  try {
    return await Promise.race([work, expiry]);
  } finally {
    clearTimeout(timer);
  }
}
