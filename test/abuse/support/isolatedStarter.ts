/**
 * The starter side of the runner network test, run inside the lab's host namespace
 * (networkLab.ts) by runnerNetwork.e2e.test.ts: a StarterHarness (its own nats-server, file
 * server and claim responder) around a starter driving the lab's dockerd. Prints one line of
 * JSON with what it saw; the test asserts on it.
 */
import { spawn } from 'node:child_process';
import Docker from 'dockerode';
import { runnerNetworkCreateOptions } from '../../../packages/runner/src/index.ts';
import { probeFromSandbox } from '../../../packages/starter/src/sandbox/runnerProbe.ts';
import { StarterHarness } from '../../../packages/starter/test/support/starterHarness.ts';

const socket = process.env.LAB_DOCKER_SOCKET ?? '';
const hostAddress = process.env.LAB_HOST_ADDRESS ?? '';
const seatableUrl = process.env.LAB_SEATABLE_URL ?? '';
const targets = JSON.parse(process.env.LAB_TARGETS ?? '{}') as Record<string, string>;
const engine = new Docker({ socketPath: socket });
const harness = new StarterHarness('netlab');

/** A run that connects to each target and prints `<name> <outcome>`, then looks for sockets. */
function attackScript(named: Record<string, string>): string {
  return [
    'import errno, os, socket',
    `targets = ${JSON.stringify(named)}`,
    'for name, target in targets.items():',
    '    address, port = target.rsplit(":", 1)',
    '    connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)',
    '    connection.settimeout(3)',
    '    try:',
    '        connection.connect((address, int(port)))',
    '        greeting = connection.recv(64).decode().strip()',
    '        print(name, "open", greeting or "-")',
    '    except socket.timeout:',
    '        print(name, "timeout")',
    '    except OSError as error:',
    '        print(name, errno.errorcode.get(error.errno, str(error.errno)))',
    '    finally:',
    '        connection.close()',
    'for path in ["/var/run/docker.sock", "/run/docker.sock"]:',
    '    print("socket", path, os.path.exists(path))',
  ].join('\n');
}

/** A sandbox that listens on the runner network: the other sandbox a script must not reach. */
async function listeningSandbox(): Promise<{ container: Docker.Container; address: string }> {
  const config = harness.starterConfig(environment());
  const container = await engine.createContainer({
    Image: config.sandbox.image,
    Entrypoint: [
      'python3',
      '-c',
      'import socket\ns = socket.create_server(("0.0.0.0", 8000))\nwhile True:\n    c, _ = s.accept()\n    c.sendall(b"sandbox\\n")\n    c.close()',
    ],
    Labels: { 'org.seatable.pipeline.netlab': 'listener' },
    HostConfig: { NetworkMode: harness.network, ReadonlyRootfs: true },
  });
  await container.start();
  const info = await container.inspect();
  const address = info.NetworkSettings.Networks[harness.network]?.IPAddress ?? '';
  return { container, address };
}

function environment(extra: Record<string, string> = {}): Record<string, string> {
  return {
    DOCKER_HOST: `unix://${socket}`,
    NATS_URL: `nats://${hostAddress}:${harness.nats.port}`,
    PYTHON_RUNNER_NETWORK_ISOLATION: 'enforce',
    SEATABLE_SERVER_URL: seatableUrl,
    ...extra,
  };
}

/** The starter's own process without NET_ADMIN, as a deployment that forgot it: exits. */
async function startWithoutNetAdmin(): Promise<{ code: number | null; stderr: string }> {
  const config = harness.starterConfig(environment());
  const env = {
    ...process.env,
    ...environment(),
    PIPELINE_SUBJECT_PREFIX: config.naming.prefix,
    STARTER_ID: `${config.starterId}-unprivileged`,
    PYTHON_RUNNER_NETWORK: harness.network,
    LOG_LEVEL: 'silent',
  };
  const child = spawn(
    'setpriv',
    [
      '--bounding-set',
      '-net_admin',
      '--inh-caps',
      '-net_admin',
      '--',
      process.execPath,
      'packages/starter/src/main.ts',
    ],
    { env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, stderr: stderr.trim() };
}

async function iptablesListing(): Promise<string> {
  const child = spawn('iptables', ['-S'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let listing = '';
  child.stdout.on('data', (chunk: Buffer) => {
    listing += chunk.toString();
  });
  await new Promise((resolve) => child.once('exit', resolve));
  return listing;
}

await harness.startServices('0.0.0.0');
let listener: Docker.Container | undefined;
try {
  await engine.createNetwork(runnerNetworkCreateOptions(harness.network));
  const config = harness.starterConfig(environment());
  const natsTarget = { service: 'NATS', address: hostAddress, port: harness.nats.port };
  // Before any rule: the lab must let a sandbox through, or the refusals below prove nothing.
  const [before] = await probeFromSandbox(
    engine,
    config.sandbox,
    { starterId: 'netlab-probe', labels: {} },
    [natsTarget],
  );
  const unprivileged = await startWithoutNetAdmin();

  await harness.startStarter(environment());
  const sandbox = await listeningSandbox();
  listener = sandbox.container;
  const named = {
    ...targets,
    'nats-host-address': `${hostAddress}:${harness.nats.port}`,
    'another-sandbox': `${sandbox.address}:8000`,
  };
  const attack = await harness.run({ script: attackScript(named), timeoutSeconds: 60 });
  // The result goes out before the container is torn down: wait for the teardown.
  let containersLeft: Docker.ContainerInfo[] = [];
  for (let attempt = 0; attempt < 100; attempt++) {
    containersLeft = await engine.listContainers({
      all: true,
      filters: { label: [`org.seatable.pipeline.starter-id=${harness.config.starterId}`] },
    });
    if (containersLeft.length === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  console.log(
    JSON.stringify({
      before: before?.outcome,
      unprivileged,
      attack: { output: attack.output, success: attack.finished.data.success },
      containersLeft: containersLeft.length,
      firewall: await iptablesListing(),
    }),
  );
} finally {
  await listener?.remove({ force: true }).catch(() => {});
  await harness.stop();
  await engine
    .getNetwork(harness.network)
    .remove()
    .catch(() => {});
}
