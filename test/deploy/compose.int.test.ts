import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';

// The compose file must stay valid (issue #8): `docker-compose config` resolves it with an
// administrator's .env, and refuses to start without the secrets it needs. What it resolves
// to is then read as data: every long-running service has a health check, the pipeline's
// own images run unprivileged, NATS runs with its users and JetStream.

const run = promisify(execFile);
const repoRoot = join(import.meta.dirname, '..', '..');
const secrets = {
  NATS_SCHEDULER_PASSWORD: 'scheduler-secret',
  NATS_STARTER_PASSWORD: 'starter-secret',
  PYTHON_SCHEDULER_AUTH_TOKEN: 'shared-secret',
  PIPELINE_METRICS_TOKEN: 'metrics-secret',
  SEATABLE_MYSQL_ROOT_PASSWORD: 'db-secret',
  SEATABLE_SERVER_HOSTNAME: 'seatable.example.invalid',
};

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string; args?: Record<string, string> };
  user?: string;
  healthcheck?: { test: string[] | string; disable?: boolean };
  environment?: Record<string, string | null>;
  volumes?: string[];
  command?: string[];
  profiles?: string[];
  depends_on?: Record<string, { condition: string }>;
}

async function composeConfig(env: Record<string, string>, profiles: string[] = []) {
  return await run(
    'docker-compose',
    [
      '--env-file',
      join(repoRoot, '.env.example'),
      '-f',
      join(repoRoot, 'docker-compose.yml'),
      ...profiles.flatMap((profile) => ['--profile', profile]),
      'config',
    ],
    { env: { PATH: process.env.PATH ?? '', ...env }, cwd: repoRoot },
  );
}

let resolved: Promise<Record<string, ComposeService>> | undefined;

/** The services as `config` resolves them with every profile; resolved once, it takes seconds. */
function resolvedServices(): Promise<Record<string, ComposeService>> {
  resolved ??= composeConfig(secrets, ['mariadb', 'build']).then(
    ({ stdout }) => (parse(stdout) as { services: Record<string, ComposeService> }).services,
  );
  return resolved;
}

/** The Dockerfile's last stage: its USER and whether it has a HEALTHCHECK. */
function finalStage(build: NonNullable<ComposeService['build']>): {
  user: string | null;
  healthcheck: boolean;
} {
  const context = isAbsolute(build.context) ? build.context : join(repoRoot, build.context);
  const text = readFileSync(resolve(context, build.dockerfile), 'utf8');
  const stages = text.split(/^FROM /m);
  const last = stages.at(-1) ?? '';
  const users = [...last.matchAll(/^USER\s+(\S+)/gm)].map((match) => match[1] ?? '');
  return { user: users.at(-1) ?? null, healthcheck: /^HEALTHCHECK\s+(?!NONE)/m.test(last) };
}

const available = await run('docker-compose', ['version']).then(
  () => true,
  () => false,
);
// CI installs Debian's docker-compose (.ci/run); a developer machine without it skips.
const skip = !available && process.env.CI !== 'true' ? 'docker-compose is not installed' : false;

describe('docker-compose.yml', { skip }, () => {
  test('resolves with the secrets of an administrator', async () => {
    const services = await resolvedServices();
    for (const name of ['nats-1', 'nats-2', 'nats-3', 'mariadb', 'scheduler', 'starter']) {
      assert.ok(services[name], `service ${name}`);
    }
    assert.equal(services.scheduler?.environment?.PYTHON_SCHEDULER_AUTH_TOKEN, 'shared-secret');
    assert.equal(
      services.scheduler?.environment?.SEATABLE_SERVER_URL,
      'https://seatable.example.invalid',
    );
  });

  for (const missing of [
    'PYTHON_SCHEDULER_AUTH_TOKEN',
    'NATS_STARTER_PASSWORD',
    'PIPELINE_METRICS_TOKEN',
  ]) {
    test(`refuses to resolve without ${missing}`, async () => {
      const { [missing as keyof typeof secrets]: _left, ...rest } = secrets;
      await assert.rejects(composeConfig(rest), new RegExp(missing));
    });
  }

  test('gives every long-running service a health check, in the file or in its image', async () => {
    const services = await resolvedServices();
    for (const [name, service] of Object.entries(services)) {
      if (name === 'runner-image') continue; // builds the runner image, runs nothing
      const fromImage = service.build ? finalStage(service.build).healthcheck : false;
      assert.ok(
        (service.healthcheck && !service.healthcheck.disable) || fromImage,
        `${name} has no health check`,
      );
    }
    // The starter waits for a scheduler that is ready, not only started.
    assert.equal(services.starter?.depends_on?.scheduler?.condition, 'service_healthy');
  });

  test('runs the scheduler, the starter and the runner as unprivileged users', async () => {
    const services = await resolvedServices();
    for (const name of ['scheduler', 'starter', 'runner-image']) {
      const service = services[name];
      assert.ok(service?.build, `${name} is built from this repository`);
      assert.equal(service.user, undefined, `${name} does not override its image's user`);
      const { user } = finalStage(service.build);
      assert.ok(user !== null && !/^(root|0)(:|$)/.test(user), `${name} runs as ${user}`);
    }
  });

  test('runs NATS with JetStream, its users and the shipped configuration', async () => {
    const services = await resolvedServices();
    const config = readFileSync(join(repoRoot, 'deploy/nats/nats.conf'), 'utf8');
    assert.match(config, /^jetstream\s*\{[^}]*sync_interval:\s*always/m);
    assert.match(config, /^include \.\/accounts\.conf$/m);
    const accounts = readFileSync(join(repoRoot, 'deploy/nats/accounts.conf'), 'utf8');
    assert.match(accounts, /password:\s*\$NATS_SCHEDULER_PASSWORD/);
    assert.match(accounts, /password:\s*\$NATS_STARTER_PASSWORD/);
    assert.doesNotMatch(accounts, /no_auth_user/);
    for (const name of ['nats-1', 'nats-2', 'nats-3']) {
      const nats = services[name];
      assert.deepEqual(nats?.command, ['-c', '/etc/nats/nats.conf']);
      assert.equal(nats?.environment?.NATS_STARTER_PASSWORD, 'starter-secret');
    }
    assert.equal(services.scheduler?.environment?.NATS_USER, 'scheduler');
    assert.equal(services.scheduler?.environment?.NATS_PASSWORD, 'scheduler-secret');
    assert.equal(services.starter?.environment?.NATS_USER, 'starter');
    assert.equal(services.starter?.environment?.NATS_PASSWORD, 'starter-secret');
    assert.equal(String(services.scheduler?.environment?.PIPELINE_STREAM_REPLICAS), '3');
  });

  test('gives the starter the Docker socket and the runner image, and builds the images with one version', async () => {
    const services = await resolvedServices();
    assert.ok(
      services.starter?.volumes?.some((volume) =>
        volume.startsWith('/var/run/docker.sock:/var/run/docker.sock'),
      ),
    );
    assert.equal(
      services.starter?.environment?.PYTHON_RUNNER_IMAGE,
      services['runner-image']?.image,
    );
    const version = services.scheduler?.build?.args?.VERSION;
    assert.ok(version);
    assert.equal(services.starter?.build?.args?.VERSION, version);
    assert.equal(services['runner-image']?.build?.args?.RUNNER_VERSION, version);
  });
});

describe('the multi-host compose files', { skip }, () => {
  const hostEnv = {
    ...secrets,
    NATS_NODE: '2',
    DB_HOST: 'mariadb.pipeline.example.internal',
    NATS_URL: 'nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222',
    STARTER_ID: 'docker-host-7',
  };

  async function resolve(file: string, env: Record<string, string> = hostEnv) {
    const { stdout } = await run(
      'docker-compose',
      ['-f', join(repoRoot, 'deploy', 'multi-host', file), 'config'],
      { env: { PATH: process.env.PATH ?? '', ...env }, cwd: repoRoot },
    );
    return (parse(stdout) as { services: Record<string, ComposeService> }).services;
  }

  test('run one NATS server of the example cluster, chosen by NATS_NODE', async () => {
    const { nats } = await resolve('nats.compose.yml');
    assert.deepEqual(nats?.command, ['-c', '/etc/nats/cluster/nats-2.conf']);
    assert.ok(nats?.healthcheck);
    const { NATS_NODE: _node, ...withoutNode } = hostEnv;
    await assert.rejects(resolve('nats.compose.yml', withoutNode), /NATS_NODE/);
  });

  test('run schedulers on the cluster with three replicas, and starters with their own id', async () => {
    const { scheduler } = await resolve('scheduler.compose.yml');
    assert.equal(String(scheduler?.environment?.PIPELINE_STREAM_REPLICAS), '3');
    assert.equal(scheduler?.environment?.NATS_URL, hostEnv.NATS_URL);
    const { starter } = await resolve('starter.compose.yml');
    assert.equal(starter?.environment?.STARTER_ID, 'docker-host-7');
    assert.equal(starter?.environment?.NATS_USER, 'starter');
    const { STARTER_ID: _id, ...withoutId } = hostEnv;
    await assert.rejects(resolve('starter.compose.yml', withoutId), /STARTER_ID/);
  });
});
