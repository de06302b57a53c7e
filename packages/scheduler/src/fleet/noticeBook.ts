import type { JetStreamClient } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import type { Naming } from '@pipeline/events';

/**
 * Remembers, across every scheduler, which notices were already sent: a key can be
 * claimed once while the bucket keeps it (its entries live one fair-share window).
 */
export class NoticeBook {
  private readonly jetStream: JetStreamClient;
  private readonly name: string;
  private bucket: KV | undefined;

  constructor(jetStream: JetStreamClient, naming: Naming) {
    this.jetStream = jetStream;
    this.name = `${naming.stream}_notices`;
  }

  /** True for the first caller of `key` within `ttlSeconds`, false for every later one. */
  readonly claim = async (key: string, ttlSeconds: number): Promise<boolean> => {
    const bucket = await this.open(ttlSeconds);
    try {
      await bucket.create(Buffer.from(key).toString('base64url'), new Uint8Array());
      return true;
    } catch (error) {
      if (/wrong last sequence|key exists/i.test((error as Error).message)) return false;
      this.bucket = undefined;
      throw error;
    }
  };

  private async open(ttlSeconds: number): Promise<KV> {
    if (this.bucket) return this.bucket;
    const kvm = new Kvm(this.jetStream);
    this.bucket = await kvm
      .create(this.name, { ttl: ttlSeconds * 1000, history: 1 })
      .catch(() => kvm.open(this.name));
    return this.bucket;
  }
}
