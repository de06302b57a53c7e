/** Texts that SeaTable shows users as a run's output. Keep them as they are. */
export const outputTexts = {
  timeout: "The script's running time exceeded the limit and the execution was aborted.",
  fairShareExceeded: 'Running scripts too frequently in a short period of time',
  failed: 'Failed',
  scriptNotFound: 'Fail to get script',
  outOfMemory: 'out-of-memory(OOM) error!',
  quotaExceeded: 'The number of runs exceeds the limit',
  cancelled: 'The run was cancelled by an administrator.',
  lost: 'The run was lost: its starter stopped reporting before the run finished.',
} as const;
