import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';

test('defaults to loopback, a free port and a made-up secret', () => {
  const config = loadConfig({});

  assert.deepEqual(config, {
    host: '127.0.0.1',
    port: 0,
    secret: null,
    scriptUrlBase: null,
    urlFile: null,
    logLevel: 'info',
  });
});

test('takes the shared secret from PYTHON_SCHEDULER_AUTH_TOKEN', () => {
  const config = loadConfig({
    PYTHON_SCHEDULER_AUTH_TOKEN: 's3cret',
    SEATABLE_STANDIN_PORT: '8080',
  });

  assert.equal(config.secret, 's3cret');
  assert.equal(config.port, 8080);
});

test('reports every bad variable on a line of its own', () => {
  const env = {
    SEATABLE_STANDIN_PORT: 'abc',
    SEATABLE_STANDIN_SCRIPT_URL_BASE: 'ftp://x/y',
    SEATABLE_STANDIN_LOG_LEVEL: 'loud',
  };

  assert.throws(
    () => loadConfig(env),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.deepEqual(error.message.split('\n'), [
        'SEATABLE_STANDIN_PORT: must be a port number (0-65535), got "abc"',
        'SEATABLE_STANDIN_SCRIPT_URL_BASE: must be a scheme and host such as http://host:port, got "ftp://x/y"',
        'SEATABLE_STANDIN_LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
      ]);
      return true;
    },
  );
});
