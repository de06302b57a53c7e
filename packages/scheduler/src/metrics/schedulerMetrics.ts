import { finishedOutcome, type RunFinished, type RunRejected } from '@pipeline/events';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { runningVersion } from './buildInfo.ts';

/** How a run ended, as the operator reads it; one label value each. */
export const runOutcomes = [
  'success',
  'failure',
  'timeout',
  'oom',
  'cancelled',
  'lost',
  'rejected',
] as const;
export type RunOutcomeLabel = (typeof runOutcomes)[number];

/**
 * Why `POST /run-script/` was refused: no valid token, a body over the limit, a body that
 * is not a submission, the owner's monthly quota, an `Idempotency-Key` first used for another
 * submission, MariaDB or the log not answering, a fault.
 */
export const refusalReasons = [
  'unauthorized',
  'body_too_large',
  'bad_request',
  'quota_exceeded',
  'idempotency_key_reused',
  'unavailable',
  'internal_error',
] as const;
export type RefusalReason = (typeof refusalReasons)[number];

/** What became of a submission: accepted (a new run or a resend) or refused, and why. */
export type SubmissionOutcome =
  | { outcome: 'accepted'; reason: 'new' | 'duplicate' }
  | { outcome: 'refused'; reason: RefusalReason };

/** Values sampled from NATS, MariaDB and the fleet bucket when Prometheus scrapes. */
export interface ScrapeSample {
  projectionLag: number | null;
  startersQueue: { pending: number; ackPending: number; redelivered: number } | null;
  fleet: { starters: number; busy: number; free: number } | null;
}

const runDurationBuckets = [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600];
const httpDurationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The scheduler's Prometheus metrics, on a registry of its own (never the global one, so
 * two schedulers in one test process do not share counts). Counters move where things
 * happen; the gauges of the log, the queue and the fleet are set from a sample taken at
 * scrape time.
 */
export class SchedulerMetrics {
  readonly registry = new Registry();
  private readonly httpDuration: Histogram<'method' | 'route' | 'status_class'>;
  private readonly submissions: Counter<'outcome' | 'reason'>;
  private readonly runsFinished: Counter<'outcome'>;
  private readonly runsRejected: Counter<'reason'>;
  private readonly runDuration: Histogram<'outcome'>;
  private readonly projectionLag: Gauge;
  private readonly queuePending: Gauge;
  private readonly queueAckPending: Gauge;
  private readonly queueRedelivered: Gauge;
  private readonly fleetStarters: Gauge;
  private readonly fleetSlots: Gauge<'state'>;
  private readonly sourceUp: Gauge<'source'>;

  constructor(options: { processMetrics?: boolean; version?: string } = {}) {
    const registers = [this.registry];
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'pipeline_build_info',
      help: 'Always 1; its labels say which component runs which version on which Node',
      labelNames: ['component', 'version', 'node'],
      registers,
    }).set(
      {
        component: 'scheduler',
        version: options.version ?? runningVersion(),
        node: process.version,
      },
      1,
    );
    this.httpDuration = new Histogram({
      name: 'pipeline_scheduler_http_request_duration_seconds',
      help: 'HTTP requests answered, by method, route pattern and status class',
      labelNames: ['method', 'route', 'status_class'],
      buckets: httpDurationBuckets,
      registers,
    });
    this.submissions = new Counter({
      name: 'pipeline_scheduler_submissions_total',
      help: 'Submissions (POST /run-script/): accepted (new or duplicate) or refused, by reason',
      labelNames: ['outcome', 'reason'],
      registers,
    });
    this.runsFinished = new Counter({
      name: 'pipeline_scheduler_runs_finished_total',
      help: 'Runs that ended, by outcome, counted as the projector applies their last event',
      labelNames: ['outcome'],
      registers,
    });
    this.runsRejected = new Counter({
      name: 'pipeline_scheduler_runs_rejected_total',
      help: 'Runs rejected before they ran, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.runDuration = new Histogram({
      name: 'pipeline_scheduler_run_duration_seconds',
      help: 'Run time of finished runs as measured by their starter, by outcome',
      labelNames: ['outcome'],
      buckets: runDurationBuckets,
      registers,
    });
    this.projectionLag = new Gauge({
      name: 'pipeline_scheduler_projection_lag_events',
      help: "Events in the log not yet in the read model (stream's last sequence minus checkpoint)",
      registers,
    });
    this.queuePending = new Gauge({
      name: 'pipeline_scheduler_starters_queue_pending',
      help: 'Run requests no starter has fetched yet (consumer num_pending)',
      registers,
    });
    this.queueAckPending = new Gauge({
      name: 'pipeline_scheduler_starters_queue_ack_pending',
      help: 'Run requests fetched by a starter and not yet acknowledged (num_ack_pending)',
      registers,
    });
    this.queueRedelivered = new Gauge({
      name: 'pipeline_scheduler_starters_queue_redelivered',
      help: 'Run requests delivered more than once and not yet acknowledged (num_redelivered)',
      registers,
    });
    this.fleetStarters = new Gauge({
      name: 'pipeline_scheduler_fleet_starters',
      help: 'Starters with a fresh heartbeat, draining ones included',
      registers,
    });
    this.fleetSlots = new Gauge({
      name: 'pipeline_scheduler_fleet_slots',
      help: 'Run slots of the starters taking work, busy or free',
      labelNames: ['state'],
      registers,
    });
    this.sourceUp = new Gauge({
      name: 'pipeline_scheduler_scrape_source_up',
      help: 'Whether a source of the sampled gauges answered in time at the last scrape (1) or not (0)',
      labelNames: ['source'],
      registers,
    });
  }

  observeRequest(method: string, route: string, statusCode: number, seconds: number): void {
    const statusClass = `${Math.floor(statusCode / 100)}xx`;
    this.httpDuration.observe({ method, route, status_class: statusClass }, seconds);
  }

  countSubmission(submission: SubmissionOutcome): void {
    this.submissions.inc({ outcome: submission.outcome, reason: submission.reason });
  }

  /** Counts the runs that ended among the events of a committed projection batch. */
  countProjected(events: readonly (RunFinished | RunRejected)[]): void {
    for (const event of events) {
      if (event.type === 'RunRejected') {
        this.runsFinished.inc({ outcome: 'rejected' });
        this.runsRejected.inc({ reason: event.data.reason });
      } else if (event.type === 'RunFinished') {
        const outcome = finishedOutcome(event);
        this.runsFinished.inc({ outcome });
        this.runDuration.observe({ outcome }, event.data.durationMs / 1000);
      }
    }
  }

  /** Sets the sampled gauges; those of a source that did not answer read NaN, not a stale value. */
  applySample(sample: ScrapeSample): void {
    this.sourceUp.set({ source: 'projection' }, sample.projectionLag === null ? 0 : 1);
    this.sourceUp.set({ source: 'starters_queue' }, sample.startersQueue === null ? 0 : 1);
    this.sourceUp.set({ source: 'fleet' }, sample.fleet === null ? 0 : 1);
    setOrReset(this.projectionLag, sample.projectionLag);
    setOrReset(this.queuePending, sample.startersQueue?.pending ?? null);
    setOrReset(this.queueAckPending, sample.startersQueue?.ackPending ?? null);
    setOrReset(this.queueRedelivered, sample.startersQueue?.redelivered ?? null);
    setOrReset(this.fleetStarters, sample.fleet?.starters ?? null);
    if (sample.fleet === null) this.fleetSlots.reset();
    else {
      this.fleetSlots.set({ state: 'busy' }, sample.fleet.busy);
      this.fleetSlots.set({ state: 'free' }, sample.fleet.free);
    }
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}

function setOrReset(gauge: Gauge, value: number | null): void {
  gauge.set(value ?? Number.NaN);
}
