/**
 * The starter's peak memory while ten scripts print 100 MB each at once: the output is
 * capped at the limit, the rest drained and dropped, so the process's resident size should
 * not follow what the scripts print. Sampled every 20 ms in this process, where the starter
 * runs; the figure includes the harness (NATS client, claim responder, file server).
 *
 * Run: pnpm bench peakMemory   (needs Docker, nats-server and seatable-pipeline-runner:offline)
 * Target: peak RSS under 150 MB.
 *
 * TODO(#4): this process also holds the harness (its own NATS client, claim responder, file
 * server and the collected results), about 130 MB before the first run; the starter alone
 * would be measured as a child process by its VmHWM. Growth during the runs is the figure
 * that follows the starter's output handling.
 */
import { StarterHarness } from '../test/support/starterHarness.ts';

const scripts = 10;
const megabytesEach = 100;
const targetMb = 150;
const script = [
  'import sys',
  'chunk = "z" * 1048575 + "\\n"',
  `for _ in range(${megabytesEach}):`,
  '    sys.stdout.write(chunk)',
  'sys.stdout.flush()',
].join('\n');

const toMb = (bytes: number) => bytes / 1024 / 1024;

const harness = new StarterHarness('benchmem');
await harness.start({ PYTHON_STARTER_THREAD_COUNT: String(scripts) });
try {
  global.gc?.();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  const began = performance.now();
  const records = await Promise.all(
    Array.from({ length: scripts }, () => harness.run({ script, timeoutSeconds: 120 })),
  );
  const seconds = (performance.now() - began) / 1000;
  clearInterval(sampler);
  for (const record of records) {
    if (!record.finished.data.outputTruncated) throw new Error('a run was not capped');
  }

  console.log(`${scripts} scripts printing ${megabytesEach} MB each at once`);
  console.log('| measure                      | value    | target   |');
  console.log('| ---------------------------- | -------- | -------- |');
  console.log(
    `| RSS before, MB               | ${toMb(baseline).toFixed(1).padStart(8)} |          |`,
  );
  console.log(
    `| peak RSS, MB                 | ${toMb(peak).toFixed(1).padStart(8)} | < ${targetMb}    |`,
  );
  console.log(
    `| growth, MB                   | ${toMb(peak - baseline)
      .toFixed(1)
      .padStart(8)} |          |`,
  );
  console.log(`| wall time, s                 | ${seconds.toFixed(1).padStart(8)} |          |`);
  console.log(
    `| printed in all, MB           | ${String(scripts * megabytesEach).padStart(8)} |          |`,
  );
  console.log(toMb(peak) < targetMb ? 'peak memory within target' : 'peak memory OVER target');
} finally {
  await harness.stop();
}
