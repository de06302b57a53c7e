import type { MikroORM } from '@mikro-orm/mariadb';
import type { FastifyInstance } from 'fastify';
import { type EventFilterInput, parseEventFilter } from '../audit/eventFilter.ts';
import {
  type EventFilter,
  EventReader,
  type LogAccess,
  type LoggedEvent,
} from '../audit/eventReader.ts';
import { readModelRunIndex } from '../audit/runIndex.ts';
import { HttpError, ServiceUnavailableError, withinDeadline } from './httpErrors.ts';

export interface AuditRouteDeps {
  /** The log; without it the endpoints answer 503. */
  eventLog: LogAccess | undefined;
  /** The read model, whose run index serves the filters by base, owner and org. */
  orm?: MikroORM;
  /**
   * How long one audit read may take before it answers 503; a filter by base, owner or org
   * reads the log in order, which takes longer than a read of the database.
   * @default 15000
   */
  auditDeadlineMs?: number;
  /** `TIME_ZONE`: times without an offset, and whole days, are read in it. @default 'UTC' */
  timeZone?: string;
}

const defaultLimit = 100;
const maxLimit = 1000;

const queryNames = {
  runId: 'run_id',
  base: 'base_uuid',
  owner: 'owner',
  org: 'org_id',
  since: 'start',
  until: 'end',
  type: 'type',
} as const;

/**
 * The audit: the events of one run, and a filtered list, straight from the log (not from the
 * read model), each with its stream sequence, its stored time and its type. Registered behind
 * the token check like every endpoint but `/ping/`.
 */
export async function auditRoutes(app: FastifyInstance, deps: AuditRouteDeps): Promise<void> {
  const deadlineMs = deps.auditDeadlineMs ?? 15_000;
  const reader = () => {
    if (!deps.eventLog) throw new ServiceUnavailableError('the event log is not configured');
    return new EventReader(deps.eventLog, deps.orm ? readModelRunIndex(deps.orm) : undefined);
  };

  app.get('/admin/runs/:runId/events/', async (request) => {
    const { runId: rawId } = request.params as { runId: string };
    const parsed = parseEventFilter({ runId: rawId }, { ...queryNames, runId: 'run id' });
    if (!parsed.ok) throw new HttpError(400, { error: parsed.problem });
    const events = await withinDeadline(deadlineMs, (signal) =>
      collect(reader().events(parsed.filter), Number.POSITIVE_INFINITY, signal),
    );
    if (events.length === 0) throw new HttpError(404, { error: 'the run has no events' });
    return { events: events.map(({ seq, time, type, event }) => ({ seq, time, type, event })) };
  });

  app.get('/admin/events/', async (request) => {
    const query = request.query as Record<string, unknown>;
    const limit = parseLimit(query.limit);
    const input: EventFilterInput = {};
    for (const [field, name] of Object.entries(queryNames) as [keyof EventFilterInput, string][]) {
      const value = query[name];
      if (Array.isArray(value)) throw new HttpError(400, { error: `${name} given more than once` });
      if (typeof value === 'string' && value !== '') input[field] = value;
    }
    const parsed = parseEventFilter(input, queryNames, deps.timeZone ?? 'UTC');
    if (!parsed.ok) throw new HttpError(400, { error: parsed.problem });
    const filter: EventFilter = parsed.filter;
    const events = await withinDeadline(deadlineMs, (signal) =>
      collect(reader().events(filter), limit + 1, signal),
    );
    return {
      events: events.slice(0, limit).map(({ seq, time, type, runId, event }) => ({
        seq,
        time,
        type,
        run_id: runId,
        event,
      })),
      /** More events match; ask again with `start` at the last one's time. */
      truncated: events.length > limit,
    };
  });
}

function parseLimit(raw: unknown): number {
  if (raw === undefined || raw === '') return defaultLimit;
  const limit = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxLimit) {
    throw new HttpError(400, { error: `limit must be an integer from 1 to ${maxLimit}` });
  }
  return limit;
}

/** Up to `limit` events; stops reading (and closes the consumer) once the answer is gone. */
async function collect(
  events: AsyncGenerator<LoggedEvent>,
  limit: number,
  signal: AbortSignal,
): Promise<LoggedEvent[]> {
  const collected: LoggedEvent[] = [];
  for await (const logged of events) {
    collected.push(logged);
    if (collected.length >= limit || signal.aborted) break;
  }
  return collected;
}
