import { z } from 'zod';

/**
 * Live output: what a running script has printed so far, pushed by the starter on core NATS
 * (`subjects.liveOutput`) while the run runs. It is a view for operators, never part of the
 * log: a lost message costs a gap in what an open dashboard shows, nothing else. The run's
 * output of record is still the one in `RunFinished`.
 *
 * Offsets and lengths count UTF-16 code units of the output the starter keeps, from the
 * run's first character, so a receiver can place each piece and see a gap.
 */
export const liveOutputMessageSchema = z.discriminatedUnion('kind', [
  z.object({
    /** A piece of output: `text` starts at `offset` of the run's output. */
    kind: z.literal('output'),
    runId: z.number().int().positive(),
    offset: z.number().int().nonnegative(),
    text: z.string(),
  }),
  z.object({
    /** The container stopped: nothing more comes; `length` is everything that was sent. */
    kind: z.literal('end'),
    runId: z.number().int().positive(),
    length: z.number().int().nonnegative(),
  }),
]);

export type LiveOutputMessage = z.infer<typeof liveOutputMessageSchema>;
