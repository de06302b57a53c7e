import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/**
 * One of the pipeline's services as a child process of the test (`node <entry>`), so that it
 * can be killed the hard way and started again with the same environment. Its log lines go
 * to `logFile`, appended across lives.
 */
export interface ServiceProcess {
  readonly name: string;
  /** The process id of the current life; undefined while it is not running. */
  readonly pid: number | undefined;
  readonly running: boolean;
  start(): void;
  /** Sends `signal` and waits until the process has exited. */
  kill(signal: NodeJS.Signals): Promise<void>;
}

export function serviceProcess(options: {
  name: string;
  /** Relative to the repository, e.g. `packages/scheduler/src/main.ts`. */
  entry: string;
  env: Record<string, string>;
  logFile: string;
}): ServiceProcess {
  let child: ChildProcess | undefined;
  let log: WriteStream | undefined;
  const isRunning = () =>
    child !== undefined && child.exitCode === null && child.signalCode === null;

  return {
    name: options.name,
    get pid() {
      return isRunning() ? child?.pid : undefined;
    },
    get running() {
      return isRunning();
    },
    start() {
      if (isRunning()) return;
      log ??= createWriteStream(options.logFile, { flags: 'a' });
      child = spawn(process.execPath, [options.entry], {
        cwd: repoRoot,
        env: { PATH: process.env.PATH ?? '', ...options.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout?.pipe(log, { end: false });
      child.stderr?.pipe(log, { end: false });
    },
    async kill(signal) {
      const running = child;
      if (!running || !isRunning()) return;
      const exited = new Promise((resolve) => running.once('exit', resolve));
      running.kill(signal);
      const timer = setTimeout(() => running.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
