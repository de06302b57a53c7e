import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';

const run = promisify(execFile);

/** Whether this machine can run a second dockerd of a test's own (root, dockerd installed). */
export const canRunSecondEngine = process.getuid?.() === 0 && existsSync('/usr/sbin/dockerd');

/**
 * A Docker engine of the test's own: its own socket, data root, exec root and containerd
 * namespace, with no bridge and no iptables rules, in a network namespace of its own
 * (`unshare --net`): a dockerd started with `--bridge=none` in the host's namespace removes
 * the host's docker0. Its containers therefore get no network (`PYTHON_RUNNER_NETWORK=none`).
 */
export interface DockerEngine {
  socket: string;
  /** `unix://<socket>`, for `DOCKER_HOST`. */
  host: string;
  docker: Docker;
  /** Stops the engine (SIGTERM: its containers are stopped with it) and starts it again. */
  restart(downMs?: number): Promise<void>;
  /** Stops it and deletes its data. */
  destroy(): Promise<void>;
}

export async function startDockerEngine(label: string, images: string[]): Promise<DockerEngine> {
  const directory = await mkdtemp(`/tmp/pl-${label}-dockerd-`);
  for (const folder of ['data', 'exec']) await mkdir(join(directory, folder));
  const socket = join(directory, 'docker.sock');
  const docker = new Docker({ socketPath: socket });
  let child: ChildProcess | undefined;

  const start = async () => {
    child = spawn(
      'unshare',
      [
        '--net',
        'dockerd',
        `--host=unix://${socket}`,
        `--data-root=${join(directory, 'data')}`,
        `--exec-root=${join(directory, 'exec')}`,
        `--pidfile=${join(directory, 'docker.pid')}`,
        '--bridge=none',
        '--iptables=false',
        '--ip-masq=false',
        `--containerd-namespace=pl-${label}`,
        `--containerd-plugins-namespace=pl-${label}-plugins`,
      ],
      { stdio: 'ignore' },
    );
    for (let attempt = 0; ; attempt++) {
      try {
        await docker.ping();
        return;
      } catch (error) {
        if (attempt > 150 || child.exitCode !== null) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  };
  const stop = async () => {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGTERM');
    const timer = setTimeout(() => running.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  };

  await start();
  for (const image of images) {
    await run('bash', ['-c', `docker save ${image} | docker -H unix://${socket} load`]);
  }
  return {
    socket,
    host: `unix://${socket}`,
    docker,
    async restart(downMs = 0) {
      await stop();
      if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
      await start();
    },
    async destroy() {
      await stop();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
