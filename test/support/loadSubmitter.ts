import { randomBytes } from 'node:crypto';
import type { SeaTableStandin } from '@pipeline/seatable-standin';

/** One logical submission of the load, across all its resends. */
export interface LoadSubmission {
  experiment: string;
  key: string;
  scriptName: string;
  /** What a successful run prints. */
  expectedOutput: string;
  /** Sent with `scripts_running_limit`, so its quota is checked in the database. */
  limited: boolean;
  sentAt: number;
  /** Every answer, in order: HTTP status (0 for no answer at all) and body. */
  answers: { status: number; text: string; at: number }[];
  /** The `script_id` of the first 200. */
  id?: number;
  /** A later 200 named another id than the first one: a second run for one key. */
  secondId?: number;
  /** A final answer without an id (a 4xx): the submission was refused with this text. */
  refused?: string;
  /** Resends ran out of time without any answer with an id. */
  gaveUp?: boolean;
}

export interface LoadOptions {
  url: string;
  token: string;
  standin: SeaTableStandin;
  dtableUuid: string;
  owners: string[];
  ratePerSecond: number;
  /** Every n-th script sleeps this long, so that faults find runs in the middle. */
  sleepEvery: number;
  sleepSeconds: number;
  /** Every n-th submission carries a monthly limit (checked in the database). */
  limitEvery: number;
  /** How long a client keeps resending without an answer before it gives up. */
  resendForMs: number;
}

/**
 * A steady load of submissions through HTTP, as SeaTable would send them, with an
 * `Idempotency-Key` on each. A client that gets no answer, a 5xx, or a dropped connection
 * sends the same submission again with the same key, until it gets an answer or runs out of
 * time, and remembers every answer so that a second run for one key shows.
 */
export class LoadSubmitter {
  readonly submissions: LoadSubmission[] = [];
  private readonly options: LoadOptions;
  private readonly inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private counter = 0;
  private experiment = 'none';
  private readonly runTag = randomBytes(3).toString('hex');

  constructor(options: LoadOptions) {
    this.options = options;
  }

  /** Starts submitting for `experiment` at the configured rate. */
  start(experiment: string): void {
    this.experiment = experiment;
    if (this.timer) return;
    this.timer = setInterval(() => this.submitOne(), 1000 / this.options.ratePerSecond);
  }

  /** Stops submitting; resolves once every submission has its final answer. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  of(experiment: string): LoadSubmission[] {
    return this.submissions.filter((submission) => submission.experiment === experiment);
  }

  private submitOne(): void {
    this.counter += 1;
    const index = this.counter;
    const key = `chaos-${this.runTag}-${index}`;
    const scriptName = `${key}.py`;
    const expectedOutput = `${key}\n`;
    const sleeps = index % this.options.sleepEvery === 0;
    this.options.standin.setScript({
      dtableUuid: this.options.dtableUuid,
      scriptName,
      source: sleeps
        ? `import time\ntime.sleep(${this.options.sleepSeconds})\nprint(${JSON.stringify(key)})\n`
        : `print(${JSON.stringify(key)})\n`,
    });
    const submission: LoadSubmission = {
      experiment: this.experiment,
      key,
      scriptName,
      expectedOutput,
      limited: index % this.options.limitEvery === 0,
      sentAt: Date.now(),
      answers: [],
    };
    this.submissions.push(submission);
    const sending = this.send(submission, index).finally(() => this.inFlight.delete(sending));
    this.inFlight.add(sending);
  }

  private async send(submission: LoadSubmission, index: number): Promise<void> {
    const owner =
      this.options.owners[index % this.options.owners.length] ?? 'chaos@example.invalid';
    const body = JSON.stringify({
      dtable_uuid: this.options.dtableUuid,
      script_name: submission.scriptName,
      owner,
      org_id: -1,
      context_data: { index },
      scripts_running_limit: submission.limited ? 1_000_000 : -1,
      operate_from: 'manualy',
    });
    const giveUpAt = submission.sentAt + this.options.resendForMs;
    while (Date.now() < giveUpAt) {
      const answer = await this.post(submission.key, body);
      submission.answers.push({ ...answer, at: Date.now() });
      if (answer.status === 200) {
        const id = (JSON.parse(answer.text) as { script_id: number }).script_id;
        if (submission.id === undefined) submission.id = id;
        else if (id !== submission.id) submission.secondId = id;
        // One resend more after a resend: it must name the same run again.
        if (submission.answers.length === 1 || submission.answers.length > 2) return;
        continue;
      }
      if (answer.status >= 400 && answer.status < 500) {
        submission.refused = answer.text;
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    if (submission.id === undefined) submission.gaveUp = true;
  }

  private async post(key: string, body: string): Promise<{ status: number; text: string }> {
    try {
      const response = await fetch(`${this.options.url}/run-script/`, {
        method: 'POST',
        headers: {
          Authorization: `Token ${this.options.token}`,
          'Content-Type': 'application/json',
          'Idempotency-Key': key,
        },
        body,
        signal: AbortSignal.timeout(10_000),
      });
      return { status: response.status, text: await response.text() };
    } catch (error) {
      return { status: 0, text: (error as Error).message };
    }
  }
}
