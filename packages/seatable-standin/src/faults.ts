/** The routes of the stand-in that a test can make misbehave. */
export const standinRoutes = [
  'task-file',
  'script-file',
  'running-limit',
  'notifications',
  'store-script',
] as const;

export type StandinRoute = (typeof standinRoutes)[number];

/**
 * How the next requests on a route misbehave. Combine `delayMs` with any other field to
 * answer late; with none of the others the answer is the normal one, only late.
 */
export interface StandinFault {
  /** Answer with this HTTP status and a short plain-text body instead of the normal answer. */
  status?: number;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Answer 200 with a body that is not valid JSON (a JSON object cut short). */
  badJson?: boolean;
  /** Close the connection without any answer, as a crashed or unreachable server does. */
  drop?: boolean;
  /**
   * How many requests in a row misbehave.
   * @default 1
   */
  times?: number;
}

interface PendingFault {
  fault: StandinFault;
  remaining: number;
}

/** Faults queued per route; each request on the route consumes one. */
export class FaultPlan {
  readonly #pending = new Map<StandinRoute, PendingFault[]>();

  add(route: StandinRoute, fault: StandinFault): void {
    if (!standinRoutes.includes(route)) {
      throw new Error(`unknown stand-in route "${route}"; one of ${standinRoutes.join(', ')}`);
    }
    const times = fault.times ?? 1;
    if (!Number.isInteger(times) || times < 1) {
      throw new Error(`fault times must be a positive integer, got ${times}`);
    }
    const queue = this.#pending.get(route) ?? [];
    queue.push({ fault, remaining: times });
    this.#pending.set(route, queue);
  }

  /** The fault for the request that just arrived on `route`, if one is queued. */
  take(route: StandinRoute): StandinFault | null {
    const queue = this.#pending.get(route);
    const head = queue?.[0];
    if (!queue || !head) return null;
    head.remaining -= 1;
    if (head.remaining === 0) queue.shift();
    return head.fault;
  }

  clear(): void {
    this.#pending.clear();
  }
}
