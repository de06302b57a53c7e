import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface NatsServer {
  url: string;
  port: number;
  storeDir: string;
  /** Stops the server; `keepStore` leaves the JetStream directory for a restart. */
  stop(options?: { keepStore?: boolean }): Promise<void>;
  /** Stops and starts the server again on the same port and store. */
  restart(downMs?: number): Promise<void>;
}

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

const natsBinary = process.env.NATS_SERVER_BIN ?? 'nats-server';

/**
 * A nats-server of the test's own, on loopback (or `listen`: an address in a network
 * namespace of the test's own), with a temporary JetStream store.
 */
export async function startNatsServer(listen = '127.0.0.1'): Promise<NatsServer> {
  const port = await freePort();
  const storeDir = await mkdtemp(join(tmpdir(), 'pipeline-nats-'));
  let child = await launch(port, storeDir, listen);
  const server: NatsServer = {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    async stop(options) {
      await terminate(child);
      if (!options?.keepStore) await rm(storeDir, { recursive: true, force: true });
    },
    async restart(downMs = 0) {
      await terminate(child);
      if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
      child = await launch(port, storeDir, listen);
    },
  };
  return server;
}

async function launch(port: number, storeDir: string, listen: string): Promise<ChildProcess> {
  // The server's defaults (1 MB messages among them), as on an administrator's plain
  // install; the config file is where a test would put anything the flags cannot say.
  const configFile = join(storeDir, 'test-server.conf');
  await writeFile(configFile, '# test server: defaults\n');
  const child = spawn(
    natsBinary,
    ['-c', configFile, '-a', listen, '-p', String(port), '-js', '-sd', storeDir],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (stderr.length > 20_000) stderr = stderr.slice(-10_000);
  });
  await waitForPort(
    port,
    () => child.exitCode !== null,
    () => stderr,
  );
  return child;
}

async function waitForPort(
  port: number,
  exited: () => boolean,
  stderr: () => string,
): Promise<void> {
  const { connect } = await import('node:net');
  for (let attempt = 0; attempt < 200; attempt++) {
    if (exited()) throw new Error(`nats-server exited: ${stderr()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`nats-server did not listen on ${port}: ${stderr()}`);
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
