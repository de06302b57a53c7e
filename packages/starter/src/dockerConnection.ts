import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import type { EngineEndpoint } from './sandbox/outputAttach.ts';

/** The client certificate files of a TLS engine, as the docker CLI finds them. */
export interface DockerTlsFiles {
  /** `DOCKER_CERT_PATH/ca.pem`: the engine's certificate must be signed by it. */
  caPath: string;
  certPath: string;
  keyPath: string;
}

export type DockerConnection =
  | { kind: 'socket'; socketPath: string }
  | { kind: 'tcp'; host: string; port: number; protocol: 'http' }
  | { kind: 'tcp'; host: string; port: number; protocol: 'https'; tls: DockerTlsFiles };

type Read = (name: string) => string | undefined;

const defaultSocket = '/var/run/docker.sock';
const certificateFiles = ['ca.pem', 'cert.pem', 'key.pem'] as const;

/**
 * Where the Docker engine is, from `DOCKER_SOCKET` or `DOCKER_HOST`, the way the docker CLI
 * reads them: `DOCKER_TLS_VERIFY` (or an `https://` host) turns on TLS with the client
 * certificate in `DOCKER_CERT_PATH` (default `~/.docker`), and the engine's certificate is
 * checked against that folder's `ca.pem`.
 */
export function dockerConnection(read: Read, problems: string[]): DockerConnection {
  const socket = read('DOCKER_SOCKET');
  const host = read('DOCKER_HOST');
  const tlsVerify = tlsSwitch(read, problems);
  if (socket !== undefined && host !== undefined) {
    problems.push('DOCKER_SOCKET: set either DOCKER_SOCKET or DOCKER_HOST, not both');
  }
  if (host === undefined) {
    if (tlsVerify) problems.push('DOCKER_TLS_VERIFY: needs DOCKER_HOST=tcp://host:port');
    return { kind: 'socket', socketPath: socket ?? defaultSocket };
  }
  const unix = /^unix:\/\/(\/.+)$/.exec(host);
  if (unix?.[1]) {
    if (tlsVerify) problems.push('DOCKER_TLS_VERIFY: needs DOCKER_HOST=tcp://host:port');
    return { kind: 'socket', socketPath: unix[1] };
  }
  const tcp = /^(tcp|http|https):\/\/([^\s:/]+):(\d+)\/?$/.exec(host);
  if (!tcp?.[2] || !tcp[3]) {
    problems.push(
      `DOCKER_HOST: must be unix:///path/to/docker.sock or tcp://host:port, got ${JSON.stringify(host)}`,
    );
    return { kind: 'socket', socketPath: defaultSocket };
  }
  const address = { kind: 'tcp', host: tcp[2], port: Number(tcp[3]) } as const;
  if (!tlsVerify && tcp[1] !== 'https') return { ...address, protocol: 'http' };
  return { ...address, protocol: 'https', tls: tlsFiles(read, problems) };
}

function tlsSwitch(read: Read, problems: string[]): boolean {
  const value = read('DOCKER_TLS_VERIFY');
  if (value === undefined) return false;
  if (/^(1|true|yes)$/i.test(value)) return true;
  if (/^(0|false|no)$/i.test(value)) return false;
  problems.push(`DOCKER_TLS_VERIFY: must be 1 or 0, got ${JSON.stringify(value)}`);
  return false;
}

function tlsFiles(read: Read, problems: string[]): DockerTlsFiles {
  const folder = read('DOCKER_CERT_PATH') ?? join(homedir(), '.docker');
  const [caPath, certPath, keyPath] = certificateFiles.map((name) => join(folder, name)) as [
    string,
    string,
    string,
  ];
  const missing = [caPath, certPath, keyPath].filter((path) => !existsSync(path));
  if (missing.length > 0) {
    problems.push(
      `DOCKER_CERT_PATH: ${missing.join(', ')} missing: a TLS Docker engine needs ca.pem, cert.pem and key.pem there`,
    );
  }
  return { caPath, certPath, keyPath };
}

/** What may be logged of the connection: paths, never the key. */
export function describeDockerConnection(connection: DockerConnection): Record<string, unknown> {
  if (connection.kind === 'socket') return { socketPath: connection.socketPath };
  const { host, port, protocol } = connection;
  return protocol === 'https'
    ? { host, port, protocol, certPath: connection.tls.certPath }
    : { host, port, protocol };
}

/** The dockerode client for `connection`, with the client certificate of a TLS engine. */
export function dockerClient(connection: DockerConnection): Docker {
  if (connection.kind === 'socket') return new Docker({ socketPath: connection.socketPath });
  if (connection.protocol === 'http') {
    return new Docker({ host: connection.host, port: connection.port, protocol: 'http' });
  }
  return new Docker({
    host: connection.host,
    port: connection.port,
    protocol: 'https',
    ca: readFileSync(connection.tls.caPath),
    cert: readFileSync(connection.tls.certPath),
    key: readFileSync(connection.tls.keyPath),
  });
}

/**
 * Where the starter's own output reader connects. None for a TLS engine: that reader uses
 * a plain socket with a reused read buffer, which TLS sockets do not offer.
 */
// TODO(#4): output of a TLS engine is read through dockerode's stream, whose fresh buffer per
// read lets the starter's memory swing under a flood (BC-03); a TLS reader of our own would not.
export function engineEndpoint(connection: DockerConnection): EngineEndpoint | null {
  if (connection.kind === 'socket') return { path: connection.socketPath };
  return connection.protocol === 'http' ? { host: connection.host, port: connection.port } : null;
}
