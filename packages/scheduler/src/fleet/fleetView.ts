import type { JetStreamClient } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import {
  bucketNames,
  decodeWith,
  type Naming,
  type StarterHeartbeat,
  starterHeartbeatSchema,
} from '@pipeline/events';

/** Starters beat every few seconds; an entry older than this is a starter that is gone. */
export const heartbeatStaleMs = 30_000;
const cacheMs = 2000;
/** How far a starter's clock may run ahead of the scheduler's. */
const clockSkewMs = 5_000;

export interface FleetViewDeps {
  jetStream: JetStreamClient;
  naming: Naming;
  now?: () => Date;
}

/**
 * The starters that are alive, read from the fleet bucket where each one keeps its latest
 * heartbeat. Reads are cached for a moment: a claim asks for the fleet's capacity, and a
 * burst of claims must not become a burst of bucket scans.
 */
export class FleetView {
  private readonly deps: FleetViewDeps;
  private readonly now: () => Date;
  private bucket: KV | undefined;
  private cached: { at: number; starters: StarterHeartbeat[] } | undefined;

  constructor(deps: FleetViewDeps) {
    this.deps = deps;
    this.now = deps.now ?? (() => new Date());
  }

  /** Every starter with a fresh heartbeat, draining ones included. */
  async liveStarters(): Promise<StarterHeartbeat[]> {
    const nowMs = this.now().getTime();
    if (this.cached && nowMs - this.cached.at < cacheMs) return this.cached.starters;
    const starters = await this.readBucket(nowMs).catch((error: unknown) => {
      // The bucket may be gone with NATS's data; open or create it again next time.
      this.bucket = undefined;
      throw error;
    });
    this.cached = { at: nowMs, starters };
    return starters;
  }

  /** Slots of the starters taking work: the fleet's capacity. */
  async totalSlots(): Promise<number> {
    const starters = await this.liveStarters();
    return starters.filter((starter) => !starter.draining).reduce((sum, s) => sum + s.slots, 0);
  }

  /**
   * Whether the starter sends heartbeats; with `life`, whether that life of it does (a
   * starter restarted under the same id is another life and no longer holds what the old
   * one held). Without a life on both sides (starters older than the life id), `since`
   * stands in: a life started after it is another one, with `clockSkewMs` allowed for the
   * starter's clock running ahead of ours.
   */
  async isAlive(starterId: string, since?: Date, life?: string): Promise<boolean> {
    const starters = await this.liveStarters();
    const starter = starters.find((candidate) => candidate.starterId === starterId);
    if (!starter) return false;
    if (life && starter.starterLife) return starter.starterLife === life;
    if (!since) return true;
    return new Date(starter.startedAt).getTime() <= since.getTime() + clockSkewMs;
  }

  private async readBucket(nowMs: number): Promise<StarterHeartbeat[]> {
    const bucket = await this.openBucket();
    const starters: StarterHeartbeat[] = [];
    const keys = await bucket.keys();
    for await (const key of keys) {
      const entry = await bucket.get(key);
      if (entry?.operation !== 'PUT') continue;
      const heartbeat = decodeWith(starterHeartbeatSchema, entry.value);
      if (!heartbeat.ok) continue;
      if (nowMs - new Date(heartbeat.value.at).getTime() > heartbeatStaleMs) continue;
      starters.push(heartbeat.value);
    }
    return starters;
  }

  private async openBucket(): Promise<KV> {
    if (this.bucket) return this.bucket;
    const kvm = new Kvm(this.deps.jetStream);
    const name = bucketNames.fleet(this.deps.naming);
    // Same settings as the starters use, so whoever comes first creates it.
    this.bucket = await kvm
      .create(name, { ttl: heartbeatStaleMs, history: 1 })
      .catch(() => kvm.open(name));
    return this.bucket;
  }
}
