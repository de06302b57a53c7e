import type { Readable, Writable } from 'node:stream';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { attachOutput, type EngineEndpoint, type OutputAttachment } from './outputAttach.ts';
import {
  type ListedContainer,
  type SandboxContainer,
  SandboxError,
  type SandboxExit,
  type SandboxOperation,
  type SandboxRuntime,
  shortId,
} from './sandboxRuntime.ts';

/** Docker's zero time, which inspect reports for a time that never happened. */
const dockerZeroTime = '0001-01-01T00:00:00Z';

/**
 * The sandbox runtime on the Docker Engine API, through dockerode. One method per engine
 * call; each logs "doing" and "done" at debug with the run and the short container id.
 */
export class DockerSandbox implements SandboxRuntime {
  private readonly docker: Docker;
  private readonly log: Logger;
  private readonly runIdLabel: string;
  private readonly endpoint: EngineEndpoint | null;
  /** Told of each call that got no answer from the engine (no HTTP status). */
  onNoAnswer: ((operation: SandboxOperation, error: unknown) => void) | null = null;

  /**
   * `runIdLabel`: the label that carries a container's run id. `endpoint`: the engine's
   * plain socket or TCP address, for the output attachment; null (TLS) reads output
   * through dockerode instead.
   */
  constructor(docker: Docker, log: Logger, runIdLabel: string, endpoint: EngineEndpoint | null) {
    this.docker = docker;
    this.log = log;
    this.runIdLabel = runIdLabel;
    this.endpoint = endpoint;
  }

  async imageExists(image: string): Promise<boolean> {
    return await this.call('imageExists', {}, async () => {
      try {
        await this.docker.getImage(image).inspect();
        return true;
      } catch (error) {
        if (statusOf(error) === 404) return false;
        throw error;
      }
    });
  }

  async ensureNetwork(options: Docker.NetworkCreateOptions): Promise<boolean> {
    return await this.call('ensureNetwork', {}, async () => {
      try {
        await this.docker.getNetwork(options.Name).inspect();
        return false;
      } catch (error) {
        if (statusOf(error) !== 404) throw error;
      }
      try {
        await this.docker.createNetwork(options);
        return true;
      } catch (error) {
        // 409: another starter on this engine created it meanwhile.
        if (statusOf(error) === 409) return false;
        throw error;
      }
    });
  }

  /** The image's id (its content hash), or null when the engine does not have it. */
  async imageId(image: string): Promise<string | null> {
    return await this.call('imageExists', {}, async () => {
      try {
        return (await this.docker.getImage(image).inspect()).Id;
      } catch (error) {
        if (statusOf(error) === 404) return null;
        throw error;
      }
    });
  }

  /** Whether the container exists and runs now (neither stopped, paused nor restarting). */
  async isRunning(container: SandboxContainer): Promise<boolean> {
    return await this.call('inspect', container, async () => {
      try {
        const state = (await this.handle(container).inspect()).State;
        return state.Running && !state.Paused && !state.Restarting;
      } catch (error) {
        if (statusOf(error) === 404) return false;
        throw error;
      }
    });
  }

  async create(runId: number, options: Docker.ContainerCreateOptions): Promise<SandboxContainer> {
    const created = await this.call('create', { runId }, () =>
      this.docker.createContainer(options),
    );
    this.log.debug({ runId, containerId: shortId(created.id) }, 'container created');
    return { id: created.id, runId };
  }

  async attachOutput(
    container: SandboxContainer,
    sink: (bytes: Uint8Array, length: number) => boolean,
  ): Promise<OutputAttachment> {
    return await this.call('attachOutput', container, async () => {
      if (this.endpoint) return await attachOutput(this.endpoint, container.id, sink);
      const stream = (await this.handle(container).attach({
        stream: true,
        stdout: true,
        stderr: true,
      })) as unknown as Readable;
      return streamAttachment(stream, sink);
    });
  }

  async attachInput(container: SandboxContainer): Promise<Writable> {
    return await this.call('attachInput', container, async () => {
      const stream = await this.handle(container).attach({
        stream: true,
        stdin: true,
        hijack: true,
      });
      return stream as unknown as Writable;
    });
  }

  async start(container: SandboxContainer): Promise<void> {
    await this.call('start', container, () => this.handle(container).start());
  }

  async wait(container: SandboxContainer): Promise<number> {
    return await this.call('wait', container, async () => {
      const answer = (await this.handle(container).wait()) as { StatusCode?: number };
      return answer.StatusCode ?? -1;
    });
  }

  async stop(container: SandboxContainer, graceSeconds: number): Promise<void> {
    await this.call('stop', container, async () => {
      try {
        await this.handle(container).stop({ t: graceSeconds });
      } catch (error) {
        // 304: already stopped; 404: already gone. Both are what we wanted.
        const status = statusOf(error);
        if (status !== 304 && status !== 404) throw error;
        this.log.debug({ ...this.ids(container), status }, 'container already stopped');
      }
    });
  }

  async inspectExit(container: SandboxContainer): Promise<SandboxExit> {
    return await this.call('inspect', container, async () => {
      const info = await this.handle(container).inspect();
      return {
        exitCode: info.State.ExitCode,
        oomKilled: info.State.OOMKilled === true,
        startedAt: dockerTime(info.State.StartedAt),
        finishedAt: dockerTime(info.State.FinishedAt),
      };
    });
  }

  async remove(container: SandboxContainer): Promise<void> {
    await this.call('remove', container, async () => {
      try {
        await this.handle(container).remove({ force: true, v: true });
      } catch (error) {
        // 404: already gone; 409: a removal is already in progress. Both end with it gone.
        const status = statusOf(error);
        if (status !== 404 && status !== 409) throw error;
        this.log.debug({ ...this.ids(container), status }, 'container already being removed');
      }
    });
  }

  async listByLabels(labels: Record<string, string>): Promise<ListedContainer[]> {
    return await this.call('list', {}, async () => {
      const filters = { label: Object.entries(labels).map(([key, value]) => `${key}=${value}`) };
      const found = await this.docker.listContainers({ all: true, filters });
      return found.map((entry) => ({
        id: entry.Id,
        runId: this.runIdOf(entry.Labels),
        labels: entry.Labels ?? {},
      }));
    });
  }

  private runIdOf(labels: Record<string, string> | undefined): number {
    const value = labels?.[this.runIdLabel];
    return value !== undefined && /^\d+$/.test(value) ? Number(value) : 0;
  }

  private handle(container: SandboxContainer): Docker.Container {
    return this.docker.getContainer(container.id);
  }

  private ids(target: { runId?: number; id?: string }): Record<string, unknown> {
    return {
      ...(target.runId !== undefined ? { runId: target.runId } : {}),
      ...(target.id !== undefined ? { containerId: shortId(target.id) } : {}),
    };
  }

  private async call<T>(
    operation: SandboxOperation,
    target: { runId?: number; id?: string },
    work: () => Promise<T>,
  ): Promise<T> {
    const ids = this.ids(target);
    this.log.debug({ ...ids, operation }, 'docker call');
    try {
      const result = await work();
      this.log.debug({ ...ids, operation }, 'docker call done');
      return result;
    } catch (error) {
      if (statusOf(error) === null) this.onNoAnswer?.(operation, error);
      throw new SandboxError(
        operation,
        {
          ...(target.runId !== undefined ? { runId: target.runId } : {}),
          ...(target.id !== undefined ? { containerId: target.id } : {}),
        },
        { cause: error, statusCode: statusOf(error) },
      );
    }
  }
}

/** The same attachment over a dockerode stream (one Buffer per read: see outputAttach.ts). */
function streamAttachment(
  stream: Readable,
  sink: (bytes: Uint8Array, length: number) => boolean,
): OutputAttachment {
  stream.on('data', (chunk: Buffer) => sink(chunk, chunk.length));
  const ended = new Promise<void>((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });
  return { ended, close: () => stream.destroy() };
}

function statusOf(error: unknown): number | null {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : null;
}

function dockerTime(value: string | undefined): Date | null {
  if (!value || value.startsWith(dockerZeroTime.slice(0, 4))) return null;
  const parsed = new Date(value);
  return Number.isNaN(parsed.getTime()) ? null : parsed;
}
