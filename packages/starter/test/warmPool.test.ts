import assert from 'node:assert/strict';
import { PassThrough, type Writable } from 'node:stream';
import { describe, test } from 'node:test';
import type Docker from 'dockerode';
import { pino } from 'pino';
import type { OutputAttachment } from '../src/sandbox/outputAttach.ts';
import type {
  ListedContainer,
  SandboxContainer,
  SandboxExit,
  SandboxRuntime,
} from '../src/sandbox/sandboxRuntime.ts';
import { type PoolEngine, WarmPool } from '../src/sandbox/warmPool.ts';

/**
 * The pool's bookkeeping against an engine kept in memory: which containers exist, which
 * run, which image the tag names. The real engine is exercised in warmPool.int.test.ts.
 */
class MemoryEngine implements SandboxRuntime, PoolEngine {
  image = 'sha256:first';
  readonly running = new Map<string, { labels: Record<string, string>; stop: () => void }>();
  readonly removed: string[] = [];
  private next = 0;

  async imageId(): Promise<string | null> {
    return this.image;
  }
  async isRunning(container: SandboxContainer): Promise<boolean> {
    return this.running.has(container.id);
  }
  async imageExists(): Promise<boolean> {
    return true;
  }
  async ensureNetwork(): Promise<boolean> {
    return false;
  }
  async create(runId: number, options: Docker.ContainerCreateOptions): Promise<SandboxContainer> {
    const id = `c${this.next++}`;
    this.running.set(id, { labels: options.Labels ?? {}, stop: () => {} });
    return { id, runId };
  }
  async attachOutput(): Promise<OutputAttachment> {
    return { ended: new Promise(() => {}), close: () => {} };
  }
  async attachInput(): Promise<Writable> {
    return new PassThrough();
  }
  async start(): Promise<void> {}
  wait(container: SandboxContainer): Promise<number> {
    return new Promise((resolve) => {
      const entry = this.running.get(container.id);
      if (entry) entry.stop = () => resolve(137);
    });
  }
  async stop(): Promise<void> {}
  async inspectExit(): Promise<SandboxExit> {
    return { exitCode: 0, oomKilled: false, startedAt: null, finishedAt: null };
  }
  async remove(container: SandboxContainer): Promise<void> {
    this.running.get(container.id)?.stop();
    this.running.delete(container.id);
    this.removed.push(container.id);
  }
  async listByLabels(): Promise<ListedContainer[]> {
    return [];
  }
  /** Ends a container as if it died on its own. */
  kill(id: string): void {
    const entry = this.running.get(id);
    this.running.delete(id);
    entry?.stop();
  }
}

const log = pino({ level: 'silent' });

function poolOn(engine: MemoryEngine, idleMs = 60_000): WarmPool {
  return new WarmPool({
    sandbox: engine,
    engine,
    size: 2,
    idleMs,
    image: 'runner:test',
    createOptions: (profileHash) => ({
      Image: 'runner:test',
      Labels: { 'org.seatable.pipeline.pool': profileHash },
    }),
    log,
  });
}

async function until(check: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 500 && !check(); attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  assert.ok(check(), 'the condition never held');
}

describe('WarmPool', () => {
  test('fills to its size, hands each container out once, and refills', async () => {
    const engine = new MemoryEngine();
    const pool = poolOn(engine);
    pool.start();
    await until(() => pool.size === 2);
    const first = await pool.take(log);
    const second = await pool.take(log);
    assert.ok(first && second);
    assert.notEqual(first.container.id, second.container.id);
    await until(() => pool.size === 2);
    const third = await pool.take(log);
    assert.ok(third && ![first.container.id, second.container.id].includes(third.container.id));
    await pool.close();
  });

  test('a container that died while waiting is removed and never handed out', async () => {
    const engine = new MemoryEngine();
    const pool = poolOn(engine);
    pool.start();
    await until(() => pool.size === 2);
    const [dead] = [...engine.running.keys()];
    assert.ok(dead);
    engine.kill(dead);
    await until(() => engine.removed.includes(dead));
    for (let index = 0; index < 4; index++) {
      const taken = await pool.take(log);
      assert.notEqual(taken?.container.id, dead);
      await until(() => pool.size === 2);
    }
    await pool.close();
  });

  test('a rebuilt image retires the containers made from the old one', async () => {
    const engine = new MemoryEngine();
    const pool = poolOn(engine);
    pool.start();
    await until(() => pool.size === 2);
    const old = [...engine.running.keys()];
    const oldHash = engine.running.get(old[0] ?? '')?.labels['org.seatable.pipeline.pool'];
    engine.image = 'sha256:second';
    // The next refill looks the image up again: taking one triggers it.
    const taken = await pool.take(log);
    assert.ok(taken);
    await until(() => old.every((id) => engine.removed.includes(id) || id === taken.container.id));
    await until(() => pool.size === 2);
    const fresh = await pool.take(log);
    assert.ok(fresh && !old.includes(fresh.container.id));
    const freshHash = engine.running.get(fresh.container.id)?.labels['org.seatable.pipeline.pool'];
    assert.notEqual(freshHash, oldHash, 'the pool label names the new profile');
    await pool.close();
  });

  test('empties when idle; the next run starts cold and the pool fills again', async () => {
    const engine = new MemoryEngine();
    const pool = poolOn(engine, 50);
    pool.start();
    await until(() => pool.size === 2);
    await until(() => pool.size === 0 && engine.running.size === 0);
    assert.equal(await pool.take(log), null, 'cold start after the idle time');
    await until(() => pool.size === 2);
    await pool.close();
  });

  test('closing removes every waiting container and makes no more', async () => {
    const engine = new MemoryEngine();
    const pool = poolOn(engine);
    pool.start();
    await until(() => pool.size === 2);
    await pool.close();
    assert.equal(engine.running.size, 0);
    assert.equal(await pool.take(log), null);
    assert.equal(engine.running.size, 0);
  });
});
