import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as connectSocket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, type NatsServer } from '../../../../test/support/nats.ts';

/**
 * A nats-server of this test file's own, on loopback, with a temporary JetStream store.
 *
 * FIXME(#2): test/support/nats.ts passes `--max_payload 8MB`, a flag nats-server 2.9.10 does
 * not have, so its startNatsServer() fails on this machine. This launcher is the same but
 * puts the setting in a configuration file, which 2.9 reads. Switch back once it is fixed.
 */
export async function startTestNatsServer(): Promise<NatsServer> {
  const port = await freePort();
  const storeDir = await mkdtemp(join(tmpdir(), 'pipeline-starter-nats-'));
  const configFile = join(storeDir, 'nats.conf');
  await writeFile(
    configFile,
    `listen: 127.0.0.1:${port}\nmax_payload: 8MB\njetstream { store_dir: "${storeDir}/js" }\n`,
  );
  let child = await launch(port, configFile);
  return {
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
      child = await launch(port, configFile);
    },
  };
}

async function launch(port: number, configFile: string): Promise<ChildProcess> {
  const child = spawn(process.env.NATS_SERVER_BIN ?? 'nats-server', ['-c', configFile], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-10_000);
  });
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null) throw new Error(`nats-server exited: ${stderr}`);
    if (await listening(port)) return child;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`nats-server did not listen on ${port}: ${stderr}`);
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectSocket(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
