import { type FinishedOutcome, finishedOutcome, type RunFinished } from '@pipeline/events';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { runningVersion } from './buildInfo.ts';

/** How a run ended on this starter; the same words as the scheduler's metrics. */
export type StarterRunOutcome = FinishedOutcome;

/** The engine calls whose latency is measured. */
export type TimedContainerOperation = 'create' | 'start';

export interface SlotCounts {
  readonly size: number;
  readonly busy: number;
}

const containerBuckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * This starter's Prometheus metrics, on a registry of its own: the runs it started and
 * finished, its slots, how long the engine takes to create and start a container, and the
 * output it dropped past the limit.
 */
export class StarterMetrics {
  readonly registry = new Registry();
  private readonly runsStarted: Counter;
  private readonly runsFinished: Counter<'outcome'>;
  private readonly containerDuration: Histogram<'operation'>;
  private readonly outputDropped: Counter;
  private slots: SlotCounts | undefined;

  constructor(options: { processMetrics?: boolean; version?: string } = {}) {
    const registers = [this.registry];
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'pipeline_build_info',
      help: 'Always 1; its labels say which component runs which version on which Node',
      labelNames: ['component', 'version', 'node'],
      registers,
    }).set(
      { component: 'starter', version: options.version ?? runningVersion(), node: process.version },
      1,
    );
    this.runsStarted = new Counter({
      name: 'pipeline_starter_runs_started_total',
      help: 'Runs whose container this starter started',
      registers,
    });
    this.runsFinished = new Counter({
      name: 'pipeline_starter_runs_finished_total',
      help: 'Runs this starter finished and stored, by outcome',
      labelNames: ['outcome'],
      registers,
    });
    this.containerDuration = new Histogram({
      name: 'pipeline_starter_container_operation_duration_seconds',
      help: 'How long the Docker engine took to create or start a run container',
      labelNames: ['operation'],
      buckets: containerBuckets,
      registers,
    });
    this.outputDropped = new Counter({
      name: 'pipeline_starter_output_bytes_dropped_total',
      help: 'Bytes of run output read from the engine and dropped past the output limit',
      registers,
    });
    const slotsOf = () => this.slots;
    new Gauge({
      name: 'pipeline_starter_slots_total',
      help: 'Runs this starter takes at once (PYTHON_STARTER_THREAD_COUNT)',
      registers,
      collect() {
        this.set(slotsOf()?.size ?? 0);
      },
    });
    new Gauge({
      name: 'pipeline_starter_slots_busy',
      help: 'Run slots held now, from fetch to the end of the run',
      registers,
      collect() {
        this.set(slotsOf()?.busy ?? 0);
      },
    });
  }

  /** The slots the gauges read at scrape time. */
  watchSlots(slots: SlotCounts): void {
    this.slots = slots;
  }

  countStarted(): void {
    this.runsStarted.inc();
  }

  countFinished(event: RunFinished): void {
    this.runsFinished.inc({ outcome: finishedOutcome(event) });
  }

  observeContainer(operation: TimedContainerOperation, seconds: number): void {
    this.containerDuration.observe({ operation }, seconds);
  }

  countDroppedOutput(bytes: number): void {
    if (bytes > 0) this.outputDropped.inc(bytes);
  }

  async render(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}
