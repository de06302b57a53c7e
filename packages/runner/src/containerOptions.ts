import type { ContainerCreateOptions, NetworkCreateOptions } from 'dockerode';
import type { SandboxProfile } from './sandboxProfile.ts';

/** Every container of the pipeline carries this label, with the value `run`. */
export const PIPELINE_LABEL = 'org.seatable.pipeline';
export const PIPELINE_LABEL_VALUE = 'run';
/** The run id (the stream sequence of its RunRequested), as a decimal string. */
export const RUN_ID_LABEL = 'org.seatable.pipeline.run-id';
/** The starter that created the container: it removes its orphans after a crash. */
export const STARTER_ID_LABEL = 'org.seatable.pipeline.starter-id';

/**
 * A prepared container of a starter's warm pool, not yet given to a run: the value is the
 * hash of the sandbox profile and image it was made from (a changed one retires it).
 */
export const POOL_LABEL = 'org.seatable.pipeline.pool';
/**
 * A value of its own for each create request: a create whose answer never came (the engine
 * stopped or the connection broke) is looked for by it, since the engine may have made the
 * container all the same.
 */
export const CREATE_ID_LABEL = 'org.seatable.pipeline.create-id';

/** Image labels the runner images set. */
export const imageLabels = {
  runnerVersion: 'org.seatable.pipeline.runner-version',
  /** A version of seatable-api, or `absent-offline-build` in the offline image. */
  seatableApi: 'org.seatable.pipeline.seatable-api',
  builderHash: 'org.seatable.pipeline.builder-hash',
} as const;
export const SEATABLE_API_ABSENT = 'absent-offline-build';

/** The in-container entrypoint; it reads the hand-over on standard input. */
export const RUNNER_ENTRYPOINT: readonly string[] = ['python3', '/opt/pipeline/entrypoint.py'];

export interface ContainerIdentity {
  runId: number;
  starterId: string;
  /** Container name; Docker picks one when absent. */
  name?: string;
  /** More labels; the pipeline's own keys always win. */
  labels?: Record<string, string>;
}

export function runLabels(runId: number, starterId: string): Record<string, string> {
  return {
    [PIPELINE_LABEL]: PIPELINE_LABEL_VALUE,
    [RUN_ID_LABEL]: String(runId),
    [STARTER_ID_LABEL]: starterId,
  };
}

/**
 * Docker's create options for one run under `profile`. The container holds no secret and
 * no per-run setting besides its labels: the script, its environment and its context arrive
 * later on standard input (the hand-over), which the starter writes and then closes.
 */
export function containerCreateOptions(
  profile: SandboxProfile,
  identity: ContainerIdentity,
): ContainerCreateOptions {
  const extra = profile.extraOptions;
  return {
    ...(identity.name === undefined ? {} : { name: identity.name }),
    Image: profile.image,
    Entrypoint: [...RUNNER_ENTRYPOINT],
    Cmd: [],
    Env: [...extra.env],
    User: profile.user,
    WorkingDir: '/tmp',
    ...(extra.hostname === undefined ? {} : { Hostname: extra.hostname }),
    Labels: {
      ...extra.labels,
      ...identity.labels,
      ...runLabels(identity.runId, identity.starterId),
    },
    // Standard input stays open until the starter has written the hand-over and closed it;
    // StdinOnce turns that close into the end of file the entrypoint waits for.
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    OpenStdin: true,
    StdinOnce: true,
    Tty: false,
    HostConfig: hostConfig(profile),
  };
}

/**
 * Docker's create options for a prepared container of the warm pool: exactly those of a
 * cold run under the same profile (same lock-down, same labels), except that no run id is
 * known yet, so the run-id label is absent and `POOL_LABEL` carries `profileHash` instead.
 */
export function pooledContainerCreateOptions(
  profile: SandboxProfile,
  identity: { starterId: string; labels?: Record<string, string>; profileHash: string },
): ContainerCreateOptions {
  const options = containerCreateOptions(profile, {
    runId: 0,
    starterId: identity.starterId,
    ...(identity.labels ? { labels: identity.labels } : {}),
  });
  const { [RUN_ID_LABEL]: _runId, ...labels } = options.Labels ?? {};
  return { ...options, Labels: { ...labels, [POOL_LABEL]: identity.profileHash } };
}

/** Where the entrypoint writes the script; matches RUN_ROOT in entrypoint.py. */
export const runDirectoryMount = '/run/pipeline';
const runDirectorySizeBytes = 32 * 1024 * 1024;

function hostConfig(profile: SandboxProfile): NonNullable<ContainerCreateOptions['HostConfig']> {
  const extra = profile.extraOptions;
  return {
    Memory: profile.memoryBytes,
    // Equal to Memory: no swap, so running out of memory is an OOM kill, not a crawl.
    MemorySwap: profile.memoryBytes,
    NanoCpus: profile.nanoCpus,
    PidsLimit: profile.pidsLimit,
    ReadonlyRootfs: profile.readOnlyRootfs,
    Tmpfs: {
      '/tmp': `rw,nosuid,nodev,size=${profile.tmpfsSizeBytes},mode=1777`,
      // The entrypoint's own place for the script and the script's home, apart from /tmp so
      // that a run sees an empty /tmp (BC-07).
      [runDirectoryMount]: `rw,nosuid,nodev,size=${runDirectorySizeBytes},mode=1777`,
    },
    CapDrop: [...profile.droppedCapabilities],
    SecurityOpt: profile.noNewPrivileges ? ['no-new-privileges:true'] : [],
    NetworkMode: profile.network,
    Privileged: false,
    IpcMode: 'private',
    AutoRemove: false,
    // The starter reads the output from the attached streams; the engine keeps no copy on
    // disk, so one run's flood cannot fill the host's log directory.
    LogConfig: { Type: 'none', Config: {} },
    ...(extra.extraHosts.length > 0 ? { ExtraHosts: [...extra.extraHosts] } : {}),
    ...(extra.dns.length > 0 ? { Dns: [...extra.dns] } : {}),
    ...(extra.dnsSearch.length > 0 ? { DnsSearch: [...extra.dnsSearch] } : {}),
    ...(extra.dnsOptions.length > 0 ? { DnsOptions: [...extra.dnsOptions] } : {}),
    ...(extra.ulimits.length > 0
      ? { Ulimits: extra.ulimits.map((ulimit) => ({ ...ulimit })) }
      : {}),
    ...(extra.shmSizeBytes === undefined ? {} : { ShmSize: extra.shmSizeBytes }),
    ...(extra.cpuShares === undefined ? {} : { CpuShares: extra.cpuShares }),
    ...(extra.cpusetCpus === undefined ? {} : { CpusetCpus: extra.cpusetCpus }),
    ...(extra.memoryReservationBytes === undefined
      ? {}
      : { MemoryReservation: extra.memoryReservationBytes }),
  };
}

/**
 * Options for the runner network: an IPv4 bridge whose containers cannot reach each other
 * (inter-container communication off). The starter's firewall for the bridge keeps them
 * from the Docker host and every private address (packages/starter/src/sandbox/runnerNetwork.ts).
 */
export function runnerNetworkCreateOptions(name: string): NetworkCreateOptions {
  return {
    Name: name,
    Driver: 'bridge',
    CheckDuplicate: true,
    Internal: false,
    // The firewall covers IPv4 only; the starter refuses a runner network with IPv6.
    EnableIPv6: false,
    Options: { 'com.docker.network.bridge.enable_icc': 'false' },
    Labels: { [PIPELINE_LABEL]: 'runner-network' },
  };
}
