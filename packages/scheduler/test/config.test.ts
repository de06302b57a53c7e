import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, describeConfig, loadConfig } from '../src/config.ts';

const minimal = {
  PYTHON_SCHEDULER_AUTH_TOKEN: 'secret-token',
  SEATABLE_SERVER_URL: 'http://127.0.0.1:8000/',
  NATS_URL: 'nats://127.0.0.1:14222',
};

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
  test('applies the original defaults when only the required variables are set', () => {
    const config = loadConfig(minimal);
    assert.equal(config.authToken, 'secret-token');
    assert.equal(config.seatableServerUrl, 'http://127.0.0.1:8000');
    assert.equal(config.processTimeoutSeconds, 900);
    assert.deepEqual(config.fairShare, { windowSeconds: 300, rateLimitShare: 0.25 });
    assert.deepEqual(config.retention, { logDays: 30, statisticsDays: 90 });
    assert.equal(config.http.port, 5055);
    assert.equal(config.http.host, '127.0.0.1');
    assert.equal(config.database.name, 'scheduler');
    assert.equal(config.database.host, '127.0.0.1');
    assert.equal(config.database.user, 'root');
    assert.deepEqual(config.naming, { prefix: 'pipeline', stream: 'PIPELINE' });
    assert.deepEqual(config.stream, { maxAgeSeconds: 0, maxBytes: -1, replicas: 1 });
    assert.equal(config.logLevel, 'info');
  });

  test('reports every missing required variable on its own line', () => {
    assert.deepEqual(problemsOf({}), [
      'PYTHON_SCHEDULER_AUTH_TOKEN: is required',
      'SEATABLE_SERVER_URL: is required',
      'NATS_URL: is required',
    ]);
  });

  test('names the variable and the bad value for each wrong setting', () => {
    const problems = problemsOf({
      ...minimal,
      PYTHON_PROCESS_TIMEOUT: 'abc',
      SCHEDULER_PORT: '70000',
      TIME_ZONE: 'Mars/Olympus',
      PYTHON_SCHEDULER_RATE_LIMIT_PERCENT: '25',
      PIPELINE_STREAM_REPLICAS: '0',
      LOG_LEVEL: 'loud',
      SEATABLE_SERVER_URL: 'ftp://example.invalid',
      SCHEDULER_HOST: 'local host',
      DB_HOST: 'db/1',
    });
    assert.deepEqual(
      problems.sort(),
      [
        'SEATABLE_SERVER_URL: must be an http:// or https:// URL, got "ftp://example.invalid"',
        'TIME_ZONE: must be an IANA time zone such as Europe/Berlin, got "Mars/Olympus"',
        'PYTHON_PROCESS_TIMEOUT: must be a positive integer, got "abc"',
        'PYTHON_SCHEDULER_RATE_LIMIT_PERCENT: must be a share between 0 and 1 (0.25 means 25 %), got "25"',
        'SCHEDULER_PORT: must be a port number (0-65535; 0 picks a free one), got "70000"',
        'PIPELINE_STREAM_REPLICAS: must be an integer from 1 to 5, got "0"',
        'LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
        'SCHEDULER_HOST: must be a host name or an IP address, got "local host"',
        'DB_HOST: must be a host name or an IP address, got "db/1"',
      ].sort(),
    );
  });

  test('accepts host names, IPv4 and IPv6 addresses as hosts', () => {
    for (const host of ['mariadb', 'db-1.example.com', '10.0.0.7', '::', '::1', 'fe80::1']) {
      assert.equal(loadConfig({ ...minimal, DB_HOST: host }).database.host, host);
      assert.equal(loadConfig({ ...minimal, SCHEDULER_HOST: host }).http.host, host);
    }
  });

  test('keeps the read model in a SQLite file when no MariaDB variable is set', () => {
    assert.equal(loadConfig(minimal).database.sqliteFile, resolve('.run/scheduler.sqlite'));
    assert.equal(
      loadConfig({ ...minimal, PIPELINE_SQLITE_FILE: '/var/lib/pipeline/read.sqlite' }).database
        .sqliteFile,
      '/var/lib/pipeline/read.sqlite',
    );
    assert.deepEqual(describeConfig(loadConfig(minimal)).database, {
      sqliteFile: resolve('.run/scheduler.sqlite'),
    });
  });

  test('uses MariaDB as soon as one of its variables is set, even an empty root password', () => {
    for (const variable of ['DB_HOST', 'DB_PORT', 'DB_USER', 'DATABASE_NAME', 'DB_NAME']) {
      const value = variable === 'DB_PORT' ? '3306' : 'seatable';
      assert.equal(loadConfig({ ...minimal, [variable]: value }).database.sqliteFile, undefined);
    }
    assert.equal(loadConfig({ ...minimal, DB_ROOT_PASSWD: '' }).database.sqliteFile, undefined);
  });

  test('refuses a SQLite file together with MariaDB in one line naming both', () => {
    assert.deepEqual(
      problemsOf({ ...minimal, PIPELINE_SQLITE_FILE: 'read.sqlite', DB_HOST: 'mariadb' }),
      ['PIPELINE_SQLITE_FILE: cannot be combined with DB_HOST (SQLite or MariaDB)'],
    );
  });

  test('uses the root account when DB_ROOT_PASSWD is set, as the original does', () => {
    const config = loadConfig({
      ...minimal,
      DB_ROOT_PASSWD: 'root-pass',
      DB_USER: 'seatable',
      DB_PASSWD: 'user-pass',
    });
    assert.equal(config.database.user, 'root');
    assert.equal(config.database.password, 'root-pass');
  });

  test('uses DB_USER with DB_PASSWD or DB_PASSWORD when no root password is set', () => {
    const original = loadConfig({ ...minimal, DB_USER: 'seatable', DB_PASSWD: 'user-pass' });
    assert.deepEqual(
      [original.database.user, original.database.password],
      ['seatable', 'user-pass'],
    );
    const alias = loadConfig({ ...minimal, DB_USER: 'seatable', DB_PASSWORD: 'other' });
    assert.deepEqual([alias.database.user, alias.database.password], ['seatable', 'other']);
  });

  test('accepts the original log level spellings', () => {
    assert.equal(
      loadConfig({ ...minimal, PYTHON_SCHEDULER_LOG_LEVEL: 'WARNING' }).logLevel,
      'warn',
    );
    assert.equal(loadConfig({ ...minimal, LOG_LEVEL: 'DEBUG' }).logLevel, 'debug');
  });

  test('derives the stream and subject prefix from PIPELINE_SUBJECT_PREFIX', () => {
    const config = loadConfig({ ...minimal, PIPELINE_SUBJECT_PREFIX: 'site-b' });
    assert.deepEqual(config.naming, { prefix: 'site-b', stream: 'SITE_B' });
    assert.deepEqual(problemsOf({ ...minimal, PIPELINE_SUBJECT_PREFIX: 'a.b' }), [
      'PIPELINE_SUBJECT_PREFIX: must be letters, digits, _ and - only, got "a.b"',
    ]);
  });

  test('splits several NATS servers and requires user and password together', () => {
    const config = loadConfig({
      ...minimal,
      NATS_URL: 'nats://127.0.0.1:14222, nats://127.0.0.1:14223',
    });
    assert.deepEqual(config.nats.servers, ['nats://127.0.0.1:14222', 'nats://127.0.0.1:14223']);
    assert.deepEqual(problemsOf({ ...minimal, NATS_USER: 'pipeline' }), [
      'NATS_PASSWORD: must be set together with the other',
    ]);
  });

  test('converts the stream age from days to seconds', () => {
    const config = loadConfig({ ...minimal, PIPELINE_STREAM_MAX_AGE_DAYS: '1.5' });
    assert.equal(config.stream.maxAgeSeconds, 129_600);
  });

  test('leaves secrets out of the description it logs', () => {
    const config = loadConfig({ ...minimal, DB_ROOT_PASSWD: 'root-pass', NATS_TOKEN: 'nats-tok' });
    const described = JSON.stringify(describeConfig(config));
    assert.ok(!described.includes('secret-token'));
    assert.ok(!described.includes('root-pass'));
    assert.ok(!described.includes('nats-tok'));
  });
});
