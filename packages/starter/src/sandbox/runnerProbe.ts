import { containerCreateOptions, type SandboxProfile } from '@pipeline/runner';
import type Docker from 'dockerode';

/** One of the pipeline's own addresses, tried from inside a sandbox. */
export interface ProbeTarget {
  /** What it is, for the error line: `NATS`, `the Docker engine`, ... */
  service: string;
  address: string;
  port: number;
}

/** How a connection from the sandbox to a target ended: `open` is the one that must not. */
export interface ProbeResult extends ProbeTarget {
  outcome: string;
}

/**
 * Tries each target with a TCP connect, one after the other, two seconds at most each, and
 * prints `<address>:<port> <outcome>` per line. Nothing is sent once connected.
 */
const probeScript = `
import errno, socket, sys
for target in sys.argv[1:]:
    address, port = target.rsplit(":", 1)
    connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    connection.settimeout(2)
    try:
        connection.connect((address, int(port)))
        outcome = "open"
    except socket.timeout:
        outcome = "timeout"
    except OSError as error:
        outcome = errno.errorcode.get(error.errno, str(error.errno))
    finally:
        connection.close()
    print(target, outcome, flush=True)
`;

/**
 * Runs a short-lived container on the runner network, made from the same sandbox profile as
 * every run, that tries to connect to `targets`. Only the pipeline's own addresses are ever
 * given here: the probe never contacts anything the pipeline does not own.
 */
export async function probeFromSandbox(
  docker: Docker,
  profile: SandboxProfile,
  identity: { starterId: string; labels: Record<string, string> },
  targets: readonly ProbeTarget[],
): Promise<ProbeResult[]> {
  if (targets.length === 0) return [];
  const options = containerCreateOptions(profile, { runId: 0, ...identity });
  const container = await docker.createContainer({
    ...options,
    Entrypoint: ['python3', '-c', probeScript],
    Cmd: targets.map((target) => `${target.address}:${target.port}`),
    AttachStdin: false,
    OpenStdin: false,
    StdinOnce: false,
    HostConfig: { ...options.HostConfig, LogConfig: { Type: 'json-file', Config: {} } },
  });
  try {
    await container.start();
    await container.wait();
    const logs = await container.logs({ stdout: true, stderr: true, follow: false });
    const outcomes = new Map<string, string>();
    for (const line of demultiplexed(Buffer.from(logs)).split('\n')) {
      const [target, outcome] = line.trim().split(' ');
      if (target && outcome) outcomes.set(target, outcome);
    }
    return targets.map((target) => ({
      ...target,
      outcome: outcomes.get(`${target.address}:${target.port}`) ?? 'unknown',
    }));
  } finally {
    await container.remove({ force: true });
  }
}

/** The text of the engine's multiplexed log stream (8-byte frame headers). */
function demultiplexed(stream: Buffer): string {
  const pieces: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= stream.length) {
    const size = stream.readUInt32BE(offset + 4);
    pieces.push(stream.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(pieces).toString('utf8');
}
