import { resolve } from 'node:path';
import { type Naming, namingFor } from '@pipeline/events';

/**
 * The scheduler's settings, read from the environment once in `main.ts`. Where the original
 * Python scheduler has a variable for the same thing, its name and meaning are kept, so a
 * SeaTable administrator's `.env` keeps working.
 */
export interface SchedulerConfig {
  /** Shared secret of SeaTable and the pipeline (`PYTHON_SCHEDULER_AUTH_TOKEN`). */
  authToken: string;
  /** The SeaTable server, for script files and run limits (`SEATABLE_SERVER_URL`). */
  seatableServerUrl: string;
  database: DatabaseConfig;
  /** IANA zone of the statistics days and of the times in answers (`TIME_ZONE`). */
  timeZone: string;
  /** Wall-time limit of one run in seconds (`PYTHON_PROCESS_TIMEOUT`). @default 900 */
  processTimeoutSeconds: number;
  /** Characters of live output kept per running run (`PYTHON_RUNNER_OUTPUT_LIMIT`, as the starters). @default 1000000 */
  outputLimit: number;
  fairShare: FairShareConfig;
  retention: RetentionConfig;
  nats: NatsConfig;
  naming: Naming;
  stream: StreamConfig;
  http: HttpConfig;
  /** pino level. @default 'info' */
  logLevel: LogLevel;
  /** How long after a run's deadline the watchdog waits before it ends the run as lost. */
  watchdogGraceSeconds: number;
  /** How often the watchdog looks for lost runs. */
  watchdogIntervalSeconds: number;
}

export interface DatabaseConfig {
  /**
   * The SQLite file of a first run without a database server (`PIPELINE_SQLITE_FILE`),
   * used when no MariaDB variable is set; MariaDB's settings below are then ignored.
   */
  sqliteFile?: string;
  host: string;
  port: number;
  user: string;
  password: string;
  name: string;
  poolSize: number;
}

export interface FairShareConfig {
  /** `PYTHON_SCHEDULER_WINDOW_SECS`. @default 300 */
  windowSeconds: number;
  /** Share of the fleet's capacity one owner may use (`PYTHON_SCHEDULER_RATE_LIMIT_PERCENT`). @default 0.25 */
  rateLimitShare: number;
}

export interface RetentionConfig {
  /** `DELETE_LOG_DAYS`. @default 30 */
  logDays: number;
  /** `DELETE_STATISTICS_DAYS`. @default 90 */
  statisticsDays: number;
}

export interface NatsConfig {
  /** One or more server URLs (`NATS_URL`, comma-separated). */
  servers: string[];
  user?: string;
  password?: string;
  token?: string;
}

export interface StreamConfig {
  /** 0 keeps events for ever. */
  maxAgeSeconds: number;
  /** -1 for no cap. */
  maxBytes: number;
  replicas: number;
}

export interface HttpConfig {
  host: string;
  port: number;
  /** Largest request body accepted; larger ones answer 413. */
  maxBodyBytes: number;
}

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];

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

/** Reads variables and collects what is wrong with them instead of stopping at the first. */
class EnvReader {
  readonly problems: string[] = [];
  private readonly env: Env;

  constructor(env: Env) {
    this.env = env;
  }

  /** The first of `names` that is set and not blank. */
  raw(...names: string[]): { name: string; value: string } | undefined {
    for (const name of names) {
      const value = this.env[name];
      if (value !== undefined && value.trim() !== '') return { name, value: value.trim() };
    }
    return undefined;
  }

  has(name: string): boolean {
    return this.env[name] !== undefined;
  }

  report(name: string, problem: string, value?: string): void {
    this.problems.push(
      value === undefined
        ? `${name}: ${problem}`
        : `${name}: ${problem}, got ${JSON.stringify(value)}`,
    );
  }

  requiredString(name: string): string {
    const found = this.raw(name);
    if (!found) {
      this.report(name, 'is required');
      return '';
    }
    return found.value;
  }

  optionalString(...names: string[]): string | undefined {
    return this.raw(...names)?.value;
  }

  /** A host name or an IP address (IPv6 without brackets), nothing a URL would need escaped. */
  host(name: string, fallback: string): string {
    const found = this.raw(name);
    if (!found) return fallback;
    if (!hostPattern.test(found.value)) {
      this.report(name, 'must be a host name or an IP address', found.value);
      return fallback;
    }
    return found.value;
  }

  integer(names: string | string[], fallback: number, check: IntegerCheck): number {
    const found = this.raw(...[names].flat());
    if (!found) return fallback;
    const value = Number(found.value);
    const ok =
      /^-?\d+$/.test(found.value) &&
      Number.isSafeInteger(value) &&
      value >= check.min &&
      (check.max === undefined || value <= check.max);
    if (!ok) {
      this.report(found.name, check.description, found.value);
      return fallback;
    }
    return value;
  }

  number(name: string, fallback: number, accept: (value: number) => boolean, description: string) {
    const found = this.raw(name);
    if (!found) return fallback;
    const value = Number(found.value);
    if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(found.value) || !accept(value)) {
      this.report(name, description, found.value);
      return fallback;
    }
    return value;
  }

  url(name: string, protocols: string[]): string {
    const value = this.requiredString(name);
    if (value === '') return value;
    try {
      const parsed = new URL(value);
      if (!protocols.includes(parsed.protocol)) throw new Error('protocol');
    } catch {
      this.report(
        name,
        `must be an ${protocols.map((protocol) => `${protocol}//`).join(' or ')} URL`,
        value,
      );
    }
    return value.replace(/\/+$/, '');
  }
}

const hostPattern =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9_-]+)*|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$/;

interface IntegerCheck {
  min: number;
  max?: number;
  description: string;
}

const positiveInteger: IntegerCheck = { min: 1, description: 'must be a positive integer' };
const port: IntegerCheck = { min: 1, max: 65535, description: 'must be a port number (1-65535)' };
/** 0 lets the system pick a free port (tests, several schedulers on one host). */
const listenPort: IntegerCheck = {
  min: 0,
  max: 65535,
  description: 'must be a port number (0-65535; 0 picks a free one)',
};

/** Parses and checks the environment; throws a `ConfigError` listing every problem. */
export function loadConfig(env: Env = process.env): SchedulerConfig {
  const reader = new EnvReader(env);
  const config: SchedulerConfig = {
    authToken: reader.requiredString('PYTHON_SCHEDULER_AUTH_TOKEN'),
    seatableServerUrl: reader.url('SEATABLE_SERVER_URL', ['http:', 'https:']),
    database: readDatabase(reader),
    timeZone: readTimeZone(reader),
    processTimeoutSeconds: reader.integer('PYTHON_PROCESS_TIMEOUT', 900, positiveInteger),
    outputLimit: reader.integer('PYTHON_RUNNER_OUTPUT_LIMIT', 1_000_000, positiveInteger),
    fairShare: {
      windowSeconds: reader.integer('PYTHON_SCHEDULER_WINDOW_SECS', 300, positiveInteger),
      rateLimitShare: reader.number(
        'PYTHON_SCHEDULER_RATE_LIMIT_PERCENT',
        0.25,
        (value) => value > 0 && value <= 1,
        'must be a share between 0 and 1 (0.25 means 25 %)',
      ),
    },
    retention: {
      logDays: reader.integer('DELETE_LOG_DAYS', 30, positiveInteger),
      statisticsDays: reader.integer('DELETE_STATISTICS_DAYS', 90, positiveInteger),
    },
    nats: readNats(reader),
    naming: readNaming(reader),
    stream: readStream(reader),
    http: {
      host: reader.host('SCHEDULER_HOST', '127.0.0.1'),
      port: reader.integer('SCHEDULER_PORT', 5055, listenPort),
      maxBodyBytes: reader.integer('PIPELINE_MAX_BODY_BYTES', 1_000_000, {
        min: 1024,
        description: 'must be an integer of at least 1024 (bytes)',
      }),
    },
    logLevel: readLogLevel(reader),
    watchdogGraceSeconds: reader.integer('PIPELINE_WATCHDOG_GRACE_SECONDS', 60, {
      min: 0,
      description: 'must be a non-negative integer',
    }),
    watchdogIntervalSeconds: reader.integer(
      'PIPELINE_WATCHDOG_INTERVAL_SECONDS',
      30,
      positiveInteger,
    ),
  };
  if (reader.problems.length > 0) throw new ConfigError(reader.problems);
  return config;
}

/** The variables that point the scheduler at a MariaDB server (the original's names). */
const mariadbVariables = [
  'DB_HOST',
  'DB_PORT',
  'DB_USER',
  'DB_PASSWD',
  'DB_PASSWORD',
  'DB_ROOT_USER',
  'DB_ROOT_PASSWD',
  'DATABASE_NAME',
  'DB_NAME',
];

/** Where the SQLite file goes when `PIPELINE_SQLITE_FILE` does not say (`npm start` sets it). */
export const defaultSqliteFile = '.run/scheduler.sqlite';

/**
 * MariaDB when any of its variables is set, with the original's rules: the root account
 * when `DB_ROOT_PASSWD` is set, else `DB_USER` with `DB_PASSWD`; the database is
 * `DATABASE_NAME` (default `scheduler`). With none of them, the read model is a SQLite file
 * (`PIPELINE_SQLITE_FILE`, relative to the working directory), for a single scheduler.
 */
function readDatabase(reader: EnvReader): DatabaseConfig {
  const mariadb = mariadbVariables.find((name) =>
    name === 'DB_ROOT_PASSWD' ? reader.has(name) : reader.raw(name) !== undefined,
  );
  const sqliteFile = reader.optionalString('PIPELINE_SQLITE_FILE');
  if (sqliteFile !== undefined && mariadb !== undefined) {
    reader.report('PIPELINE_SQLITE_FILE', `cannot be combined with ${mariadb} (SQLite or MariaDB)`);
  }
  const rootPassword = reader.has('DB_ROOT_PASSWD')
    ? (reader.raw('DB_ROOT_PASSWD')?.value ?? '')
    : undefined;
  const user = reader.optionalString('DB_USER');
  const password = reader.optionalString('DB_PASSWD', 'DB_PASSWORD');
  const useRoot = rootPassword !== undefined || !user;
  return {
    host: reader.host('DB_HOST', '127.0.0.1'),
    port: reader.integer('DB_PORT', 3306, port),
    user: useRoot ? (reader.optionalString('DB_ROOT_USER') ?? 'root') : (user ?? 'root'),
    password: useRoot ? (rootPassword ?? '') : (password ?? ''),
    name: readDatabaseName(reader),
    poolSize: reader.integer('DB_POOL_SIZE', 10, positiveInteger),
    ...(mariadb === undefined && { sqliteFile: resolve(sqliteFile ?? defaultSqliteFile) }),
  };
}

function readDatabaseName(reader: EnvReader): string {
  const found = reader.raw('DATABASE_NAME', 'DB_NAME');
  if (!found) return 'scheduler';
  if (!/^[A-Za-z0-9_$]{1,64}$/.test(found.value)) {
    reader.report(found.name, 'must be a database name (letters, digits, _ and $)', found.value);
  }
  return found.value;
}

function readTimeZone(reader: EnvReader): string {
  const found = reader.raw('TIME_ZONE');
  if (!found) return 'UTC';
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: found.value });
    return found.value;
  } catch {
    reader.report('TIME_ZONE', 'must be an IANA time zone such as Europe/Berlin', found.value);
    return 'UTC';
  }
}

function readNats(reader: EnvReader): NatsConfig {
  const raw = reader.requiredString('NATS_URL');
  const servers = raw
    .split(',')
    .map((server) => server.trim())
    .filter((server) => server !== '');
  for (const server of servers) {
    if (!/^(nats|tls|ws|wss):\/\/[^\s/]+\/?$/.test(server) && !/^[^\s:/]+:\d+$/.test(server)) {
      reader.report('NATS_URL', 'must be nats://host:port (several separated by commas)', raw);
      break;
    }
  }
  const user = reader.optionalString('NATS_USER');
  const password = reader.optionalString('NATS_PASSWORD');
  const token = reader.optionalString('NATS_TOKEN');
  if ((user === undefined) !== (password === undefined)) {
    reader.report(user ? 'NATS_PASSWORD' : 'NATS_USER', 'must be set together with the other');
  }
  if (token !== undefined && user !== undefined) {
    reader.report('NATS_TOKEN', 'cannot be combined with NATS_USER and NATS_PASSWORD');
  }
  return { servers, user, password, token };
}

function readNaming(reader: EnvReader): Naming {
  const prefix = reader.optionalString('PIPELINE_SUBJECT_PREFIX') ?? 'pipeline';
  try {
    return namingFor(prefix);
  } catch {
    reader.report('PIPELINE_SUBJECT_PREFIX', 'must be letters, digits, _ and - only', prefix);
    return namingFor('pipeline');
  }
}

function readStream(reader: EnvReader): StreamConfig {
  const maxAgeDays = reader.number(
    'PIPELINE_STREAM_MAX_AGE_DAYS',
    0,
    (value) => value >= 0,
    'must be a non-negative number of days (0 keeps events for ever)',
  );
  return {
    maxAgeSeconds: Math.round(maxAgeDays * 86_400),
    maxBytes: reader.integer('PIPELINE_STREAM_MAX_BYTES', -1, {
      min: -1,
      description: 'must be a number of bytes, or -1 for no cap',
    }),
    replicas: reader.integer('PIPELINE_STREAM_REPLICAS', 1, {
      min: 1,
      max: 5,
      description: 'must be an integer from 1 to 5',
    }),
  };
}

/** pino's level names, plus the original's `PYTHON_SCHEDULER_LOG_LEVEL` spellings. */
function readLogLevel(reader: EnvReader): LogLevel {
  const found = reader.raw('LOG_LEVEL', 'PYTHON_SCHEDULER_LOG_LEVEL');
  if (!found) return 'info';
  const lower = found.value.toLowerCase();
  const mapped = lower === 'warning' ? 'warn' : lower === 'critical' ? 'fatal' : lower;
  if ((logLevels as readonly string[]).includes(mapped)) return mapped as LogLevel;
  reader.report(found.name, `must be one of ${logLevels.join(', ')}`, found.value);
  return 'info';
}

/** The configuration without secrets, for the start-up log line. */
export function describeConfig(config: SchedulerConfig): Record<string, unknown> {
  return {
    seatableServerUrl: config.seatableServerUrl,
    database:
      config.database.sqliteFile !== undefined
        ? { sqliteFile: config.database.sqliteFile }
        : { ...config.database, password: config.database.password ? '[set]' : '[empty]' },
    timeZone: config.timeZone,
    processTimeoutSeconds: config.processTimeoutSeconds,
    outputLimit: config.outputLimit,
    fairShare: config.fairShare,
    retention: config.retention,
    nats: {
      servers: config.nats.servers,
      user: config.nats.user,
      auth: config.nats.token ? 'token' : config.nats.user ? 'user' : 'none',
    },
    naming: config.naming,
    stream: config.stream,
    http: config.http,
    logLevel: config.logLevel,
    watchdogGraceSeconds: config.watchdogGraceSeconds,
    watchdogIntervalSeconds: config.watchdogIntervalSeconds,
  };
}
