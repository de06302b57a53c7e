/**
 * The scheduler's memory for live output: runs printing up to the output limit at once, a
 * starter that sends ten times the limit, and what is left once the runs end. Each message is
 * decoded and handed to the hub as the NATS subscription does (`decodeWith`, then `accept`),
 * in this process and without a server, so the figures are the scheduler's own work.
 *
 * Run: pnpm bench liveOutput
 * Expected: about (runs × limit) bytes while they run (ASCII output is one byte a character in
 * V8), no more with a starter that sends more, and back to the baseline after the ends.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { decodeWith, encodeJson, liveOutputMessageSchema, namingFor } from '@pipeline/events';
import { pino } from 'pino';
import { LiveOutputHub } from '../src/http/live/liveOutputHub.ts';

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

const limit = 1_000_000;
const pieceCharacters = 60 * 1024;
const runs = Number(process.argv[2] ?? 64);

const toMb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
function heapUsed(): number {
  collectGarbage();
  collectGarbage();
  return process.memoryUsage().heapUsed;
}

const hub = new LiveOutputHub({
  connection: { subscribe: () => assertNever() },
  naming: namingFor('bench'),
  limit,
  maxAgeMs: 3_600_000,
  logger: pino({ level: 'silent' }),
});

function assertNever(): never {
  throw new Error('the benchmark feeds the hub directly');
}

/** Time spent decoding and keeping, without the starter's side (building and encoding). */
let schedulerMs = 0;

/** Sends `characters` of output for a run, in pieces as a starter sends them. */
function print(runId: number, characters: number): void {
  for (let offset = 0; offset < characters; offset += pieceCharacters) {
    const length = Math.min(pieceCharacters, characters - offset);
    const letter = 97 + ((offset / pieceCharacters) % 26);
    const bytes = encodeJson({
      kind: 'output',
      runId,
      offset,
      text: Buffer.alloc(length, letter).toString('latin1'),
    });
    const began = performance.now();
    const decoded = decodeWith(liveOutputMessageSchema, bytes);
    if (decoded.ok) hub.accept(decoded.value);
    schedulerMs += performance.now() - began;
  }
}

const baseline = heapUsed();
for (let runId = 1; runId <= runs; runId++) print(runId, limit);
const fillMs = schedulerMs;
const full = heapUsed();

for (let runId = runs + 1; runId <= runs + 8; runId++) print(runId, limit * 10);
const flooded = heapUsed();

for (let runId = 1; runId <= runs + 8; runId++) hub.accept({ kind: 'end', runId, length: limit });
const ended = heapUsed();

console.log(`| figure | value |`);
console.log(`| --- | --- |`);
console.log(`| runs at the limit (${limit} characters each) | ${runs} |`);
console.log(
  `| heap over the baseline with them | ${toMb(full - baseline)} MB (${((full - baseline) / runs / limit).toFixed(2)} bytes a character) |`,
);
const firstPieces = runs * Math.ceil(limit / pieceCharacters);
console.log(
  `| pieces of ${pieceCharacters} characters, decoded and kept by the scheduler | ${firstPieces} in ${fillMs.toFixed(0)} ms (${((fillMs * 1000) / firstPieces).toFixed(0)} µs each) |`,
);
console.log(`| heap added by 8 runs sending 10 × the limit | ${toMb(flooded - full)} MB |`);
console.log(
  `| heap over the baseline after every end | ${toMb(ended - baseline)} MB, runs kept: ${hub.keptRuns} |`,
);
