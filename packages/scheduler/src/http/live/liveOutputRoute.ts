import type { ServerResponse } from 'node:http';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { RunEventLog } from '../../messaging/eventLog.ts';
import { HttpError, ServiceUnavailableError } from '../httpErrors.ts';
import type { SelectRows } from '../read/readModel.ts';
import type { LiveOutputHub, LivePiece } from './liveOutputHub.ts';

export interface LiveOutputRouteDeps {
  /** Live output of the running runs; without it the route answers 503. */
  hub: LiveOutputHub | undefined;
  selectRows: SelectRows;
  /** Tells a run just submitted (not yet in the read model) from an unknown one. */
  eventLog: Pick<RunEventLog, 'readRequest'> | undefined;
  /** How often an open stream asks the read model whether its run has finished. @default 1000 */
  pollMs?: number;
  /** A comment line this often keeps proxies from closing a quiet stream. @default 15000 */
  keepAliveMs?: number;
  /** Streams open at once on this scheduler; past it, 503. @default 100 */
  maxStreams?: number;
}

interface RunState {
  state: string | null;
  success: number | boolean | null;
  return_code: number | null;
  output: string | null;
}

/**
 * `GET /admin/runs/<id>/output/live/`: a run's output as server-sent events. First what it
 * printed so far, then each new piece (`event: output`, data `{"offset","text"}`), then
 * `event: end` with the run's result and final output once the read model says it finished
 * (a finished run answers that at once). The end comes from the read model, not from the
 * starter, so a stream ends even when the starter died and the watchdog ended the run.
 */
export async function liveOutputRoute(
  app: FastifyInstance,
  deps: LiveOutputRouteDeps,
): Promise<void> {
  const open = new Set<LiveOutputStream>();
  const maxStreams = deps.maxStreams ?? 100;
  // Long-lived answers would hold the server's close for ever: end them first.
  app.addHook('preClose', async () => {
    for (const stream of open) stream.close();
  });

  app.get('/admin/runs/:runId/output/live/', async (request, reply) => {
    const { runId: rawId } = request.params as { runId: string };
    const runId = /^\d{1,15}$/.test(rawId) ? Number(rawId) : Number.NaN;
    if (!Number.isSafeInteger(runId) || runId <= 0) throw runNotFound();
    const hub = deps.hub;
    if (!hub) throw new ServiceUnavailableError('live output is not configured');
    if (open.size >= maxStreams) {
      throw new ServiceUnavailableError('too many live output streams are open');
    }
    const run = await readRunState(deps.selectRows, runId);
    if (!run && !(await deps.eventLog?.readRequest(runId))?.event) throw runNotFound();

    reply.hijack();
    const stream = new LiveOutputStream(reply.raw, request.log.child({ runId }));
    open.add(stream);
    stream.onClose(() => open.delete(stream));
    if (run?.state === 'finished') {
      stream.finish(run);
      return;
    }
    followRun(stream, hub, runId, deps);
  });
}

/** Sends what was printed so far, then each piece, until the read model says finished. */
function followRun(
  stream: LiveOutputStream,
  hub: LiveOutputHub,
  runId: number,
  deps: LiveOutputRouteDeps,
): void {
  let checking = false;
  const checkFinished = async () => {
    if (checking || stream.closed) return;
    checking = true;
    try {
      const run = await readRunState(deps.selectRows, runId);
      if (run?.state === 'finished') stream.finish(run);
    } catch (error) {
      stream.log.debug({ err: error }, 'live output could not read the run state');
    } finally {
      checking = false;
    }
  };

  for (const piece of hub.printedSoFar(runId)) stream.output(piece);
  let endedTimer: NodeJS.Timeout | null = null;
  const unwatch = hub.watch(runId, {
    output: (piece) => stream.output(piece),
    // The container stopped: the result follows in the log within moments, so look more
    // often for a few seconds (a projector that lags longer is left to the regular poll).
    ended: () => {
      let looks = 0;
      endedTimer ??= setInterval(() => {
        if (++looks > 50 && endedTimer) clearInterval(endedTimer);
        void checkFinished();
      }, 100);
    },
  });
  const poll = setInterval(() => void checkFinished(), deps.pollMs ?? 1000);
  const keepAlive = setInterval(() => stream.comment('keep-alive'), deps.keepAliveMs ?? 15_000);
  stream.onClose(() => {
    unwatch();
    clearInterval(poll);
    clearInterval(keepAlive);
    if (endedTimer) clearInterval(endedTimer);
  });
  void checkFinished();
}

/** One open answer: writes the event-stream framing and runs its clean-ups once. */
class LiveOutputStream {
  readonly log: FastifyBaseLogger;
  private readonly response: ServerResponse;
  private readonly cleanups: Array<() => void> = [];
  private ended = false;

  constructor(response: ServerResponse, log: FastifyBaseLogger) {
    this.response = response;
    this.log = log;
    response.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Accel-Buffering': 'no',
      'X-Content-Type-Options': 'nosniff',
    });
    response.flushHeaders();
    response.once('close', () => this.close());
  }

  get closed(): boolean {
    return this.ended;
  }

  onClose(cleanup: () => void): void {
    this.cleanups.push(cleanup);
  }

  output(piece: LivePiece): void {
    this.send('output', { offset: piece.offset, text: piece.text });
  }

  comment(text: string): void {
    if (!this.ended) this.response.write(`: ${text}\n\n`);
  }

  /** The run's end of record: its result and the output SeaTable shows, then the close. */
  finish(run: RunState): void {
    this.send('end', {
      state: run.state,
      success: run.success === null ? null : Boolean(run.success),
      return_code: run.return_code,
      output: run.output ?? '',
    });
    this.log.debug('live output stream ended with the run');
    this.close();
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    this.response.end();
  }

  private send(event: string, data: unknown): void {
    // JSON keeps every line break inside the one `data:` line the framing allows.
    if (!this.ended) this.response.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }
}

async function readRunState(selectRows: SelectRows, runId: number): Promise<RunState | null> {
  const [row] = await selectRows<RunState>(
    'SELECT state, success, return_code, output FROM script_log WHERE id = ?',
    [runId],
  );
  return row ?? null;
}

function runNotFound(): HttpError {
  return new HttpError(404, { error: 'run not found' });
}
