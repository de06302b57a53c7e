import { parseDockerByteSize } from './byteSize.ts';

/**
 * Extra container settings an administrator asks for with `PYTHON_RUNNER_OTHER_OPTIONS`.
 * The original passes that list of `docker run` options to the CLI as they are; here each
 * supported option maps to its Engine API field, and options that would weaken the sandbox
 * are refused instead of silently applied.
 */
export interface SandboxExtraOptions {
  /** `--add-host=name:address` */
  extraHosts: string[];
  /** `--dns=address` */
  dns: string[];
  /** `--dns-search=domain` */
  dnsSearch: string[];
  /** `--dns-option=option` */
  dnsOptions: string[];
  /** `--ulimit=name=soft[:hard]` */
  ulimits: { Name: string; Soft: number; Hard: number }[];
  /** `--env=NAME=value`: visible in `docker inspect`, so never put a secret here. */
  env: string[];
  /** `--label=key=value`, except the pipeline's own `org.seatable.pipeline*` keys. */
  labels: Record<string, string>;
  /** `--shm-size=64m` */
  shmSizeBytes?: number;
  /** `--cpu-shares=N` */
  cpuShares?: number;
  /** `--cpuset-cpus=0-1` */
  cpusetCpus?: string;
  /** `--memory-reservation=512m` */
  memoryReservationBytes?: number;
  /** `--hostname=name` */
  hostname?: string;
}

export function emptyExtraOptions(): SandboxExtraOptions {
  return {
    extraHosts: [],
    dns: [],
    dnsSearch: [],
    dnsOptions: [],
    ulimits: [],
    env: [],
    labels: {},
  };
}

// Options that break the isolation the profile exists for: host mounts, capabilities,
// namespaces, devices, another user or network. The profile's own variables cover the rest.
const refusedOptions = new Set([
  'privileged',
  'cap-add',
  'volume',
  'v',
  'mount',
  'volumes-from',
  'tmpfs',
  'device',
  'device-cgroup-rule',
  'network',
  'net',
  'network-alias',
  'pid',
  'ipc',
  'uts',
  'userns',
  'cgroupns',
  'cgroup-parent',
  'user',
  'u',
  'group-add',
  'security-opt',
  'read-only',
  'memory-swap',
  'memory-swappiness',
  'oom-kill-disable',
  'runtime',
]);

type OptionApplier = (value: string, options: SandboxExtraOptions) => string | undefined;

const ownLabelPrefix = 'org.seatable.pipeline';

const supportedOptions: Record<string, OptionApplier> = {
  'add-host': (value, options) => pushIf(/^[^:\s]+:\S+$/.test(value), options.extraHosts, value),
  dns: (value, options) => pushIf(value !== '', options.dns, value),
  'dns-search': (value, options) => pushIf(value !== '', options.dnsSearch, value),
  'dns-option': (value, options) => pushIf(value !== '', options.dnsOptions, value),
  'dns-opt': (value, options) => pushIf(value !== '', options.dnsOptions, value),
  ulimit: applyUlimit,
  env: (value, options) => pushIf(/^[^=\s]+=/.test(value), options.env, value),
  e: (value, options) => pushIf(/^[^=\s]+=/.test(value), options.env, value),
  label: applyLabel,
  l: applyLabel,
  'shm-size': (value, options) => {
    options.shmSizeBytes = parseDockerByteSize(value);
    return options.shmSizeBytes === undefined ? 'must be a size like 64m' : undefined;
  },
  'memory-reservation': (value, options) => {
    options.memoryReservationBytes = parseDockerByteSize(value);
    return options.memoryReservationBytes === undefined ? 'must be a size like 512m' : undefined;
  },
  'cpu-shares': (value, options) => {
    options.cpuShares = /^\d+$/.test(value) ? Number(value) : undefined;
    return options.cpuShares === undefined ? 'must be a non-negative integer' : undefined;
  },
  'cpuset-cpus': (value, options) => {
    options.cpusetCpus = value;
    return /^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(value) ? undefined : 'must be a CPU list like 0-1,3';
  },
  hostname: (value, options) => {
    options.hostname = value;
    return /^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/.test(value) ? undefined : 'must be a host name';
  },
};

function pushIf(valid: boolean, list: string[], value: string): string | undefined {
  if (!valid) return 'has an invalid value';
  list.push(value);
  return undefined;
}

function applyUlimit(value: string, options: SandboxExtraOptions): string | undefined {
  const match = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(value);
  if (match === null) return 'must be name=soft[:hard]';
  const [, name = '', soft = '', hard = soft] = match;
  options.ulimits.push({ Name: name, Soft: Number(soft), Hard: Number(hard) });
  return undefined;
}

function applyLabel(value: string, options: SandboxExtraOptions): string | undefined {
  const separator = value.indexOf('=');
  const key = separator < 0 ? value : value.slice(0, separator);
  if (key === '') return 'must be key=value';
  if (key.startsWith(ownLabelPrefix))
    return `must not set the pipeline's own ${ownLabelPrefix} labels`;
  options.labels[key] = separator < 0 ? '' : value.slice(separator + 1);
  return undefined;
}

export interface OtherOptionsResult {
  options: SandboxExtraOptions;
  /** What is wrong, one entry per bad option; empty when all is well. */
  problems: string[];
}

/**
 * Parses `PYTHON_RUNNER_OTHER_OPTIONS`: a list of `--name=value` strings, written as the
 * original reads it (a Python list literal, `['--dns=10.0.0.2']`) or as JSON.
 */
export function parseOtherOptions(text: string): OtherOptionsResult {
  const options = emptyExtraOptions();
  const entries = parseStringList(text);
  if (entries === undefined) {
    return { options, problems: ["must be a list of strings like ['--dns=10.0.0.2']"] };
  }

  const problems: string[] = [];
  for (const entry of entries) {
    const problem = applyOption(entry, options);
    if (problem !== undefined) problems.push(`${JSON.stringify(entry)} ${problem}`);
  }
  return { options, problems };
}

function applyOption(entry: string, options: SandboxExtraOptions): string | undefined {
  const match = /^--?([a-z][a-z-]*)=(.*)$/s.exec(entry.trim());
  const name = match?.[1] ?? /^--?([a-z][a-z-]*)$/.exec(entry.trim())?.[1];
  if (name !== undefined && refusedOptions.has(name))
    return 'is refused: it would weaken the sandbox';
  if (match === null || name === undefined) return 'must be written --name=value';
  const apply = supportedOptions[name];
  if (apply === undefined) {
    return `is not supported (supported: ${Object.keys(supportedOptions).join(', ')})`;
  }
  return apply(match[2] ?? '', options);
}

/** A JSON array of strings, or a Python list literal of quoted strings; undefined otherwise. */
export function parseStringList(text: string): string[] | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  try {
    const parsed: unknown = JSON.parse(trimmed);
    if (Array.isArray(parsed) && parsed.every((entry) => typeof entry === 'string')) return parsed;
    return undefined;
  } catch {
    return parsePythonStringList(trimmed);
  }
}

const pythonEscapes: Record<string, string> = {
  n: '\n',
  t: '\t',
  r: '\r',
  '\\': '\\',
  "'": "'",
  '"': '"',
};

function parsePythonStringList(text: string): string[] | undefined {
  if (!text.startsWith('[') || !text.endsWith(']')) return undefined;
  const entries: string[] = [];
  let position = 1;
  const skipSpace = () => {
    while (/\s/.test(text[position] ?? '')) position += 1;
  };

  for (;;) {
    skipSpace();
    if (text[position] === ']') return position === text.length - 1 ? entries : undefined;
    const quote = text[position];
    if (quote !== "'" && quote !== '"') return undefined;
    position += 1;
    let entry = '';
    while (text[position] !== quote) {
      const character = text[position];
      if (character === undefined) return undefined;
      if (character === '\\') {
        const escaped = text[position + 1] ?? '';
        entry += pythonEscapes[escaped] ?? `\\${escaped}`;
        position += 2;
      } else {
        entry += character;
        position += 1;
      }
    }
    position += 1;
    entries.push(entry);
    skipSpace();
    if (text[position] === ',') position += 1;
    else if (text[position] !== ']') return undefined;
  }
}
