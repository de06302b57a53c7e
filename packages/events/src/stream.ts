import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/nats-core';
import { consumerNames, type Naming, subjects } from './subjects.ts';

export interface StreamOptions {
  /** How long the log keeps events, in seconds; 0 keeps them for ever. */
  maxAgeSeconds: number;
  /** Size cap of the log in bytes; -1 for none. */
  maxBytes: number;
  /** 1 on one server, 3 in a cluster. */
  replicas: number;
  /** Window in which a repeated Nats-Msg-Id is dropped, in seconds. */
  duplicateWindowSeconds: number;
}

export const defaultStreamOptions: StreamOptions = {
  maxAgeSeconds: 0,
  maxBytes: -1,
  replicas: 1,
  duplicateWindowSeconds: 120,
};

/** How long a starter may hold a run request without signalling progress. */
export const starterAckWaitMs = 10_000;

export function streamConfig(
  naming: Naming,
  options: StreamOptions,
): Partial<StreamConfig> & { name: string } {
  return {
    name: naming.stream,
    subjects: [subjects.all(naming)],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_age: nanos(options.maxAgeSeconds * 1000),
    max_bytes: options.maxBytes,
    num_replicas: options.replicas,
    duplicate_window: nanos(options.duplicateWindowSeconds * 1000),
    allow_direct: true,
  };
}

/**
 * Creates the stream, or updates the settings that may change without losing data.
 * Storage and retention cannot change in place; a mismatch there is reported, not fixed.
 */
export async function ensureStream(
  jsm: JetStreamManager,
  naming: Naming,
  options: StreamOptions = defaultStreamOptions,
): Promise<'created' | 'updated' | 'unchanged'> {
  const wanted = streamConfig(naming, options);
  const existing = await jsm.streams.info(naming.stream).catch((error: unknown) => {
    if (isNotFound(error)) return null;
    throw error;
  });
  if (!existing) {
    await jsm.streams.add(wanted);
    return 'created';
  }
  const current = existing.config;
  if (current.storage !== wanted.storage || current.retention !== wanted.retention) {
    throw new Error(
      `stream ${naming.stream} has storage ${current.storage} and retention ${current.retention}; ` +
        `expected ${wanted.storage} and ${wanted.retention}. Move its data to a new stream by hand.`,
    );
  }
  const changed =
    current.max_age !== wanted.max_age ||
    current.max_bytes !== wanted.max_bytes ||
    current.num_replicas !== wanted.num_replicas ||
    current.duplicate_window !== wanted.duplicate_window ||
    !sameSubjects(current.subjects, wanted.subjects);
  if (!changed) return 'unchanged';
  await jsm.streams.update(naming.stream, {
    subjects: wanted.subjects,
    max_age: wanted.max_age,
    max_bytes: wanted.max_bytes,
    num_replicas: wanted.num_replicas,
    duplicate_window: wanted.duplicate_window,
  });
  return 'updated';
}

/** The starters' shared work queue over run requests. */
export async function ensureStarterConsumer(jsm: JetStreamManager, naming: Naming): Promise<void> {
  const config = {
    durable_name: consumerNames.starters,
    filter_subject: subjects.requested(naming),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(starterAckWaitMs),
    // Unbounded here: JetStream would drop a request silently. Deliveries are counted where
    // a run can be ended with a result: the scheduler ends one whose script SeaTable did not
    // hand out in five claims, a starter one whose request no starter could read.
    max_deliver: -1,
    max_ack_pending: 10_000,
  };
  const existing = await jsm.consumers
    .info(naming.stream, consumerNames.starters)
    .catch((error: unknown) => {
      if (isNotFound(error)) return null;
      throw error;
    });
  if (!existing) {
    await jsm.consumers.add(naming.stream, config);
    return;
  }
  if (existing.config.ack_wait !== config.ack_wait) {
    await jsm.consumers.update(naming.stream, consumerNames.starters, {
      ack_wait: config.ack_wait,
      max_ack_pending: config.max_ack_pending,
    });
  }
}

function sameSubjects(left: string[] | undefined, right: string[] | undefined): boolean {
  return JSON.stringify([...(left ?? [])].sort()) === JSON.stringify([...(right ?? [])].sort());
}

export function isNotFound(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown; api_error?: { err_code?: number } }).api_error?.err_code;
  return code === 10059 || code === 10014 || /not found/i.test(error.message);
}

/**
 * The log refused a publish because the subject's (or stream's) last sequence is not the one
 * the publish expected: someone else appended first.
 */
export function isWrongLastSequence(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamWrongLastSequence ||
      error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}
