import { MikroORM } from '@mikro-orm/mariadb';
import { Migrator } from '@mikro-orm/migrations';
import { migrationsList } from './migrations/index.ts';

export interface DatabaseSettings {
  host: string;
  port: number;
  user: string;
  password: string;
  name: string;
  /** Connections kept open. */
  poolSize?: number;
  /** How long opening one connection may take before it fails. @default 3000 */
  connectTimeoutMs?: number;
}

/**
 * Opens the read model's database. The read model is written with plain SQL through the
 * ORM's connection (the tables are the original's, shaped for queries); MikroORM owns
 * the connection pool, the transactions and the migrations.
 */
export async function openDatabase(settings: DatabaseSettings): Promise<MikroORM> {
  return await MikroORM.init({
    host: settings.host,
    port: settings.port,
    user: settings.user,
    password: settings.password,
    dbName: settings.name,
    charset: 'utf8mb4',
    timezone: '+00:00',
    pool: { min: 0, max: settings.poolSize ?? 10, idleTimeoutMillis: 60_000 },
    // An outage must fail fast (the API answers 503 within seconds, BC-17) and dead
    // connections must not be handed out again after the server comes back.
    driverOptions: {
      connectTimeout: settings.connectTimeoutMs ?? 3000,
      enableKeepAlive: true,
      keepAliveInitialDelay: 10_000,
    },
    entities: [],
    discovery: { warnWhenNoEntities: false },
    extensions: [Migrator],
    migrations: { migrationsList, transactional: false, snapshot: false, silent: true },
    debug: false,
    allowGlobalContext: true,
  });
}

/** Brings the schema up to date; safe to run at every start and from several schedulers. */
export async function migrateDatabase(orm: MikroORM): Promise<string[]> {
  const applied = await orm.migrator.up();
  return applied.map((migration) => migration.name);
}
