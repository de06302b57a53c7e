import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { defaultStreamOptions, ensureStream, namingFor, subjects } from '@pipeline/events';
import { freePort } from '../support/nats.ts';

/**
 * The multi-host layout's NATS cluster (docs/multi-host.md, deploy/nats/cluster/): every
 * shipped server configuration passes `nats-server -t`, and the three example servers, moved
 * onto loopback ports of this machine, form a cluster that keeps the log with three replicas
 * and goes on taking writes when one server is gone.
 *
 * Debian's nats-server 2.9 does not know `sync_interval` (2.10 and later); on such a server
 * the test checks that the line is there and then leaves it out.
 */
const run = promisify(execFile);
const repoRoot = join(import.meta.dirname, '..', '..');
const natsDir = join(repoRoot, 'deploy', 'nats');
const natsBinary = process.env.NATS_SERVER_BIN ?? 'nats-server';
const passwords = { NATS_SCHEDULER_PASSWORD: 'scheduler-pw', NATS_STARTER_PASSWORD: 'starter-pw' };
const clusterFiles = ['nats-1.conf', 'nats-2.conf', 'nats-3.conf'];

const serverVersion = await run(natsBinary, ['--version']).then(
  ({ stdout }) => /v(\d+)\.(\d+)/.exec(stdout),
  () => null,
);
const knowsSyncInterval =
  serverVersion !== null &&
  (Number(serverVersion[1]) > 2 ||
    (Number(serverVersion[1]) === 2 && Number(serverVersion[2]) >= 10));
const skip = serverVersion === null ? 'nats-server is not installed' : false;

const workDirs: string[] = [];
const children: ChildProcess[] = [];

after(async () => {
  for (const child of children) await terminate(child);
  for (const dir of workDirs) await rm(dir, { recursive: true, force: true });
});

/** The configuration as this machine's server reads it: `sync_interval` only where known. */
function forThisServer(text: string): string {
  assert.match(text, /^\s*sync_interval:\s*always$/m, 'the shipped file syncs every write');
  return knowsSyncInterval ? text : text.replace(/^\s*sync_interval:.*$/m, '');
}

/** A copy of deploy/nats in a temporary folder, so `include ../accounts.conf` resolves. */
async function copyOfNatsDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pipeline-nats-cluster-'));
  workDirs.push(dir);
  await cp(natsDir, dir, { recursive: true });
  return dir;
}

async function configTest(file: string, env: Record<string, string>) {
  return await run(natsBinary, ['-t', '-c', file], {
    env: { PATH: process.env.PATH ?? '', ...passwords, ...env },
  });
}

/** Replaces `from` (which must be there) in a configuration. */
function replaceOnce(text: string, from: string | RegExp, to: string): string {
  assert.match(text, typeof from === 'string' ? new RegExp(escapeRegExp(from)) : from);
  return text.replace(from, to);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('the shipped NATS configurations', { skip }, () => {
  test('pass nats-server -t, and a broken copy does not', async () => {
    const dir = await copyOfNatsDir();
    const files = ['nats.conf', ...clusterFiles.map((file) => join('cluster', file))];
    for (const file of files) {
      const path = join(dir, file);
      await writeFile(path, forThisServer(await readFile(path, 'utf8')));
      const { stdout, stderr } = await configTest(path, { NATS_SERVER_NAME: 'nats-1' });
      assert.match(`${stdout}${stderr}`, /is valid/, file);
    }
    // The check reads the file: an unknown field in the same file fails it.
    const broken = join(dir, 'cluster', 'nats-1.conf');
    await writeFile(broken, `${await readFile(broken, 'utf8')}\njetstream_typo: true\n`);
    await assert.rejects(configTest(broken, {}), /jetstream_typo/);
  });

  test('name three servers of one cluster, each routing to all three', async () => {
    const texts = await Promise.all(
      clusterFiles.map((file) => readFile(join(natsDir, 'cluster', file), 'utf8')),
    );
    const names = texts.map((text) => /^server_name:\s*(\S+)$/m.exec(text)?.[1]);
    assert.deepEqual(names, ['nats-1', 'nats-2', 'nats-3']);
    const routes = texts.map((text) =>
      [...text.matchAll(/nats-route:\/\/(\S+)/g)].map((m) => m[1]),
    );
    for (const list of routes) {
      assert.equal(list.length, 3);
      assert.deepEqual(list, routes[0]);
    }
    for (const text of texts) {
      assert.match(text, /cluster\s*\{[^}]*name:\s*pipeline/);
      assert.match(text, /^include \.\.\/accounts\.conf$/m);
    }
  });
});

describe('the example cluster on this machine', { skip }, () => {
  test('keeps the log with three replicas and takes writes with one server down', async () => {
    const dir = await copyOfNatsDir();
    const clientPorts = [await freePort(), await freePort(), await freePort()];
    const routePorts = [await freePort(), await freePort(), await freePort()];
    const servers: ChildProcess[] = [];
    for (const [index, file] of clusterFiles.entries()) {
      const path = join(dir, 'cluster', file);
      const storeDir = join(dir, `store-${index + 1}`);
      await mkdir(storeDir);
      let text = forThisServer(await readFile(path, 'utf8'));
      text = replaceOnce(text, 'listen: 0.0.0.0:4222', `listen: 127.0.0.1:${clientPorts[index]}`);
      text = replaceOnce(text, /^http: .*$/m, '');
      text = replaceOnce(text, 'listen: 0.0.0.0:6222', `listen: 127.0.0.1:${routePorts[index]}`);
      text = replaceOnce(text, /store_dir: \S+/, `store_dir: ${JSON.stringify(storeDir)}`);
      for (const [other, port] of routePorts.entries()) {
        text = replaceOnce(
          text,
          `nats-route://nats-${other + 1}.pipeline.example.internal:6222`,
          `nats-route://127.0.0.1:${port}`,
        );
      }
      await writeFile(path, text);
      const child = spawn(natsBinary, ['-c', path], {
        env: { PATH: process.env.PATH ?? '', ...passwords },
        stdio: 'ignore',
      });
      children.push(child);
      servers.push(child);
    }

    const nc = await connect({
      servers: clientPorts.map((port) => `nats://127.0.0.1:${port}`),
      user: 'scheduler',
      pass: passwords.NATS_SCHEDULER_PASSWORD,
      waitOnFirstConnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 200,
    });
    try {
      const naming = namingFor('pipeline');
      // The cluster elects its meta leader after the routes are up; until then JetStream
      // does not answer.
      const manager = await eventually(() => jetstreamManager(nc));
      await eventually(() =>
        ensureStream(manager, naming, { ...defaultStreamOptions, replicas: 3 }),
      );
      const info = await manager.streams.info(naming.stream);
      assert.equal(info.config.num_replicas, 3);
      assert.equal(info.cluster?.name, 'pipeline');
      assert.equal(info.cluster?.replicas?.length, 2);

      const js = jetstream(nc);
      await eventually(() => js.publish(subjects.requested(naming), '{"probe":1}'));
      const leader = info.cluster?.leader;
      const leaderIndex = clusterFiles.indexOf(`${leader}.conf`);
      assert.ok(leaderIndex >= 0, `leader ${leader}`);
      await terminate(servers[leaderIndex] as ChildProcess);

      // Two of three still form a majority: a new leader is elected and writes go on.
      const ack = await eventually(() => js.publish(subjects.requested(naming), '{"probe":2}'));
      assert.equal(ack.stream, naming.stream);
      const after = await eventually(() => manager.streams.info(naming.stream));
      assert.notEqual(after.cluster?.leader, leader);
      assert.equal(after.state.messages, 2);
    } finally {
      await nc.close();
    }
  });
});

/** Retries `attempt` until it succeeds, for up to 30 s (elections take a few seconds). */
async function eventually<T>(attempt: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
