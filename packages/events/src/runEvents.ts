import { z } from 'zod';

/**
 * The run events. Each one is a JSON document with a literal `type`, the version of its
 * schema, the time it happened (taken when it happened, never at projection time) and its
 * payload. `RunRequested` carries no run id: a run's id is the stream sequence of its
 * request, which is only known once the log has stored it. Every later event names the run.
 *
 * Secrets never appear here: the temporary API token of a run travels only in the claim
 * reply (see claims.ts).
 */

const isoTime = z.iso.datetime({ offset: true });
const runId = z.number().int().positive();

export const RUN_EVENT_SCHEMA_VERSION = 1;

const base = {
  schemaVersion: z.literal(1),
  occurredAt: isoTime,
};

/** Where a run request came from; SeaTable spells the manual trigger `manualy`. */
export const operateFromSchema = z.string().max(255);

export const runRequestedSchema = z.object({
  type: z.literal('RunRequested'),
  ...base,
  data: z.object({
    /** Canonical form: lower case with dashes. */
    dtableUuid: z.string().length(36),
    scriptName: z.string().min(1).max(255),
    owner: z.string().min(1).max(255),
    /** -1 means "no org". */
    orgId: z.number().int(),
    contextData: z.record(z.string(), z.unknown()).nullable(),
    operateFrom: operateFromSchema,
    operator: z.string().max(255).nullable(),
  }),
});

export const runClaimedSchema = z.object({
  type: z.literal('RunClaimed'),
  ...base,
  runId,
  data: z.object({
    starterId: z.string().min(1),
    host: z.string(),
    /** The starter's life that claimed the run (see the claim request); optional in v1. */
    starterLife: z.string().min(1).max(64).optional(),
  }),
});

export const runRejectionReasons = [
  'fair_share_exceeded',
  'cancelled',
  'script_not_found',
  'dispatch_failed',
  'too_many_deliveries',
] as const;

export const runRejectedSchema = z.object({
  type: z.literal('RunRejected'),
  ...base,
  runId,
  data: z.object({
    reason: z.enum(runRejectionReasons),
    /** The text the user sees as the run's output. */
    output: z.string(),
  }),
});

export const runStartedSchema = z.object({
  type: z.literal('RunStarted'),
  ...base,
  runId,
  data: z.object({
    starterId: z.string().min(1),
    containerId: z.string(),
  }),
});

/**
 * A piece of a long output. Output beyond what fits in one message is published as
 * chunks before `RunFinished`, which carries the last piece and the number of chunks.
 */
export const runOutputChunkSchema = z.object({
  type: z.literal('RunOutputChunk'),
  ...base,
  runId,
  data: z.object({
    index: z.number().int().nonnegative(),
    text: z.string(),
  }),
});

export const runFinishedSchema = z.object({
  type: z.literal('RunFinished'),
  ...base,
  runId,
  data: z.object({
    success: z.boolean(),
    returnCode: z.number().int(),
    /** The output's last piece; earlier pieces are in `outputChunks` RunOutputChunk events. */
    output: z.string(),
    outputChunks: z.number().int().nonnegative(),
    outputTruncated: z.boolean(),
    /** Null when the script never started (it could not be fetched or dispatched). */
    startedAt: isoTime.nullable(),
    finishedAt: isoTime,
    /** Run time in milliseconds, measured by the starter. */
    durationMs: z.number().int().nonnegative(),
    timedOut: z.boolean(),
    outOfMemory: z.boolean(),
    cancelled: z.boolean(),
    /** Ended by the watchdog: its starter stopped reporting. */
    lost: z.boolean(),
    starterId: z.string().nullable(),
  }),
});

export const runCancelRequestedSchema = z.object({
  type: z.literal('RunCancelRequested'),
  ...base,
  runId,
  data: z.object({
    requestedBy: z.string(),
  }),
});

/**
 * A run of an adopted original database, written into the log once when the scheduler
 * adopts the original's tables, so that a rebuild keeps it. Its id is the original's
 * `script_log.id` (below the stream's first sequence) and the fields are the row's. An
 * output too long for one message goes as `outputChunks` RunOutputChunk events before it,
 * and `output` is its last piece (version 2; version 1 cut such an output to fit).
 */
export const runImportedSchema = z.object({
  type: z.literal('RunImported'),
  schemaVersion: z.literal(2),
  occurredAt: isoTime,
  runId,
  data: z.object({
    dtableUuid: z.string().max(36),
    owner: z.string().max(255).nullable(),
    orgId: z.number().int().nullable(),
    scriptName: z.string().max(255),
    /** The column as the original stored it (JSON text, or whatever it held). */
    contextData: z.string().nullable(),
    operateFrom: z.string().max(50).nullable(),
    state: z.string().max(10).nullable(),
    success: z.boolean().nullable(),
    returnCode: z.number().int().nullable(),
    output: z.string().nullable(),
    outputChunks: z.number().int().nonnegative(),
    createdAt: isoTime.nullable(),
    startedAt: isoTime.nullable(),
    finishedAt: isoTime.nullable(),
  }),
});

/** The statistics tables of the read model, as an adopted original's import names them. */
export const importedStatisticsTables = [
  'dtable_run_script_statistics',
  'user_run_script_statistics',
  'org_run_script_statistics',
  'dtable_run_script_statistics_monthly',
  'user_run_script_statistics_monthly',
  'org_run_script_statistics_monthly',
] as const;

/**
 * Rows of one statistics table of an adopted original database, written into the log with
 * its runs (a few hundred rows per event), so that a rebuild keeps the original's counts:
 * they are not all derivable from its runs, whose log rows the original deleted sooner. Each
 * row holds the table's columns by name (the surrogate `id` aside), as the table held them:
 * dates as `YYYY-MM-DD`, times as MariaDB writes them, in UTC.
 */
export const statisticsImportedSchema = z.object({
  type: z.literal('StatisticsImported'),
  ...base,
  data: z.object({
    table: z.enum(importedStatisticsTables),
    rows: z.array(z.record(z.string(), z.union([z.string(), z.number(), z.null()]))),
  }),
});

export const runEventSchema = z.discriminatedUnion('type', [
  runRequestedSchema,
  runClaimedSchema,
  runRejectedSchema,
  runStartedSchema,
  runOutputChunkSchema,
  runFinishedSchema,
  runCancelRequestedSchema,
  runImportedSchema,
]);

/**
 * Everything the log holds: the run events and the adopted original's statistics. Services
 * that deal with runs (the starters) read `runEventSchema`; the projector and the audit
 * read this one.
 */
export const logEventSchema = z.discriminatedUnion('type', [
  ...runEventSchema.options,
  statisticsImportedSchema,
]);

export type RunRequested = z.infer<typeof runRequestedSchema>;
export type RunClaimed = z.infer<typeof runClaimedSchema>;
export type RunRejected = z.infer<typeof runRejectedSchema>;
export type RunStarted = z.infer<typeof runStartedSchema>;
export type RunOutputChunk = z.infer<typeof runOutputChunkSchema>;
export type RunFinished = z.infer<typeof runFinishedSchema>;
export type RunCancelRequested = z.infer<typeof runCancelRequestedSchema>;
export type RunImported = z.infer<typeof runImportedSchema>;
export type StatisticsImported = z.infer<typeof statisticsImportedSchema>;
export type ImportedStatisticsTable = StatisticsImported['data']['table'];
export type RunEvent = z.infer<typeof runEventSchema>;
export type RunEventType = RunEvent['type'];
/** Every event but RunRequested, whose run id is its stream sequence. */
export type RunLifecycleEvent = Exclude<RunEvent, RunRequested>;
export type LogEvent = z.infer<typeof logEventSchema>;
export type LogEventType = LogEvent['type'];
