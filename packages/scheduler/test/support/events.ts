import {
  encodeEvent,
  messageIdFor,
  type RunEvent,
  type RunFinished,
  type RunLifecycleEvent,
  type RunRequested,
  subjects,
} from '@pipeline/events';
import type { RunEventLog } from '../../src/messaging/eventLog.ts';
import { baseUuid } from './harness.ts';

/** Builders for the events a starter or scheduler would append, with test defaults. */
export function runRequested(
  overrides: Partial<RunRequested['data']> = {},
  occurredAt = new Date(),
): RunRequested {
  return {
    type: 'RunRequested',
    schemaVersion: 1,
    occurredAt: occurredAt.toISOString(),
    data: {
      dtableUuid: baseUuid,
      scriptName: 't.py',
      owner: 'user-p@example.invalid',
      orgId: -1,
      contextData: null,
      operateFrom: 'manualy',
      operator: null,
      ...overrides,
    },
  };
}

export function runClaimed(runId: number, starterId = 'starter-1'): RunLifecycleEvent {
  return {
    type: 'RunClaimed',
    schemaVersion: 1,
    occurredAt: new Date().toISOString(),
    runId,
    data: { starterId, host: 'host-1' },
  };
}

export function runStarted(runId: number, at: Date, starterId = 'starter-1'): RunLifecycleEvent {
  return {
    type: 'RunStarted',
    schemaVersion: 1,
    occurredAt: at.toISOString(),
    runId,
    data: { starterId, containerId: `container-${runId}` },
  };
}

export function runFinished(
  runId: number,
  startedAt: Date | null,
  finishedAt: Date,
  overrides: Partial<RunFinished['data']> = {},
): RunFinished {
  return {
    type: 'RunFinished',
    schemaVersion: 1,
    occurredAt: finishedAt.toISOString(),
    runId,
    data: {
      success: true,
      returnCode: 0,
      output: 'done\n',
      outputChunks: 0,
      outputTruncated: false,
      startedAt: startedAt?.toISOString() ?? null,
      finishedAt: finishedAt.toISOString(),
      durationMs: startedAt ? finishedAt.getTime() - startedAt.getTime() : 0,
      timedOut: false,
      outOfMemory: false,
      cancelled: false,
      lost: false,
      starterId: 'starter-1',
      ...overrides,
    },
  };
}

/**
 * Appends an event as a starter would. `copy` gives the publish its own message id, so the
 * log stores a second copy instead of de-duplicating it: a redelivery or a forged repeat.
 */
export async function append(
  eventLog: RunEventLog,
  event: RunEvent,
  copy?: string,
): Promise<number> {
  const naming = eventLog.naming;
  if (event.type === 'RunRequested') {
    const ack = await eventLog.jetStream.publish(subjects.requested(naming), encodeEvent(event), {
      msgID: `test-${copy ?? Math.random()}`,
    });
    return ack.seq;
  }
  const msgID = messageIdFor(
    event.runId,
    event.type,
    event.type === 'RunOutputChunk' ? event.data.index : undefined,
  );
  const ack = await eventLog.jetStream.publish(
    subjects.lifecycle(naming, event.runId),
    encodeEvent(event),
    {
      msgID: copy ? `${msgID}-${copy}` : msgID,
    },
  );
  return ack.seq;
}
