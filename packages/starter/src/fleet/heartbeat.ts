import type { JetStreamClient } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { bucketNames, encodeJson, type Naming, type StarterHeartbeat } from '@pipeline/events';
import type { Logger } from 'pino';

/** How often a starter tells the fleet it is alive. */
export const heartbeatIntervalMs = 5_000;
/** How long the fleet bucket keeps a heartbeat: a starter silent this long counts as gone. */
export const fleetEntryTtlMs = 30_000;

export interface HeartbeatOptions {
  js: JetStreamClient;
  naming: Naming;
  log: Logger;
  /** The heartbeat's current content; called on every beat. */
  describe: () => Omit<StarterHeartbeat, 'at'>;
}

/**
 * Puts this starter's heartbeat into the fleet bucket (key = starter id) every few seconds.
 * The bucket's TTL drops the entry of a starter that stopped beating; the scheduler reads
 * the fleet's slots from it and its watchdog the liveness of each run's starter. Failures
 * are expected while NATS is away and are retried on the next beat.
 */
export class Heartbeat {
  private readonly options: HeartbeatOptions;
  private timer: NodeJS.Timeout | null = null;
  private bucket: KV | null = null;
  private failing = false;
  private stopped = false;
  private lastStoredAt: Date | null = null;

  constructor(options: HeartbeatOptions) {
    this.options = options;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.beat(), heartbeatIntervalMs);
  }

  /** Stops beating; a final beat (e.g. `draining: true`) can be sent with `beat()` first. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.stopped = true;
  }

  async beat(): Promise<void> {
    const { naming, log, describe } = this.options;
    if (this.stopped) return;
    try {
      const bucket = await this.openBucket();
      const heartbeat: StarterHeartbeat = { ...describe(), at: new Date().toISOString() };
      await bucket.put(heartbeat.starterId, encodeJson(heartbeat));
      this.lastStoredAt = new Date();
      if (this.failing) log.info({ bucket: bucketNames.fleet(naming) }, 'heartbeat restored');
      this.failing = false;
    } catch (error) {
      this.bucket = null;
      if (!this.failing) log.warn({ err: error }, 'heartbeat failed');
      this.failing = true;
    }
  }

  /** When a beat was last stored in the fleet bucket; null before the first. */
  get lastBeatAt(): Date | null {
    return this.lastStoredAt;
  }

  /** The starter ids with a live heartbeat, or null when the bucket cannot be read. */
  async fleetMembers(): Promise<Set<string> | null> {
    try {
      const bucket = await this.openBucket();
      const members = new Set<string>();
      for await (const key of await bucket.keys()) members.add(key);
      return members;
    } catch (error) {
      this.options.log.warn({ err: error }, 'fleet bucket not readable');
      return null;
    }
  }

  /** Removes this starter from the fleet at once (a graceful stop), instead of after the TTL. */
  async withdraw(starterId: string): Promise<void> {
    try {
      const bucket = await this.openBucket();
      await bucket.delete(starterId);
    } catch (error) {
      this.options.log.warn({ err: error }, 'heartbeat not withdrawn');
    }
  }

  private async openBucket(): Promise<KV> {
    if (this.bucket) return this.bucket;
    const kvm = new Kvm(this.options.js);
    const name = bucketNames.fleet(this.options.naming);
    // create() opens an existing bucket of the same settings; another TTL is an operator's choice.
    this.bucket = await kvm
      .create(name, { ttl: fleetEntryTtlMs, history: 1 })
      .catch(() => kvm.open(name));
    return this.bucket;
  }
}
