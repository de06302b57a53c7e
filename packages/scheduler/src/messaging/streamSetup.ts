import type { MikroORM } from '@mikro-orm/mariadb';
import type { JetStreamManager } from '@nats-io/jetstream';
import {
  defaultStreamOptions,
  ensureStream,
  isNotFound,
  type Naming,
  type StreamOptions,
  streamConfig,
} from '@pipeline/events';
import type { Logger } from 'pino';
import { sqlOf } from '../db/sql.ts';

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
      await createAbove(manager, naming, options, highestRunId + 1);
      logger.info(
        { stream: naming.stream, firstSequence: highestRunId + 1 },
        'event log created above the adopted run ids',
      );
      return;
    }
  }
  // TODO(#6): a log lost with its data (BC-16 variant 5) comes back empty: runs still
  // pending in MariaDB are not requested again, so they stay pending until retention.
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
  const [row] = await sqlOf(orm).all<{ highest: number | string | null }>(
    `SELECT GREATEST(
       COALESCE((SELECT MAX(id) FROM script_log), 0),
       COALESCE((SELECT MAX(stream_sequence) FROM pipeline_checkpoint), 0)) AS highest`,
  );
  return Number(row?.highest ?? 0);
}
