/**
 * Subject and stream names. Services build subjects only through these functions.
 * A prefix lets several installations (or test files) share one NATS server.
 */
export interface Naming {
  /** Subject prefix, `pipeline` by default. */
  readonly prefix: string;
  /** Stream name, `PIPELINE` by default. */
  readonly stream: string;
}

export const defaultNaming: Naming = { prefix: 'pipeline', stream: 'PIPELINE' };

export function namingFor(prefix: string): Naming {
  if (!/^[a-zA-Z0-9_-]+$/.test(prefix)) {
    throw new Error(`invalid subject prefix "${prefix}": letters, digits, _ and - only`);
  }
  return { prefix, stream: prefix.toUpperCase().replace(/-/g, '_') };
}

export const subjects = {
  /** Every event of the log: requests and run lifecycles. */
  all: (naming: Naming) => `${naming.prefix}.runs.>`,
  /** Where run requests go; the starters' work queue filters on it. */
  requested: (naming: Naming) => `${naming.prefix}.runs.requested`,
  /** Every later event of one run. */
  lifecycle: (naming: Naming, runId: number) => `${naming.prefix}.runs.run.${runId}`,
  lifecycleAll: (naming: Naming) => `${naming.prefix}.runs.run.*`,
  /** One event of an adopted original's statistics: its table and the event's place. */
  importedStatistics: (naming: Naming, table: string, part: number) =>
    `${naming.prefix}.runs.imported.${table}.${part}`,
  importedStatisticsAll: (naming: Naming) => `${naming.prefix}.runs.imported.>`,
  /** Request/reply: a starter asks a scheduler to claim a run. */
  claims: (naming: Naming) => `${naming.prefix}.claims`,
  /**
   * Core NATS, not in the stream: a scheduler repeats each RunCancelRequested here after
   * appending it, for the starter holding the run, which may read this and not the log.
   */
  cancels: (naming: Naming, runId: number) => `${naming.prefix}.cancels.${runId}`,
  /**
   * Core NATS, not in the stream: what a running script printed so far, pushed by its starter
   * (`LiveOutputMessage`). Outside `<prefix>.runs.>`, so the log never stores it.
   */
  liveOutput: (naming: Naming, runId: number) => `${naming.prefix}.live.${runId}`,
  /** Every run's live output; each scheduler subscribes to it itself (no queue group). */
  liveOutputAll: (naming: Naming) => `${naming.prefix}.live.*`,
} as const;

export const consumerNames = {
  starters: 'starters',
} as const;

export const queueGroups = {
  schedulers: 'schedulers',
} as const;

export const bucketNames = {
  fleet: (naming: Naming) => `${naming.stream}_fleet`,
} as const;

/** The id under which JetStream de-duplicates a publish of one run's event. */
export function messageIdFor(runId: number, type: string, part?: number): string {
  return part === undefined ? `run-${runId}-${type}` : `run-${runId}-${type}-${part}`;
}

/** The subject a run event belongs on. */
export function runIdFromLifecycleSubject(naming: Naming, subject: string): number | null {
  const prefix = `${naming.prefix}.runs.run.`;
  if (!subject.startsWith(prefix)) return null;
  const id = Number(subject.slice(prefix.length));
  return Number.isSafeInteger(id) && id > 0 ? id : null;
}
