import { randomUUID } from 'node:crypto';
import type { Writable } from 'node:stream';
import { CREATE_ID_LABEL } from '@pipeline/runner';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { OutputAttachment } from './outputAttach.ts';
import type { RemovalRetry } from './removalRetry.ts';
import { isSandboxError, type SandboxContainer, type SandboxRuntime } from './sandboxRuntime.ts';

export type OutputSink = (bytes: Uint8Array, length: number) => boolean;

/** Output kept while no run listens (a prepared sandbox's entrypoint has nothing to say). */
const unroutedLimitBytes = 64 * 1024;

/**
 * A started container whose entrypoint waits for its hand-over on standard input: made on
 * demand for one run (cold), or ahead of demand by the warm pool. Either way it serves
 * exactly one run and is removed after it.
 */
export interface PreparedSandbox {
  readonly container: SandboxContainer;
  /** The container's standard input: the hand-over goes here, then it is closed. */
  readonly input: Writable;
  readonly output: OutputAttachment;
  /** The engine's exit status once the container stopped; rejects when the wait failed. */
  readonly exited: Promise<number>;
  /** True once the container stopped, or the engine's wait for it failed. */
  readonly stopped: boolean;
  /** True when it was made ahead of demand by the pool. */
  readonly pooled: boolean;
  /** From now on the output goes to `sink`, starting with what arrived before. */
  routeOutput(sink: OutputSink): void;
  /** Closes the streams (the container is removed separately). */
  closeStreams(): void;
}

/** Creating the container failed: nothing exists to remove. */
export class SandboxCreateError extends Error {
  constructor(options: ErrorOptions) {
    super('container could not be created', options);
    this.name = 'SandboxCreateError';
  }
}

/**
 * Creates a container, attaches to its output and input (before start, so nothing is
 * lost) and starts it; its entrypoint then waits for the hand-over. A failure after the
 * container exists removes it before the error is thrown; a removal the engine refuses
 * then (it is likely what failed) goes to `removals`, which keeps trying.
 */
export async function prepareSandbox(
  sandbox: SandboxRuntime,
  runId: number,
  options: Docker.ContainerCreateOptions,
  pooled: boolean,
  log: Logger,
  removals?: Pick<RemovalRetry, 'retry' | 'sweepUnansweredCreate'>,
): Promise<PreparedSandbox> {
  let container: SandboxContainer;
  const createLabels = { [CREATE_ID_LABEL]: randomUUID() };
  try {
    container = await sandbox.create(runId, {
      ...options,
      Labels: { ...options.Labels, ...createLabels },
    });
  } catch (error) {
    // An engine that answered 4xx made nothing. Without an answer (or with a 5xx), it may
    // have made the container before it failed: found by its create id once it is back.
    if (removals && !refusedByEngine(error))
      removals.sweepUnansweredCreate(createLabels, error, log);
    throw new SandboxCreateError({ cause: error });
  }
  let target: OutputSink | null = null;
  let early: Buffer[] = [];
  let earlyBytes = 0;
  const sink: OutputSink = (bytes, length) => {
    if (target) return target(bytes, length);
    if (earlyBytes < unroutedLimitBytes) {
      early.push(Buffer.from(bytes.subarray(0, Math.min(length, unroutedLimitBytes - earlyBytes))));
      earlyBytes += length;
    }
    return true;
  };
  const streams: Array<{ destroy(): void }> = [];
  try {
    // Two connections of their own: both attach at once.
    const [outputAttached, inputAttached] = await Promise.allSettled([
      sandbox.attachOutput(container, sink),
      sandbox.attachInput(container),
    ]);
    if (outputAttached.status === 'fulfilled') {
      const attached = outputAttached.value;
      streams.push({ destroy: () => attached.close() });
    }
    if (inputAttached.status === 'fulfilled') streams.push(inputAttached.value);
    if (outputAttached.status === 'rejected') throw outputAttached.reason;
    if (inputAttached.status === 'rejected') throw inputAttached.reason;
    const output = outputAttached.value;
    const input = inputAttached.value;
    await sandbox.start(container);
    let stopped = false;
    // Asked only once it runs: the engine answers a wait on a container not started at once.
    const exited = sandbox.wait(container).finally(() => {
      stopped = true;
    });
    // A rejection is looked at by whoever awaits it; keep it from counting as unhandled.
    exited.catch(() => {});
    return {
      container,
      input,
      output,
      exited,
      get stopped() {
        return stopped;
      },
      pooled,
      routeOutput(next) {
        target = next;
        const before = early;
        early = [];
        for (const bytes of before) next(bytes, bytes.length);
      },
      closeStreams() {
        for (const stream of streams) stream.destroy();
      },
    };
  } catch (error) {
    for (const stream of streams) stream.destroy();
    await sandbox.remove(container).catch((removeError: unknown) => {
      if (removals) removals.retry(container, removeError, log);
      else log.error({ err: removeError }, 'container removal failed');
    });
    throw error;
  }
}

function refusedByEngine(error: unknown): boolean {
  const status = isSandboxError(error) ? error.statusCode : null;
  return status !== null && status >= 400 && status < 500;
}
