import type { MikroORM } from '@mikro-orm/mariadb';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { ensureStream, type Naming, namingFor } from '@pipeline/events';
import { type Logger, pino } from 'pino';
import { createTestDatabase, type TestDatabase } from '../../../../test/support/mariadb.ts';
import { type NatsServer, startNatsServer } from '../../../../test/support/nats.ts';
import { type SeaTableStandin, startSeaTableStandin } from '../../../seatable-standin/src/index.ts';
import { migrateDatabase, openDatabase } from '../../src/db/orm.ts';
import { RunEventLog } from '../../src/messaging/eventLog.ts';

/** The real services one test file needs: its own NATS, database and SeaTable stand-in. */
export interface Services {
  nats: NatsServer;
  connection: NatsConnection;
  eventLog: RunEventLog;
  naming: Naming;
  db: TestDatabase;
  orm: MikroORM;
  standin: SeaTableStandin;
  logger: Logger;
  close(): Promise<void>;
}

export async function startServices(label: string): Promise<Services> {
  const nats = await startNatsServer();
  const db = await createTestDatabase(label);
  const orm = await openDatabase({
    host: db.host,
    port: db.port,
    user: db.user,
    password: db.password,
    name: db.name,
  });
  await migrateDatabase(orm);
  const connection = await connect({
    servers: nats.url,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
  });
  const naming = namingFor(`t${label.replace(/[^a-z0-9]/gi, '')}`);
  const eventLog = await RunEventLog.open(connection, naming);
  await ensureStream(eventLog.jetStreamManager, naming);
  const standin = await startSeaTableStandin();
  const logger = testLogger();
  return {
    nats,
    connection,
    eventLog,
    naming,
    db,
    orm,
    standin,
    logger,
    async close() {
      await standin.stop();
      await connection.close().catch(() => {});
      await orm.close(true);
      await db.drop();
      await nats.stop();
    },
  };
}

/** Silent unless `TEST_LOG_LEVEL` asks for lines. */
export function testLogger(): Logger {
  return pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
}

export const baseUuid = '6a1f3c2e-9b7d-4e21-8f0a-0c5d2b7e9a11';

export function standardSubmission(
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    dtable_uuid: baseUuid,
    script_name: 't.py',
    context_data: null,
    owner: 'user-a@example.invalid',
    org_id: -1,
    scripts_running_limit: -1,
    operate_from: 'manualy',
    ...overrides,
  };
}
