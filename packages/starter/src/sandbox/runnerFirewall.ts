import { execFile } from 'node:child_process';

/**
 * Destinations a script never reaches from the runner network, whatever their port: the
 * private, shared (carrier-grade NAT), loopback, link-local (cloud metadata services),
 * reserved and multicast ranges of IPv4. The pipeline's own services (NATS, MariaDB, the
 * scheduler, other Docker hosts) live in them; the internet does not.
 */
export const blockedRanges: readonly string[] = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '224.0.0.0/4',
  '240.0.0.0/4',
];

/** An address (or IPv4 range) scripts may reach although it is private, on one port or all. */
export interface AllowedDestination {
  /** An IPv4 address or CIDR range. */
  address: string;
  /** Null for every port. */
  port: number | null;
  /** The setting it comes from, for the log and for error lines. */
  setting: string;
}

/** The rules that keep one runner bridge's containers away from everything private. */
export interface FirewallPlan {
  bridge: string;
  /** Forwarded traffic from the bridge: jumped to from `forwardHook`. */
  forwardChain: string;
  /** Traffic from the bridge to the Docker host itself: jumped to from INPUT. */
  inputChain: string;
  /** DOCKER-USER when the engine manages iptables (its own rules come after), else FORWARD. */
  forwardHook: 'DOCKER-USER' | 'FORWARD';
  forwardRules: string[][];
  inputRules: string[][];
}

export interface FirewallPlanInput {
  bridge: string;
  /** The runner network's own subnet: sandboxes never reach each other. */
  subnet: string;
  allowed: readonly AllowedDestination[];
  /** Resolvers of the Docker host: the engine's DNS for the containers asks them. */
  nameservers: readonly string[];
  forwardHook: FirewallPlan['forwardHook'];
}

const reject = ['-j', 'REJECT', '--reject-with', 'icmp-port-unreachable'];
const established = ['-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'RETURN'];

/**
 * The rules for one runner bridge, in order. Allowed destinations match the connection's
 * original destination (before Docker's port publishing rewrote it), so a SeaTable server
 * published on this host's address stays reachable on its port and nothing else there does.
 * Blocked ranges match the destination after that rewrite, so a service published on a
 * public address of the host is still refused when it runs in a private container.
 */
export function firewallPlan(input: FirewallPlanInput): FirewallPlan {
  const tag = input.bridge.toUpperCase();
  const allowRules = input.allowed.map(allowRule);
  const dnsRules = input.nameservers.flatMap((server) =>
    ['udp', 'tcp'].map((protocol) => [
      '-d',
      `${server}/32`,
      '-p',
      protocol,
      '-m',
      protocol,
      '--dport',
      '53',
      '-j',
      'RETURN',
    ]),
  );
  const blocked = [input.subnet, ...blockedRanges].map((range) => ['-d', range, ...reject]);
  return {
    bridge: input.bridge,
    forwardChain: `PL-${tag}-F`,
    inputChain: `PL-${tag}-I`,
    forwardHook: input.forwardHook,
    forwardRules: [established, ...allowRules, ...dnsRules, ...blocked],
    inputRules: [established, ...allowRules, ...dnsRules, reject],
  };
}

function allowRule(allowed: AllowedDestination): string[] {
  const destination = allowed.address.includes('/') ? allowed.address : `${allowed.address}/32`;
  if (allowed.port === null) {
    return ['-m', 'conntrack', '--ctorigdst', destination, '-j', 'RETURN'];
  }
  return [
    '-p',
    'tcp',
    '-m',
    'conntrack',
    '--ctorigdst',
    destination,
    '--ctorigdstport',
    String(allowed.port),
    '-j',
    'RETURN',
  ];
}

/** The input of `iptables-restore --noflush`: creates or empties both chains, then fills them. */
export function restoreInput(plan: FirewallPlan): string {
  const lines = ['*filter', `:${plan.forwardChain} - [0:0]`, `:${plan.inputChain} - [0:0]`];
  for (const rule of plan.forwardRules) lines.push(['-A', plan.forwardChain, ...rule].join(' '));
  for (const rule of plan.inputRules) lines.push(['-A', plan.inputChain, ...rule].join(' '));
  lines.push('COMMIT', '');
  return lines.join('\n');
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs iptables and iptables-restore; an interface so the rules can be read in tests. */
export interface Iptables {
  run(args: readonly string[], input?: string): Promise<CommandResult>;
  restore(input: string): Promise<CommandResult>;
}

/** The host's iptables binaries, waiting for the xtables lock as Docker does. */
export const hostIptables: Iptables = {
  run: (args) => command('iptables', ['-w', '5', ...args]),
  restore: (input) => command('iptables-restore', ['-w', '5', '--noflush'], input),
};

function command(file: string, args: string[], input?: string): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { timeout: 15_000 }, (error, stdout, stderr) => {
      if (!error) {
        resolve({ code: 0, stdout, stderr });
        return;
      }
      if (typeof error.code === 'number') {
        resolve({ code: error.code, stdout, stderr });
        return;
      }
      // It did not run: not installed, or (EPERM) its file capability is not in the
      // container's bounding set because NET_ADMIN was not added.
      const reason = error.code === 'ENOENT' ? 'not installed' : error.message;
      resolve({ code: 127, stdout, stderr: `${file}: ${reason}` });
    });
    // iptables itself reads no input and may be gone before the pipe is written.
    child.stdin?.on('error', () => {});
    child.stdin?.end(input ?? '');
  });
}

/** The hook chain for forwarded traffic: DOCKER-USER when the engine made it. */
export async function forwardHookOf(iptables: Iptables): Promise<FirewallPlan['forwardHook']> {
  const dockerUser = await iptables.run(['-S', 'DOCKER-USER']);
  return dockerUser.code === 0 ? 'DOCKER-USER' : 'FORWARD';
}

/** A command that failed, as one line: what was run and what iptables said. */
export class FirewallError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FirewallError';
  }
}

/**
 * Writes the plan's chains (atomically, replacing what they held) and puts the jumps to
 * them first in their hook chains unless they are there already.
 */
export async function applyFirewall(iptables: Iptables, plan: FirewallPlan): Promise<void> {
  const restored = await iptables.restore(restoreInput(plan));
  if (restored.code !== 0) throw new FirewallError(`iptables-restore: ${firstLine(restored)}`);
  for (const [hook, chain] of hooks(plan)) {
    const jump = ['-i', plan.bridge, '-j', chain];
    if ((await iptables.run(['-C', hook, ...jump])).code === 0) continue;
    const inserted = await iptables.run(['-I', hook, '1', ...jump]);
    if (inserted.code !== 0) throw new FirewallError(`iptables -I ${hook}: ${firstLine(inserted)}`);
  }
}

/**
 * What is missing from the host's rules for the plan, one line each (empty when the rules
 * are in place): every rule of both chains, nothing more in them, and the jumps ahead of any
 * rule in their hook chains that accepts traffic.
 */
export async function verifyFirewall(iptables: Iptables, plan: FirewallPlan): Promise<string[]> {
  const problems: string[] = [];
  const chains: Array<[string, string[][]]> = [
    [plan.forwardChain, plan.forwardRules],
    [plan.inputChain, plan.inputRules],
  ];
  for (const [chain, rules] of chains) {
    const listed = await iptables.run(['-S', chain]);
    if (listed.code !== 0) {
      problems.push(`chain ${chain} is missing (${firstLine(listed)})`);
      continue;
    }
    const count = listed.stdout.split('\n').filter((line) => line.startsWith('-A ')).length;
    if (count !== rules.length) {
      problems.push(`chain ${chain} holds ${count} rules, expected ${rules.length}`);
    }
    for (const rule of rules) {
      if ((await iptables.run(['-C', chain, ...rule])).code !== 0) {
        problems.push(`chain ${chain} lacks "${rule.join(' ')}"`);
      }
    }
  }
  for (const [hook, chain] of hooks(plan)) {
    const problem = await jumpProblem(iptables, hook, plan.bridge, chain);
    if (problem) problems.push(problem);
  }
  return problems;
}

async function jumpProblem(
  iptables: Iptables,
  hook: string,
  bridge: string,
  chain: string,
): Promise<string | null> {
  const listed = await iptables.run(['-S', hook]);
  if (listed.code !== 0) return `chain ${hook} cannot be read (${firstLine(listed)})`;
  const rules = listed.stdout.split('\n').filter((line) => line.startsWith('-A '));
  const position = rules.findIndex(
    (line) => line.includes(`-j ${chain}`) && line.includes(`-i ${bridge}`),
  );
  if (position < 0) return `chain ${hook} has no jump to ${chain} for ${bridge}`;
  const accepting = rules.slice(0, position).find((line) => / -j ACCEPT\b/.test(line));
  return accepting
    ? `chain ${hook} accepts traffic before the jump to ${chain}: ${accepting}`
    : null;
}

function hooks(plan: FirewallPlan): Array<[string, string]> {
  return [
    [plan.forwardHook, plan.forwardChain],
    ['INPUT', plan.inputChain],
  ];
}

function firstLine(result: CommandResult): string {
  return result.stderr.trim().split('\n')[0] || `exit code ${result.code}`;
}
