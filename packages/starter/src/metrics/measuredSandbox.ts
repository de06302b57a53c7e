import type { Writable } from 'node:stream';
import type Docker from 'dockerode';
import type { OutputAttachment } from '../sandbox/outputAttach.ts';
import type {
  ListedContainer,
  SandboxContainer,
  SandboxExit,
  SandboxRuntime,
} from '../sandbox/sandboxRuntime.ts';
import type { StarterMetrics } from './starterMetrics.ts';

/**
 * The sandbox with measurements: how long the engine takes to create and start a container.
 * Every other call passes through unchanged (the output collector counts dropped output
 * itself, exactly, and the run execution reports it).
 */
export class MeasuredSandbox implements SandboxRuntime {
  private readonly inner: SandboxRuntime;
  private readonly metrics: StarterMetrics;

  constructor(inner: SandboxRuntime, metrics: StarterMetrics) {
    this.inner = inner;
    this.metrics = metrics;
  }

  async create(runId: number, options: Docker.ContainerCreateOptions): Promise<SandboxContainer> {
    const startedAt = performance.now();
    const container = await this.inner.create(runId, options);
    this.metrics.observeContainer('create', (performance.now() - startedAt) / 1000);
    return container;
  }

  async start(container: SandboxContainer): Promise<void> {
    const startedAt = performance.now();
    await this.inner.start(container);
    this.metrics.observeContainer('start', (performance.now() - startedAt) / 1000);
  }

  attachOutput(
    container: SandboxContainer,
    sink: (bytes: Uint8Array, length: number) => boolean,
  ): Promise<OutputAttachment> {
    return this.inner.attachOutput(container, sink);
  }

  imageExists(image: string): Promise<boolean> {
    return this.inner.imageExists(image);
  }

  ensureNetwork(options: Docker.NetworkCreateOptions): Promise<boolean> {
    return this.inner.ensureNetwork(options);
  }

  attachInput(container: SandboxContainer): Promise<Writable> {
    return this.inner.attachInput(container);
  }

  wait(container: SandboxContainer): Promise<number> {
    return this.inner.wait(container);
  }

  stop(container: SandboxContainer, graceSeconds: number): Promise<void> {
    return this.inner.stop(container, graceSeconds);
  }

  inspectExit(container: SandboxContainer): Promise<SandboxExit> {
    return this.inner.inspectExit(container);
  }

  remove(container: SandboxContainer): Promise<void> {
    return this.inner.remove(container);
  }

  listByLabels(labels: Record<string, string>): Promise<ListedContainer[]> {
    return this.inner.listByLabels(labels);
  }
}
