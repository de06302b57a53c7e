import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough, type Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { outputTexts, type RunLifecycleEvent } from '@pipeline/events';
import { loadSandboxProfile } from '@pipeline/runner';
import { pino } from 'pino';
import { RunExecution } from '../src/execution/runExecution.ts';
import type { OutputAttachment } from '../src/sandbox/outputAttach.ts';
import type {
  ListedContainer,
  SandboxContainer,
  SandboxExit,
  SandboxRuntime,
} from '../src/sandbox/sandboxRuntime.ts';

type Failing = 'create' | 'start' | 'wait' | 'remove';

/** A sandbox that records its calls and fails the one it is told to. */
class FakeSandbox implements SandboxRuntime {
  readonly calls: string[] = [];
  private readonly failing: Failing | null;

  constructor(failing: Failing | null) {
    this.failing = failing;
  }

  private step(name: string): void {
    this.calls.push(name);
    if (name === this.failing) throw new Error(`${name} failed`);
  }

  async imageExists(): Promise<boolean> {
    return true;
  }
  async ensureNetwork(): Promise<boolean> {
    return false;
  }
  async create(runId: number): Promise<SandboxContainer> {
    this.step('create');
    return { id: 'c0ffee', runId };
  }
  async attachOutput(
    _container: SandboxContainer,
    sink: (bytes: Uint8Array, length: number) => boolean,
  ): Promise<OutputAttachment> {
    this.calls.push('attachOutput');
    const frame = Buffer.from([1, 0, 0, 0, 0, 0, 0, 3, 0x68, 0x69, 0x0a]);
    sink(frame, frame.length);
    return { ended: Promise.resolve(), close: () => {} };
  }
  async attachInput(): Promise<Writable> {
    this.calls.push('attachInput');
    return new PassThrough().resume();
  }
  async start(): Promise<void> {
    this.step('start');
  }
  async wait(): Promise<number> {
    this.step('wait');
    return 0;
  }
  async stop(): Promise<void> {
    this.calls.push('stop');
  }
  async inspectExit(): Promise<SandboxExit> {
    this.calls.push('inspect');
    return { exitCode: 0, oomKilled: false, startedAt: null, finishedAt: null };
  }
  async remove(): Promise<void> {
    this.step('remove');
  }
  async listByLabels(): Promise<ListedContainer[]> {
    return [];
  }
}

let server: Server;
let scriptUrl = '';

before(async () => {
  server = createServer((_request, response) => response.end('print("hi")\n'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  scriptUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/t.py`;
});

after(async () => {
  await new Promise((resolve) => server.close(resolve));
});

async function execute(failing: Failing | null, cancel?: AbortSignal) {
  const sandbox = new FakeSandbox(failing);
  const events: RunLifecycleEvent[] = [];
  const profile = loadSandboxProfile({});
  assert.ok(profile.ok);
  const execution = new RunExecution(
    sandbox,
    { publish: async (event) => void events.push(event) },
    {
      starterId: 'starter-1',
      containerLabels: {},
      outputLimit: 100,
      stopGraceSeconds: 0,
      timeZone: null,
      alternativeFileServerRoot: null,
      sandbox: profile.profile,
    },
  );
  await execution.execute(
    {
      runId: 7,
      contextData: null,
      grant: {
        decision: 'run',
        scriptUrl,
        apiToken: 't',
        dtableWebUrl: 'http://s/',
        timeoutSeconds: 5,
      },
      ...(cancel ? { cancel } : {}),
    },
    pino({ level: 'silent' }),
  );
  const finished = events.find((event) => event.type === 'RunFinished');
  assert.ok(finished?.type === 'RunFinished', 'a RunFinished was published');
  return {
    calls: sandbox.calls,
    types: events.map((event) => event.type),
    finished: finished.data,
  };
}

describe('RunExecution', () => {
  test('runs, reports started then finished, and removes the container', async () => {
    const { calls, types, finished } = await execute(null);
    assert.deepEqual(types, ['RunStarted', 'RunFinished']);
    assert.equal(finished.output, 'hi\n');
    assert.equal(finished.success, true);
    assert.equal(calls.at(-1), 'remove');
  });

  test('a container that cannot be created ends the run as Failed, never started', async () => {
    const { calls, types, finished } = await execute('create');
    assert.deepEqual(types, ['RunFinished']);
    assert.equal(finished.output, outputTexts.failed);
    assert.equal(finished.startedAt, null);
    assert.equal(calls.includes('remove'), false);
  });

  test('a container that cannot be started is removed and the run ends as Failed', async () => {
    const { calls, types, finished } = await execute('start');
    assert.deepEqual(types, ['RunFinished']);
    assert.equal(finished.success, false);
    assert.equal(finished.startedAt, null);
    assert.ok(finished.output.endsWith(outputTexts.failed));
    assert.equal(calls.at(-1), 'remove');
  });

  test('losing the engine mid-run still removes the container and reports after RunStarted', async () => {
    const { calls, types, finished } = await execute('wait');
    assert.deepEqual(types, ['RunStarted', 'RunFinished']);
    assert.equal(finished.success, false);
    assert.notEqual(finished.startedAt, null);
    assert.equal(calls.at(-1), 'remove');
  });

  test('a run cancelled after its claim never gets a container and ends cancelled', async () => {
    const { calls, types, finished } = await execute(null, AbortSignal.abort());
    assert.deepEqual(types, ['RunFinished']);
    assert.deepEqual(calls, []);
    assert.equal(finished.cancelled, true);
    assert.equal(finished.success, false);
    assert.equal(finished.returnCode, -1);
    assert.equal(finished.startedAt, null);
    assert.equal(finished.output, outputTexts.cancelled);
  });

  test('a container the engine refuses to remove does not hold back the result', async () => {
    const { types, finished } = await execute('remove');
    assert.deepEqual(types, ['RunStarted', 'RunFinished']);
    assert.equal(finished.success, true);
  });
});
