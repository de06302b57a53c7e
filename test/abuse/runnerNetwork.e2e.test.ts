import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { testRunnerImage } from '../support/pipeline.ts';
import { NetworkLab } from './support/networkLab.ts';

// The runner network's isolation (issue #4, "Done when"): connections from inside a sandbox
// to NATS, MariaDB, the scheduler port, the Docker socket and another sandbox are refused,
// while the SeaTable server and the internet answer. All of it happens in two network
// namespaces of this test's own (support/networkLab.ts) with a dockerd of its own there:
// every listener a sandbox may reach is one this test started, and nothing leaves the lab.

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const canBuildLab =
  process.getuid?.() === 0 && existsSync('/usr/sbin/dockerd') && existsSync('/usr/sbin/iptables');

interface LabReport {
  before: string;
  unprivileged: { code: number | null; stderr: string };
  attack: { output: string; success: boolean };
  containersLeft: number;
  firewall: string;
}

let lab: NetworkLab;
let report: LabReport;
const outcomes = new Map<string, string>();

describe('the runner network', { skip: !canBuildLab && 'needs root, dockerd and iptables' }, () => {
  before(async () => {
    lab = new NetworkLab();
    await lab.start(testRunnerImage);
    // Stand-ins for the pipeline's services on the Docker host, listening on every address.
    await lab.listen('host', ['0.0.0.0:3306=mariadb', '0.0.0.0:5055=scheduler']);
    await lab.listen('outside', [
      `${lab.seatableAddress}:8080=seatable`,
      `${lab.privateAddress}:3306=mariadb-elsewhere`,
      `${lab.linkLocalAddress}:80=metadata`,
      `${lab.internetAddress}:80=internet`,
    ]);
    const targets = {
      seatable: `${lab.seatableAddress}:8080`,
      internet: `${lab.internetAddress}:80`,
      'mariadb-host': `${lab.hostAddress}:3306`,
      'scheduler-host': `${lab.hostAddress}:5055`,
      'mariadb-elsewhere': `${lab.privateAddress}:3306`,
      metadata: `${lab.linkLocalAddress}:80`,
    };
    const [file, ...args] = lab.inHost([process.execPath, 'test/abuse/support/isolatedStarter.ts']);
    const { stdout } = await run(file ?? 'nsenter', args, {
      cwd: repoRoot,
      env: {
        ...process.env,
        LAB_DOCKER_SOCKET: lab.socket,
        LAB_HOST_ADDRESS: lab.hostAddress,
        LAB_SEATABLE_URL: `http://${lab.seatableAddress}:8080`,
        LAB_TARGETS: JSON.stringify(targets),
      },
      maxBuffer: 16 * 1024 * 1024,
      timeout: 240_000,
    });
    report = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as LabReport;
    for (const line of report.attack.output.split('\n')) {
      const [name, ...outcome] = line.split(' ');
      if (name) outcomes.set(name, outcome.join(' '));
    }
  });

  after(async () => {
    await lab?.stop();
  });

  test('lets a sandbox through when no rule is in place: the lab proves something', () => {
    assert.equal(report.before, 'open');
  });

  test('a starter without NET_ADMIN refuses to start, with one line naming the setting', (context) => {
    context.diagnostic(report.unprivileged.stderr);
    assert.equal(report.unprivileged.code, 1);
    const lines = report.unprivileged.stderr.split('\n');
    assert.equal(lines.length, 1, report.unprivileged.stderr);
    assert.match(
      lines[0] ?? '',
      /^starter failed to start: PYTHON_RUNNER_NETWORK_ISOLATION: cannot set up the firewall of runner network \S+ \(.+\): the starter needs the Docker host's network namespace and NET_ADMIN/,
    );
  });

  test('a script reaches the SeaTable server on its private address, and the internet', () => {
    assert.equal(report.attack.success, true, report.attack.output);
    assert.equal(outcomes.get('seatable'), 'open seatable');
    assert.equal(outcomes.get('internet'), 'open internet');
  });

  test('a script cannot reach NATS, MariaDB or the scheduler on the Docker host', () => {
    assert.equal(outcomes.get('nats-host-address'), 'ECONNREFUSED');
    assert.equal(outcomes.get('mariadb-host'), 'ECONNREFUSED');
    assert.equal(outcomes.get('scheduler-host'), 'ECONNREFUSED');
  });

  test('a script cannot reach other private machines or a metadata-like link-local address', () => {
    assert.equal(outcomes.get('mariadb-elsewhere'), 'ECONNREFUSED');
    assert.equal(outcomes.get('metadata'), 'ECONNREFUSED');
  });

  test('a script cannot reach another sandbox, nor the Docker socket', (context) => {
    context.diagnostic(report.attack.output);
    assert.equal(outcomes.get('another-sandbox'), 'ECONNREFUSED');
    assert.match(report.attack.output, /^socket \/var\/run\/docker.sock False$/m);
    assert.match(report.attack.output, /^socket \/run\/docker.sock False$/m);
  });

  test('the rules are in the host namespace of the lab, ahead of the engine', () => {
    assert.match(report.firewall, /^-A DOCKER-USER -i br-\w+ -j PL-BR-\w+-F$/m);
    assert.match(report.firewall, /^-A INPUT -i br-\w+ -j PL-BR-\w+-I$/m);
    assert.equal(report.containersLeft, 0);
  });
});
