import type { Writable } from 'node:stream';
import type Docker from 'dockerode';
import type { OutputAttachment } from './outputAttach.ts';

/** A container made for one run. */
export interface SandboxContainer {
  readonly id: string;
  readonly runId: number;
}

export interface ListedContainer extends SandboxContainer {
  readonly labels: Readonly<Record<string, string>>;
}

/** What the engine knows about a container once it stopped. */
export interface SandboxExit {
  exitCode: number;
  oomKilled: boolean;
  /** The container's own clock: when its process started and ended (null when unknown). */
  startedAt: Date | null;
  finishedAt: Date | null;
}

/**
 * The container lifecycle, one method per engine call. Implementations log each call at
 * debug and throw `SandboxError` with the engine's error as cause. "Already gone" answers
 * count as success where the caller wants the container gone.
 */
export interface SandboxRuntime {
  imageExists(image: string): Promise<boolean>;
  /** Creates the network with `options` unless one of that name exists; true when created. */
  ensureNetwork(options: Docker.NetworkCreateOptions): Promise<boolean>;
  create(runId: number, options: Docker.ContainerCreateOptions): Promise<SandboxContainer>;
  /**
   * Hands the multiplexed stdout/stderr stream to `sink`, read by read: the first `length`
   * bytes of `bytes`, valid only during the call. The sink returns false once it keeps
   * nothing more; the stream is then still read to its end, but may be read more slowly.
   * Attach before start so no output is lost.
   */
  attachOutput(
    container: SandboxContainer,
    sink: (bytes: Uint8Array, length: number) => boolean,
  ): Promise<OutputAttachment>;
  /** The container's standard input; ending it closes the container's stdin. */
  attachInput(container: SandboxContainer): Promise<Writable>;
  start(container: SandboxContainer): Promise<void>;
  /** Resolves with the exit code once the container stopped. */
  wait(container: SandboxContainer): Promise<number>;
  /** SIGTERM, then SIGKILL after `graceSeconds`. A container that already stopped is fine. */
  stop(container: SandboxContainer, graceSeconds: number): Promise<void>;
  inspectExit(container: SandboxContainer): Promise<SandboxExit>;
  /** Removes the container, running or not; gone or being removed counts as removed. */
  remove(container: SandboxContainer): Promise<void>;
  /** The containers (running or not) whose labels match all of `labels`. */
  listByLabels(labels: Record<string, string>): Promise<ListedContainer[]>;
}

export type SandboxOperation =
  | 'imageExists'
  | 'ensureNetwork'
  | 'create'
  | 'attachOutput'
  | 'attachInput'
  | 'start'
  | 'wait'
  | 'stop'
  | 'inspect'
  | 'remove'
  | 'list';

/** A Docker engine call failed. Carries the run and container it was about. */
export class SandboxError extends Error {
  readonly code = 'SANDBOX_ENGINE_FAILED';
  readonly operation: SandboxOperation;
  readonly runId: number | null;
  readonly containerId: string | null;
  /** The engine's HTTP status, when it answered. */
  readonly statusCode: number | null;

  constructor(
    operation: SandboxOperation,
    target: { runId?: number; containerId?: string },
    options: ErrorOptions & { statusCode?: number | null },
  ) {
    const cause = options.cause instanceof Error ? options.cause.message : String(options.cause);
    super(`docker ${operation} failed: ${cause}`, options);
    this.name = 'SandboxError';
    this.operation = operation;
    this.runId = target.runId ?? null;
    this.containerId = target.containerId ?? null;
    this.statusCode = options.statusCode ?? null;
  }
}

export function isSandboxError(error: unknown): error is SandboxError {
  return (error as { code?: unknown } | null)?.code === 'SANDBOX_ENGINE_FAILED';
}

export function shortId(containerId: string): string {
  return containerId.slice(0, 12);
}
