/**
 * `pnpm bench`: runs the benchmark suite (`test/bench/suite.bench.ts`: the engine floor, the
 * hello-world latency with the warm pool off and on, runs and submissions per second, in one
 * run and one table). A benchmark is a file named `*.bench.ts` under `packages/<name>/bench/`
 * or `test/bench/`; `pnpm bench <word>` runs those whose path contains the word, and
 * `pnpm bench all` every one of them, one after the other, each printing its own table.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const repoRoot = join(import.meta.dirname, '..');
const word = process.argv[2];
const suite = join('test', 'bench', 'suite.bench.ts');
const filter = word === undefined ? suite : word === 'all' ? undefined : word;

function benchFiles(directory: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(directory);
  } catch {
    return [];
  }
  return entries.flatMap((entry) => {
    const path = join(directory, entry);
    if (statSync(path).isDirectory()) return benchFiles(path);
    return entry.endsWith('.bench.ts') ? [path] : [];
  });
}

const roots = [
  ...readdirSync(join(repoRoot, 'packages')).map((name) =>
    join(repoRoot, 'packages', name, 'bench'),
  ),
  join(repoRoot, 'test', 'bench'),
];
const files = roots
  .flatMap(benchFiles)
  .filter((file) => !filter || relative(repoRoot, file).includes(filter));

if (files.length === 0) {
  console.error(filter ? `no benchmark matches "${filter}"` : 'no benchmarks found');
  process.exit(1);
}

let failed = 0;
for (const file of files) {
  console.log(`\n== ${relative(repoRoot, file)}`);
  const outcome = spawnSync(process.execPath, [file], { stdio: 'inherit', cwd: repoRoot });
  if (outcome.status !== 0) {
    failed++;
    console.error(`benchmark ${relative(repoRoot, file)} failed with exit code ${outcome.status}`);
  }
}
process.exit(failed === 0 ? 0 : 1);
