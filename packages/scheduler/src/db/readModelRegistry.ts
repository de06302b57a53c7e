import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { JetStreamClient } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import type { Naming } from '@pipeline/events';
import { StartupError } from '../messaging/streamSetup.ts';

/** How long a scheduler's entry lives without a refresh; it refreshes at a third of that. */
const entryTtlMs = 30_000;

interface SchedulerEntry {
  host: string;
  pid: number;
  database: 'sqlite' | 'mariadb';
  at: string;
}

/**
 * Which read model each scheduler of a log keeps, in the `<STREAM>_schedulers` KV bucket
 * (one entry per scheduler, refreshed while it runs). A SQLite file is one scheduler's own
 * copy: beside any other scheduler of the same log, quotas would be checked against two
 * copies. So a scheduler stops at start, in one line naming the setting, when it would keep
 * a SQLite file beside another scheduler, or MariaDB beside one that keeps a SQLite file.
 * The entry is written before the others are read, so of two schedulers starting together
 * at least the second sees the first. An entry of this host whose process is gone (a crash)
 * does not count; one of another host counts until it expires.
 */
export class ReadModelRegistry {
  private readonly bucket: KV;
  private readonly key: string;
  private readonly entry: Omit<SchedulerEntry, 'at'>;
  private timer: NodeJS.Timeout | undefined;

  private constructor(bucket: KV, entry: Omit<SchedulerEntry, 'at'>) {
    this.bucket = bucket;
    this.entry = entry;
    // Several schedulers may share a process (tests): each has an entry of its own.
    const instance = randomBytes(3).toString('hex');
    this.key = `${entry.host}-${entry.pid}-${instance}`.replace(/[^-_=.a-zA-Z0-9]/g, '_');
  }

  static async join(
    jetStream: JetStreamClient,
    naming: Naming,
    database: SchedulerEntry['database'],
  ): Promise<ReadModelRegistry> {
    const kvm = new Kvm(jetStream);
    const name = `${naming.stream}_schedulers`;
    const bucket = await kvm
      .create(name, { ttl: entryTtlMs, history: 1 })
      .catch(() => kvm.open(name));
    const registry = new ReadModelRegistry(bucket, {
      host: hostname(),
      pid: process.pid,
      database,
    });
    await registry.refresh();
    const conflict = await registry.conflictingEntry();
    if (conflict) {
      await registry.leave();
      throw new StartupError(conflictLine(database, conflict));
    }
    registry.timer = setInterval(() => void registry.refresh().catch(() => {}), entryTtlMs / 3);
    registry.timer.unref();
    return registry;
  }

  async leave(): Promise<void> {
    clearInterval(this.timer);
    await this.bucket.delete(this.key).catch(() => {});
  }

  private async refresh(): Promise<void> {
    await this.bucket.put(
      this.key,
      JSON.stringify({ ...this.entry, at: new Date().toISOString() }),
    );
  }

  private async conflictingEntry(): Promise<SchedulerEntry | null> {
    for await (const key of await this.bucket.keys()) {
      if (key === this.key) continue;
      const stored = await this.bucket.get(key);
      if (stored?.operation !== 'PUT') continue;
      const other = parseEntry(stored.string());
      if (!other || !isLive(other)) continue;
      if (this.entry.database === 'sqlite' || other.database === 'sqlite') return other;
    }
    return null;
  }
}

function conflictLine(mine: SchedulerEntry['database'], other: SchedulerEntry): string {
  const who = `${other.host} ${other.pid}`;
  return mine === 'sqlite'
    ? `PIPELINE_SQLITE_FILE: another scheduler (${who}) serves this log; several schedulers need MariaDB (DB_HOST)`
    : `DB_HOST: the scheduler ${who} of this log keeps its read model in a SQLite file (PIPELINE_SQLITE_FILE); several schedulers need the same MariaDB`;
}

function parseEntry(text: string): SchedulerEntry | null {
  try {
    const value = JSON.parse(text) as Partial<SchedulerEntry>;
    if (typeof value.host !== 'string' || typeof value.pid !== 'number') return null;
    if (value.database !== 'sqlite' && value.database !== 'mariadb') return null;
    return { host: value.host, pid: value.pid, database: value.database, at: String(value.at) };
  } catch {
    return null;
  }
}

function isLive(entry: SchedulerEntry): boolean {
  if (Date.now() - new Date(entry.at).getTime() > entryTtlMs) return false;
  if (entry.host !== hostname()) return true;
  try {
    process.kill(entry.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
