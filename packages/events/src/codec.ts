import type { z } from 'zod';
import { type RunEvent, runEventSchema } from './runEvents.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeEvent(event: RunEvent): Uint8Array {
  // Validate on the way out too: a bad event must never enter the log.
  const checked = runEventSchema.parse(event);
  return encoder.encode(JSON.stringify(checked));
}

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; reason: string };

/**
 * Upcasters bring an older schema version to the current one, one step each, keyed by
 * `${type}@${fromVersion}`. Version 1 is the first, so there are none yet; a newer
 * version adds its step here and keeps the old events readable.
 */
const upcasters: Record<string, (raw: Record<string, unknown>) => Record<string, unknown>> = {};

function upcast(raw: Record<string, unknown>): Record<string, unknown> {
  let current = raw;
  for (let guard = 0; guard < 32; guard++) {
    const step = upcasters[`${String(current.type)}@${String(current.schemaVersion)}`];
    if (!step) return current;
    current = step(current);
  }
  return current;
}

export function decodeEvent(bytes: Uint8Array): DecodeResult<RunEvent> {
  return decodeWith(runEventSchema, bytes, upcast);
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
