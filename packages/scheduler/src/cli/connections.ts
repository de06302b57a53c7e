import type { MikroORM } from '@mikro-orm/mariadb';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { type Logger, pino } from 'pino';
import type { SchedulerConfig } from '../config.ts';
import { migrateDatabase, openDatabase } from '../db/orm.ts';
import { RunEventLog } from '../messaging/eventLog.ts';

/** The log, for a command: connected once, failing fast when NATS is not there. */
export async function openLog(
  config: SchedulerConfig,
): Promise<{ eventLog: RunEventLog; close(): Promise<void> }> {
  let connection: NatsConnection;
  try {
    connection = await connect({
      servers: config.nats.servers,
      user: config.nats.user,
      pass: config.nats.password,
      token: config.nats.token,
      name: 'pipeline-cli',
      maxReconnectAttempts: 10,
      reconnectTimeWait: 500,
    });
  } catch (error) {
    throw new Error(
      `cannot connect to NATS at ${config.nats.servers.join(', ')}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const eventLog = await RunEventLog.open(connection, config.naming);
  return {
    eventLog,
    async close() {
      await connection.drain().catch(() => {});
    },
  };
}

/** The read model, migrated as the scheduler would, with a logger that writes warnings to stderr. */
export async function openReadModel(
  config: SchedulerConfig,
): Promise<{ orm: MikroORM; logger: Logger; close(): Promise<void> }> {
  const logger = pino({ level: 'warn', base: { service: 'pipeline-cli' } }, pino.destination(2));
  let orm: MikroORM;
  try {
    orm = await openDatabase({ ...config.database });
    await migrateDatabase(orm);
  } catch (error) {
    const { sqliteFile, user, host, port, name } = config.database;
    const where = sqliteFile ?? `${user}@${host}:${port}/${name}`;
    throw new Error(`cannot open the read model ${where}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return {
    orm,
    logger,
    async close() {
      await orm.close(true).catch(() => {});
    },
  };
}
