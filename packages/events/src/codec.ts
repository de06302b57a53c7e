import type { z } from 'zod';
import { type LogEvent, logEventSchema, type RunEvent, runEventSchema } from './runEvents.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeEvent(event: LogEvent): Uint8Array {
  // Validate on the way out too: a bad event must never enter the log.
  const checked = logEventSchema.parse(event);
  return encoder.encode(JSON.stringify(checked));
}

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; reason: string };

type RawEvent = Record<string, unknown>;
type Upcaster = (raw: RawEvent) => RawEvent;

/**
 * Upcasters bring an older schema version to the next one, one step each, keyed by
 * `${type}@${fromVersion}`; a decoded event is always of the current version, and a
 * current event passes unchanged. A newer version adds its step here and keeps the old
 * events in the log readable.
 *
 * Version 0 is the log of the first deployments, before events carried `schemaVersion`
 * (a missing version is 0): `RunRequested` had no `operator`, `RunStarted` no
 * `containerId`, and `RunFinished` measured `spend_time` in seconds instead of
 * `durationMs` and knew neither output chunks, truncation, cancellation nor lost runs.
 * `RunImported` and `StatisticsImported` (the history of an adopted original) began at
 * version 1 and have no older form. `RunImported` version 2 carries `outputChunks`: version
 * 1 had none (its output was cut to fit one message).
 */
const upcasters: Record<string, Upcaster> = {
  'RunRequested@0': (raw) => withData(raw, (data) => ({ operator: null, ...data })),
  'RunClaimed@0': (raw) => withData(raw, (data) => data),
  'RunRejected@0': (raw) => withData(raw, (data) => data),
  'RunStarted@0': (raw) => withData(raw, (data) => ({ containerId: '', ...data })),
  'RunOutputChunk@0': (raw) => withData(raw, (data) => data),
  'RunCancelRequested@0': (raw) => withData(raw, (data) => data),
  'RunImported@1': (raw) => withData(raw, (data) => ({ outputChunks: 0, ...data })),
  'RunFinished@0': (raw) =>
    withData(raw, ({ spend_time: spendTime, ...data }) => ({
      outputChunks: 0,
      outputTruncated: false,
      cancelled: false,
      lost: false,
      starterId: null,
      ...data,
      durationMs:
        typeof spendTime === 'number' ? Math.max(0, Math.round(spendTime * 1000)) : spendTime,
    })),
};

/** The next version of an event whose payload `step` rewrites. */
function withData(raw: RawEvent, step: (data: RawEvent) => RawEvent): RawEvent {
  const data = raw.data;
  const payload = typeof data === 'object' && data !== null ? (data as RawEvent) : {};
  return { ...raw, schemaVersion: versionOf(raw) + 1, data: step(payload) };
}

function versionOf(raw: RawEvent): number {
  return raw.schemaVersion === undefined ? 0 : Number(raw.schemaVersion);
}

function upcast(raw: RawEvent): RawEvent {
  let current = raw;
  for (let guard = 0; guard < 32; guard++) {
    const step = upcasters[`${String(current.type)}@${versionOf(current)}`];
    if (!step) return current;
    current = step(current);
  }
  return current;
}

export function decodeEvent(bytes: Uint8Array): DecodeResult<RunEvent> {
  return decodeWith(runEventSchema, bytes, upcast);
}

/** Any event of the log, the adopted original's statistics included. */
export function decodeLogEvent(bytes: Uint8Array): DecodeResult<LogEvent> {
  return decodeWith(logEventSchema, bytes, upcast);
}

/** Decodes and validates any JSON message against a schema, never throwing. */
export function decodeWith<S extends z.ZodType>(
  schema: S,
  bytes: Uint8Array,
  transform: (raw: Record<string, unknown>) => Record<string, unknown> = (raw) => raw,
): DecodeResult<z.infer<S>> {
  let raw: unknown;
  try {
    raw = JSON.parse(decoder.decode(bytes));
  } catch (error) {
    return { ok: false, reason: `not UTF-8 JSON: ${(error as Error).message}` };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, reason: 'not a JSON object' };
  }
  const parsed = schema.safeParse(transform(raw as Record<string, unknown>));
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first?.path.length ? first.path.join('.') : '(root)';
    return { ok: false, reason: `invalid at ${where}: ${first?.message ?? 'unknown'}` };
  }
  return { ok: true, value: parsed.data };
}

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}
