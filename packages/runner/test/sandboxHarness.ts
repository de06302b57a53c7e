import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import {
  containerCreateOptions,
  encodeHandover,
  type Handover,
  loadSandboxProfile,
  type SandboxProfile,
  STARTER_ID_LABEL,
} from '../src/index.ts';

const runnerDirectory = new URL('..', import.meta.url);

export function fixture(name: string): Buffer {
  return readFileSync(new URL(`fixtures/${name}`, runnerDirectory));
}

/** The sandbox of the field cases: M 256 MiB, P 128, S 100 MiB, no network. */
export function testProfile(env: Record<string, string> = {}): SandboxProfile {
  const result = loadSandboxProfile({
    PYTHON_RUNNER_CONTAINER_MEMORY: '256m',
    PYTHON_RUNNER_PIDS_LIMIT: '128',
    PYTHON_RUNNER_TMPFS_MOUNT_SIZE_IN_BYTES: String(100 * 1024 * 1024),
    PYTHON_RUNNER_NETWORK: 'none',
    ...env,
  });
  if (!result.ok) throw new Error(result.problems.join('\n'));
  return result.profile;
}

export interface SandboxRun {
  exitCode: number;
  stdout: string;
  stderr: string;
  inspect: Docker.ContainerInspectInfo;
}

/** Talks to the local engine the way the starter does: create, attach, start, hand over. */
export class SandboxHarness {
  readonly docker = new Docker({ socketPath: '/var/run/docker.sock' });
  /** Every container of this harness carries it as its starter id, for the cleanup. */
  readonly starterId = `runner-image-test-${process.pid}`;
  private nextRunId = 1;

  async engineAnswers(): Promise<boolean> {
    try {
      await this.docker.ping();
      return true;
    } catch {
      return false;
    }
  }

  /** Builds the offline image unless it is up to date (a no-op then, well under a second). */
  async ensureOfflineImage(): Promise<void> {
    const script = new URL('offline/build.sh', runnerDirectory).pathname;
    await promisify(execFile)('bash', [script], { timeout: 20 * 60_000 });
  }

  async run(profile: SandboxProfile, handover: Handover): Promise<SandboxRun> {
    return this.runBytes(profile, encodeHandover(handover));
  }

  /** Runs one container with `input` as its whole standard input and removes it. */
  async runBytes(profile: SandboxProfile, input: Buffer): Promise<SandboxRun> {
    const runId = this.nextRunId++;
    const container = await this.docker.createContainer(
      containerCreateOptions(profile, { runId, starterId: this.starterId }),
    );
    try {
      const stream = await container.attach({
        stream: true,
        stdin: true,
        stdout: true,
        stderr: true,
        hijack: true,
      });
      const stdout = collect();
      const stderr = collect();
      const drained = new Promise<void>((resolve) => {
        stream.once('end', resolve);
        stream.once('close', resolve);
      });
      // A container that exits before reading everything makes the write fail: not our error.
      stream.on('error', () => {});
      this.docker.modem.demuxStream(stream, stdout.sink, stderr.sink);

      await container.start();
      stream.end(input);
      const { StatusCode } = await container.wait();
      await drained;
      return {
        exitCode: StatusCode,
        stdout: stdout.text(),
        stderr: stderr.text(),
        inspect: await container.inspect(),
      };
    } finally {
      await container.remove({ force: true });
    }
  }

  /** Removes whatever containers of this harness are left, e.g. after a failed test. */
  async removeContainers(): Promise<void> {
    const leftovers = await this.docker.listContainers({
      all: true,
      filters: { label: [`${STARTER_ID_LABEL}=${this.starterId}`] },
    });
    await Promise.all(
      leftovers.map((info) => this.docker.getContainer(info.Id).remove({ force: true })),
    );
  }

  async countContainers(): Promise<number> {
    const containers = await this.docker.listContainers({
      all: true,
      filters: { label: [`${STARTER_ID_LABEL}=${this.starterId}`] },
    });
    return containers.length;
  }
}

function collect(): { sink: PassThrough; text: () => string } {
  const chunks: Buffer[] = [];
  const sink = new PassThrough();
  sink.on('data', (chunk: Buffer) => chunks.push(chunk));
  return { sink, text: () => Buffer.concat(chunks).toString('utf8') };
}
