import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import {
  decodeWith,
  type LiveOutputMessage,
  liveOutputMessageSchema,
  type Naming,
  subjects,
} from '@pipeline/events';
import type { Logger } from 'pino';

/** Output of one run from `offset` (UTF-16 units from the run's first character). */
export interface LivePiece {
  offset: number;
  text: string;
}

/** Someone following a run's live output: an open event stream. */
export interface LiveListener {
  output(piece: LivePiece): void;
  /** The starter says the container stopped; the run's end of record comes from the log. */
  ended(): void;
}

export interface LiveOutputHubOptions {
  connection: Pick<NatsConnection, 'subscribe'>;
  naming: Naming;
  /** Characters (code points) kept per run: the output limit (`PYTHON_RUNNER_OUTPUT_LIMIT`). */
  limit: number;
  /** A run's output is dropped this long after its first piece, ended or not: the run's longest life. */
  maxAgeMs: number;
  /** Runs kept at once; past it the oldest is dropped. @default 256 */
  maxRuns?: number;
  logger: Logger;
  now?: () => number;
}

/** What one running run printed so far: contiguous stretches (a lost message leaves a gap). */
interface RunOutput {
  stretches: LivePiece[];
  /** Offset just past the last character kept. */
  end: number;
  codePoints: number;
  firstSeenAt: number;
}

const sweepIntervalMs = 30_000;

/**
 * Keeps what each running run printed so far, fed by its starter over core NATS, so that an
 * operator who opens a run late still sees its output from the start. Every scheduler
 * subscribes itself (no queue group): whichever one answers the operator has the output.
 *
 * Memory is bounded: at most `limit` characters per run (the starter keeps no more either;
 * this holds even against a starter that sends more), at most `maxRuns` runs, and a run's
 * output is dropped when its starter says the container stopped, or at the latest
 * `maxAgeMs` after it began (a starter that died cannot say so).
 */
export class LiveOutputHub {
  private readonly options: LiveOutputHubOptions;
  private readonly now: () => number;
  private readonly maxRuns: number;
  /** In order of first piece, so the first entry is the oldest. */
  private readonly runs = new Map<number, RunOutput>();
  private readonly listeners = new Map<number, Set<LiveListener>>();
  private subscription: Subscription | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;

  constructor(options: LiveOutputHubOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    this.maxRuns = options.maxRuns ?? 256;
  }

  start(): void {
    if (this.subscription) return;
    const subscription = this.options.connection.subscribe(
      subjects.liveOutputAll(this.options.naming),
    );
    this.subscription = subscription;
    void (async () => {
      for await (const message of subscription) {
        const decoded = decodeWith(liveOutputMessageSchema, message.data);
        if (!decoded.ok) {
          this.options.logger.warn(
            { subject: message.subject, reason: decoded.reason },
            'live output message ignored',
          );
          continue;
        }
        this.accept(decoded.value);
      }
    })();
    this.sweepTimer = setInterval(() => this.sweep(), sweepIntervalMs);
    this.sweepTimer.unref();
  }

  stop(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    this.subscription?.unsubscribe();
    this.subscription = null;
    this.runs.clear();
  }

  /** Runs whose output is kept now. */
  get keptRuns(): number {
    return this.runs.size;
  }

  /** What the run printed so far, as stretches (more than one only after a lost message). */
  printedSoFar(runId: number): LivePiece[] {
    const run = this.runs.get(runId);
    return run ? run.stretches.map((stretch) => ({ ...stretch })) : [];
  }

  /**
   * Calls `listener` for each new piece of the run and when it ends; returns the function that
   * stops it. Read `printedSoFar` in the same turn, so no piece falls between the two.
   */
  watch(runId: number, listener: LiveListener): () => void {
    let watching = this.listeners.get(runId);
    if (!watching) {
      watching = new Set();
      this.listeners.set(runId, watching);
    }
    watching.add(listener);
    return () => {
      watching.delete(listener);
      if (watching.size === 0 && this.listeners.get(runId) === watching) {
        this.listeners.delete(runId);
      }
    };
  }

  accept(message: LiveOutputMessage): void {
    this.sweep();
    if (message.kind === 'end') {
      this.runs.delete(message.runId);
      for (const listener of this.listeners.get(message.runId) ?? []) listener.ended();
      return;
    }
    const piece = this.keep(message);
    if (!piece) return;
    for (const listener of this.listeners.get(message.runId) ?? []) listener.output(piece);
  }

  /** Drops the output of runs older than `maxAgeMs`. */
  sweep(): void {
    const oldest = this.now() - this.options.maxAgeMs;
    for (const [runId, run] of this.runs) {
      if (run.firstSeenAt > oldest) break;
      this.runs.delete(runId);
    }
  }

  /** Adds the new part of a piece within the limit; returns what was kept, if anything. */
  private keep(message: Extract<LiveOutputMessage, { kind: 'output' }>): LivePiece | null {
    const run = this.runFor(message.runId, message.offset);
    let { offset, text } = message;
    if (offset < run.end) {
      // Sent again or overlapping: only what is new counts.
      text = text.slice(run.end - offset);
      offset = run.end;
    }
    const room = this.options.limit - run.codePoints;
    if (text === '' || room <= 0) return null;
    const kept = leadingCodePoints(text, room);
    if (kept.text === '') return null;

    const last = run.stretches.at(-1);
    if (last && last.offset + last.text.length === offset) last.text += kept.text;
    else run.stretches.push({ offset, text: kept.text });
    run.end = offset + kept.text.length;
    run.codePoints += kept.count;
    return { offset, text: kept.text };
  }

  private runFor(runId: number, offset: number): RunOutput {
    const known = this.runs.get(runId);
    if (known) return known;
    while (this.runs.size >= this.maxRuns) {
      const oldest = this.runs.keys().next().value;
      if (oldest === undefined) break;
      this.runs.delete(oldest);
      this.options.logger.warn({ runId: oldest }, 'live output dropped: too many runs at once');
    }
    // A scheduler that started while the run ran sees it first past its start.
    const run: RunOutput = { stretches: [], end: offset, codePoints: 0, firstSeenAt: this.now() };
    this.runs.set(runId, run);
    return run;
  }
}

const surrogate = /[\uD800-\uDFFF]/;

/** The first `room` code points of `text`, and how many that is. */
function leadingCodePoints(text: string, room: number): { text: string; count: number } {
  const length = text.length;
  // Most output has no astral characters: one code point a unit, found by one fast scan.
  if (!surrogate.test(text)) {
    return length <= room ? { text, count: length } : { text: text.slice(0, room), count: room };
  }
  let offset = 0;
  let count = 0;
  while (offset < length && count < room) {
    const unit = text.charCodeAt(offset);
    // Never read past the end: charCodeAt answers NaN there, which slows the whole loop.
    if (unit >= 0xd800 && unit <= 0xdbff && offset + 1 < length) {
      const next = text.charCodeAt(offset + 1);
      if (next >= 0xdc00 && next <= 0xdfff) offset++;
    }
    offset++;
    count++;
  }
  return { text: offset === length ? text : text.slice(0, offset), count };
}
