import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { RunLifecycleEvent } from '@pipeline/events';
import { containerCreateOptions, loadSandboxProfile, RUN_ID_LABEL } from '@pipeline/runner';
import type Docker from 'dockerode';
import { pino } from 'pino';
import { RunExecution } from '../src/execution/runExecution.ts';
import { DockerSandbox } from '../src/sandbox/dockerSandbox.ts';
import type { OutputAttachment } from '../src/sandbox/outputAttach.ts';
import { prepareSandbox, SandboxCreateError } from '../src/sandbox/preparedSandbox.ts';
import { RemovalRetry } from '../src/sandbox/removalRetry.ts';
import {
  type ListedContainer,
  type SandboxContainer,
  SandboxError,
  type SandboxExit,
  type SandboxRuntime,
} from '../src/sandbox/sandboxRuntime.ts';
import { docker } from './support/starterHarness.ts';

// A removal the engine refuses (issue #4): the real engine, behind a sandbox that turns the
// first removals of each container into the engine's refusal, as a busy mount does.

const log = pino({ level: 'silent' });
const starterId = `removal-retry-${process.pid}`;
const loaded = loadSandboxProfile({
  PYTHON_RUNNER_IMAGE: process.env.PYTHON_RUNNER_IMAGE ?? 'seatable-pipeline-runner:offline',
  PYTHON_RUNNER_NETWORK: 'none',
});
assert.ok(loaded.ok);
const profile = loaded.profile;

/** The real engine, except that the first `refusals` removals of a container fail. */
class RefusingSandbox implements SandboxRuntime {
  readonly attempts = new Map<string, number>();
  private readonly real: DockerSandbox;
  private readonly refusals: number;

  constructor(refusals: number) {
    this.real = new DockerSandbox(docker, log, RUN_ID_LABEL, { path: '/var/run/docker.sock' });
    this.refusals = refusals;
  }

  async remove(container: SandboxContainer): Promise<void> {
    const attempt = (this.attempts.get(container.id) ?? 0) + 1;
    this.attempts.set(container.id, attempt);
    if (attempt <= this.refusals) {
      throw new SandboxError(
        'remove',
        { runId: container.runId, containerId: container.id },
        {
          cause: new Error(
            'driver "overlay2" failed to remove root filesystem: device or resource busy',
          ),
          statusCode: 500,
        },
      );
    }
    await this.real.remove(container);
  }
  imageExists(image: string): Promise<boolean> {
    return this.real.imageExists(image);
  }
  ensureNetwork(options: Docker.NetworkCreateOptions): Promise<boolean> {
    return this.real.ensureNetwork(options);
  }
  create(runId: number, options: Docker.ContainerCreateOptions): Promise<SandboxContainer> {
    return this.real.create(runId, options);
  }
  attachOutput(
    container: SandboxContainer,
    sink: (bytes: Uint8Array, length: number) => boolean,
  ): Promise<OutputAttachment> {
    return this.real.attachOutput(container, sink);
  }
  attachInput(container: SandboxContainer): Promise<Writable> {
    return this.real.attachInput(container);
  }
  start(container: SandboxContainer): Promise<void> {
    return this.real.start(container);
  }
  wait(container: SandboxContainer): Promise<number> {
    return this.real.wait(container);
  }
  stop(container: SandboxContainer, graceSeconds: number): Promise<void> {
    return this.real.stop(container, graceSeconds);
  }
  inspectExit(container: SandboxContainer): Promise<SandboxExit> {
    return this.real.inspectExit(container);
  }
  listByLabels(labels: Record<string, string>): Promise<ListedContainer[]> {
    return this.real.listByLabels(labels);
  }
}

async function containerExists(id: string): Promise<boolean> {
  try {
    await docker.getContainer(id).inspect();
    return true;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return false;
    throw error;
  }
}

async function gone(id: string, withinMs: number): Promise<boolean> {
  const until = Date.now() + withinMs;
  while (Date.now() < until) {
    if (!(await containerExists(id))) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return !(await containerExists(id));
}

let server: Server;
let scriptUrl = '';

before(async () => {
  server = createServer((_request, response) => response.end('print("kept going")\n'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  scriptUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/t.py`;
});

after(async () => {
  await new Promise((resolve) => server.close(resolve));
  const left = await docker.listContainers({
    all: true,
    filters: { label: [`org.seatable.pipeline.starter-id=${starterId}`] },
  });
  for (const container of left) await docker.getContainer(container.Id).remove({ force: true });
});

describe('a container removal the engine refuses', () => {
  test('is tried again with a back-off until the container is gone', async () => {
    const sandbox = new RefusingSandbox(3);
    const container = await sandbox.create(
      1,
      containerCreateOptions(profile, { runId: 1, starterId }),
    );
    const removals = new RemovalRetry(sandbox, { firstDelayMs: 50, maxDelayMs: 400 });

    removals.retry(container, new Error('refused'), log);
    assert.equal(removals.pending, 1);

    assert.ok(await gone(container.id, 10_000), 'the container was removed');
    assert.equal(sandbox.attempts.get(container.id), 4);
    assert.equal(removals.pending, 0);
  });

  test('does not hold up the result, and the run leaves no container behind', async () => {
    const sandbox = new RefusingSandbox(1);
    const events: RunLifecycleEvent[] = [];
    const execution = new RunExecution(
      sandbox,
      { publish: async (event) => void events.push(event) },
      {
        starterId,
        containerLabels: {},
        outputLimit: 1000,
        stopGraceSeconds: 1,
        timeZone: null,
        alternativeFileServerRoot: null,
        sandbox: profile,
      },
    );

    await execution.execute(
      {
        runId: 2,
        contextData: null,
        grant: {
          decision: 'run',
          scriptUrl,
          apiToken: 't',
          dtableWebUrl: 'http://127.0.0.1:1/',
          timeoutSeconds: 20,
        },
      },
      log,
    );

    const finished = events.find((event) => event.type === 'RunFinished');
    assert.ok(finished?.type === 'RunFinished');
    assert.equal(finished.data.output, 'kept going\n');
    assert.equal(finished.data.success, true);
    const started = events.find((event) => event.type === 'RunStarted');
    assert.ok(started?.type === 'RunStarted');
    const containerId = started.data.containerId;
    assert.equal(execution.removals.pending, 1, 'the refused removal is being retried');
    assert.ok(await gone(containerId, 15_000), 'the retry removed the container');
    assert.equal(sandbox.attempts.get(containerId), 2);
  });

  test('stops retrying at shutdown, leaving the container to the next start', async () => {
    const sandbox = new RefusingSandbox(1_000);
    const container = await sandbox.create(
      3,
      containerCreateOptions(profile, { runId: 3, starterId }),
    );
    const removals = new RemovalRetry(sandbox, { firstDelayMs: 20, maxDelayMs: 50 });
    removals.retry(container, new Error('refused'), log);

    await removals.close(300);

    assert.equal(removals.pending, 0);
    const attemptsAtClose = sandbox.attempts.get(container.id) ?? 0;
    assert.ok(attemptsAtClose > 1, `${attemptsAtClose} attempts`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(sandbox.attempts.get(container.id), attemptsAtClose, 'no attempt after close');
    assert.equal(await containerExists(container.id), true);
  });
});

/** The real engine makes the container, but its answer never reaches the starter. */
class UnansweredCreateSandbox extends RefusingSandbox {
  answer: 'none' | 'refused' = 'none';

  constructor() {
    super(0);
  }

  override async create(
    runId: number,
    options: Docker.ContainerCreateOptions,
  ): Promise<SandboxContainer> {
    if (this.answer === 'refused') {
      throw new SandboxError(
        'create',
        { runId },
        { cause: new Error('Conflict: the name is already in use'), statusCode: 409 },
      );
    }
    await super.create(runId, options);
    throw new SandboxError(
      'create',
      { runId },
      { cause: new Error('connect ECONNREFUSED /var/run/docker.sock'), statusCode: null },
    );
  }
}

describe('a container create whose answer never came', () => {
  test('leaves no container: it is found by its create id and removed', async () => {
    const sandbox = new UnansweredCreateSandbox();
    const removals = new RemovalRetry(sandbox, { firstDelayMs: 50, maxDelayMs: 400 });
    const options = containerCreateOptions(profile, { runId: 4, starterId });

    await assert.rejects(prepareSandbox(sandbox, 4, options, false, log, removals), (error) => {
      assert.ok(error instanceof SandboxCreateError);
      return true;
    });
    const made = await docker.listContainers({
      all: true,
      filters: { label: [`org.seatable.pipeline.starter-id=${starterId}`, `${RUN_ID_LABEL}=4`] },
    });
    assert.equal(made.length, 1, 'the engine made the container');
    assert.equal(removals.pending, 1, 'the starter looks for it');

    assert.ok(await gone(made[0]?.Id ?? '', 10_000), 'the container was removed');
    assert.equal(removals.pending, 0);
  });

  test('is not looked for when the engine refused the create', async () => {
    const sandbox = new UnansweredCreateSandbox();
    sandbox.answer = 'refused';
    const removals = new RemovalRetry(sandbox, { firstDelayMs: 50, maxDelayMs: 400 });
    const options = containerCreateOptions(profile, { runId: 5, starterId });

    await assert.rejects(prepareSandbox(sandbox, 5, options, false, log, removals));

    assert.equal(removals.pending, 0);
  });
});
