import type { NatsConnection } from '@nats-io/nats-core';
import {
  encodeJson,
  type LiveOutputMessage,
  type Naming,
  outputPieces,
  subjects,
} from '@pipeline/events';
import type { Logger } from 'pino';

/** What a run has printed so far: the output collector, read at each look. */
export interface PrintedOutput {
  text(): string;
}

export interface LiveOutputOptions {
  connection: Pick<NatsConnection, 'publish'>;
  naming: Naming;
  /** How often what was printed since the last look is pushed. @default 250 */
  intervalMs?: number;
}

/**
 * Largest piece in one message, as JSON in UTF-8: well under NATS's 1 MB payload, and small
 * enough that a dashboard shows a flood of output as it comes.
 */
const livePieceBytes = 64 * 1024;

/**
 * Pushes what running scripts print, as it comes, on the run's core NATS subject (never the
 * log): for the operators' live view. It only reads what the output collector keeps, so a
 * run never pushes more than the output limit, and each character goes out once.
 */
export class LiveOutput {
  private readonly options: LiveOutputOptions;

  constructor(options: LiveOutputOptions) {
    this.options = options;
  }

  /** Starts pushing one run's output; `stop()` pushes the rest and the end. */
  follow(runId: number, printed: PrintedOutput, log: Logger): LiveOutputFollower {
    return new LiveOutputFollower(this.options, runId, printed, log);
  }
}

export class LiveOutputFollower {
  private readonly connection: Pick<NatsConnection, 'publish'>;
  private readonly subject: string;
  private readonly runId: number;
  private readonly printed: PrintedOutput;
  private readonly log: Logger;
  private readonly timer: NodeJS.Timeout;
  /** UTF-16 units of the output pushed so far. */
  private sent = 0;
  private failed = false;
  private stopped = false;

  constructor(options: LiveOutputOptions, runId: number, printed: PrintedOutput, log: Logger) {
    this.connection = options.connection;
    this.subject = subjects.liveOutput(options.naming, runId);
    this.runId = runId;
    this.printed = printed;
    this.log = log;
    this.timer = setInterval(() => this.push(), options.intervalMs ?? 250);
    this.timer.unref();
  }

  /** Pushes what is left and tells the subscribers that nothing more comes. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    this.push();
    this.send({ kind: 'end', runId: this.runId, length: this.sent });
  }

  private push(): void {
    const text = this.printed.text();
    if (text.length <= this.sent) return;
    // The collector keeps whole characters, so `sent` never falls inside a surrogate pair.
    for (const piece of outputPieces(text.slice(this.sent), livePieceBytes)) {
      this.send({ kind: 'output', runId: this.runId, offset: this.sent, text: piece });
      this.sent += piece.length;
    }
  }

  /** Best effort: the live view may miss a piece, the run must not notice. */
  private send(message: LiveOutputMessage): void {
    try {
      this.connection.publish(this.subject, encodeJson(message));
    } catch (error) {
      if (this.failed) return;
      this.failed = true;
      this.log.warn({ err: error }, 'live output could not be pushed');
    }
  }
}
