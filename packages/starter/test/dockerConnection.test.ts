import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';
import { describeDockerConnection, dockerClient } from '../src/dockerConnection.ts';

const certFolder = mkdtempSync(join(tmpdir(), 'pipeline-docker-certs-'));
for (const name of ['ca.pem', 'cert.pem', 'key.pem']) {
  writeFileSync(join(certFolder, name), `${name} of the test\n`);
}
const halfFolder = mkdtempSync(join(tmpdir(), 'pipeline-docker-certs-half-'));
writeFileSync(join(halfFolder, 'ca.pem'), 'ca\n');

after(() => {
  rmSync(certFolder, { recursive: true, force: true });
  rmSync(halfFolder, { recursive: true, force: true });
});

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('a TLS Docker engine, as the docker CLI finds it', () => {
  test('DOCKER_TLS_VERIFY with a tcp DOCKER_HOST takes the three files of DOCKER_CERT_PATH', () => {
    const config = loadConfig({
      DOCKER_HOST: 'tcp://docker-1.example.invalid:2376',
      DOCKER_TLS_VERIFY: '1',
      DOCKER_CERT_PATH: certFolder,
    });

    assert.deepEqual(config.docker, {
      kind: 'tcp',
      host: 'docker-1.example.invalid',
      port: 2376,
      protocol: 'https',
      tls: {
        caPath: join(certFolder, 'ca.pem'),
        certPath: join(certFolder, 'cert.pem'),
        keyPath: join(certFolder, 'key.pem'),
      },
    });
  });

  test('an https DOCKER_HOST is TLS too, and DOCKER_TLS_VERIFY=0 leaves tcp plain', () => {
    const https = loadConfig({
      DOCKER_HOST: 'https://10.0.0.7:2376',
      DOCKER_CERT_PATH: certFolder,
    });
    const plain = loadConfig({ DOCKER_HOST: 'tcp://10.0.0.7:2375', DOCKER_TLS_VERIFY: '0' });

    assert.equal(https.docker.kind === 'tcp' && https.docker.protocol, 'https');
    assert.deepEqual(plain.docker, { kind: 'tcp', host: '10.0.0.7', port: 2375, protocol: 'http' });
  });

  test('the client gets the certificate, the key and the authority from those files', () => {
    const config = loadConfig({
      DOCKER_HOST: 'tcp://10.0.0.7:2376',
      DOCKER_TLS_VERIFY: 'true',
      DOCKER_CERT_PATH: certFolder,
    });

    const options = dockerClient(config.docker).modem as unknown as Record<string, unknown>;

    assert.equal(options.protocol, 'https');
    assert.equal(String(options.ca), 'ca.pem of the test\n');
    assert.equal(String(options.cert), 'cert.pem of the test\n');
    assert.equal(String(options.key), 'key.pem of the test\n');
  });

  test('names the missing files in one line', () => {
    const problems = problemsOf({
      DOCKER_HOST: 'tcp://10.0.0.7:2376',
      DOCKER_TLS_VERIFY: '1',
      DOCKER_CERT_PATH: halfFolder,
    });

    assert.deepEqual(problems, [
      `DOCKER_CERT_PATH: ${join(halfFolder, 'cert.pem')}, ${join(halfFolder, 'key.pem')} missing: a TLS Docker engine needs ca.pem, cert.pem and key.pem there`,
    ]);
  });

  test('refuses DOCKER_TLS_VERIFY without a tcp engine, and a value that is not a switch', () => {
    assert.deepEqual(problemsOf({ DOCKER_TLS_VERIFY: '1' }), [
      'DOCKER_TLS_VERIFY: needs DOCKER_HOST=tcp://host:port',
    ]);
    assert.deepEqual(problemsOf({ DOCKER_HOST: 'tcp://10.0.0.7:2376', DOCKER_TLS_VERIFY: 'on' }), [
      'DOCKER_TLS_VERIFY: must be 1 or 0, got "on"',
    ]);
  });

  test('logs the certificate path, never the key', () => {
    const config = loadConfig({
      DOCKER_HOST: 'tcp://10.0.0.7:2376',
      DOCKER_TLS_VERIFY: '1',
      DOCKER_CERT_PATH: certFolder,
    });

    const described = JSON.stringify(describeDockerConnection(config.docker));

    assert.doesNotMatch(described, /key\.pem/);
    assert.match(described, /cert\.pem/);
  });
});
