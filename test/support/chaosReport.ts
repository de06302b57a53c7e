import { appendFileSync } from 'node:fs';

/**
 * What the chaos experiments tell the summary table (`scripts/chaos.ts`), one JSON line each
 * in `CHAOS_REPORT_FILE`. Without that variable (a plain `npm test`) nothing is written.
 */
export type ChaosRecord =
  | {
      kind: 'load';
      experiment: string;
      submissions: number;
      seconds: number;
      /** Runs that reached a terminal state. */
      runs: number;
    }
  | {
      kind: 'fault';
      name: string;
      survived: boolean;
      /** What was observed, in a few words (or the broken invariant). */
      detail: string;
    }
  | { kind: 'skipped'; name: string; reason: string }
  /** A known shortcoming shown in the table (a `todo` test); it does not fail the run. */
  | { kind: 'gap'; name: string; detail: string }
  | { kind: 'inputs'; area: string; count: number }
  | { kind: 'lost'; experiment: string; runs: number }
  | {
      kind: 'containers';
      experiment: string;
      /** Containers of the pipeline left on any engine: engine, id, state, run. */
      left: string[];
    };

export function recordChaos(record: ChaosRecord): void {
  const file = process.env.CHAOS_REPORT_FILE;
  if (!file) return;
  appendFileSync(file, `${JSON.stringify(record)}\n`);
}
