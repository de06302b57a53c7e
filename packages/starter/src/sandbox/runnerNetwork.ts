import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { StarterConfig } from '../config.ts';
import type { AllowSpec } from './isolationSettings.ts';
import {
  type AllowedDestination,
  applyFirewall,
  FirewallError,
  firewallPlan,
  forwardHookOf,
  hostIptables,
  type Iptables,
  verifyFirewall,
} from './runnerFirewall.ts';
import { type ProbeTarget, probeFromSandbox } from './runnerProbe.ts';

/** The runner network is not isolated: one line naming the problem and the setting. */
export class RunnerIsolationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunnerIsolationError';
  }
}

/** What the isolation works on besides the configuration. */
export interface IsolationDeps {
  docker: Docker;
  log: Logger;
  iptables?: Iptables;
  /** The Docker host's resolvers; read from /etc/resolv.conf when absent. */
  nameservers?: string[];
}

/** The facts of a runner network the firewall needs. */
interface RunnerBridge {
  bridge: string;
  subnet: string;
  gateway: string;
}

const builtIn = new Set(['bridge', 'host', 'default']);
const remedy =
  'the starter needs the Docker host\'s network namespace and NET_ADMIN (README, "Runner network"); PYTHON_RUNNER_NETWORK_ISOLATION=off is for development only';

/**
 * Makes sure scripts on the runner network reach the SeaTable server and the internet and
 * nothing of the pipeline, before the starter takes work: sets up the runner bridge's
 * firewall (the rules of `runnerFirewall.ts`), reads it back, then tries the pipeline's own
 * addresses from a sandbox. Throws `RunnerIsolationError` when any of it fails.
 */
export async function ensureRunnerIsolation(
  config: StarterConfig,
  deps: IsolationDeps,
): Promise<void> {
  const network = config.sandbox.network;
  if (config.networkIsolation.mode === 'off') {
    deps.log.error(
      { network, setting: 'PYTHON_RUNNER_NETWORK_ISOLATION=off' },
      'runner network isolation is OFF: scripts can reach NATS, the database and the host; for development only',
    );
    return;
  }
  if (network === 'none') {
    deps.log.info({ network }, 'runner network none: scripts have no network at all');
    return;
  }
  const bridge = await runnerBridge(deps.docker, network);
  const iptables = deps.iptables ?? hostIptables;
  const allowed = await resolveAllowed(config.networkIsolation.allow);
  const plan = firewallPlan({
    ...bridge,
    allowed,
    nameservers: deps.nameservers ?? hostNameservers(),
    forwardHook: await forwardHookOf(iptables),
  });
  try {
    await applyFirewall(iptables, plan);
  } catch (error) {
    if (!(error instanceof FirewallError)) throw error;
    throw new RunnerIsolationError(
      `PYTHON_RUNNER_NETWORK_ISOLATION: cannot set up the firewall of runner network ${network} (${error.message}): ${remedy}`,
    );
  }
  const missing = await verifyFirewall(iptables, plan);
  if (missing.length > 0) {
    throw new RunnerIsolationError(
      `PYTHON_RUNNER_NETWORK_ISOLATION: the firewall of runner network ${network} is not in place: ${missing[0]}${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''}`,
    );
  }
  await probe(config, deps, bridge);
  deps.log.info(
    {
      network,
      bridge: bridge.bridge,
      allowed: allowed.map((entry) => `${entry.address}:${entry.port ?? '*'}`),
      chains: [plan.forwardChain, plan.inputChain],
    },
    'runner network isolated',
  );
}

/** The network's bridge; refuses networks that cannot be isolated. */
async function runnerBridge(docker: Docker, network: string): Promise<RunnerBridge> {
  if (builtIn.has(network)) {
    throw new RunnerIsolationError(
      `PYTHON_RUNNER_NETWORK: ${network} cannot be isolated; use a network of the pipeline's own such as runner-net (created at start-up), or none`,
    );
  }
  const info = (await docker.getNetwork(network).inspect()) as Docker.NetworkInspectInfo;
  const options = info.Options ?? {};
  const ipam = info.IPAM?.Config?.[0];
  const problem =
    info.Driver !== 'bridge'
      ? `its driver is ${info.Driver}, not bridge`
      : options['com.docker.network.bridge.enable_icc'] !== 'false'
        ? 'its containers can reach each other (com.docker.network.bridge.enable_icc is not false)'
        : info.EnableIPv6
          ? 'it has IPv6, which the firewall does not cover'
          : !ipam?.Subnet || !ipam.Gateway || isIP(ipam.Gateway) !== 4
            ? 'it has no IPv4 subnet and gateway'
            : null;
  if (problem) {
    throw new RunnerIsolationError(
      `PYTHON_RUNNER_NETWORK: network ${network} cannot be isolated: ${problem}; remove it and let the starter create it`,
    );
  }
  const bridge = options['com.docker.network.bridge.name'] ?? `br-${info.Id.slice(0, 12)}`;
  if (!interfacesHere().includes(bridge)) {
    throw new RunnerIsolationError(
      `PYTHON_RUNNER_NETWORK_ISOLATION: the bridge ${bridge} of runner network ${network} is not in the starter's network namespace: ${remedy}`,
    );
  }
  return { bridge, subnet: ipam?.Subnet ?? '', gateway: ipam?.Gateway ?? '' };
}

/** The interfaces of this process's network namespace (/sys may show another one's). */
function interfacesHere(): string[] {
  let text = '';
  try {
    text = readFileSync('/proc/self/net/dev', 'utf8');
  } catch {
    return [];
  }
  return [...text.matchAll(/^\s*([^\s:]+):/gm)].map((match) => match[1] ?? '');
}

async function resolveAllowed(specs: readonly AllowSpec[]): Promise<AllowedDestination[]> {
  const allowed: AllowedDestination[] = [];
  for (const spec of specs) {
    if (spec.host.includes('/') || isIP(spec.host) === 4) {
      allowed.push({ address: spec.host, port: spec.port, setting: spec.setting });
      continue;
    }
    let addresses: Array<{ address: string }>;
    try {
      addresses = await lookup(spec.host, { all: true, family: 4 });
    } catch (error) {
      throw new RunnerIsolationError(
        `${spec.setting}: cannot resolve ${spec.host} for the runner network's allow list (${(error as Error).message})`,
      );
    }
    for (const { address } of addresses) {
      allowed.push({ address, port: spec.port, setting: spec.setting });
    }
  }
  return allowed;
}

/** The IPv4 resolvers of /etc/resolv.conf, loopback ones aside (the engine handles those). */
export function hostNameservers(resolvConf = '/etc/resolv.conf'): string[] {
  let text = '';
  try {
    text = readFileSync(resolvConf, 'utf8');
  } catch {
    return [];
  }
  return [...text.matchAll(/^\s*nameserver\s+(\S+)/gm)]
    .map((match) => match[1] ?? '')
    .filter((address) => isIP(address) === 4 && !address.startsWith('127.'));
}

/** Tries the pipeline's own addresses from a sandbox; refuses when one answers. */
async function probe(config: StarterConfig, deps: IsolationDeps, bridge: RunnerBridge) {
  const targets = await probeTargets(config, bridge.gateway);
  const results = await probeFromSandbox(
    deps.docker,
    config.sandbox,
    { starterId: config.starterId, labels: {} },
    targets,
  );
  const reached = results.find(
    (result) => result.outcome === 'open' || result.outcome === 'unknown',
  );
  if (reached) {
    const how = reached.outcome === 'open' ? 'reaches' : 'could not be probed for';
    throw new RunnerIsolationError(
      `PYTHON_RUNNER_NETWORK_ISOLATION: a sandbox on runner network ${config.sandbox.network} ${how} ${reached.service} at ${reached.address}:${reached.port}: the firewall does not hold (README, "Runner network")`,
    );
  }
  deps.log.debug({ results }, 'runner network probed');
}

/**
 * The pipeline's own addresses a script must not reach: the NATS servers, a tcp Docker
 * engine and the starter's metrics port. Loopback and wildcard addresses stand for the Docker
 * host, which a sandbox sees at the bridge's gateway.
 */
export async function probeTargets(config: StarterConfig, gateway: string): Promise<ProbeTarget[]> {
  const endpoints: Array<{ service: string; host: string; port: number }> = [];
  for (const server of config.nats.servers) {
    const parsed = /^(?:[a-z]+:\/\/)?([^:/\s]+):?(\d+)?/.exec(server);
    if (parsed?.[1]) {
      endpoints.push({ service: 'NATS', host: parsed[1], port: Number(parsed[2] ?? 4222) });
    }
  }
  if (config.docker.kind === 'tcp') {
    endpoints.push({
      service: 'the Docker engine',
      host: config.docker.host,
      port: config.docker.port,
    });
  }
  if (config.http) {
    endpoints.push({
      service: "the starter's metrics port",
      host: config.http.host,
      port: config.http.port,
    });
  }
  const targets: ProbeTarget[] = [];
  for (const endpoint of endpoints) {
    for (const address of await addressesOf(endpoint.host)) {
      const onHost = address.startsWith('127.') || address === '0.0.0.0';
      targets.push({
        service: endpoint.service,
        address: onHost ? gateway : address,
        port: endpoint.port,
      });
    }
  }
  return targets;
}

async function addressesOf(host: string): Promise<string[]> {
  if (isIP(host) === 4) return [host];
  if (host === 'localhost') return ['127.0.0.1'];
  try {
    return (await lookup(host, { all: true, family: 4 })).map((entry) => entry.address);
  } catch {
    // A name the starter cannot resolve is one a sandbox cannot resolve either.
    return [];
  }
}
