import type { RunCancelRequested, RunEvent, RunFinished } from '@pipeline/events';
import { endWithoutResult, outputTexts } from '@pipeline/events';
import type { FastifyInstance } from 'fastify';
import type { FleetView } from '../fleet/fleetView.ts';
import type { LastRunEvent, RunEventLog } from '../messaging/eventLog.ts';
import { HttpError, ServiceUnavailableError, withinDeadline } from './httpErrors.ts';

export interface AdminRunRouteDeps {
  /** Where cancels are appended; without it the cancel route answers 503. */
  eventLog: RunEventLog | undefined;
  /** The starters' heartbeats; without it the fleet route answers 503. */
  fleet: FleetView | undefined;
  requestDeadlineMs: number;
  now?: () => Date;
}

/** Open states a cancel can meet; `pending` includes claimed but not yet started. */
type CancellableState = 'pending' | 'running';

/** How often a cancel looks again when the run's subject moved under it. */
const cancelAttempts = 5;

/**
 * The operator's run controls: cancelling a run (`POST /admin/runs/<id>/cancel/`) and
 * listing the starter fleet (`GET /admin/fleet/`). Registered behind the token check.
 * Cancels read and write the log, never the read model, which may lag behind it.
 */
export async function adminRunRoutes(app: FastifyInstance, deps: AdminRunRouteDeps): Promise<void> {
  const now = deps.now ?? (() => new Date());

  app.post('/admin/runs/:runId/cancel/', async (request) => {
    const { runId: rawId } = request.params as { runId: string };
    const runId = /^\d+$/.test(rawId) ? Number(rawId) : Number.NaN;
    if (!Number.isSafeInteger(runId) || runId <= 0) throw runNotFound();
    const eventLog = deps.eventLog;
    if (!eventLog) throw new ServiceUnavailableError('the event log is not configured');

    const state = await withinDeadline(deps.requestDeadlineMs, () =>
      cancelRun(eventLog, runId, now),
    );
    request.log.info({ runId, state }, 'run cancel requested');
    return { cancelled: true, state };
  });

  app.get('/admin/fleet/', async () => {
    const fleet = deps.fleet;
    if (!fleet) throw new ServiceUnavailableError('the fleet view is not configured');
    const starters = await withinDeadline(deps.requestDeadlineMs, () => fleet.liveStarters());
    return {
      starters: starters.map((starter) => ({
        starter_id: starter.starterId,
        host: starter.host,
        slots: starter.slots,
        busy: starter.busy,
        draining: starter.draining,
        started_at: starter.startedAt,
        last_seen: starter.at,
      })),
      // The capacity fair share uses: draining starters take no new work.
      total_slots: starters
        .filter((starter) => !starter.draining)
        .reduce((sum, s) => sum + s.slots, 0),
      busy_slots: starters.reduce((sum, starter) => sum + starter.busy, 0),
    };
  });
}

/**
 * Appends RunCancelRequested right after the run's last event, so that it is ordered
 * against the claim and the start: when the subject moved meanwhile, it looks again. A run
 * nobody claimed yet is also ended here (as the claim would end it), so it does not wait in
 * the queue; the claim then finds it decided and drops it.
 */
async function cancelRun(
  eventLog: RunEventLog,
  runId: number,
  now: () => Date,
): Promise<CancellableState> {
  const stored = await eventLog.readRequest(runId);
  if (!stored?.event) throw runNotFound();

  for (let attempt = 1; attempt <= cancelAttempts; attempt++) {
    const last = await eventLog.lastEventOf(runId);
    if (isEnd(last?.event)) throw new HttpError(409, { error: 'the run has already finished' });
    if (last?.event?.type === 'RunCancelRequested') {
      // Asked again: tell the starter again, in case it missed the first notice.
      await eventLog.notifyCancel(last.event);
      return 'pending';
    }

    const state = stateAfter(last);
    const cancel = cancelRequested(runId, now);
    const appended = await eventLog.appendIfUnchanged(cancel, last?.seq ?? 0);
    if (appended.outcome === 'already-decided') continue;
    if (!last) await eventLog.appendIfUnchanged(cancelledUnstarted(runId, now), appended.seq);
    else await eventLog.notifyCancel(cancel);
    return state;
  }
  throw new ServiceUnavailableError('the run kept changing; try the cancel again');
}

function stateAfter(last: LastRunEvent | null): CancellableState {
  if (!last || last.event?.type === 'RunClaimed') return 'pending';
  return 'running';
}

function isEnd(event: RunEvent | null | undefined): boolean {
  return event?.type === 'RunFinished' || event?.type === 'RunRejected';
}

function runNotFound(): HttpError {
  return new HttpError(404, { error: 'run not found' });
}

function cancelRequested(runId: number, now: () => Date): RunCancelRequested {
  return {
    type: 'RunCancelRequested',
    schemaVersion: 1,
    occurredAt: now().toISOString(),
    runId,
    data: { requestedBy: 'admin' },
  };
}

/** The end of a run cancelled before any starter claimed it: no statistics count it. */
function cancelledUnstarted(runId: number, now: () => Date): RunFinished {
  return endWithoutResult({
    runId,
    at: now(),
    output: outputTexts.cancelled,
    starterId: null,
    cancelled: true,
  });
}
