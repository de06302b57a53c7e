import { parseDockerByteSize } from './byteSize.ts';
import { parseOtherOptions, type SandboxExtraOptions } from './otherOptions.ts';

/**
 * How one run's container is locked down. Read from the environment by
 * `loadSandboxProfile`; turned into Docker's create options by `containerCreateOptions`.
 * Where the original starter has a variable for a field, its name and meaning are kept.
 */
export interface SandboxProfile {
  /** The runner image (`PYTHON_RUNNER_IMAGE`). @default 'seatable-pipeline-runner:offline' */
  image: string;
  /** Memory limit; swap is off, so this is all the script gets (`PYTHON_RUNNER_CONTAINER_MEMORY`). @default 2 GiB */
  memoryBytes: number;
  /** CPU quota in billionths of a CPU (`PYTHON_RUNNER_CONTAINER_CPUS`). @default 1 CPU */
  nanoCpus: number;
  /** Most processes and threads at once (`PYTHON_RUNNER_PIDS_LIMIT`). @default 128 */
  pidsLimit: number;
  /** Read-only root filesystem (`PYTHON_RUNNER_READ_ONLY_FILESYSTEM`). @default true */
  readOnlyRootfs: boolean;
  /** Size of the in-memory /tmp (`PYTHON_RUNNER_TMPFS_MOUNT_SIZE_IN_BYTES`). @default 100 MiB */
  tmpfsSizeBytes: number;
  /** Capabilities dropped, always including NET_RAW (`PYTHON_RUNNER_DROPPED_CAPABILITIES`). @default ['ALL'] */
  droppedCapabilities: readonly string[];
  /** `no-new-privileges` (`PYTHON_RUNNER_NO_NEW_PRIVILEGES`). @default true */
  noNewPrivileges: boolean;
  /** `uid:gid` or `name:group`, never root (`PYTHON_RUNNER_USER`/`_UID`, `_GROUP`/`_GID`). @default '1000:1000' */
  user: string;
  /** The Docker network of the containers (`PYTHON_RUNNER_NETWORK`). @default 'runner-net' */
  network: string;
  /** Further settings from `PYTHON_RUNNER_OTHER_OPTIONS`. @default none */
  extraOptions: SandboxExtraOptions;
}

/** The image the offline builder tags: tests and `npm start` run it. */
export const OFFLINE_RUNNER_IMAGE = 'seatable-pipeline-runner:offline';
/** The user the runner images create (`seatable`, 1000:1000). */
export const RUNNER_IMAGE_USER = '1000:1000';

export const sandboxProfileDefaults = {
  image: OFFLINE_RUNNER_IMAGE,
  memoryBytes: 2 * 1024 ** 3,
  cpus: 1,
  pidsLimit: 128,
  readOnlyRootfs: true,
  tmpfsSizeBytes: 100 * 1024 ** 2,
  droppedCapabilities: ['ALL'],
  noNewPrivileges: true,
  uid: '1000',
  gid: '1000',
  network: 'runner-net',
} as const;

// Docker refuses a memory limit below 6 MiB.
const minimumMemoryBytes = 6 * 1024 ** 2;

export type SandboxProfileResult =
  | { ok: true; profile: SandboxProfile }
  | { ok: false; problems: string[] };

type Env = Record<string, string | undefined>;

/** Collects one line per bad variable instead of stopping at the first. */
class ProfileReader {
  readonly problems: string[] = [];
  private readonly env: Env;

  constructor(env: Env) {
    this.env = env;
  }

  /** The trimmed value, or undefined when the variable is unset or blank. */
  value(name: string): string | undefined {
    const value = this.env[name]?.trim();
    return value === '' ? undefined : value;
  }

  report(name: string, problem: string, value: string): void {
    this.problems.push(`${name}: ${problem}, got ${JSON.stringify(value)}`);
  }

  parsed<T>(name: string, fallback: T, parse: (text: string) => T | undefined, problem: string): T {
    const text = this.value(name);
    if (text === undefined) return fallback;
    const parsed = parse(text);
    if (parsed === undefined) this.report(name, problem, text);
    return parsed ?? fallback;
  }
}

function parseBoolean(text: string): boolean | undefined {
  const lower = text.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  return undefined;
}

function parsePositiveInteger(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

function parseNanoCpus(text: string): number | undefined {
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(text)) return undefined;
  const nanoCpus = Math.round(Number(text) * 1e9);
  return nanoCpus > 0 ? nanoCpus : undefined;
}

function parseMemory(text: string): number | undefined {
  const bytes = parseDockerByteSize(text);
  return bytes !== undefined && bytes >= minimumMemoryBytes ? bytes : undefined;
}

const capabilityPattern = /^(CAP_)?[A-Z][A-Z_]*$/;

function parseCapabilities(text: string): string[] | undefined {
  const names = text
    .split(',')
    .map((name) => name.trim().toUpperCase())
    .filter((name) => name !== '');
  if (names.length === 0 || !names.every((name) => capabilityPattern.test(name))) return undefined;
  const capabilities = names.map((name) => name.replace(/^CAP_/, ''));
  // NET_RAW lets a script forge packets on the runner network: always dropped.
  if (!capabilities.includes('ALL') && !capabilities.includes('NET_RAW'))
    capabilities.push('NET_RAW');
  return [...new Set(capabilities)];
}

const userPattern = /^([0-9]+|[a-z_][a-z0-9_-]*)$/i;

/** The original takes `PYTHON_RUNNER_USER` over `_UID` and `_GROUP` over `_GID`. */
function readUser(reader: ProfileReader): string {
  const userName =
    reader.value('PYTHON_RUNNER_USER') !== undefined ? 'PYTHON_RUNNER_USER' : 'PYTHON_RUNNER_UID';
  const groupName =
    reader.value('PYTHON_RUNNER_GROUP') !== undefined ? 'PYTHON_RUNNER_GROUP' : 'PYTHON_RUNNER_GID';
  const user = reader.value(userName) ?? sandboxProfileDefaults.uid;
  const group = reader.value(groupName) ?? sandboxProfileDefaults.gid;

  if (!userPattern.test(user))
    reader.report(userName, 'must be a user name or a numeric uid', user);
  else if (user === '0' || user === 'root') reader.report(userName, 'must not be root', user);
  if (!userPattern.test(group))
    reader.report(groupName, 'must be a group name or a numeric gid', group);
  else if (group === '0' || group === 'root')
    reader.report(groupName, 'must not be the root group', group);
  return `${user}:${group}`;
}

function readOtherOptions(reader: ProfileReader): SandboxExtraOptions {
  const text = reader.value('PYTHON_RUNNER_OTHER_OPTIONS') ?? '';
  const { options, problems } = parseOtherOptions(text);
  if (problems.length > 0) {
    reader.problems.push(`PYTHON_RUNNER_OTHER_OPTIONS: ${problems.join('; ')}`);
  }
  return options;
}

const networkPattern = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * Reads the sandbox profile from the environment. Every bad variable is reported, one line
 * each (`PYTHON_RUNNER_CONTAINER_CPUS: must be a positive number, got "abc"`), so that the
 * caller can stop with the whole list.
 */
export function loadSandboxProfile(env: Env = process.env): SandboxProfileResult {
  const reader = new ProfileReader(env);
  const defaults = sandboxProfileDefaults;
  const image = reader.value('PYTHON_RUNNER_IMAGE') ?? defaults.image;
  if (/\s/.test(image)) reader.report('PYTHON_RUNNER_IMAGE', 'must be an image reference', image);
  const network = reader.value('PYTHON_RUNNER_NETWORK') ?? defaults.network;
  if (!networkPattern.test(network))
    reader.report('PYTHON_RUNNER_NETWORK', 'must be a Docker network name', network);

  const profile: SandboxProfile = {
    image,
    memoryBytes: reader.parsed(
      'PYTHON_RUNNER_CONTAINER_MEMORY',
      defaults.memoryBytes,
      parseMemory,
      'must be a size of at least 6m like 2g or 256m',
    ),
    nanoCpus: reader.parsed(
      'PYTHON_RUNNER_CONTAINER_CPUS',
      defaults.cpus * 1e9,
      parseNanoCpus,
      'must be a positive number of CPUs like 1 or 0.5',
    ),
    pidsLimit: reader.parsed(
      'PYTHON_RUNNER_PIDS_LIMIT',
      defaults.pidsLimit,
      parsePositiveInteger,
      'must be a positive integer',
    ),
    readOnlyRootfs: reader.parsed(
      'PYTHON_RUNNER_READ_ONLY_FILESYSTEM',
      defaults.readOnlyRootfs,
      parseBoolean,
      'must be true or false',
    ),
    tmpfsSizeBytes: reader.parsed(
      'PYTHON_RUNNER_TMPFS_MOUNT_SIZE_IN_BYTES',
      defaults.tmpfsSizeBytes,
      parsePositiveInteger,
      'must be a positive integer (bytes)',
    ),
    droppedCapabilities: reader.parsed(
      'PYTHON_RUNNER_DROPPED_CAPABILITIES',
      [...defaults.droppedCapabilities],
      parseCapabilities,
      'must be a comma-separated list of capability names like NET_RAW,MKNOD or ALL',
    ),
    noNewPrivileges: reader.parsed(
      'PYTHON_RUNNER_NO_NEW_PRIVILEGES',
      defaults.noNewPrivileges,
      parseBoolean,
      'must be true or false',
    ),
    user: readUser(reader),
    network,
    extraOptions: readOtherOptions(reader),
  };

  return reader.problems.length > 0
    ? { ok: false, problems: reader.problems }
    : { ok: true, profile };
}
