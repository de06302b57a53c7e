import { canonicalUuid, type LogEventType, logEventSchema } from '@pipeline/events';
import { endInstant, rangeBoundValue } from '../http/read/queryValues.ts';
import type { EventFilter } from './eventReader.ts';

/** The filter's fields as text, as a command line or a query string gives them. */
export interface EventFilterInput {
  runId?: string;
  base?: string;
  owner?: string;
  org?: string;
  since?: string;
  until?: string;
  type?: string;
}

export type ParsedFilter = { ok: true; filter: EventFilter } | { ok: false; problem: string };

/** How the caller spells each field, for the message that names a bad one. */
export type FieldNames = Record<keyof EventFilterInput, string>;

export const eventTypes: readonly LogEventType[] = logEventSchema.options.map(
  (option) => option.shape.type.value,
);

/**
 * Checks every given field; the first bad one is the problem, named as the caller spells it.
 * Times without an offset are wall-clock times in `timeZone`, as on the read endpoints, and a
 * plain date as the end includes that whole day.
 */
export function parseEventFilter(
  input: EventFilterInput,
  names: FieldNames,
  timeZone = 'UTC',
): ParsedFilter {
  const filter: EventFilter = {};
  if (input.runId !== undefined) {
    const runId = Number(input.runId);
    if (!/^\d+$/.test(input.runId) || !Number.isSafeInteger(runId) || runId < 1) {
      return bad(names.runId, 'must be a positive integer', input.runId);
    }
    filter.runId = runId;
  }
  if (input.base !== undefined) {
    const uuid = canonicalUuid(input.base);
    if (!uuid) return bad(names.base, 'must be a base uuid', input.base);
    filter.dtableUuid = uuid;
  }
  if (input.owner !== undefined) {
    if (input.owner === '') return bad(names.owner, 'must not be empty', input.owner);
    filter.owner = input.owner;
  }
  if (input.org !== undefined) {
    const orgId = Number(input.org);
    if (!/^-?\d+$/.test(input.org) || !Number.isSafeInteger(orgId)) {
      return bad(names.org, 'must be an integer', input.org);
    }
    filter.orgId = orgId;
  }
  for (const field of ['since', 'until'] as const) {
    const text = input[field];
    if (text === undefined) continue;
    const bound = rangeBoundValue(text, names[field], timeZone);
    if (!bound.ok) {
      return bad(names[field], 'must be an ISO 8601 date or time', text);
    }
    // The reader's end is inclusive: a whole day ends a millisecond before the next one.
    filter[field] =
      field === 'until' && bound.value.dateOnly
        ? new Date(endInstant(bound.value, text, timeZone).getTime() - 1)
        : bound.value.instant;
  }
  if (input.type !== undefined) {
    if (!(eventTypes as readonly string[]).includes(input.type)) {
      return bad(names.type, `must be one of ${eventTypes.join(', ')}`, input.type);
    }
    filter.type = input.type as LogEventType;
  }
  if (filter.since && filter.until && filter.since > filter.until) {
    return { ok: false, problem: `${names.since} must not be after ${names.until}` };
  }
  return { ok: true, filter };
}

function bad(name: string, problem: string, value: string): ParsedFilter {
  return { ok: false, problem: `${name} ${problem}, got ${JSON.stringify(value)}` };
}
