import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

// The compose file must stay valid (issue #8): `docker-compose config` resolves it with an
// administrator's .env, and refuses to start without the secrets it needs.

const run = promisify(execFile);
const repoRoot = join(import.meta.dirname, '..', '..');
const secrets = {
  NATS_SCHEDULER_PASSWORD: 'scheduler-secret',
  NATS_STARTER_PASSWORD: 'starter-secret',
  PYTHON_SCHEDULER_AUTH_TOKEN: 'shared-secret',
  SEATABLE_MYSQL_ROOT_PASSWORD: 'db-secret',
  SEATABLE_SERVER_HOSTNAME: 'seatable.example.invalid',
};

async function composeConfig(env: Record<string, string>) {
  return await run(
    'docker-compose',
    [
      '--env-file',
      join(repoRoot, '.env.example'),
      '-f',
      join(repoRoot, 'docker-compose.yml'),
      'config',
    ],
    { env: { PATH: process.env.PATH ?? '', ...env }, cwd: repoRoot },
  );
}

const available = await run('docker-compose', ['version']).then(
  () => true,
  () => false,
);
// CI installs Debian's docker-compose (.ci/run); a developer machine without it skips.
const skip = !available && process.env.CI !== 'true' ? 'docker-compose is not installed' : false;

test('the compose file resolves with the secrets of an administrator', { skip }, async () => {
  const { stdout } = await composeConfig(secrets);

  for (const service of ['nats-1', 'scheduler', 'starter']) {
    assert.match(stdout, new RegExp(`^  ${service}:$`, 'm'), `service ${service}`);
  }
  assert.match(stdout, /PYTHON_SCHEDULER_AUTH_TOKEN: shared-secret/);
});

test('the compose file refuses to resolve without the shared secret', { skip }, async () => {
  const { PYTHON_SCHEDULER_AUTH_TOKEN: _left, ...withoutToken } = secrets;

  await assert.rejects(composeConfig(withoutToken), /PYTHON_SCHEDULER_AUTH_TOKEN/);
});
