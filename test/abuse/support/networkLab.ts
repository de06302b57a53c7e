import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';

const run = promisify(execFile);

/**
 * Two network namespaces of the test's own, so that every connection a sandbox opens stays
 * among things the test set up:
 *
 * - `host`: stands for the Docker host. A dockerd of the test's own runs there (own socket,
 *   data and exec root, containerd namespace; iptables on, as in production), with the
 *   address 10.77.0.1 towards the outside.
 * - `outside`: stands for the rest of the world, reached through a veth pair and the host's
 *   default route: 10.77.0.2 (a SeaTable server on a private address), 10.77.0.3 (another
 *   private machine), 169.254.77.77 (a link-local, metadata-like address) and 203.0.113.10
 *   (TEST-NET-3, standing for the internet).
 */
export class NetworkLab {
  readonly hostAddress = '10.77.0.1';
  readonly seatableAddress = '10.77.0.2';
  readonly privateAddress = '10.77.0.3';
  readonly linkLocalAddress = '169.254.77.77';
  readonly internetAddress = '203.0.113.10';
  directory = '';
  socket = '';
  private dockerd: ChildProcess | undefined;
  private outside: ChildProcess | undefined;
  private readonly children: ChildProcess[] = [];

  get engine(): Docker {
    return new Docker({ socketPath: this.socket });
  }

  /** `nsenter` arguments that run a command in the host namespace. */
  inHost(command: string[]): string[] {
    return ['nsenter', `--net=/proc/${this.dockerd?.pid}/ns/net`, ...command];
  }

  inOutside(command: string[]): string[] {
    return ['nsenter', `--net=/proc/${this.outside?.pid}/ns/net`, ...command];
  }

  async start(image: string): Promise<void> {
    this.directory = await mkdtemp('/tmp/pl-netlab-');
    for (const folder of ['data', 'exec']) await mkdir(join(this.directory, folder));
    this.socket = join(this.directory, 'docker.sock');
    this.dockerd = spawn(
      'unshare',
      [
        '--net',
        'dockerd',
        `--host=unix://${this.socket}`,
        `--data-root=${join(this.directory, 'data')}`,
        `--exec-root=${join(this.directory, 'exec')}`,
        `--pidfile=${join(this.directory, 'docker.pid')}`,
        '--bridge=none',
        '--containerd-namespace=pl-netlab',
        '--containerd-plugins-namespace=pl-netlab-plugins',
      ],
      { stdio: 'ignore' },
    );
    this.outside = spawn('unshare', ['--net', 'sleep', 'infinity'], { stdio: 'ignore' });
    await this.waitForEngine();
    await this.wire();
    await run('bash', ['-c', `docker save ${image} | docker -H unix://${this.socket} load`]);
  }

  private async waitForEngine(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.engine.ping();
        return;
      } catch (error) {
        if (attempt > 150 || this.dockerd?.exitCode !== null) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }

  /** The veth pair, the addresses and the routes; all inside the two namespaces. */
  private async wire(): Promise<void> {
    const host = (...command: string[]) => this.exec(this.inHost(command));
    const outside = (...command: string[]) => this.exec(this.inOutside(command));
    await host('ip', 'link', 'set', 'lo', 'up');
    await outside('ip', 'link', 'set', 'lo', 'up');
    await host(
      'ip',
      'link',
      'add',
      'pl-lab-host',
      'type',
      'veth',
      'peer',
      'name',
      'pl-lab-out',
      'netns',
      String(this.outside?.pid),
    );
    await host('ip', 'addr', 'add', `${this.hostAddress}/24`, 'dev', 'pl-lab-host');
    await host('ip', 'link', 'set', 'pl-lab-host', 'up');
    await host('ip', 'route', 'add', 'default', 'via', this.seatableAddress);
    await outside('ip', 'addr', 'add', `${this.seatableAddress}/24`, 'dev', 'pl-lab-out');
    await outside('ip', 'link', 'set', 'pl-lab-out', 'up');
    // The other machines are more addresses of the outside end (no dummy module here).
    for (const address of [this.privateAddress, this.linkLocalAddress, this.internetAddress]) {
      await outside('ip', 'addr', 'add', `${address}/32`, 'dev', 'pl-lab-out');
    }
  }

  /** Starts stand-in listeners (`<address>:<port>=<name>`) in one of the namespaces. */
  async listen(where: 'host' | 'outside', specs: string[]): Promise<void> {
    const listeners = new URL('./listeners.ts', import.meta.url).pathname;
    const command = [process.execPath, listeners, ...specs];
    const [file, ...args] = where === 'host' ? this.inHost(command) : this.inOutside(command);
    const child = spawn(file ?? 'nsenter', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    this.children.push(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('listening')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`listeners exited with ${code}`)));
    });
  }

  async exec(command: string[]): Promise<string> {
    const [file, ...args] = command;
    const { stdout } = await run(file ?? 'true', args, { maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  }

  async stop(): Promise<void> {
    for (const child of this.children) child.kill('SIGTERM');
    await stopProcess(this.dockerd);
    await stopProcess(this.outside);
    if (this.directory) await rm(this.directory, { recursive: true, force: true });
  }
}

async function stopProcess(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}
