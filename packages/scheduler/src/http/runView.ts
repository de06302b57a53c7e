/**
 * The contract's `<run>` object, built from a `script_log` row. Every endpoint that
 * answers with runs goes through here, so the field set and the time format are the
 * same everywhere.
 */

/** The `script_log` columns a `<run>` needs, for `SELECT ${runColumns} FROM script_log`. */
export const runColumns =
  'id, dtable_uuid, owner, org_id, script_name, context_data, started_at, finished_at, ' +
  'success, return_code, output, operate_from, state, created_at';

/** A `script_log` row as the driver returns it (datetimes are stored in UTC). */
export interface ScriptLogRow {
  id: number | bigint | string;
  dtable_uuid: string;
  owner: string | null;
  org_id: number | null;
  script_name: string;
  context_data: string | null;
  started_at: Date | string | null;
  finished_at: Date | string | null;
  success: number | boolean | null;
  return_code: number | null;
  output: string | null;
  operate_from: string | null;
  state: string | null;
  created_at: Date | string | null;
}

export interface RunView {
  id: number;
  dtable_uuid: string;
  owner: string | null;
  org_id: number | null;
  script_name: string;
  context_data: Record<string, unknown> | null;
  /** The empty string while the run has not started, as the original answers. */
  started_at: string;
  finished_at: string | null;
  success: boolean | null;
  return_code: number | null;
  output: string | null;
  operate_from: string | null;
  state: string | null;
  created_at: string | null;
}

export function toRunView(row: ScriptLogRow, timeZone: string): RunView {
  return {
    id: Number(row.id),
    dtable_uuid: row.dtable_uuid,
    owner: row.owner,
    org_id: row.org_id === null ? null : Number(row.org_id),
    script_name: row.script_name,
    context_data: parseContextData(row.context_data),
    started_at: formatTime(row.started_at, timeZone) ?? '',
    finished_at: formatTime(row.finished_at, timeZone),
    success: row.success === null ? null : Boolean(Number(row.success)),
    return_code: row.return_code === null ? null : Number(row.return_code),
    output: row.output,
    operate_from: row.operate_from,
    state: row.state,
    created_at: formatTime(row.created_at, timeZone),
  };
}

/** The stored JSON text as an object; anything else (or text that does not parse) is null. */
export function parseContextData(text: string | null): Record<string, unknown> | null {
  if (text === null || text === '') return null;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      return parsed as Record<string, unknown>;
    }
    return null;
  } catch {
    return null;
  }
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/**
 * A UTC instant as ISO 8601 in `timeZone`, with that zone's offset at that instant and
 * whole seconds: `2026-12-04T14:03:07+01:00`. Null stays null.
 */
export function formatTime(value: Date | string | null, timeZone: string): string | null {
  const instant = toInstant(value);
  if (instant === null) return null;
  const wholeSeconds = new Date(Math.floor(instant.getTime() / 1000) * 1000);
  const local = localParts(wholeSeconds, timeZone);
  const offsetMinutes = Math.round(
    (Date.UTC(local.year, local.month - 1, local.day, local.hour, local.minute, local.second) -
      wholeSeconds.getTime()) /
      60_000,
  );
  const date = `${pad(local.year, 4)}-${pad(local.month)}-${pad(local.day)}`;
  const time = `${pad(local.hour)}:${pad(local.minute)}:${pad(local.second)}`;
  return `${date}T${time}${formatOffset(offsetMinutes)}`;
}

/** The calendar date (`YYYY-MM-DD`) of a UTC instant in `timeZone`. */
export function localDate(instant: Date, timeZone: string): string {
  const local = localParts(instant, timeZone);
  return `${pad(local.year, 4)}-${pad(local.month)}-${pad(local.day)}`;
}

interface LocalParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

function localParts(instant: Date, timeZone: string): LocalParts {
  const parts: Record<string, number> = {};
  for (const part of formatterFor(timeZone).formatToParts(instant)) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  return {
    year: parts.year ?? 0,
    month: parts.month ?? 1,
    day: parts.day ?? 1,
    hour: parts.hour ?? 0,
    minute: parts.minute ?? 0,
    second: parts.second ?? 0,
  };
}

/** Driver values: a Date, or `YYYY-MM-DD HH:MM:SS[.ffffff]` text, both meaning UTC. */
function toInstant(value: Date | string | null): Date | null {
  if (value === null || value === undefined || value === '') return null;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value;
  const match =
    /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?$/.exec(
      value,
    );
  if (!match) {
    const parsed = new Date(value);
    return Number.isNaN(parsed.getTime()) ? null : parsed;
  }
  const zone = match[8] ?? 'Z';
  const fraction = (match[7] ?? '0').slice(0, 3).padEnd(3, '0');
  const iso = `${match[1]}-${match[2]}-${match[3]}T${match[4]}:${match[5]}:${match[6]}.${fraction}${zone}`;
  return new Date(iso);
}

function formatOffset(offsetMinutes: number): string {
  const sign = offsetMinutes < 0 ? '-' : '+';
  const absolute = Math.abs(offsetMinutes);
  return `${sign}${pad(Math.floor(absolute / 60))}:${pad(absolute % 60)}`;
}

function pad(value: number, width = 2): string {
  return String(value).padStart(width, '0');
}
