import { randomBytes } from 'node:crypto';
import type { Writable } from 'node:stream';
import {
  type ClaimGrant,
  endWithoutResult,
  outputPieces,
  outputTexts,
  type RunFinished,
} from '@pipeline/events';
import { containerCreateOptions, type SandboxProfile } from '@pipeline/runner';
import type { Logger } from 'pino';
import type { RunEventSink } from '../publishing/runEventPublisher.ts';
import { delay, settleWithin } from '../retry.ts';
import { OutputCollector } from '../sandbox/outputCollector.ts';
import {
  type PreparedSandbox,
  prepareSandbox,
  SandboxCreateError,
} from '../sandbox/preparedSandbox.ts';
import { RemovalRetry } from '../sandbox/removalRetry.ts';
import {
  type SandboxContainer,
  type SandboxExit,
  type SandboxRuntime,
  shortId,
} from '../sandbox/sandboxRuntime.ts';
import type { WarmPool } from '../sandbox/warmPool.ts';
import { handoverBytes } from './handover.ts';
import type { LiveOutput, LiveOutputFollower } from './liveOutput.ts';
import { runOutcome, withLine } from './runOutcome.ts';
import { downloadScript, scriptDownloadUrl } from './scriptDownload.ts';

export type RunGrant = ClaimGrant;

/** A run this starter claimed and now has to carry out. */
export interface RunAssignment {
  runId: number;
  contextData: Record<string, unknown> | null;
  grant: RunGrant;
  /** Aborted when an administrator cancels the run; a run never cancelled may omit it. */
  cancel?: AbortSignal;
}

export interface RunExecutionSettings {
  starterId: string;
  /** Labels every run container carries besides the profile's (the installation's log). */
  containerLabels: Record<string, string>;
  outputLimit: number;
  stopGraceSeconds: number;
  timeZone: string | null;
  alternativeFileServerRoot: string | null;
  sandbox: SandboxProfile;
  /** Told once per run how many bytes of output were read and dropped past the limit. */
  onOutputDropped?: (bytes: number) => void;
}

/** How long to wait for the output stream to end once the container stopped. */
const outputDrainMs = 2_000;
/** Extra time for the engine to report the exit after SIGKILL. */
const stopSlackMs = 10_000;
/** Longest wait for the engine to remove a container before the result is published anyway. */
const removeTimeoutMs = 30_000;

/** The exit status of a process killed with SIGKILL, as the out-of-memory killer does. */
const oomExitCode = 137;

interface ContainerRun {
  /** Null when the engine never reported an exit status. */
  exitCode: number | null;
  /** The status came from the entrypoint's end line, before the container stopped. */
  reported: boolean;
  timedOut: boolean;
  /** The starter stopped the container because the run was cancelled. */
  cancelled: boolean;
  /** The starter's clock when the container started and when its deadline passed. */
  startedAt: Date;
  deadlineAt: Date | null;
  endedAt: Date;
}

/**
 * Carries out one claimed run: downloads the script, runs it in a container used for no
 * other run (prepared by the warm pool, or made now), and appends RunStarted and
 * RunFinished. Never throws for a run's failure: every path ends
 * with a RunFinished and with the container removed. A cancel before the container started
 * ends the run unstarted; a cancel while it runs stops the container and keeps its output.
 */
export class RunExecution {
  private readonly sandbox: SandboxRuntime;
  private readonly publisher: RunEventSink;
  private readonly settings: RunExecutionSettings;
  /** Containers the engine refused to remove, tried again in the background. */
  readonly removals: RemovalRetry;
  private readonly liveOutput: LiveOutput | null;

  private readonly pool: WarmPool | null;
  private readonly removing = new Set<Promise<void>>();

  /** `pool`: prepared sandboxes to take before making one; null starts every run cold. */
  constructor(
    sandbox: SandboxRuntime,
    publisher: RunEventSink,
    settings: RunExecutionSettings,
    liveOutput: LiveOutput | null = null,
    pool: WarmPool | null = null,
  ) {
    this.sandbox = sandbox;
    this.publisher = publisher;
    this.settings = settings;
    this.removals = new RemovalRetry(sandbox);
    this.liveOutput = liveOutput;
    this.pool = pool;
  }

  async execute(assignment: RunAssignment, log: Logger): Promise<void> {
    const cancel = assignment.cancel ?? new AbortController().signal;
    if (cancel.aborted) {
      await this.finishCancelledUnstarted(assignment.runId, log);
      return;
    }
    const url = scriptDownloadUrl(
      assignment.grant.scriptUrl,
      this.settings.alternativeFileServerRoot,
    );
    // The sandbox is made (or taken from the pool) while the script downloads: neither
    // needs the other, and a cold start's create and start are the longest steps of a run.
    const sandboxReady = this.sandboxFor(assignment.runId, log);
    const download = await downloadScript(url).catch((error: unknown) => {
      void this.discardUnused(sandboxReady, log);
      throw error;
    });
    if (!download.ok) {
      log.warn({ status: download.status, reason: download.reason }, 'script download failed');
      await this.discardUnused(sandboxReady, log);
      await this.finishUnstarted(assignment.runId, outputTexts.scriptNotFound);
      return;
    }
    if (cancel.aborted) {
      await this.discardUnused(sandboxReady, log);
      await this.finishCancelledUnstarted(assignment.runId, log);
      return;
    }

    const prepared = await sandboxReady;
    if (!prepared) {
      await this.finishUnstarted(assignment.runId, outputTexts.failed);
      return;
    }
    const containerLog = log.child({
      containerId: shortId(prepared.container.id),
      ...(prepared.pooled ? { pooled: true } : {}),
    });
    if (cancel.aborted) {
      prepared.closeStreams();
      await this.removeContainer(prepared.container, containerLog);
      await this.finishCancelledUnstarted(assignment.runId, log);
      return;
    }
    await this.runInContainer(assignment, download.script, prepared, cancel, containerLog);
  }

  /** Removes a sandbox made for a run that will not run (no script, or cancelled). */
  private async discardUnused(ready: Promise<PreparedSandbox | null>, log: Logger): Promise<void> {
    const prepared = await ready;
    if (!prepared) return;
    prepared.closeStreams();
    await this.removeContainer(prepared.container, log);
  }

  /** A prepared sandbox of the pool, else one made now; null when none could be made. */
  private async sandboxFor(runId: number, log: Logger): Promise<PreparedSandbox | null> {
    const pooled = await this.pool?.take(log);
    if (pooled) return pooled;
    try {
      return await prepareSandbox(
        this.sandbox,
        runId,
        containerCreateOptions(this.settings.sandbox, {
          runId,
          starterId: this.settings.starterId,
          labels: this.settings.containerLabels,
        }),
        false,
        log,
        this.removals,
      );
    } catch (error) {
      const what = error instanceof SandboxCreateError ? error.cause : error;
      log.error({ err: what }, 'container could not be prepared');
      return null;
    }
  }

  private async runInContainer(
    assignment: RunAssignment,
    script: Uint8Array,
    prepared: PreparedSandbox,
    cancel: AbortSignal,
    log: Logger,
  ): Promise<void> {
    const { container } = prepared;
    const endMarker = randomBytes(16).toString('hex');
    const collector = new OutputCollector(this.settings.outputLimit, { endMarker });
    let started: Promise<void> | null = null;
    let startedAt: Date | null = null;
    let live: LiveOutputFollower | undefined;
    let finished: RunFinished['data'];
    try {
      prepared.routeOutput((bytes, length) => collector.push(bytes, length));
      // The run's time, and its deadline, count from here: a prepared sandbox may have
      // waited long before its run came.
      startedAt = new Date();
      live = this.liveOutput?.follow(assignment.runId, collector, log);
      void writeHandover(
        prepared.input,
        handoverBytes({
          dtableWebUrl: assignment.grant.dtableWebUrl,
          apiToken: assignment.grant.apiToken,
          timeZone: this.settings.timeZone,
          script,
          contextData: assignment.contextData,
          endMarker,
        }),
        log,
      );
      started = this.publishStarted(assignment.runId, container.id);
      log.info('run started');

      const run = await this.waitWithDeadline(
        prepared,
        collector,
        startedAt,
        assignment.grant.timeoutSeconds,
        cancel,
        log,
      );
      let exit: SandboxExit | null = null;
      if (run.reported) {
        // The end line came after all the script printed: the output is complete.
        exit = {
          exitCode: run.exitCode ?? -1,
          oomKilled: false,
          startedAt,
          finishedAt: run.endedAt,
        };
      } else {
        await settleWithin(prepared.output.ended, outputDrainMs, null);
        exit = await this.sandbox.inspectExit(container).catch((error: unknown) => {
          log.warn({ err: error }, 'container inspect failed');
          return null;
        });
        // A prepared container started long before its run: the run's own clock counts.
        if (exit && prepared.pooled) exit = { ...exit, startedAt, finishedAt: run.endedAt };
      }
      collector.end();
      finished = this.finishedData(run, exit, collector, assignment.grant.timeoutSeconds);
    } catch (error) {
      log.error({ err: error }, 'run failed in the sandbox');
      collector.end();
      finished = this.platformFailure(collector, startedAt);
    } finally {
      live?.stop();
      prepared.closeStreams();
    }
    if (collector.droppedBytes > 0) this.settings.onOutputDropped?.(collector.droppedBytes);
    // The result goes out before the container is torn down (that takes the engine a tenth
    // of a second or more). The removal goes on after the run gave back its slot; stopping
    // the starter waits for it (`removalsDone`).
    const removed = this.removeContainer(container, log);
    this.removing.add(removed);
    void removed.finally(() => this.removing.delete(removed));

    // The log must hold RunStarted before RunFinished; a failure to publish it was retried.
    if (started) await started;
    await this.publishFinished(assignment.runId, finished);
    log.info(
      {
        success: finished.success,
        returnCode: finished.returnCode,
        durationMs: finished.durationMs,
        timedOut: finished.timedOut,
        outOfMemory: finished.outOfMemory,
        outputTruncated: finished.outputTruncated,
        outputDroppedBytes: collector.droppedBytes,
        cancelled: finished.cancelled,
      },
      'run finished',
    );
  }

  /** Resolves once the removals of finished runs' containers that are under way ended. */
  async removalsDone(): Promise<void> {
    await Promise.all([...this.removing]);
  }

  private async waitWithDeadline(
    prepared: PreparedSandbox,
    collector: OutputCollector,
    startedAt: Date,
    timeoutSeconds: number,
    cancel: AbortSignal,
    log: Logger,
  ): Promise<ContainerRun> {
    const exited = prepared.exited;
    // The entrypoint's end line tells the script's status as soon as the script ended. A
    // status of 137 may be an out-of-memory kill, which only the engine can tell: then the
    // container's own end is awaited and inspected as without the line.
    type Ended = { code: number; reported: boolean };
    const byEngine = (code: number): Ended => ({ code, reported: false });
    const reported = collector.scriptEnded.then((code): Ended | Promise<Ended> =>
      code === oomExitCode ? exited.then(byEngine) : { code, reported: true },
    );
    reported.catch(() => {});
    const deadline = new AbortController();
    const timer = delay(timeoutSeconds * 1000, deadline.signal).then(() => 'deadline' as const);
    const cancelled = abortedPromise(cancel, deadline.signal).then(() => 'cancelled' as const);
    const first = await Promise.race([exited.then(byEngine), reported, timer, cancelled]);
    deadline.abort();
    if (first !== 'deadline' && first !== 'cancelled') {
      return {
        exitCode: first.code,
        reported: first.reported,
        timedOut: false,
        cancelled: false,
        startedAt,
        deadlineAt: null,
        endedAt: new Date(),
      };
    }

    const deadlineAt = new Date();
    if (first === 'cancelled') log.info('run cancelled, stopping container');
    else log.info({ timeoutSeconds }, 'run timed out, stopping container');
    await this.sandbox
      .stop(prepared.container, this.settings.stopGraceSeconds)
      .catch((error: unknown) => log.warn({ err: error }, 'container stop failed'));
    const exitCode = await settleWithin(
      exited.catch(() => null),
      this.settings.stopGraceSeconds * 1000 + stopSlackMs,
      null,
    );
    const timedOut = first === 'deadline';
    return {
      exitCode,
      reported: false,
      timedOut,
      cancelled: !timedOut,
      startedAt,
      deadlineAt,
      endedAt: new Date(),
    };
  }

  private finishedData(
    run: ContainerRun,
    exit: SandboxExit | null,
    collector: OutputCollector,
    timeoutSeconds: number,
  ): RunFinished['data'] {
    if (run.cancelled) return this.cancelledData(run, exit, collector);
    const outcome = runOutcome({
      exitCode: exit?.exitCode ?? run.exitCode ?? -1,
      oomKilled: exit?.oomKilled ?? false,
      timedOut: run.timedOut,
      printed: collector.text(),
    });
    // The container's own clock, when the engine reports it. A timed-out run ran for its
    // limit: the stop grace and the teardown are the starter's time, not the script's.
    const startedAt = exit?.startedAt ?? run.startedAt;
    let finishedAt = exit?.finishedAt ?? run.endedAt;
    if (run.timedOut) finishedAt = new Date(startedAt.getTime() + timeoutSeconds * 1000);
    if (finishedAt < startedAt) finishedAt = startedAt;
    return {
      ...outcome,
      outputChunks: 0,
      outputTruncated: collector.truncated,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      durationMs: finishedAt.getTime() - startedAt.getTime(),
      cancelled: false,
      lost: false,
      starterId: this.settings.starterId,
    };
  }

  /** Stopped on a cancel: what the script printed, then the contract-style cancel text. */
  private cancelledData(
    run: ContainerRun,
    exit: SandboxExit | null,
    collector: OutputCollector,
  ): RunFinished['data'] {
    const printed = collector.text();
    const startedAt = exit?.startedAt ?? run.startedAt;
    // Up to the cancel: the stop grace is the starter's time, not the script's.
    const finishedAt = run.deadlineAt && run.deadlineAt > startedAt ? run.deadlineAt : startedAt;
    return {
      success: false,
      returnCode: -1,
      output: withLine(printed, outputTexts.cancelled),
      outputChunks: 0,
      outputTruncated: collector.truncated,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      durationMs: finishedAt.getTime() - startedAt.getTime(),
      timedOut: false,
      outOfMemory: false,
      cancelled: true,
      lost: false,
      starterId: this.settings.starterId,
    };
  }

  /** The engine failed us mid-run: the user sees "Failed" after what the script printed. */
  private platformFailure(collector: OutputCollector, startedAt: Date | null): RunFinished['data'] {
    const now = new Date();
    const printed = collector.text();
    return {
      success: false,
      returnCode: -1,
      output: withLine(printed, outputTexts.failed),
      outputChunks: 0,
      outputTruncated: collector.truncated,
      startedAt: startedAt?.toISOString() ?? null,
      finishedAt: now.toISOString(),
      durationMs: startedAt ? now.getTime() - startedAt.getTime() : 0,
      timedOut: false,
      outOfMemory: false,
      cancelled: false,
      lost: false,
      starterId: this.settings.starterId,
    };
  }

  /** Cancelled before its container started: the run ends unstarted (no statistics). */
  private async finishCancelledUnstarted(runId: number, log: Logger): Promise<void> {
    log.info('run cancelled before it started');
    await this.finishUnstarted(runId, outputTexts.cancelled, true);
  }

  private async finishUnstarted(runId: number, output: string, cancelled = false): Promise<void> {
    const starterId = this.settings.starterId;
    const { data } = endWithoutResult({ runId, at: new Date(), output, starterId, cancelled });
    await this.publishFinished(runId, data);
  }

  private async publishStarted(runId: number, containerId: string): Promise<void> {
    await this.publisher.publish({
      type: 'RunStarted',
      schemaVersion: 1,
      occurredAt: new Date().toISOString(),
      runId,
      data: { starterId: this.settings.starterId, containerId },
    });
  }

  /** Long output goes first as RunOutputChunk events; RunFinished carries the last piece. */
  private async publishFinished(runId: number, data: RunFinished['data']): Promise<void> {
    const pieces = outputPieces(data.output);
    const last = pieces.pop() ?? '';
    for (const [index, text] of pieces.entries()) {
      await this.publisher.publish(
        {
          type: 'RunOutputChunk',
          schemaVersion: 1,
          occurredAt: new Date().toISOString(),
          runId,
          data: { index, text },
        },
        index,
      );
    }
    await this.publisher.publish({
      type: 'RunFinished',
      schemaVersion: 1,
      occurredAt: data.finishedAt,
      runId,
      data: { ...data, output: last, outputChunks: pieces.length },
    });
  }

  private async removeContainer(container: SandboxContainer, log: Logger): Promise<void> {
    const removed = this.sandbox.remove(container).then(
      () => true,
      (error: unknown) => {
        this.removals.retry(container, error, log);
        return true;
      },
    );
    const settled = await settleWithin(removed, removeTimeoutMs, false);
    if (!settled) log.error('container removal did not finish in time');
  }
}

/** Resolves when `signal` aborts; never, if `until` aborts first (no listener is left). */
function abortedPromise(signal: AbortSignal, until: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = () => {
      signal.removeEventListener('abort', done);
      until.removeEventListener('abort', done);
      if (signal.aborted) resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    until.addEventListener('abort', done, { once: true });
  });
}

/**
 * Writes the hand-over and closes the container's standard input. The script may exit
 * before reading it all (BC-09): a broken pipe then ends the writing, not the starter.
 */
function writeHandover(input: Writable, handover: Uint8Array, log: Logger): Promise<void> {
  return new Promise((resolve) => {
    input.once('error', (error: NodeJS.ErrnoException) => {
      log.debug({ code: error.code }, 'standard input closed early');
      resolve();
    });
    input.once('close', () => resolve());
    input.end(handover, () => resolve());
  });
}
