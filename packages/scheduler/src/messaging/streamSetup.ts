import type { MikroORM } from '@mikro-orm/mariadb';
import type { JetStreamManager } from '@nats-io/jetstream';
import {
  defaultStreamOptions,
  encodeEvent,
  endWithoutResult,
  ensureStream,
  isNotFound,
  messageIdFor,
  type Naming,
  type RunFinished,
  type StreamOptions,
  streamConfig,
  subjects,
} from '@pipeline/events';
import type { Logger } from 'pino';
import { recordAdoption } from '../adoption/adoptedHistory.ts';
import { fromSqlDateTime, sqlOf } from '../db/sql.ts';
import { isWrongLastSequence } from './eventLog.ts';

/** The output of a run whose events went with a lost log: it will never run or report. */
export const logLostOutput =
  'The run was lost: the event log was lost before the run finished. Submit it again.';

/** A start-up problem that waiting will not fix; the process stops with its message. */
export class StartupError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StartupError';
  }
}

/**
 * Makes sure the log exists. Run ids are stream sequences, and an installation adopted from
 * the original already has run ids: a new stream then starts above the highest one, so an
 * old id is never given to a new run.
 */
export async function ensureEventLog(
  manager: JetStreamManager,
  naming: Naming,
  settings: Pick<StreamOptions, 'maxAgeSeconds' | 'maxBytes' | 'replicas'>,
  orm: MikroORM,
  logger: Logger,
): Promise<void> {
  const options: StreamOptions = { ...defaultStreamOptions, ...settings };
  const exists = await manager.streams.info(naming.stream).then(
    () => true,
    (error: unknown) => {
      if (isNotFound(error)) return false;
      throw error;
    },
  );
  if (!exists) {
    const highestRunId = await highestExistingRunId(orm);
    if (highestRunId > 0) {
      // Rows but nothing ever projected: an original installation's tables, whose history
      // the scheduler then writes into the new log (importAdoptedHistory).
      if (!(await hasProjected(orm))) await recordAdoption(orm, naming.stream, highestRunId + 1);
      await createAbove(manager, naming, options, highestRunId + 1);
      logger.info(
        { stream: naming.stream, firstSequence: highestRunId + 1 },
        'event log created above the existing run ids',
      );
      await endRunsOfLostLog(manager, naming, orm, highestRunId, logger);
      return;
    }
  }
  const outcome = await ensureStream(manager, naming, options);
  logger.info({ stream: naming.stream, outcome }, 'event log ready');
}

/**
 * Creates the empty stream so that its first message gets `firstSequence`: with
 * `first_seq` where the server has it (2.10+), otherwise by purging the new, empty stream up
 * to that sequence, which moves its next sequence there (2.9) and loses nothing.
 */
async function createAbove(
  manager: JetStreamManager,
  naming: Naming,
  options: StreamOptions,
  firstSequence: number,
): Promise<void> {
  const config = streamConfig(naming, options);
  const withFirstSequence = await manager.streams.add({ ...config, first_seq: firstSequence }).then(
    () => true,
    (error: unknown) => {
      if (/first_seq/.test((error as Error).message)) return false;
      throw error;
    },
  );
  if (withFirstSequence) return;
  await manager.streams.add(config);
  const state = (await manager.streams.info(naming.stream)).state;
  if (state.messages > 0) {
    throw new StartupError(
      `stream ${naming.stream} already holds messages; it cannot be moved above run id ${firstSequence - 1}`,
    );
  }
  await manager.streams.purge(naming.stream, { seq: firstSequence });
}

/**
 * The highest run id or projected sequence: a log recreated after it was lost must also
 * start above the checkpoint, or the projector would skip its first events.
 */
async function highestExistingRunId(orm: MikroORM): Promise<number> {
  const sql = sqlOf(orm);
  const [row] = await sql.all<{ highest: number | string | null }>(
    `SELECT ${sql.dialect.greatest(
      'COALESCE((SELECT MAX(id) FROM script_log), 0)',
      'COALESCE((SELECT MAX(stream_sequence) FROM pipeline_checkpoint), 0)',
    )} AS highest`,
  );
  return Number(row?.highest ?? 0);
}

async function hasProjected(orm: MikroORM): Promise<boolean> {
  const [checkpoint] = await sqlOf(orm).all<{ highest: number | string | null }>(
    'SELECT MAX(stream_sequence) AS highest FROM pipeline_checkpoint',
  );
  return Number(checkpoint?.highest ?? 0) > 0;
}

interface OpenRunRow {
  id: number;
  started_at: string | null;
}

/**
 * A log that is gone while the read model has projected from it (a checkpoint above 0; BC-16
 * variant 5: memory storage, or a stream deleted) took the requests of the runs that had not
 * finished: no starter will ever be handed them, and their ids cannot be requested again
 * (an id is the request's sequence, and the new log starts above them). Each such run ends
 * now with a `RunFinished {lost: true}` that says so, so none stays pending for ever; the
 * publish is the run's first event in the new log and carries the usual message id, so two
 * schedulers doing this at once end each run once. An adopted original's database has no
 * checkpoint: its rows are left as they are. Runs above `highestRunId` are in the new log.
 */
async function endRunsOfLostLog(
  manager: JetStreamManager,
  naming: Naming,
  orm: MikroORM,
  highestRunId: number,
  logger: Logger,
): Promise<void> {
  const sql = sqlOf(orm);
  if (!(await hasProjected(orm))) return;
  const openRuns = await sql.all<OpenRunRow>(
    `SELECT id, CAST(started_at AS CHAR) AS started_at FROM script_log
     WHERE state IN ('pending', 'running') AND id <= ? ORDER BY id`,
    [highestRunId],
  );
  if (openRuns.length === 0) return;

  const client = manager.jetstream();
  let ended = 0;
  for (const run of openRuns) {
    const event = lostWithTheLog(Number(run.id), fromSqlDateTime(run.started_at), new Date());
    try {
      const ack = await client.publish(
        subjects.lifecycle(naming, event.runId),
        encodeEvent(event),
        {
          msgID: messageIdFor(event.runId, event.type),
          expect: { lastSubjectSequence: 0 },
        },
      );
      if (!ack.duplicate) ended += 1;
    } catch (error) {
      if (!isWrongLastSequence(error)) throw error;
    }
  }
  logger.warn(
    { stream: naming.stream, runs: openRuns.length, ended },
    'runs of the lost event log ended as lost',
  );
}

function lostWithTheLog(runId: number, startedAt: Date | null, now: Date): RunFinished {
  return endWithoutResult({
    runId,
    at: now,
    output: logLostOutput,
    starterId: null,
    startedAt,
    lost: true,
  });
}
