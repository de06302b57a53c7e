import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { type Naming, namingFor } from '@pipeline/events';
import { loadSandboxProfile, type SandboxProfile } from '@pipeline/runner';
import {
  type DockerConnection,
  describeDockerConnection,
  dockerConnection,
} from './dockerConnection.ts';
import { type IsolationSettings, isolationSettings } from './sandbox/isolationSettings.ts';

export type { DockerConnection } from './dockerConnection.ts';

/**
 * The starter's settings, read from the environment once in `main.ts`. Where the original
 * Python starter has a variable for the same thing, its name and meaning are kept, so a
 * SeaTable administrator's `.env` keeps working.
 */
export interface StarterConfig {
  nats: NatsConfig;
  naming: Naming;
  /** Runs at once (`PYTHON_STARTER_THREAD_COUNT`). @default 10 */
  slots: number;
  /** Characters (code points, as Python's len) of output kept per run (`PYTHON_RUNNER_OUTPUT_LIMIT`). @default 1000000 */
  outputLimit: number;
  /** Replaces scheme and host of script URLs, for installs whose public URL the starter cannot reach. */
  alternativeFileServerRoot: string | null;
  /** IANA zone handed to scripts as `TZ` (`TIME_ZONE`); null leaves the image's default. */
  timeZone: string | null;
  docker: DockerConnection;
  /** This starter's name in claims, heartbeats and container labels (`STARTER_ID`). */
  starterId: string;
  host: string;
  /** Seconds between SIGTERM and SIGKILL when a run times out (`PYTHON_STARTER_STOP_GRACE_SECONDS`). @default 2 */
  stopGraceSeconds: number;
  /** pino level (`LOG_LEVEL`). @default 'info' */
  logLevel: LogLevel;
  sandbox: SandboxProfile;
  pool: PoolConfig;
  /** How scripts are kept off the pipeline's network (`PYTHON_RUNNER_NETWORK_ISOLATION`, ...). */
  networkIsolation: IsolationSettings;
  /** `/healthz`, `/readyz` and `/metrics`; null when `PYTHON_STARTER_METRICS_PORT` is unset or 0. */
  http: StarterHttpConfig | null;
}

/** The warm pool of prepared sandboxes (README, "The warm pool"). */
export interface PoolConfig {
  /** Prepared sandboxes kept waiting; 0 turns the pool off (`PYTHON_STARTER_POOL_SIZE`). @default 2 */
  size: number;
  /** Seconds without a run after which the pool empties (`PYTHON_STARTER_POOL_IDLE_SECONDS`). @default 300 */
  idleSeconds: number;
}

export interface StarterHttpConfig {
  /** `STARTER_HTTP_HOST`. @default '127.0.0.1' */
  host: string;
  /** `PYTHON_STARTER_METRICS_PORT`. */
  port: number;
  /** `PIPELINE_METRICS_TOKEN`, else `PYTHON_SCHEDULER_AUTH_TOKEN`: wanted by `/readyz` and `/metrics`. */
  token: string;
}

export interface NatsConfig {
  /** One or more server URLs (`NATS_URL`, comma-separated). @default ['nats://127.0.0.1:4222'] */
  servers: string[];
  user?: string;
  password?: string;
  token?: string;
}

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];

/** The original's defaults (seatable/python-pipeline, starter/runner.py). */
export const starterDefaults = {
  slots: 10,
  outputLimit: 1_000_000,
  stopGraceSeconds: 2,
  maxStopGraceSeconds: 5,
  dockerSocket: '/var/run/docker.sock',
  natsUrl: 'nats://127.0.0.1:4222',
  subjectPrefix: 'pipeline',
  httpHost: '127.0.0.1',
  poolSize: 2,
  maxPoolSize: 100,
  poolIdleSeconds: 300,
} as const;

/** Every invalid variable, one line each, so an administrator fixes them in one go. */
export class ConfigError extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): StarterConfig {
  const problems: string[] = [];
  const read = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const positiveInteger = (name: string, fallback: number, max = Number.MAX_SAFE_INTEGER) => {
    const value = read(name);
    if (value === undefined) return fallback;
    const parsed = /^\d+$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(parsed) || parsed < 1 || parsed > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? 'a positive integer' : `an integer 1..${max}`;
      problems.push(`${name}: must be ${range}, got ${JSON.stringify(value)}`);
      return fallback;
    }
    return parsed;
  };

  const sandbox = loadProfile(env, problems);
  const config = {
    nats: natsConfig(env, read, problems),
    naming: subjectNaming(read, problems),
    slots: positiveInteger('PYTHON_STARTER_THREAD_COUNT', starterDefaults.slots),
    outputLimit: positiveInteger('PYTHON_RUNNER_OUTPUT_LIMIT', starterDefaults.outputLimit),
    alternativeFileServerRoot: alternativeRoot(read, problems),
    timeZone: timeZone(read, problems),
    docker: dockerConnection(read, problems),
    starterId: starterId(read, problems),
    host: hostname(),
    stopGraceSeconds: stopGrace(read, problems),
    logLevel: logLevel(read, problems),
    http: httpConfig(read, problems),
    pool: poolConfig(read, problems),
    networkIsolation: isolationSettings(read, problems),
  };
  if (problems.length > 0 || !sandbox) throw new ConfigError(problems);
  return { ...config, sandbox };
}

type Read = (name: string) => string | undefined;

function loadProfile(env: Env, problems: string[]): SandboxProfile | undefined {
  const loaded = loadSandboxProfile(env);
  if (loaded.ok) return loaded.profile;
  problems.push(...loaded.problems);
  return undefined;
}

function natsConfig(env: Env, read: Read, problems: string[]): NatsConfig {
  const servers = (read('NATS_URL') ?? starterDefaults.natsUrl)
    .split(',')
    .map((server) => server.trim())
    .filter((server) => server !== '');
  for (const server of servers) {
    if (!/^(nats|tls|wss?):\/\/[^\s/]+(:\d+)?\/?$/.test(server) && !/^[^\s:/]+:\d+$/.test(server)) {
      problems.push(
        `NATS_URL: must be nats://host:port (comma-separated), got ${JSON.stringify(server)}`,
      );
    }
  }
  const user = read('NATS_USER');
  const password = env.NATS_PASSWORD;
  const token = read('NATS_TOKEN');
  if (user !== undefined && (password === undefined || password === '')) {
    problems.push('NATS_PASSWORD: must be set when NATS_USER is set');
  }
  if (token !== undefined && user !== undefined) {
    problems.push('NATS_TOKEN: set either NATS_TOKEN or NATS_USER/NATS_PASSWORD, not both');
  }
  return {
    servers,
    ...(user !== undefined ? { user, password: password ?? '' } : {}),
    ...(token !== undefined ? { token } : {}),
  };
}

function subjectNaming(read: Read, problems: string[]): Naming {
  const prefix = read('PIPELINE_SUBJECT_PREFIX') ?? starterDefaults.subjectPrefix;
  try {
    return namingFor(prefix);
  } catch {
    problems.push(
      `PIPELINE_SUBJECT_PREFIX: must be letters, digits, _ and - only, got ${JSON.stringify(prefix)}`,
    );
    return namingFor(starterDefaults.subjectPrefix);
  }
}

function alternativeRoot(read: Read, problems: string[]): string | null {
  const enabled = read('PYTHON_STARTER_USE_ALTERNATIVE_FILE_SERVER_ROOT');
  const root = read('PYTHON_STARTER_ALTERNATIVE_FILE_SERVER_ROOT');
  if (enabled !== undefined && !/^(true|false|1|0|yes|no)$/i.test(enabled)) {
    problems.push(
      `PYTHON_STARTER_USE_ALTERNATIVE_FILE_SERVER_ROOT: must be true or false, got ${JSON.stringify(enabled)}`,
    );
    return null;
  }
  // As in the original: the root is used only when the switch is on and the root is set.
  if (enabled === undefined || !/^(true|1|yes)$/i.test(enabled) || root === undefined) return null;
  if (!/^https?:\/\/[^\s/]+/i.test(root)) {
    problems.push(
      `PYTHON_STARTER_ALTERNATIVE_FILE_SERVER_ROOT: must be an http(s) URL, got ${JSON.stringify(root)}`,
    );
    return null;
  }
  return root.replace(/\/+$/, '');
}

function timeZone(read: Read, problems: string[]): string | null {
  const zone = read('TIME_ZONE');
  if (zone === undefined) return null;
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return zone;
  } catch {
    problems.push(
      `TIME_ZONE: must be an IANA time zone such as Europe/Berlin, got ${JSON.stringify(zone)}`,
    );
    return null;
  }
}

function starterId(read: Read, problems: string[]): string {
  const configured = read('STARTER_ID');
  if (configured === undefined) {
    const base =
      hostname()
        .replace(/[^a-zA-Z0-9_.-]/g, '-')
        .slice(0, 40) || 'starter';
    return `${base}-${randomBytes(3).toString('hex')}`;
  }
  // It becomes a label value and a KV key: keep it to characters both accept.
  if (!/^[a-zA-Z0-9_.-]{1,64}$/.test(configured)) {
    problems.push(
      `STARTER_ID: must be 1-64 letters, digits, '.', '_' or '-', got ${JSON.stringify(configured)}`,
    );
  }
  return configured;
}

function stopGrace(read: Read, problems: string[]): number {
  const value = read('PYTHON_STARTER_STOP_GRACE_SECONDS');
  if (value === undefined) return starterDefaults.stopGraceSeconds;
  const parsed = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(parsed) || parsed > starterDefaults.maxStopGraceSeconds) {
    problems.push(
      `PYTHON_STARTER_STOP_GRACE_SECONDS: must be an integer 0..${starterDefaults.maxStopGraceSeconds}, got ${JSON.stringify(value)}`,
    );
    return starterDefaults.stopGraceSeconds;
  }
  return parsed;
}

/** A host name or an IP address (IPv6 without brackets). */
const hostPattern =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9_-]+)*|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$/;

function poolConfig(read: Read, problems: string[]): PoolConfig {
  const sizeText = read('PYTHON_STARTER_POOL_SIZE');
  let size: number = starterDefaults.poolSize;
  if (sizeText !== undefined) {
    size = /^\d+$/.test(sizeText) ? Number(sizeText) : Number.NaN;
    if (!Number.isInteger(size) || size > starterDefaults.maxPoolSize) {
      problems.push(
        `PYTHON_STARTER_POOL_SIZE: must be an integer 0..${starterDefaults.maxPoolSize} (0 turns the pool off), got ${JSON.stringify(sizeText)}`,
      );
      size = starterDefaults.poolSize;
    }
  }
  const idleText = read('PYTHON_STARTER_POOL_IDLE_SECONDS');
  let idleSeconds: number = starterDefaults.poolIdleSeconds;
  if (idleText !== undefined) {
    idleSeconds = /^\d+(\.\d+)?$/.test(idleText) ? Number(idleText) : Number.NaN;
    if (!(idleSeconds > 0) || idleSeconds > 86_400) {
      problems.push(
        `PYTHON_STARTER_POOL_IDLE_SECONDS: must be a number of seconds above 0, at most 86400, got ${JSON.stringify(idleText)}`,
      );
      idleSeconds = starterDefaults.poolIdleSeconds;
    }
  }
  return { size, idleSeconds };
}

/** Off unless a port is set: a starter on a Docker host opens no port it was not asked to. */
function httpConfig(read: Read, problems: string[]): StarterHttpConfig | null {
  const portText = read('PYTHON_STARTER_METRICS_PORT');
  const port = portText === undefined ? 0 : /^\d+$/.test(portText) ? Number(portText) : Number.NaN;
  if (!Number.isInteger(port) || port > 65_535) {
    problems.push(
      `PYTHON_STARTER_METRICS_PORT: must be a port 1..65535, or 0 for none, got ${JSON.stringify(portText)}`,
    );
    return null;
  }
  if (port === 0) return null;
  const token = read('PIPELINE_METRICS_TOKEN') ?? read('PYTHON_SCHEDULER_AUTH_TOKEN');
  if (token === undefined) {
    problems.push(
      'PIPELINE_METRICS_TOKEN: must be set (or PYTHON_SCHEDULER_AUTH_TOKEN) when PYTHON_STARTER_METRICS_PORT is set',
    );
    return null;
  }
  const host = read('STARTER_HTTP_HOST') ?? starterDefaults.httpHost;
  if (!hostPattern.test(host)) {
    problems.push(
      `STARTER_HTTP_HOST: must be a host name or an IP address, got ${JSON.stringify(host)}`,
    );
    return null;
  }
  return { host, port, token };
}

function logLevel(read: Read, problems: string[]): LogLevel {
  const value = (read('LOG_LEVEL') ?? 'info').toLowerCase();
  if ((logLevels as readonly string[]).includes(value)) return value as LogLevel;
  problems.push(`LOG_LEVEL: must be one of ${logLevels.join(', ')}, got ${JSON.stringify(value)}`);
  return 'info';
}

/** What is safe to log at start-up: no passwords, no tokens. */
export function describeConfig(config: StarterConfig): Record<string, unknown> {
  return {
    natsServers: config.nats.servers,
    natsAuth: config.nats.token ? 'token' : config.nats.user ? 'user' : 'none',
    prefix: config.naming.prefix,
    stream: config.naming.stream,
    slots: config.slots,
    outputLimit: config.outputLimit,
    alternativeFileServerRoot: config.alternativeFileServerRoot,
    timeZone: config.timeZone,
    docker: describeDockerConnection(config.docker),
    starterId: config.starterId,
    stopGraceSeconds: config.stopGraceSeconds,
    image: config.sandbox.image,
    pool: config.pool,
    network: config.sandbox.network,
    networkIsolation: config.networkIsolation.mode,
    networkAllow: config.networkIsolation.allow.map(
      (entry) => `${entry.host}:${entry.port ?? '*'}`,
    ),
    http: config.http ? { host: config.http.host, port: config.http.port } : null,
  };
}
