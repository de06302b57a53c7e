import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig, starterDefaults } from '../src/config.ts';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('loadConfig', () => {
  test("takes the original starter's defaults when nothing is set", () => {
    const config = loadConfig({});
    assert.deepEqual(config.nats.servers, ['nats://127.0.0.1:4222']);
    assert.equal(config.naming.prefix, 'pipeline');
    assert.equal(config.naming.stream, 'PIPELINE');
    assert.equal(config.slots, 10);
    assert.equal(config.outputLimit, 1_000_000);
    assert.equal(config.stopGraceSeconds, 2);
    assert.equal(config.alternativeFileServerRoot, null);
    assert.equal(config.timeZone, null);
    assert.deepEqual(config.docker, { kind: 'socket', socketPath: '/var/run/docker.sock' });
    assert.equal(config.sandbox.image, 'seatable-pipeline-runner:offline');
    assert.equal(config.logLevel, 'info');
  });

  test('gives each start a different starter id unless STARTER_ID is set', () => {
    assert.notEqual(loadConfig({}).starterId, loadConfig({}).starterId);
    assert.equal(loadConfig({ STARTER_ID: 'docker-host-1' }).starterId, 'docker-host-1');
  });

  test('reads the original variables', () => {
    const config = loadConfig({
      NATS_URL: 'nats://10.0.0.1:4222, nats://10.0.0.2:4222',
      NATS_USER: 'starter',
      NATS_PASSWORD: 'secret',
      PIPELINE_SUBJECT_PREFIX: 'tenant-a',
      PYTHON_STARTER_THREAD_COUNT: '4',
      PYTHON_RUNNER_OUTPUT_LIMIT: '5000',
      PYTHON_STARTER_USE_ALTERNATIVE_FILE_SERVER_ROOT: 'true',
      PYTHON_STARTER_ALTERNATIVE_FILE_SERVER_ROOT: 'http://seatable:80/',
      TIME_ZONE: 'Europe/Berlin',
      DOCKER_HOST: 'tcp://127.0.0.1:2375',
      PYTHON_STARTER_STOP_GRACE_SECONDS: '5',
      LOG_LEVEL: 'DEBUG',
    });
    assert.deepEqual(config.nats.servers, ['nats://10.0.0.1:4222', 'nats://10.0.0.2:4222']);
    assert.equal(config.nats.user, 'starter');
    assert.equal(config.nats.password, 'secret');
    assert.equal(config.naming.stream, 'TENANT_A');
    assert.equal(config.slots, 4);
    assert.equal(config.outputLimit, 5000);
    assert.equal(config.alternativeFileServerRoot, 'http://seatable:80');
    assert.equal(config.timeZone, 'Europe/Berlin');
    assert.deepEqual(config.docker, {
      kind: 'tcp',
      host: '127.0.0.1',
      port: 2375,
      protocol: 'http',
    });
    assert.equal(config.stopGraceSeconds, 5);
    assert.equal(config.logLevel, 'debug');
  });

  test('ignores the alternative root unless its switch is on, as the original does', () => {
    const config = loadConfig({ PYTHON_STARTER_ALTERNATIVE_FILE_SERVER_ROOT: 'http://seatable' });
    assert.equal(config.alternativeFileServerRoot, null);
  });

  test('takes the socket path from a unix DOCKER_HOST', () => {
    const config = loadConfig({ DOCKER_HOST: 'unix:///run/user/1000/docker.sock' });
    assert.deepEqual(config.docker, { kind: 'socket', socketPath: '/run/user/1000/docker.sock' });
  });

  test('reports every bad variable at once, one line each, naming the variable and the value', () => {
    const problems = problemsOf({
      PYTHON_STARTER_THREAD_COUNT: '0',
      PYTHON_RUNNER_OUTPUT_LIMIT: 'abc',
      PYTHON_STARTER_STOP_GRACE_SECONDS: '9',
      TIME_ZONE: 'Mars/Olympus',
      DOCKER_HOST: 'ssh://host',
      PIPELINE_SUBJECT_PREFIX: 'a.b',
      LOG_LEVEL: 'loud',
      PYTHON_RUNNER_CONTAINER_CPUS: 'abc',
    });
    assert.deepEqual(problems.sort(), [
      'DOCKER_HOST: must be unix:///path/to/docker.sock or tcp://host:port, got "ssh://host"',
      'LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
      'PIPELINE_SUBJECT_PREFIX: must be letters, digits, _ and - only, got "a.b"',
      'PYTHON_RUNNER_CONTAINER_CPUS: must be a positive number of CPUs like 1 or 0.5, got "abc"',
      'PYTHON_RUNNER_OUTPUT_LIMIT: must be a positive integer, got "abc"',
      `PYTHON_STARTER_STOP_GRACE_SECONDS: must be an integer 0..${starterDefaults.maxStopGraceSeconds}, got "9"`,
      'PYTHON_STARTER_THREAD_COUNT: must be a positive integer, got "0"',
      'TIME_ZONE: must be an IANA time zone such as Europe/Berlin, got "Mars/Olympus"',
    ]);
  });

  test('refuses a metrics address that is not a host name or an IP address', () => {
    assert.deepEqual(
      problemsOf({
        PYTHON_STARTER_METRICS_PORT: '9464',
        PIPELINE_METRICS_TOKEN: 't',
        STARTER_HTTP_HOST: 'http://0.0.0.0',
      }),
      ['STARTER_HTTP_HOST: must be a host name or an IP address, got "http://0.0.0.0"'],
    );
  });

  test('refuses a NATS user without a password and a token together with a user', () => {
    assert.deepEqual(problemsOf({ NATS_USER: 'starter' }), [
      'NATS_PASSWORD: must be set when NATS_USER is set',
    ]);
    assert.deepEqual(problemsOf({ NATS_USER: 'u', NATS_PASSWORD: 'p', NATS_TOKEN: 't' }), [
      'NATS_TOKEN: set either NATS_TOKEN or NATS_USER/NATS_PASSWORD, not both',
    ]);
  });
});
