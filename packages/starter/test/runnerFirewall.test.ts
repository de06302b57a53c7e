import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';
import {
  applyFirewall,
  blockedRanges,
  type CommandResult,
  firewallPlan,
  type Iptables,
  restoreInput,
  verifyFirewall,
} from '../src/sandbox/runnerFirewall.ts';
import { hostNameservers, probeTargets } from '../src/sandbox/runnerNetwork.ts';

const plan = firewallPlan({
  bridge: 'br-0123456789ab',
  subnet: '172.30.0.0/16',
  allowed: [
    { address: '10.0.0.5', port: 443, setting: 'SEATABLE_SERVER_URL' },
    { address: '192.168.7.0/24', port: null, setting: 'PYTHON_RUNNER_NETWORK_ALLOW' },
  ],
  nameservers: ['10.255.255.53'],
  forwardHook: 'DOCKER-USER',
});

/** An iptables that keeps chains in memory, the way the kernel would answer -S, -C and -I. */
class MemoryIptables implements Iptables {
  readonly chains = new Map<string, string[]>([
    ['INPUT', []],
    ['DOCKER-USER', ['-j RETURN']],
  ]);
  refuse = false;

  async run(args: readonly string[]): Promise<CommandResult> {
    if (this.refuse) return fail('Permission denied (you must be root)');
    const [flag, chain = '', ...rest] = args;
    const rules = this.chains.get(chain);
    if (!rules) return fail(`No chain/target/match by that name: ${chain}`);
    if (flag === '-S') {
      const lines = [`-N ${chain}`, ...rules.map((rule) => `-A ${chain} ${rule}`)];
      return { code: 0, stdout: `${lines.join('\n')}\n`, stderr: '' };
    }
    if (flag === '-C') return rules.includes(rest.join(' ')) ? ok() : fail('Bad rule');
    if (flag === '-I') {
      rules.splice(Number(rest[0]) - 1, 0, rest.slice(1).join(' '));
      return ok();
    }
    return fail(`unexpected ${flag}`);
  }

  async restore(input: string): Promise<CommandResult> {
    if (this.refuse) return fail('Permission denied (you must be root)');
    for (const line of input.split('\n')) {
      const declared = /^:(\S+) - \[0:0\]$/.exec(line);
      if (declared?.[1]) this.chains.set(declared[1], []);
      const appended = /^-A (\S+) (.*)$/.exec(line);
      if (appended?.[1]) this.chains.get(appended[1])?.push(appended[2] ?? '');
    }
    return ok();
  }
}

function ok(): CommandResult {
  return { code: 0, stdout: '', stderr: '' };
}
function fail(stderr: string): CommandResult {
  return { code: 1, stdout: '', stderr };
}

describe('the runner bridge firewall', () => {
  test('refuses every private, link-local and loopback range and the runner subnet itself', () => {
    const destinations = plan.forwardRules
      .filter((rule) => rule.includes('REJECT'))
      .map((rule) => rule[1]);

    assert.deepEqual(destinations, ['172.30.0.0/16', ...blockedRanges]);
    for (const range of ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16']) {
      assert.ok(destinations.includes(range), range);
    }
  });

  test('lets answers, the allowed destinations and DNS to the host resolvers through first', () => {
    const firstReject = plan.forwardRules.findIndex((rule) => rule.includes('REJECT'));
    const before = plan.forwardRules.slice(0, firstReject).map((rule) => rule.join(' '));

    assert.deepEqual(before, [
      '-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
      '-p tcp -m conntrack --ctorigdst 10.0.0.5/32 --ctorigdstport 443 -j RETURN',
      '-m conntrack --ctorigdst 192.168.7.0/24 -j RETURN',
      '-d 10.255.255.53/32 -p udp -m udp --dport 53 -j RETURN',
      '-d 10.255.255.53/32 -p tcp -m tcp --dport 53 -j RETURN',
    ]);
  });

  test('refuses anything else addressed to the Docker host itself', () => {
    assert.deepEqual(plan.inputRules.at(-1), [
      '-j',
      'REJECT',
      '--reject-with',
      'icmp-port-unreachable',
    ]);
    assert.equal(plan.inputChain, 'PL-BR-0123456789AB-I');
  });

  test('is written in one iptables-restore that replaces only its own chains', () => {
    const input = restoreInput(plan);

    assert.match(
      input,
      /^\*filter\n:PL-BR-0123456789AB-F - \[0:0\]\n:PL-BR-0123456789AB-I - \[0:0\]\n/,
    );
    assert.match(input, /\nCOMMIT\n$/);
    assert.doesNotMatch(input, /^:(INPUT|FORWARD|DOCKER-USER) /m);
  });

  test('applied, reads back as in place; applied again, adds no second jump', async () => {
    const iptables = new MemoryIptables();

    await applyFirewall(iptables, plan);
    await applyFirewall(iptables, plan);

    assert.deepEqual(await verifyFirewall(iptables, plan), []);
    assert.deepEqual(iptables.chains.get('DOCKER-USER'), [
      '-i br-0123456789ab -j PL-BR-0123456789AB-F',
      '-j RETURN',
    ]);
    assert.deepEqual(iptables.chains.get('INPUT'), ['-i br-0123456789ab -j PL-BR-0123456789AB-I']);
  });

  test('reads as not in place when a rule is missing, added, or bypassed by an earlier accept', async () => {
    const iptables = new MemoryIptables();
    await applyFirewall(iptables, plan);
    iptables.chains.get(plan.forwardChain)?.pop();
    iptables.chains.get(plan.inputChain)?.unshift('-j ACCEPT');
    iptables.chains.get('INPUT')?.unshift('-j ACCEPT');

    const problems = await verifyFirewall(iptables, plan);

    assert.equal(problems.length, 4, problems.join('\n'));
    assert.match(problems[0] ?? '', /^chain PL-BR-0123456789AB-F holds \d+ rules, expected \d+$/);
    assert.match(problems[1] ?? '', /lacks "-d 240.0.0.0\/4 -j REJECT/);
    assert.match(problems[3] ?? '', /^chain INPUT accepts traffic before the jump/);
  });

  test('says what iptables said when it may not change the rules', async () => {
    const iptables = new MemoryIptables();
    iptables.refuse = true;

    await assert.rejects(
      applyFirewall(iptables, plan),
      /^FirewallError: iptables-restore: Permission denied/,
    );
  });
});

describe('the isolation settings', () => {
  test('enforce by default, with the SeaTable server allowed on its port', () => {
    const config = loadConfig({ SEATABLE_SERVER_URL: 'https://cloud.example.invalid' });

    assert.equal(config.networkIsolation.mode, 'enforce');
    assert.deepEqual(config.networkIsolation.allow, [
      { host: 'cloud.example.invalid', port: 443, setting: 'SEATABLE_SERVER_URL' },
    ]);
  });

  test('reads the allow list and the opt-out', () => {
    const config = loadConfig({
      PYTHON_RUNNER_NETWORK_ISOLATION: 'off',
      PYTHON_RUNNER_NETWORK_ALLOW: '10.1.2.3:8080, 192.168.5.0/24, files.example.invalid',
    });

    assert.equal(config.networkIsolation.mode, 'off');
    assert.deepEqual(
      config.networkIsolation.allow.map((entry) => [entry.host, entry.port]),
      [
        ['10.1.2.3', 8080],
        ['192.168.5.0/24', null],
        ['files.example.invalid', null],
      ],
    );
  });

  test('names each bad setting in one line', () => {
    let problems: string[] = [];
    try {
      loadConfig({
        PYTHON_RUNNER_NETWORK_ISOLATION: 'maybe',
        PYTHON_RUNNER_NETWORK_ALLOW: '10.0.0.0/33',
        SEATABLE_SERVER_URL: 'ftp://x',
      });
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      problems = error.problems;
    }

    assert.deepEqual(problems.sort(), [
      'PYTHON_RUNNER_NETWORK_ALLOW: must be host[:port] or a.b.c.d/nn[:port], comma-separated, got "10.0.0.0/33"',
      'PYTHON_RUNNER_NETWORK_ISOLATION: must be enforce or off, got "maybe"',
      'SEATABLE_SERVER_URL: must be an http(s) URL with a host name or IPv4 address, got "ftp://x"',
    ]);
  });
});

describe('the start-up probe', () => {
  test("tries the pipeline's own addresses only, the host's loopback at the bridge's gateway", async () => {
    const config = loadConfig({
      NATS_URL: 'nats://127.0.0.1:4222,nats://10.0.0.8:4223',
      DOCKER_HOST: 'tcp://10.0.0.9:2375',
      PYTHON_STARTER_METRICS_PORT: '9464',
      PIPELINE_METRICS_TOKEN: 'metrics',
    });

    const targets = await probeTargets(config, '172.30.0.1');

    assert.deepEqual(targets, [
      { service: 'NATS', address: '172.30.0.1', port: 4222 },
      { service: 'NATS', address: '10.0.0.8', port: 4223 },
      { service: 'the Docker engine', address: '10.0.0.9', port: 2375 },
      { service: "the starter's metrics port", address: '172.30.0.1', port: 9464 },
    ]);
  });

  test('allows DNS to the resolvers of resolv.conf, loopback ones aside', () => {
    const folder = mkdtempSync(join(tmpdir(), 'pipeline-resolv-'));
    const file = join(folder, 'resolv.conf');
    writeFileSync(file, '# test\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver ::1\n');
    try {
      assert.deepEqual(hostNameservers(file), ['10.0.0.2']);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
