import type { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { type EventFilterInput, eventTypes, parseEventFilter } from '../audit/eventFilter.ts';
import { EventReader } from '../audit/eventReader.ts';
import type { TableSummary } from '../audit/readModelChecksum.ts';
import { RebuildRefusedError, rebuildReadModel } from '../audit/rebuild.ts';
import { readModelRunIndex } from '../audit/runIndex.ts';
import { ConfigError, loadConfig } from '../config.ts';
import { openLog, openReadModel } from './connections.ts';

export interface CommandIo {
  env: Record<string, string | undefined>;
  stdout: Writable;
  stderr: Writable;
}

/** A problem the operator can fix; the command prints its one line and exits with 1. */
export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}

const help = {
  pipeline: `usage: pipeline <command> [options]

Operator commands for the SeaTable Python pipeline. They read the same environment as the
scheduler (NATS_URL, DB_*, PIPELINE_SUBJECT_PREFIX, TIME_ZONE, ...).

commands:
  events    print events of the log as JSON lines
  rebuild   project the whole log again and replace the read model
  help      this text, or "pipeline help <command>"
`,
  events: `usage: pipeline events [--run <id>] [--base <uuid>] [--owner <name>] [--org <id>]
                       [--since <iso>] [--until <iso>] [--type <EventType>]

Prints the events of the log, in order, one JSON object a line:
  {"seq", "time", "subject", "type", "runId", "event"}
"time" is when the log stored the event (UTC); the event's own time is event.occurredAt.

options:
  --run <id>         one run: its request and every event on its subject
  --base <uuid>      runs of one base (with or without dashes, any case)
  --owner <name>     runs of one owner
  --org <id>         runs of one org (-1: no org)
  --since <iso>      stored at or after this time (a date, or a time; UTC without an offset)
  --until <iso>      stored at or before this time
  --type <type>      only events of this type: ${eventTypes.join(', ')}
Without --run and --since the whole log is read (from its first event).
`,
  rebuild: `usage: pipeline rebuild [--into <schema>] [--swap] [--force]

Projects the whole log again, from its first event, into empty read-model tables, shows
progress (events/s) on stderr, and prints the row count and checksum of every table before
(the live read model) and after (the rebuilt one), and whether they are identical. It
projects up to the sequence the live read model had reached when it began (read in the same
snapshot as the live checksums), so the two compare exactly while the scheduler runs on.

Without --into it rebuilds in place: it projects into a scratch schema next to the live one,
then renames the tables over the live ones in one atomic RENAME TABLE (the API serves the
old tables meanwhile) and drops the scratch schema with the old tables.

options:
  --into <schema>    project into this schema (created when missing) and keep it
  --swap             with --into: rename the rebuilt tables over the live ones; the old
                     tables stay in <schema>
  --force            replace the read model even when it has runs the log does not have
                     (they are lost); without it the rebuild refuses and changes nothing
`,
  help: `usage: pipeline help [<command>]
`,
} as const;

type CommandName = keyof typeof help;

/** Runs one `pipeline` command line; resolves with the exit code. */
export async function runPipelineCommand(argv: string[], io: CommandIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
      const topic = rest[0] ?? 'pipeline';
      if (!(topic in help))
        throw new CommandError(`unknown command "${topic}"; try: pipeline help`);
      io.stdout.write(help[topic as CommandName]);
      return 0;
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      if (!(command in help))
        throw new CommandError(`unknown command "${command}"; try: pipeline help`);
      io.stdout.write(help[command as CommandName]);
      return 0;
    }
    if (command === 'events') return await eventsCommand(rest, io);
    if (command === 'rebuild') return await rebuildCommand(rest, io);
    throw new CommandError(`unknown command "${command}"; try: pipeline help`);
  } catch (error) {
    io.stderr.write(
      `pipeline ${command ?? ''}: ${problemOf(error)}\n`.replace('pipeline : ', 'pipeline: '),
    );
    return 1;
  }
}

function problemOf(error: unknown): string {
  if (error instanceof ConfigError) return `invalid configuration: ${error.problems.join('; ')}`;
  if (error instanceof CommandError || error instanceof RebuildRefusedError) return error.message;
  if (error instanceof Error && 'code' in error && error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    return `${error.message.split('.')[0]}; see --help`;
  }
  return error instanceof Error ? error.message : String(error);
}

function options(argv: string[], names: string[], flags: string[] = []) {
  return parseArgs({
    args: argv,
    allowPositionals: false,
    strict: true,
    options: Object.fromEntries([
      ...names.map((name) => [name, { type: 'string' as const }]),
      ...flags.map((name) => [name, { type: 'boolean' as const }]),
    ]),
  }).values as Record<string, string | boolean | undefined>;
}

async function eventsCommand(argv: string[], io: CommandIo): Promise<number> {
  const values = options(argv, ['run', 'base', 'owner', 'org', 'since', 'until', 'type']);
  const input: EventFilterInput = {};
  for (const [field, option] of [
    ['runId', 'run'],
    ['base', 'base'],
    ['owner', 'owner'],
    ['org', 'org'],
    ['since', 'since'],
    ['until', 'until'],
    ['type', 'type'],
  ] as const) {
    const value = values[option];
    if (typeof value === 'string') input[field] = value;
  }
  const config = operatorConfig(io.env);
  const parsed = parseEventFilter(
    input,
    {
      runId: '--run',
      base: '--base',
      owner: '--owner',
      org: '--org',
      since: '--since',
      until: '--until',
      type: '--type',
    },
    config.timeZone,
  );
  if (!parsed.ok) throw new CommandError(parsed.problem);

  const log = await openLog(config);
  const { dtableUuid, owner, orgId } = parsed.filter;
  const byIdentity = dtableUuid !== undefined || owner !== undefined || orgId !== undefined;
  // The read model's run index makes a filter by base, owner or org a lookup; without the
  // database the whole log is read instead (the same events, slower).
  const readModel = byIdentity
    ? await openReadModel(config).catch((error: unknown) => {
        io.stderr.write(`events: ${(error as Error).message}; reading the whole log instead\n`);
        return null;
      })
    : null;
  try {
    const reader = new EventReader(
      log.eventLog,
      readModel ? readModelRunIndex(readModel.orm) : undefined,
    );
    for await (const logged of reader.events(parsed.filter)) {
      const { seq, time, subject, type, runId, event } = logged;
      const line = `${JSON.stringify({ seq, time, subject, type, runId, event, ...(logged.reason ? { reason: logged.reason } : {}) })}\n`;
      if (!io.stdout.write(line)) await new Promise((resolve) => io.stdout.once('drain', resolve));
    }
  } finally {
    await readModel?.close();
    await log.close();
  }
  return 0;
}

async function rebuildCommand(argv: string[], io: CommandIo): Promise<number> {
  const values = options(argv, ['into'], ['swap', 'force']);
  const into = typeof values.into === 'string' ? values.into : undefined;
  if (values.swap && into === undefined) {
    throw new CommandError(
      '--swap needs --into <schema> (without --into the rebuild always swaps)',
    );
  }
  const config = operatorConfig(io.env);
  const log = await openLog(config);
  const readModel = await openReadModel(config).catch(async (error: unknown) => {
    await log.close();
    throw error;
  });
  try {
    const report = await rebuildReadModel(
      {
        orm: readModel.orm,
        database: config.database,
        eventLog: log.eventLog,
        timeZone: config.timeZone,
        retention: config.retention,
        logger: readModel.logger,
        onProgress: ({ events, total, eventsPerSecond }) =>
          io.stderr.write(
            `rebuild: ${events}/${total} events (${Math.floor((100 * events) / Math.max(total, 1))} %), ${Math.round(eventsPerSecond)} events/s\n`,
          ),
      },
      { ...(into ? { into } : {}), swap: Boolean(values.swap), force: Boolean(values.force) },
    );
    io.stderr.write(
      `rebuild: ${report.events} events projected in ${report.seconds.toFixed(1)} s (${Math.round(report.events / Math.max(report.seconds, 0.001))} events/s) into ${report.schema}, up to sequence ${report.position}\n`,
    );
    io.stdout.write(summaryTable(report.before, report.after));
    io.stdout.write(
      report.differing.length === 0
        ? 'identical: every table has the same rows before and after\n'
        : `different: ${report.differing.join(', ')}\n`,
    );
    if (report.runsNotInLog > 0) {
      io.stdout.write(`lost: ${report.runsNotInLog} runs of the read model are not in the log\n`);
    }
    io.stdout.write(
      report.swapped
        ? `swapped: the live read model is the rebuilt one${into ? `; the old tables are in ${into}` : ''}\n`
        : `not swapped: the rebuilt tables are in ${report.schema}\n`,
    );
    return report.differing.length === 0 ? 0 : 2;
  } finally {
    await readModel.close();
    await log.close();
  }
}

function summaryTable(before: TableSummary[], after: TableSummary[]): string {
  const lines = [
    `${'table'.padEnd(38)} ${'rows before'.padStart(12)} ${'rows after'.padStart(12)}  checksum before                   checksum after`,
  ];
  for (const old of before) {
    const rebuilt = after.find((summary) => summary.table === old.table);
    lines.push(
      `${old.table.padEnd(38)} ${String(old.rows).padStart(12)} ${String(rebuilt?.rows ?? '-').padStart(12)}  ${old.checksum}  ${rebuilt?.checksum ?? '-'}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * The scheduler's configuration for an operator's command. The commands talk to NATS and
 * MariaDB only, never to SeaTable, so the SeaTable settings may be left out.
 */
function operatorConfig(env: Record<string, string | undefined>) {
  return loadConfig({
    PYTHON_SCHEDULER_AUTH_TOKEN: 'unused-by-the-pipeline-command',
    SEATABLE_SERVER_URL: 'http://127.0.0.1:9',
    ...env,
  });
}
