import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type SeaTableStandin, startSeaTableStandin } from '@pipeline/seatable-standin';
import { createTestDatabase, type TestDatabase } from '../support/mariadb.ts';
import { freePort, type NatsServer, startNatsServer } from '../support/nats.ts';
import { baseUuid, testRunnerImage } from '../support/pipeline.ts';

/**
 * The scheduler and starter images, built from deploy/*.Dockerfile and run (issue #8). No
 * registry is reachable here for `node:24-slim`, so the images are built on a stand-in for
 * it: the Debian base of the offline runner build with this Node and npm, and a `node` user
 * (uid 1000) as in the official image. Everything after `FROM` is the shipped Dockerfile:
 * the dependencies come from the npm registry with the lockfile, the health check is the
 * image's own. The containers share the host's network to reach the test's NATS, database
 * and SeaTable stand-in, and one run goes through them end to end.
 */
const run = promisify(execFile);
const repoRoot = join(import.meta.dirname, '..', '..');
const debianBase = 'seatable-pipeline-debian-base:bookworm';
const testLabel = 'org.seatable.pipeline.test';
const labelValue = `images-${randomBytes(4).toString('hex')}`;
const version = `9.8.7-test.${labelValue.slice(-8)}`;
const tags = {
  node: `seatable-pipeline-test-node:${labelValue}`,
  scheduler: `seatable-pipeline-scheduler:${labelValue}`,
  starter: `seatable-pipeline-starter:${labelValue}`,
};

async function docker(args: string[], env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await run('docker', args, {
    env: { ...process.env, ...env },
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout.trim();
}

const skip = await docker(['image', 'inspect', debianBase]).then(
  () => false,
  () => `${debianBase} is missing (the offline runner build makes it)`,
);

let workDir: string | undefined;
let nats: NatsServer | undefined;
let db: TestDatabase | undefined;
let standin: SeaTableStandin | undefined;
const containers: string[] = [];
const token = randomBytes(16).toString('hex');
const metricsToken = randomBytes(16).toString('hex');
const prefix = `img${labelValue.slice(-8)}`;
let schedulerUrl = '';
let starterUrl = '';

/** The stand-in for node:24-slim: Debian, Node and npm in /usr/local, the `node` user. */
async function buildNodeBase(dir: string): Promise<void> {
  await copyFile(process.execPath, join(dir, 'node'));
  await run('npm', ['pack', 'npm@11', '--silent', '--pack-destination', dir], { cwd: dir });
  const tarball = (await readdir(dir)).find((file) => /^npm-.*\.tgz$/.test(file));
  assert.ok(tarball, 'npm pack wrote the npm tarball');
  await rename(join(dir, tarball), join(dir, 'npm.tgz'));
  // This machine's certificate authorities, for a network whose TLS is inspected.
  const systemCas = '/etc/ssl/certs/ca-certificates.crt';
  const hasCas = await stat(systemCas).then(
    () => true,
    () => false,
  );
  if (hasCas) await copyFile(systemCas, join(dir, 'ca-certificates.crt'));
  await writeFile(
    join(dir, 'Dockerfile'),
    [
      `FROM ${debianBase}`,
      'COPY node /usr/local/bin/node',
      'ADD npm.tgz /usr/local/lib/node_modules/',
      'RUN mv /usr/local/lib/node_modules/package /usr/local/lib/node_modules/npm \\',
      ' && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\',
      ' && groupadd --gid 1000 node \\',
      ' && useradd --uid 1000 --gid node --create-home --shell /bin/sh node',
      ...(hasCas
        ? [
            'COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt',
            'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt',
          ]
        : []),
      '',
    ].join('\n'),
  );
  await buildImage(dir, join(dir, 'Dockerfile'), tags.node, {});
}

async function buildImage(
  context: string,
  dockerfile: string,
  tag: string,
  args: Record<string, string>,
): Promise<void> {
  await docker(
    [
      'build',
      '--quiet',
      // A failed step leaves no container behind.
      '--force-rm',
      '--label',
      `${testLabel}=${labelValue}`,
      '-f',
      dockerfile,
      '-t',
      tag,
      ...Object.entries(args).flatMap(([name, value]) => ['--build-arg', `${name}=${value}`]),
      context,
    ],
    // The classic builder: BuildKit would fetch the docker/dockerfile frontend from a registry.
    { DOCKER_BUILDKIT: '0' },
  );
}

async function startContainer(image: string, options: string[], env: Record<string, string>) {
  const id = await docker([
    'run',
    '--detach',
    '--network',
    'host',
    '--label',
    `${testLabel}=${labelValue}`,
    // The image's own check, asked every second instead of every 15 or 30.
    '--health-interval',
    '1s',
    ...options,
    ...Object.entries(env).flatMap(([name, value]) => ['--env', `${name}=${value}`]),
    image,
  ]);
  containers.push(id);
  return id;
}

async function health(container: string): Promise<{ status: string; log: string }> {
  const state = JSON.parse(await docker(['inspect', '--format', '{{json .State}}', container])) as {
    Running: boolean;
    Health?: { Status: string; Log?: { Output: string }[] };
  };
  const log = state.Health?.Log?.at(-1)?.Output.trim() ?? '';
  return { status: state.Running ? (state.Health?.Status ?? 'none') : 'exited', log };
}

/**
 * Waits until Docker reports `wanted` and the last probe's line matches `line`, for up to
 * three minutes (a busy machine starts slowly); says why when it does not. A probe that timed out on a busy machine is not
 * the line a test waits for, so it waits on.
 */
async function untilHealth(
  container: string,
  wanted: 'healthy' | 'unhealthy',
  line: RegExp,
): Promise<void> {
  const deadline = Date.now() + 180_000;
  let last = await health(container);
  const reached = () => last.status === wanted && line.test(last.log);
  while (!reached() && last.status !== 'exited' && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    last = await health(container);
  }
  if (!reached()) {
    const logs = await run('docker', ['logs', '--tail', '30', container]).then(
      ({ stdout, stderr }) => `${stdout}${stderr}`,
      () => '',
    );
    assert.fail(`container is ${last.status}, not ${wanted}; probe: ${last.log}; logs: ${logs}`);
  }
}

before(
  async () => {
    if (skip) return;
    workDir = await mkdtemp(join(tmpdir(), 'pipeline-images-'));
    await buildNodeBase(workDir);
    const args = { NODE_IMAGE: tags.node, VERSION: version };
    await buildImage(repoRoot, join(repoRoot, 'deploy/scheduler.Dockerfile'), tags.scheduler, args);
    await buildImage(repoRoot, join(repoRoot, 'deploy/starter.Dockerfile'), tags.starter, args);
    nats = await startNatsServer();
    db = await createTestDatabase('images');
    standin = await startSeaTableStandin({ secret: token });
  },
  { timeout: 1_200_000 },
);

after(async () => {
  // Stopped first: a starter that gets its SIGTERM removes its warm pool's containers.
  for (const container of containers) {
    await docker(['stop', '--time', '20', container]).catch(() => {});
    await docker(['rm', '--force', container]).catch(() => {});
  }
  // And whatever its sandboxes left should it not have (the shared engine is not ours).
  const sandboxes = await docker([
    'ps',
    '--all',
    '--quiet',
    '--filter',
    `label=org.seatable.pipeline.starter-id=images-${labelValue.slice(-8)}`,
  ])
    .then((ids) => ids.split('\n').filter((id) => id !== ''))
    .catch(() => []);
  for (const id of sandboxes) await docker(['rm', '--force', id]).catch(() => {});
  for (const tag of [tags.starter, tags.scheduler, tags.node]) {
    await docker(['image', 'rm', '--force', tag]).catch(() => {});
  }
  // Intermediate images of the builds carry the label too.
  const leftovers = await docker([
    'images',
    '--quiet',
    '--filter',
    `label=${testLabel}=${labelValue}`,
  ])
    .then((ids) => ids.split('\n').filter((id) => id !== ''))
    .catch(() => []);
  for (const id of leftovers) await docker(['image', 'rm', '--force', id]).catch(() => {});
  await standin?.stop();
  await db?.drop();
  await nats?.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe('the scheduler and starter images', { skip }, () => {
  test('carry their version, run as node and check their own readiness', async () => {
    for (const component of ['scheduler', 'starter'] as const) {
      const config = JSON.parse(
        await docker(['image', 'inspect', '--format', '{{json .Config}}', tags[component]]),
      ) as {
        User: string;
        Labels: Record<string, string>;
        Env: string[];
        Healthcheck: { Test: string[] };
      };
      assert.equal(config.User, 'node');
      assert.equal(config.Labels['org.opencontainers.image.version'], version);
      assert.ok(config.Env.includes(`PIPELINE_VERSION=${version}`));
      assert.deepEqual(config.Healthcheck.Test, [
        'CMD',
        'node',
        `packages/${component}/src/metrics/healthProbe.ts`,
      ]);
    }
  });

  test('the scheduler container turns healthy and says its version', async () => {
    assert.ok(nats && db && standin);
    const port = await freePort();
    const container = await startContainer(tags.scheduler, [], {
      PYTHON_SCHEDULER_AUTH_TOKEN: token,
      SEATABLE_SERVER_URL: standin.url,
      NATS_URL: nats.url,
      PIPELINE_SUBJECT_PREFIX: prefix,
      DB_HOST: db.host,
      DB_PORT: String(db.port),
      DB_USER: db.user,
      DB_PASSWD: db.password,
      DATABASE_NAME: db.name,
      SCHEDULER_HOST: '127.0.0.1',
      SCHEDULER_PORT: String(port),
      PYTHON_PROCESS_TIMEOUT: '30',
      LOG_LEVEL: 'warn',
    });
    await untilHealth(container, 'healthy', /^200 \{"status":"ready"/);
    schedulerUrl = `http://127.0.0.1:${port}`;

    const healthz = await fetch(`${schedulerUrl}/healthz`);
    assert.deepEqual(await healthz.json(), { status: 'ok', version });
    const metrics = await fetch(`${schedulerUrl}/metrics`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.match(
      await metrics.text(),
      new RegExp(`^pipeline_build_info\\{component="scheduler",version="${version}",`, 'm'),
    );
  });

  test('the starter container turns healthy and runs a script submitted to the scheduler', async () => {
    assert.ok(nats && standin && schedulerUrl, 'the scheduler container runs');
    const port = await freePort();
    const socketGroup = String((await stat('/var/run/docker.sock')).gid);
    const starterId = `images-${labelValue.slice(-8)}`;
    const container = await startContainer(
      tags.starter,
      ['--volume', '/var/run/docker.sock:/var/run/docker.sock', '--group-add', socketGroup],
      {
        STARTER_ID: starterId,
        NATS_URL: nats.url,
        PIPELINE_SUBJECT_PREFIX: prefix,
        STARTER_HTTP_HOST: '127.0.0.1',
        PYTHON_STARTER_METRICS_PORT: String(port),
        PIPELINE_METRICS_TOKEN: metricsToken,
        PYTHON_RUNNER_IMAGE: testRunnerImage,
        PYTHON_RUNNER_CONTAINER_MEMORY: '256m',
        PYTHON_STARTER_THREAD_COUNT: '2',
        // The runner network's firewall would be set up in the host's own iptables (the
        // container shares its network and would get NET_ADMIN): not on a shared test host.
        PYTHON_RUNNER_NETWORK_ISOLATION: 'off',
        LOG_LEVEL: 'warn',
      },
    );
    await untilHealth(container, 'healthy', /^200 .*"heartbeat":\{"status":"ok"\}/);
    starterUrl = `http://127.0.0.1:${port}`;
    assert.deepEqual(await (await fetch(`${starterUrl}/healthz`)).json(), {
      status: 'ok',
      version,
    });

    const scriptName = 'from-the-images.py';
    standin.setScript({
      dtableUuid: baseUuid,
      scriptName,
      source: 'print("hello from the images")',
    });
    const submitted = await fetch(`${schedulerUrl}/run-script/`, {
      method: 'POST',
      headers: { authorization: `Token ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        dtable_uuid: baseUuid,
        script_name: scriptName,
        context_data: null,
        owner: 'images@example.invalid',
        org_id: -1,
        scripts_running_limit: -1,
        operate_from: 'manualy',
      }),
    });
    assert.equal(submitted.status, 200);
    const { script_id: runId } = (await submitted.json()) as { script_id: number };
    const query = `dtable_uuid=${baseUuid}&script_name=${scriptName}`;
    const deadline = Date.now() + 60_000;
    let view: { state: string; success: boolean | null; output: string | null } | undefined;
    while (Date.now() < deadline && view?.state !== 'finished') {
      await new Promise((resolve) => setTimeout(resolve, 250));
      const polled = await fetch(`${schedulerUrl}/run-script/${runId}/?${query}`, {
        headers: { authorization: `Token ${token}` },
      });
      if (polled.status === 200) view = ((await polled.json()) as { script: typeof view }).script;
    }
    assert.equal(view?.state, 'finished', JSON.stringify(view));
    assert.equal(view?.success, true);
    assert.equal(view?.output, 'hello from the images\n');

    const fleet = await fetch(`${schedulerUrl}/admin/fleet/`, {
      headers: { authorization: `Token ${token}` },
    });
    assert.match(await fleet.text(), new RegExp(`"${starterId}"`));
  });

  test('both turn unhealthy when NATS goes away', async () => {
    assert.ok(nats && containers.length === 2, 'both containers run');
    await nats.stop();
    for (const container of containers) {
      await untilHealth(container, 'unhealthy', /^503 .*"nats":\{"status":"failed"/);
    }
  });
});
