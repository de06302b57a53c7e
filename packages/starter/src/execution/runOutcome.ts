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
export function runOutcome(container: ContainerOutcome): RunOutcome {
  // Output past the limit is dropped without a word in the output itself: the user's
  // output stays exactly the first L characters (BC-03 B), and the run's `outputTruncated`
  // flag in the log says it was cut.
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
