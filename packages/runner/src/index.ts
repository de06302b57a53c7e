export { parseDockerByteSize } from './byteSize.ts';
export type { ContainerIdentity } from './containerOptions.ts';
export {
  CREATE_ID_LABEL,
  containerCreateOptions,
  imageLabels,
  PIPELINE_LABEL,
  PIPELINE_LABEL_VALUE,
  POOL_LABEL,
  pooledContainerCreateOptions,
  RUN_ID_LABEL,
  RUNNER_ENTRYPOINT,
  runLabels,
  runnerNetworkCreateOptions,
  SEATABLE_API_ABSENT,
  STARTER_ID_LABEL,
} from './containerOptions.ts';
export type { Handover } from './handover.ts';
export {
  END_MARKER_PATTERN,
  encodeHandover,
  HANDOVER_ERROR_EXIT_CODE,
  HANDOVER_VERSION,
  runEndLine,
  runEndPrefix,
} from './handover.ts';
export type { SandboxExtraOptions } from './otherOptions.ts';
export { emptyExtraOptions, parseOtherOptions } from './otherOptions.ts';
export type { SandboxProfile, SandboxProfileResult } from './sandboxProfile.ts';
export {
  loadSandboxProfile,
  OFFLINE_RUNNER_IMAGE,
  RUNNER_IMAGE_USER,
  sandboxProfileDefaults,
} from './sandboxProfile.ts';
