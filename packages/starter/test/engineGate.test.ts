import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { RUN_ID_LABEL } from '@pipeline/runner';
import Docker from 'dockerode';
import { pino } from 'pino';
import { DockerSandbox } from '../src/sandbox/dockerSandbox.ts';
import { EngineGate } from '../src/sandbox/engineGate.ts';

// An engine that is away (nothing listens on its socket) and then back (an HTTP server on
// that socket answering the Engine API's ping): what the starter does between the two.

const log = pino({ level: 'silent' });
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function awayEngine() {
  const directory = await mkdtemp(join(tmpdir(), 'engine-gate-'));
  cleanups.push(() => rm(directory, { recursive: true, force: true }));
  const socketPath = join(directory, 'docker.sock');
  const docker = new Docker({ socketPath });
  const sandbox = new DockerSandbox(docker, log, RUN_ID_LABEL, null);
  const gate = new EngineGate(() => docker.ping(), log, { firstDelayMs: 10, maxDelayMs: 40 });
  sandbox.onNoAnswer = (operation, error) => gate.noAnswer(operation, error);
  const comeBack = async (): Promise<Server> => {
    const server = createServer((request, response) => {
      if (request.url?.endsWith('/_ping')) response.end('OK');
      else response.writeHead(404, { 'Content-Type': 'application/json' }).end('{"message":"no"}');
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
    return server;
  };
  return { sandbox, gate, comeBack };
}

const pending = Symbol('pending');
const within = <T>(work: Promise<T>, ms: number) =>
  Promise.race([work, new Promise<typeof pending>((resolve) => setTimeout(resolve, ms, pending))]);

describe('a Docker engine that stops answering', () => {
  test('holds the starter back from new runs until a ping answers again', async () => {
    const { sandbox, gate, comeBack } = await awayEngine();
    const stop = new AbortController();

    await assert.rejects(sandbox.create(1, { Image: 'runner' }), /docker create failed/);
    assert.equal(gate.answering, false);
    const ready = gate.whenAnswering(stop.signal);
    assert.equal(await within(ready, 200), pending, 'no run is taken while the engine is away');

    await comeBack();
    assert.equal(await within(ready, 5_000), undefined);
    assert.equal(gate.answering, true);
  });

  test('an engine that answers, even with an error, keeps the starter taking runs', async () => {
    const { sandbox, gate, comeBack } = await awayEngine();
    await comeBack();

    assert.equal(await sandbox.imageExists('no-such-image'), false);
    await assert.rejects(sandbox.create(2, { Image: 'runner' }), /docker create failed/);

    assert.equal(gate.answering, true);
    assert.equal(await within(gate.whenAnswering(new AbortController().signal), 50), undefined);
  });

  test('a stopping starter stops waiting for the engine', async () => {
    const { sandbox, gate } = await awayEngine();
    await assert.rejects(sandbox.create(3, { Image: 'runner' }));
    const stop = new AbortController();
    const ready = gate.whenAnswering(stop.signal);

    stop.abort();

    assert.equal(await within(ready, 1_000), undefined);
    assert.equal(gate.answering, false);
  });
});
