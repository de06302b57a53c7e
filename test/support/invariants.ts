import type { ChaosPipeline } from './chaosPipeline.ts';
import type { LoadSubmission } from './loadSubmitter.ts';
import { baseUuid, type RunView } from './pipeline.ts';

/** What the invariants found after one experiment; `problems` is empty when all held. */
export interface InvariantReport {
  /** Submissions answered with a script_id. */
  accepted: number;
  /** Of those, runs that reached a terminal state visible through the API. */
  terminal: number;
  /** Accepted runs without a terminal state, or not found at all: lost. */
  lost: number;
  /** A second run for one submission (another id for one key, or a script fetched twice). */
  doubled: number;
  /** Runs ended as lost by the watchdog (their starter died): ended, not lost. */
  endedAsLost: number;
  /** Runs that ran and succeeded. */
  succeeded: number;
  /** Containers left on any engine that were not there before the experiment. */
  containersLeft: string[];
  problems: string[];
}

export interface InvariantOptions {
  timeoutSeconds: number;
  graceSeconds: number;
  /** How long the runs may take to end once the load has stopped. */
  drainMs: number;
  /** Containers already left before the experiment, not counted again. */
  containersBefore: string[];
}

/**
 * The invariants of issue #6, checked after an experiment once its load has stopped: every
 * submission answered with a script_id reaches exactly one terminal state visible through the
 * API; the statistics are what the finished runs add up to, and a rebuild from the log gives
 * the same tables; no container is left on any engine; no run ran past its deadline plus the
 * grace period.
 */
export async function checkInvariants(
  pipeline: ChaosPipeline,
  submissions: LoadSubmission[],
  options: InvariantOptions,
): Promise<InvariantReport> {
  const problems: string[] = [];
  const accepted = submissions.filter((submission) => submission.id !== undefined);
  const views = await waitForTerminalStates(pipeline, accepted, options.drainMs);

  let lost = 0;
  let doubled = 0;
  let endedAsLost = 0;
  let succeeded = 0;
  for (const submission of accepted) {
    const view = views.get(submission.key);
    if (view?.state !== 'finished') {
      lost += 1;
      problems.push(`run ${submission.id} (${submission.key}) is ${view?.state ?? 'not found'}`);
      continue;
    }
    if (view.success && view.output !== submission.expectedOutput) {
      problems.push(`run ${submission.id} succeeded with output ${JSON.stringify(view.output)}`);
    }
    if (view.success) succeeded += 1;
    if (/was lost/.test(view.output ?? '')) endedAsLost += 1;
    if (submission.secondId !== undefined) {
      doubled += 1;
      problems.push(
        `${submission.key} got run ${submission.id} and then run ${submission.secondId}`,
      );
    }
    const fetches = pipeline.standin.fetchCount(submission.scriptName);
    if (fetches > 1) {
      doubled += 1;
      problems.push(`${submission.key} was fetched ${fetches} times`);
    }
  }
  for (const submission of submissions) {
    if (submission.gaveUp) problems.push(`${submission.key} never got an answer with an id`);
  }
  doubled += await runsPerScriptAboveOne(pipeline, problems);

  await checkStatistics(pipeline, problems);
  await checkNoneOverdue(pipeline, options, problems);
  // Compared at the live read model's position (rebuild.ts); on a difference the report
  // names the differing runs.
  const rebuild = await pipeline.rebuildIsIdentical();
  if (!rebuild.identical) problems.push(`rebuild differs: ${rebuild.output.slice(0, 4000)}`);
  const containersLeft = (await pipeline.containersLeft()).filter(
    (container) => !options.containersBefore.includes(container),
  );
  if (containersLeft.length > 0) problems.push(`containers left: ${containersLeft.join(', ')}`);

  return {
    accepted: accepted.length,
    terminal: accepted.length - lost,
    lost,
    doubled,
    endedAsLost,
    succeeded,
    containersLeft,
    problems,
  };
}

async function waitForTerminalStates(
  pipeline: ChaosPipeline,
  accepted: LoadSubmission[],
  drainMs: number,
): Promise<Map<string, RunView>> {
  const views = new Map<string, RunView>();
  const deadline = Date.now() + drainMs;
  let open = accepted;
  while (open.length > 0 && Date.now() < deadline) {
    const stillOpen: LoadSubmission[] = [];
    for (const submission of open) {
      const view = await pollRun(pipeline, submission);
      if (view) views.set(submission.key, view);
      if (view?.state !== 'finished') stillOpen.push(submission);
    }
    open = stillOpen;
    if (open.length > 0) await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  return views;
}

async function pollRun(
  pipeline: ChaosPipeline,
  submission: LoadSubmission,
): Promise<RunView | undefined> {
  const query = `dtable_uuid=${baseUuid}&script_name=${encodeURIComponent(submission.scriptName)}`;
  try {
    const response = await pipeline.request(`/run-script/${submission.id}/?${query}`);
    if (response.status !== 200) {
      await response.arrayBuffer();
      return undefined;
    }
    return ((await response.json()) as { script: RunView }).script;
  } catch {
    return undefined;
  }
}

async function runsPerScriptAboveOne(pipeline: ChaosPipeline, problems: string[]): Promise<number> {
  const rows = await pipeline.query<{ script_name: string; runs: number }>(
    `SELECT script_name, COUNT(*) AS runs FROM script_log
     WHERE script_name LIKE 'chaos-%' GROUP BY script_name HAVING COUNT(*) > 1`,
  );
  for (const row of rows) problems.push(`${row.script_name} has ${row.runs} runs`);
  return rows.reduce((sum, row) => sum + Number(row.runs) - 1, 0);
}

/**
 * A run counts in the statistics when it really ran: finished, with a start, not lost. Every
 * statistics table and the API's running count must add up to the same number.
 */
async function checkStatistics(pipeline: ChaosPipeline, problems: string[]): Promise<void> {
  const [ran] = await pipeline.query<{ runs: number }>(
    `SELECT COUNT(*) AS runs FROM script_log s JOIN run_detail d ON d.run_id = s.id
     WHERE s.state = 'finished' AND s.started_at IS NOT NULL AND d.lost = 0`,
  );
  const expected = Number(ran?.runs ?? 0);
  for (const table of ['user_run_script_statistics', 'dtable_run_script_statistics']) {
    const [sum] = await pipeline.query<{ runs: number | null }>(
      `SELECT SUM(total_run_count) AS runs FROM ${table}`,
    );
    const counted = Number(sum?.runs ?? 0);
    if (counted !== expected) problems.push(`${table} counts ${counted} runs, ${expected} ran`);
  }

  const owners = await pipeline.query<{ owner: string; runs: number }>(
    `SELECT s.owner, COUNT(*) AS runs FROM script_log s JOIN run_detail d ON d.run_id = s.id
     WHERE s.state = 'finished' AND s.started_at IS NOT NULL AND d.lost = 0 GROUP BY s.owner`,
  );
  for (const owner of owners) {
    const response = await pipeline.request(
      `/scripts-running-count/?username=${encodeURIComponent(owner.owner)}`,
    );
    const body = (await response.json()) as { count: number };
    if (body.count !== Number(owner.runs)) {
      problems.push(`the API counts ${body.count} runs of ${owner.owner}, ${owner.runs} ran`);
    }
  }
}

async function checkNoneOverdue(
  pipeline: ChaosPipeline,
  options: InvariantOptions,
  problems: string[],
): Promise<void> {
  // The watchdog looks once a second; a little more for the log and the projector.
  const allowedSeconds = options.timeoutSeconds + options.graceSeconds + 10;
  const [overdue] = await pipeline.query<{ runs: number }>(
    `SELECT COUNT(*) AS runs FROM script_log WHERE started_at IS NOT NULL
     AND TIMESTAMPDIFF(SECOND, started_at, COALESCE(finished_at, UTC_TIMESTAMP(6))) > ?`,
    [allowedSeconds],
  );
  if (Number(overdue?.runs) > 0) {
    problems.push(`${overdue?.runs} runs ran past their deadline plus the grace period`);
  }
}
