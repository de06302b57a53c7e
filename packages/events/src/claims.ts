import { z } from 'zod';

/**
 * The claim exchange (core NATS request/reply, schedulers answer as a queue group).
 * A starter holding a run request asks whether it may run it. The reply may carry the
 * run's temporary API token, which is why this is not part of the log.
 */
export const claimRequestSchema = z.object({
  runId: z.number().int().positive(),
  starterId: z.string().min(1),
  host: z.string(),
  deliveryCount: z.number().int().positive(),
  /**
   * This life of the starter (a random id per process). A starter restarted under the same
   * id is another life: what the old one claimed is lost. Absent from older starters.
   */
  starterLife: z.string().min(1).max(64).optional(),
  /**
   * The starter's public key (claimSeal.ts): a grant is sealed to it, so other starters on
   * the same NATS user cannot read its token. Absent from older starters (plain grant).
   */
  replyKey: z.string().min(1).max(200).optional(),
});

/** Run it: the run is claimed for this starter. */
export const claimGrantSchema = z.object({
  decision: z.literal('run'),
  scriptUrl: z.string().min(1),
  apiToken: z.string(),
  dtableWebUrl: z.string(),
  timeoutSeconds: z.number().positive(),
});

export const claimReplySchema = z.discriminatedUnion('decision', [
  claimGrantSchema,
  z.object({
    /** A grant (`run`) sealed to the claim's `replyKey`; only the asking starter opens it. */
    decision: z.literal('sealed'),
    sealed: z.string().min(1),
  }),
  z.object({
    /** Do not run it, ever: it is finished, cancelled, refused or claimed elsewhere. */
    decision: z.literal('drop'),
    reason: z.string(),
  }),
  z.object({
    /** Not now: put it back and take it again after the delay. */
    decision: z.literal('defer'),
    delayMs: z.number().int().nonnegative(),
    reason: z.string(),
  }),
]);

export type ClaimRequest = z.infer<typeof claimRequestSchema>;
export type ClaimReply = z.infer<typeof claimReplySchema>;
export type ClaimGrant = z.infer<typeof claimGrantSchema>;

/** What a starter tells the fleet, every few seconds, in the fleet bucket. */
export const starterHeartbeatSchema = z.object({
  starterId: z.string().min(1),
  host: z.string(),
  slots: z.number().int().nonnegative(),
  busy: z.number().int().nonnegative(),
  draining: z.boolean(),
  startedAt: z.iso.datetime({ offset: true }),
  /** The life that sends this heartbeat, as in its claims; absent from older starters. */
  starterLife: z.string().min(1).max(64).optional(),
  at: z.iso.datetime({ offset: true }),
  version: z.string(),
});

export type StarterHeartbeat = z.infer<typeof starterHeartbeatSchema>;
