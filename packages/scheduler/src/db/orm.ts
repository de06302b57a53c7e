import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
// The SQLite driver is MikroORM's generic one from @mikro-orm/sql, which @mikro-orm/mariadb
// re-exports (the same 7.2.1 copy): no further package, nothing to compile.
import { MikroORM, NodeSqliteDialect, SqliteDriver, SqlMikroORM } from '@mikro-orm/mariadb';
import { Migrator } from '@mikro-orm/migrations';
import { migrationsList, sqliteMigrationsList } from './migrations/index.ts';

export interface DatabaseSettings {
  /**
   * A SQLite file instead of MariaDB, for a single scheduler's first run without a database
   * server; the other settings are then ignored. The file and its folder are created.
   */
  sqliteFile?: string;
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
  if (settings.sqliteFile !== undefined) return await openSqliteFile(settings.sqliteFile);
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

/**
 * The same read model in one SQLite file, through `node:sqlite` (built into Node, nothing to
 * compile). Its one connection runs the transactions one after the other, which is what
 * makes `FOR UPDATE` unnecessary there (see `SqlDialect`). WAL lets the `pipeline` command
 * read the file while the scheduler writes it; a writer waits up to 5 s for the other.
 *
 * The ORM is typed as MariaDB's: the callers use only what both share (the connection's
 * `execute` and `transactional`, the migrator, `close`), and `sqlOf` picks the dialect.
 */
async function openSqliteFile(file: string): Promise<MikroORM> {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const orm = await SqlMikroORM.init({
    driver: SqliteDriver,
    dbName: file,
    driverOptions: new NodeSqliteDialect(file),
    entities: [],
    discovery: { warnWhenNoEntities: false },
    extensions: [Migrator],
    migrations: {
      migrationsList: sqliteMigrationsList,
      transactional: false,
      snapshot: false,
      silent: true,
    },
    debug: false,
    allowGlobalContext: true,
  });
  const connection = orm.em.getConnection();
  await connection.execute('PRAGMA busy_timeout = 5000', [], 'all');
  await connection.execute('PRAGMA journal_mode = WAL', [], 'all');
  // No fsync at each commit (WAL still keeps the file consistent): what a power cut loses is
  // the last projected batches with their checkpoint, which the projector applies again.
  await connection.execute('PRAGMA synchronous = NORMAL', [], 'all');
  return orm as unknown as MikroORM;
}

/** Brings the schema up to date; safe to run at every start and from several schedulers. */
export async function migrateDatabase(orm: MikroORM): Promise<string[]> {
  const applied = await orm.migrator.up();
  return applied.map((migration) => migration.name);
}
