import type { RunLifecycleEvent } from '@pipeline/events';
import type { RunEventSink } from '../publishing/runEventPublisher.ts';
import type { StarterMetrics } from './starterMetrics.ts';

/** Counts the runs this starter started and finished, once their event is stored. */
export class MeasuredPublisher implements RunEventSink {
  private readonly inner: RunEventSink;
  private readonly metrics: StarterMetrics;

  constructor(inner: RunEventSink, metrics: StarterMetrics) {
    this.inner = inner;
    this.metrics = metrics;
  }

  async publish(event: RunLifecycleEvent, part?: number): Promise<void> {
    await this.inner.publish(event, part);
    if (event.type === 'RunStarted') this.metrics.countStarted();
    else if (event.type === 'RunFinished') this.metrics.countFinished(event);
  }
}
