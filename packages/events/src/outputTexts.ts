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
  unreadableRequest:
    "The script was not run: this pipeline's starters could not read its run request (a format they do not know, for example one written by a newer version of the pipeline).",
} as const;
