import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, describeConfig, loadConfig } from '../../src/config.ts';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('the starter metrics server settings', () => {
  test('keep the server off when no port is set, or port 0', () => {
    assert.equal(loadConfig({}).http, null);
    assert.equal(loadConfig({ PYTHON_STARTER_METRICS_PORT: '0' }).http, null);
  });

  test('listen on loopback by default, with the metrics token before the scheduler token', () => {
    const config = loadConfig({
      PYTHON_STARTER_METRICS_PORT: '9464',
      PIPELINE_METRICS_TOKEN: 'metrics',
      PYTHON_SCHEDULER_AUTH_TOKEN: 'shared',
    });
    assert.deepEqual(config.http, { host: '127.0.0.1', port: 9464, token: 'metrics' });
    const shared = loadConfig({
      PYTHON_STARTER_METRICS_PORT: '9464',
      PYTHON_SCHEDULER_AUTH_TOKEN: 'shared',
      STARTER_HTTP_HOST: '0.0.0.0',
    });
    assert.deepEqual(shared.http, { host: '0.0.0.0', port: 9464, token: 'shared' });
  });

  test('refuse a port without a token and a port that is not one, one line each', () => {
    assert.deepEqual(problemsOf({ PYTHON_STARTER_METRICS_PORT: '9464' }), [
      'PIPELINE_METRICS_TOKEN: must be set (or PYTHON_SCHEDULER_AUTH_TOKEN) when PYTHON_STARTER_METRICS_PORT is set',
    ]);
    assert.deepEqual(problemsOf({ PYTHON_STARTER_METRICS_PORT: '70000' }), [
      'PYTHON_STARTER_METRICS_PORT: must be a port 1..65535, or 0 for none, got "70000"',
    ]);
  });

  test('leave the token out of the start-up log line', () => {
    const config = loadConfig({
      PYTHON_STARTER_METRICS_PORT: '9464',
      PIPELINE_METRICS_TOKEN: 'x1',
    });
    assert.doesNotMatch(JSON.stringify(describeConfig(config)), /x1/);
    assert.deepEqual(describeConfig(config).http, { host: '127.0.0.1', port: 9464 });
  });
});
