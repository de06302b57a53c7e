import { outputTexts } from '@pipeline/events';

/** What happened to the container, as the starter saw it. */
export interface ContainerOutcome {
  /** The script's exit status as Docker reports it (137 after SIGKILL). */
  exitCode: number;
  /** Docker's flag: the kernel's OOM killer acted somewhere in the container. */
  oomKilled: boolean;
  /** The starter stopped the container at the run's deadline. */
  timedOut: boolean;
  /** What the script printed, already capped at the output limit. */
  printed: string;
  /** The script printed more than the limit; the rest was dropped. */
  truncated?: boolean;
}

export interface RunOutcome {
  success: boolean;
  returnCode: number;
  output: string;
  timedOut: boolean;
  outOfMemory: boolean;
}

/** Exit status of a process ended by SIGKILL (128 + 9). */
const killedExitCode = 137;

/**
 * Maps a container's end to the run's result.
 *
 * - Timeout wins: a timed-out run is killed, so its 137 says nothing about memory (BC-04).
 *   The printed part is kept and the contract's timeout text follows it; return code -1.
 * - Out of memory needs both the SIGKILL status and Docker's flag: the flag alone is set
 *   when only a child was killed while the script itself went on (BC-05 B), and 137 alone
 *   is any SIGKILL.
 * - Otherwise the exit status decides: 0 is success.
 */
export function runOutcome(outcome: ContainerOutcome): RunOutcome {
  // The user learns that output was dropped, on a line of its own after what was kept.
  const container = outcome.truncated
    ? { ...outcome, printed: withLine(outcome.printed, outputTexts.truncated) }
    : outcome;
  if (container.timedOut) {
    return {
      success: false,
      returnCode: -1,
      output: withLine(container.printed, outputTexts.timeout),
      timedOut: true,
      outOfMemory: false,
    };
  }
  if (container.exitCode === killedExitCode && container.oomKilled) {
    return {
      success: false,
      returnCode: killedExitCode,
      output: withLine(container.printed, outputTexts.outOfMemory),
      timedOut: false,
      outOfMemory: true,
    };
  }
  return {
    success: container.exitCode === 0,
    returnCode: container.exitCode,
    output: container.printed,
    timedOut: false,
    outOfMemory: false,
  };
}

/** `text` on a line of its own after the output. */
export function withLine(output: string, text: string): string {
  if (output === '' || output.endsWith('\n')) return `${output}${text}`;
  return `${output}\n${text}`;
}
