import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { StarterHarness } from '../test/support/starterHarness.ts';

const mainFile = fileURLToPath(new URL('../src/main.ts', import.meta.url));

/**
 * The Node flags the starter runs with in production (deploy/starter.Dockerfile, npm start);
 * BENCH_STARTER_NODE_FLAGS compares others ('' for Node's defaults). The image's
 * MALLOC_ARENA_MAX=2 and MALLOC_TRIM_THRESHOLD_=131072 are applied too unless the bench's own
 * environment sets them.
 */
export const starterNodeFlags = (process.env.BENCH_STARTER_NODE_FLAGS ?? '--max-semi-space-size=1')
  .split(' ')
  .filter(Boolean);

/** The starter in a process of its own, as production runs it, around a harness's services. */
export class StarterProcess {
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;

  private constructor(child: ChildProcess) {
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  /** Starts `node src/main.ts` with the harness's starter environment; resolves when ready. */
  static async start(
    harness: StarterHarness,
    env: Record<string, string>,
  ): Promise<StarterProcess> {
    const child = spawn(process.execPath, [...starterNodeFlags, mainFile], {
      env: {
        MALLOC_ARENA_MAX: '2',
        MALLOC_TRIM_THRESHOLD_: '131072',
        ...process.env,
        ...harness.starterEnv({ LOG_LEVEL: 'info', ...env }),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const starter = new StarterProcess(child);
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        seen += chunk.toString();
        if (seen.includes('"starter ready"')) resolve();
        if (seen.length > 100_000) seen = seen.slice(-1000);
      });
      child.once('exit', (code) => reject(new Error(`the starter exited with ${code}`)));
    });
    return starter;
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** A field of /proc/<pid>/status in bytes: `VmRSS` now, `VmHWM` its peak so far. */
  memory(field: 'VmRSS' | 'VmHWM'): number {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const kilobytes = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1];
    return Number(kilobytes ?? Number.NaN) * 1024;
  }

  /** SIGTERM: the starter drains and exits. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    await this.exited;
  }
}
