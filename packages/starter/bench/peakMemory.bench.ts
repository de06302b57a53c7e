/**
 * The starter's peak memory while ten scripts print 100 MB each at once: the output is
 * capped at the limit, the rest drained and dropped, so the process's resident size should
 * not follow what the scripts print. The starter runs as a process of its own (`node
 * src/main.ts`, as in production); its peak is the kernel's high-water mark of its resident
 * set (VmHWM in /proc/<pid>/status), over its whole life, start-up included.
 *
 * Run: npm run bench -- peakMemory   (needs Docker, nats-server and the runner image)
 * Target: peak RSS under 150 MB.
 */
// Measured 133 to 138 MB with the shipped MALLOC_ARENA_MAX=2 and MALLOC_TRIM_THRESHOLD_=131072
// (145 to 153 MB without the latter on an idle machine, 153 to 157 MB without either).
// Node's type stripping keeps some 18 MB of WebAssembly for good; a build step would be the
// next saving.
import { StarterHarness } from '../test/support/starterHarness.ts';
import { StarterProcess } from './starterProcess.ts';

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

const toMb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1).padStart(8);

const harness = new StarterHarness('benchmem');
await harness.startServices();
const starter = await StarterProcess.start(harness, {
  PYTHON_STARTER_THREAD_COUNT: String(scripts),
});
try {
  const ready = starter.memory('VmRSS');
  const began = performance.now();
  const records = await Promise.all(
    Array.from({ length: scripts }, () => harness.run({ script, timeoutSeconds: 120 })),
  );
  const seconds = (performance.now() - began) / 1000;
  const peak = starter.memory('VmHWM');
  for (const record of records) {
    if (!record.finished.data.outputTruncated) throw new Error('a run was not capped');
  }

  console.log(
    `${scripts} scripts printing ${megabytesEach} MB each at once, starter pid ${starter.pid}`,
  );
  console.log('| measure (starter process)    | value    | target   |');
  console.log('| ---------------------------- | -------- | -------- |');
  console.log(`| RSS when ready, MB           | ${toMb(ready)} |          |`);
  console.log(`| peak RSS (VmHWM), MB         | ${toMb(peak)} | < ${targetMb}    |`);
  console.log(`| wall time, s                 | ${seconds.toFixed(1).padStart(8)} |          |`);
  console.log(
    `| printed in all, MB           | ${String(scripts * megabytesEach).padStart(8)} |          |`,
  );
  console.log(
    peak / 1024 / 1024 < targetMb ? 'peak memory within target' : 'peak memory OVER target',
  );
} finally {
  await starter.stop();
  await harness.stop();
}
