import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createConnection } from 'mysql2/promise';
import { freePort } from './nats.ts';

const run = promisify(execFile);

/**
 * A mariadbd of the test's own: its own data directory, socket and loopback port, so a test
 * can stop and start it without touching the shared server on 3306. Root has no password.
 */
export interface MariaDbServer {
  host: string;
  port: number;
  user: string;
  password: string;
  /** Stops the server (SIGTERM, as an administrator's restart does); the data stays. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data directory. */
  start(): Promise<void>;
  /** Runs SQL as root in `database` (none by default). */
  query<T = Record<string, unknown>>(
    sql: string,
    values?: unknown[],
    database?: string,
  ): Promise<T[]>;
  /** Stops the server and deletes its data directory. */
  destroy(): Promise<void>;
}

export async function startMariaDbServer(label: string): Promise<MariaDbServer> {
  const directory = await mkdtemp(`/tmp/pl-${label}-mariadb-`);
  const dataDir = join(directory, 'data');
  await run('mariadb-install-db', [
    '--no-defaults',
    `--datadir=${dataDir}`,
    '--auth-root-authentication-method=normal',
    '--skip-test-db',
    '--user=root',
  ]);
  const port = await freePort();
  let child: ChildProcess | undefined;

  const server: MariaDbServer = {
    host: '127.0.0.1',
    port,
    user: 'root',
    password: '',
    async start() {
      if (child && child.exitCode === null && child.signalCode === null) return;
      child = spawn(
        process.env.MARIADBD_BIN ?? '/usr/sbin/mariadbd',
        [
          '--no-defaults',
          `--datadir=${dataDir}`,
          `--port=${port}`,
          '--bind-address=127.0.0.1',
          `--socket=${join(directory, 'mariadbd.sock')}`,
          `--pid-file=${join(directory, 'mariadbd.pid')}`,
          '--user=root',
          '--skip-log-bin',
          '--innodb-buffer-pool-size=64M',
          `--log-error=${join(directory, 'error.log')}`,
        ],
        { stdio: 'ignore' },
      );
      await waitUntilAnswering(port, child);
    },
    async stop() {
      const running = child;
      if (!running || running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise((resolve) => running.once('exit', resolve));
      running.kill('SIGTERM');
      const timer = setTimeout(() => running.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
    async query<T>(sql: string, values: unknown[] = [], database?: string) {
      const connection = await createConnection({
        host: '127.0.0.1',
        port,
        user: 'root',
        password: '',
        charset: 'utf8mb4',
        ...(database ? { database } : {}),
      });
      try {
        const [rows] = await connection.query(sql, values);
        return rows as T[];
      } finally {
        await connection.end();
      }
    },
    async destroy() {
      await server.stop();
      await rm(directory, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

async function waitUntilAnswering(port: number, child: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 300; attempt++) {
    if (child.exitCode !== null) throw new Error(`mariadbd exited with ${child.exitCode}`);
    try {
      const connection = await createConnection({ host: '127.0.0.1', port, user: 'root' });
      await connection.end();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`mariadbd did not answer on ${port}`);
}
