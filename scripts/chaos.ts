/**
 * `npm run test:chaos`: runs the chaos suite of issue #6 and prints its summary table. The
 * experiments (`test/chaos/*.chaos.ts`: faults under load), the hostile-input and recovery
 * tests (`test/chaos/*.test.ts`) and the NATS permissions test run one file at a time; each
 * experiment appends what it saw to a report file, read back here. The run fails when a test
 * failed, a fault was not survived, a run was lost or a container was left.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { ChaosRecord } from '../test/support/chaosReport.ts';

const repoRoot = join(import.meta.dirname, '..');
const profile = process.env.CHAOS_PROFILE ?? 'short';
if (profile !== 'short' && profile !== 'full') {
  console.error(`CHAOS_PROFILE: must be short or full, got "${profile}"`);
  process.exit(2);
}
const outputDirectory = join(repoRoot, 'test-output');
mkdirSync(outputDirectory, { recursive: true });
const reportFile = join(outputDirectory, 'chaos-report.jsonl');
writeFileSync(reportFile, '');

const chaosDirectory = join(repoRoot, 'test', 'chaos');
const chaosFiles = readdirSync(chaosDirectory)
  .filter((name) => name.endsWith('.chaos.ts') || name.endsWith('.test.ts'))
  .sort((left, right) => Number(right.endsWith('.chaos.ts')) - Number(left.endsWith('.chaos.ts')))
  .map((name) => relative(repoRoot, join(chaosDirectory, name)));
const permissionsTest = 'test/deploy/natsPermissions.int.test.ts';

const env = {
  ...process.env,
  CHAOS_PROFILE: profile,
  CHAOS_REPORT_FILE: reportFile,
  FUZZ_ROUNDS: process.env.FUZZ_ROUNDS ?? (profile === 'full' ? '600' : '150'),
};
const startedAt = Date.now();

function runTests(files: string[]): number {
  const result = spawnSync(
    process.execPath,
    [
      '--test',
      '--test-concurrency=1',
      `--test-timeout=${profile === 'full' ? 1_200_000 : 600_000}`,
      '--test-force-exit',
      '--test-reporter=spec',
      ...files,
    ],
    { cwd: repoRoot, env, stdio: 'inherit' },
  );
  return result.status ?? 1;
}

console.log(`chaos: profile ${profile}: ${[...chaosFiles, permissionsTest].join(', ')}`);
const suiteStatus = runTests(chaosFiles);
const permissionsStatus = runTests([permissionsTest]);
const records = readRecords();
records.push({
  kind: 'fault',
  name: 'NATS permissions: starter credential',
  survived: permissionsStatus === 0,
  detail:
    permissionsStatus === 0
      ? 'cannot append RunRequested, make other consumers, or delete, purge or change the stream'
      : `${permissionsTest} failed`,
});

const seconds = (Date.now() - startedAt) / 1000;
const summary = summarize(records);
console.log(`\nchaos summary (profile ${profile}, ${Math.round(seconds)} s)\n`);
console.log(summary.table);
const failed =
  suiteStatus !== 0 ||
  summary.lost > 0 ||
  summary.containersLeft > 0 ||
  summary.faultsFailed > 0 ||
  summary.experiments === 0;
if (failed) {
  const why = [
    suiteStatus !== 0 ? 'a chaos test failed' : '',
    summary.experiments === 0 ? 'no experiment ran' : '',
    summary.faultsFailed > 0 ? `${summary.faultsFailed} faults not survived` : '',
  ].filter(Boolean);
  console.log(`\nchaos: FAILED${why.length > 0 ? `: ${why.join(', ')}` : ''}`);
}
process.exit(failed ? 1 : 0);

function readRecords(): ChaosRecord[] {
  if (!existsSync(reportFile)) return [];
  return readFileSync(reportFile, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as ChaosRecord);
}

function summarize(all: ChaosRecord[]) {
  const loads = all.filter((record) => record.kind === 'load');
  const faults = all.filter((record) => record.kind === 'fault');
  const inputs = all.filter((record) => record.kind === 'inputs');
  const skipped = all.filter((record) => record.kind === 'skipped');
  const gaps = all.filter((record) => record.kind === 'gap');
  const lost = all
    .filter((record) => record.kind === 'lost')
    .reduce((sum, record) => sum + record.runs, 0);
  const containersLeft = new Set(
    all.flatMap((record) => (record.kind === 'containers' ? record.left : [])),
  ).size;

  const lines: string[] = ['load held'];
  lines.push(
    ...columns([
      ['experiment', 'submissions', 'seconds', 'per second', 'runs ended'],
      ...loads.map((load) => [
        load.experiment,
        String(load.submissions),
        load.seconds.toFixed(0),
        (load.submissions / Math.max(load.seconds, 0.001)).toFixed(1),
        String(load.runs),
      ]),
    ]),
  );
  const submissions = loads.reduce((sum, load) => sum + load.submissions, 0);
  const loadSeconds = loads.reduce((sum, load) => sum + load.seconds, 0);
  const runs = loads.reduce((sum, load) => sum + load.runs, 0);
  lines.push(
    `  total: ${submissions} submissions in ${loadSeconds.toFixed(0)} s (${(submissions / Math.max(loadSeconds, 0.001)).toFixed(1)} per second), ${runs} runs ended`,
  );
  lines.push('', 'faults survived');
  lines.push(
    ...columns([
      ['fault', 'survived', 'what happened'],
      ...faults.map((fault) => [fault.name, fault.survived ? 'yes' : 'NO', fault.detail]),
      ...gaps.map((gap) => [gap.name, 'no, known', gap.detail]),
      ...skipped.map((fault) => [fault.name, 'not run', fault.reason]),
    ]),
  );
  lines.push('', 'bad inputs tried');
  lines.push(
    ...columns([['area', 'inputs'], ...inputs.map((input) => [input.area, String(input.count)])]),
  );
  lines.push(
    `  total: ${inputs.reduce((sum, input) => sum + input.count, 0)} inputs, a 500 or a crash fails its test`,
  );
  lines.push('', `runs lost: ${lost}`, `containers left: ${containersLeft}`);
  return {
    table: lines.join('\n'),
    lost,
    containersLeft,
    experiments: loads.length,
    faultsFailed: faults.filter((fault) => !fault.survived).length,
  };
}

/** Rows as aligned columns, indented under their heading; the last column is not padded. */
function columns(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, index) =>
    Math.max(...rows.map((row) => (row[index] ?? '').length)),
  );
  return rows.map(
    (row) =>
      `  ${row.map((cell, index) => (index === row.length - 1 ? cell : cell.padEnd(widths?.[index] ?? 0))).join('  ')}`,
  );
}
