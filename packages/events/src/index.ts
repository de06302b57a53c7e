export type { ClaimKeys } from './claimSeal.ts';
export { isUsableReplyKey, newClaimKeys, openSealed, sealFor } from './claimSeal.ts';
export type { ClaimGrant, ClaimReply, ClaimRequest, StarterHeartbeat } from './claims.ts';
export {
  claimGrantSchema,
  claimReplySchema,
  claimRequestSchema,
  starterHeartbeatSchema,
} from './claims.ts';
export type { DecodeResult } from './codec.ts';
export { decodeEvent, decodeLogEvent, decodeWith, encodeEvent, encodeJson } from './codec.ts';
export type { LiveOutputMessage } from './liveOutput.ts';
export { liveOutputMessageSchema } from './liveOutput.ts';
export { outputPieceBytes, outputPieces } from './outputPieces.ts';
export { outputTexts } from './outputTexts.ts';
export type {
  ImportedStatisticsTable,
  LogEvent,
  LogEventType,
  RunCancelRequested,
  RunClaimed,
  RunEvent,
  RunEventType,
  RunFinished,
  RunImported,
  RunLifecycleEvent,
  RunOutputChunk,
  RunRejected,
  RunRequested,
  RunStarted,
  StatisticsImported,
} from './runEvents.ts';
export {
  importedStatisticsTables,
  logEventSchema,
  RUN_EVENT_SCHEMA_VERSION,
  runEventSchema,
  runFinishedSchema,
  runImportedSchema,
  runRejectionReasons,
  runRequestedSchema,
} from './runEvents.ts';
export type { EndWithoutResult, FinishedOutcome } from './runOutcome.ts';
export { endWithoutResult, finishedOutcome } from './runOutcome.ts';
export type { StreamOptions } from './stream.ts';
export {
  defaultStreamOptions,
  ensureStarterConsumer,
  ensureStream,
  isNotFound,
  isWrongLastSequence,
  starterAckWaitMs,
  streamConfig,
} from './stream.ts';
export type { Naming } from './subjects.ts';
export {
  bucketNames,
  consumerNames,
  defaultNaming,
  messageIdFor,
  namingFor,
  queueGroups,
  runIdFromLifecycleSubject,
  subjects,
} from './subjects.ts';
export { canonicalUuid } from './uuid.ts';
