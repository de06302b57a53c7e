import { canonicalUuid } from '@pipeline/events';
import { instantOfWallClock, sqlUtc, type WallClock } from './zonedTime.ts';

/**
 * Parsers for the read endpoints' query and path values. Each returns the value or the
 * reason it was refused; the routes turn a reason into their own 400 body. Nothing here
 * throws, so a malformed value can never become a 500.
 */
export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

const accept = <T>(value: T): Parsed<T> => ({ ok: true, value });
const refuse = <T>(reason: string): Parsed<T> => ({ ok: false, reason });

export type QueryValues = Record<string, string | string[] | undefined>;

/** A query parameter as one string; a repeated parameter counts by its first value, as in Flask. */
export function queryValue(query: unknown, name: string): string | undefined {
  if (typeof query !== 'object' || query === null) return undefined;
  const raw = (query as QueryValues)[name];
  const value = Array.isArray(raw) ? raw[0] : raw;
  return value === undefined || value === '' ? undefined : value;
}

/** Page numbers and sizes: whole numbers from 1, small enough that an offset stays exact. */
export function positiveInteger(
  raw: string | undefined,
  name: string,
  fallback: number,
  maximum = 1_000_000_000,
): Parsed<number> {
  if (raw === undefined) return accept(fallback);
  if (!/^\d{1,10}$/.test(raw.trim())) return refuse(`${name} must be a positive integer`);
  const value = Number(raw.trim());
  if (value < 1) return refuse(`${name} must be a positive integer`);
  if (value > maximum) return refuse(`${name} cannot be greater than ${maximum}`);
  return accept(value);
}

/** An org id as SeaTable sends it: an integer, `-1` meaning "no org". */
export function orgIdValue(raw: string): Parsed<number> {
  if (!/^-?\d{1,10}$/.test(raw.trim())) return refuse('org_id must be an integer');
  const value = Number(raw.trim());
  if (value < -2_147_483_648 || value > 2_147_483_647) return refuse('org_id is out of range');
  return accept(value);
}

/** A base id in any of its forms, as the canonical one (lower case, with dashes). */
export function baseUuidValue(raw: string, name = 'base_uuid'): Parsed<string> {
  const canonical = canonicalUuid(raw);
  return canonical === null ? refuse(`${name} is not a uuid`) : accept(canonical);
}

/** `YYYY-MM` (the month may have one digit, as Python's `%m` allows), normalised to `YYYY-MM`. */
export function monthValue(raw: string): Parsed<string> {
  const match = /^(\d{4})-(\d{1,2})$/.exec(raw.trim());
  const monthNumber = Number(match?.[2]);
  if (!match || monthNumber < 1 || monthNumber > 12) return refuse('month invalid.');
  return accept(`${match[1]}-${String(monthNumber).padStart(2, '0')}`);
}

/** A bound of a half-open time range: the instant it stands for, and whether it was a plain date. */
export interface RangeBound {
  instant: Date;
  dateOnly: boolean;
}

const dateOnlyPattern = /^(\d{4})-(\d{2})-(\d{2})$/;
const dateTimePattern =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+ -]\d{2}(?::?\d{2})?)?$/i;

/**
 * An ISO 8601 date (`2026-12-04`) or date-time (`2026-12-04T10:00`, seconds, fractions
 * and an offset optional). Without an offset the value is a wall-clock time in
 * `timeZone`. An offset's `+` that arrived unencoded in a query reads as a space; it is
 * taken back as `+`.
 */
export function rangeBoundValue(raw: string, name: string, timeZone: string): Parsed<RangeBound> {
  const text = raw.trim();
  const dateMatch = dateOnlyPattern.exec(text);
  if (dateMatch) {
    const wallClock = calendarDate(dateMatch);
    if (!wallClock) return refuse(`Invalid value for ${name} parameter`);
    return accept({ instant: instantOfWallClock(wallClock, timeZone), dateOnly: true });
  }

  const match = dateTimePattern.exec(raw.replace(/^\s+/, ''));
  const wallClock = match ? calendarDate(match) : null;
  if (!match || !wallClock) return refuse(`Invalid value for ${name} parameter`);
  const hour = Number(match[4]);
  const minute = Number(match[5]);
  const second = Number(match[6] ?? 0);
  if (hour > 23 || minute > 59 || second > 59) return refuse(`Invalid value for ${name} parameter`);
  const time = { ...wallClock, hour, minute, second, millisecond: fractionMs(match[7]) };

  const zone = match[8];
  if (zone === undefined)
    return accept({ instant: instantOfWallClock(time, timeZone), dateOnly: false });
  const offsetMinutes = zoneOffsetMinutes(zone);
  if (offsetMinutes === null) return refuse(`Invalid value for ${name} parameter`);
  const asIfUtc = Date.UTC(
    time.year,
    time.month - 1,
    time.day,
    hour,
    minute,
    second,
    time.millisecond,
  );
  return accept({ instant: new Date(asIfUtc - offsetMinutes * 60_000), dateOnly: false });
}

function calendarDate(match: RegExpExecArray): WallClock | null {
  const year = Number(match[1]);
  const month = Number(match[2]);
  const day = Number(match[3]);
  const probe = new Date(Date.UTC(year, month - 1, day));
  if (probe.getUTCMonth() !== month - 1 || probe.getUTCDate() !== day) return null;
  return { year, month, day };
}

function fractionMs(fraction: string | undefined): number {
  return fraction === undefined ? 0 : Number(fraction.slice(0, 3).padEnd(3, '0'));
}

function zoneOffsetMinutes(zone: string): number | null {
  if (zone.toUpperCase() === 'Z') return 0;
  const match = /^([+ -])(\d{2}):?(\d{2})?$/.exec(zone);
  if (!match) return null;
  const hours = Number(match[2]);
  const minutes = Number(match[3] ?? 0);
  if (hours > 23 || minutes > 59) return null;
  return (match[1] === '-' ? -1 : 1) * (hours * 60 + minutes);
}

/** A half-open range `[from, until)` of UTC instants; either end may be open. */
export interface TimeRange {
  from: Date | null;
  until: Date | null;
}

/**
 * The `start` and `end` parameters as a half-open range. A plain `end` date includes that
 * whole local day: the range stops where the next day begins in `timeZone`.
 */
export function timeRangeValue(query: unknown, timeZone: string): Parsed<TimeRange> {
  const rawStart = queryValue(query, 'start');
  const rawEnd = queryValue(query, 'end');
  const start = rawStart === undefined ? null : rangeBoundValue(rawStart, 'start', timeZone);
  const end = rawEnd === undefined ? null : rangeBoundValue(rawEnd, 'end', timeZone);
  if (start && !start.ok) return start;
  if (end && !end.ok) return end;
  return accept({
    from: start ? start.value.instant : null,
    until: end ? endInstant(end.value, rawEnd ?? '', timeZone) : null,
  });
}

/** Where a range ending at `bound` stops: a plain date includes its whole local day. */
export function endInstant(bound: RangeBound, raw: string, timeZone: string): Date {
  if (!bound.dateOnly) return bound.instant;
  const [year, month, day] = raw.trim().split('-').map(Number);
  return instantOfWallClock(
    { year: year ?? 1970, month: month ?? 1, day: (day ?? 1) + 1 },
    timeZone,
  );
}

/**
 * Adds the optional `base_uuid` filter (when `acceptsBase`) and the `start`/`end` range on
 * `timeColumn` to a WHERE clause under construction, or says which parameter is wrong.
 */
export function addBaseAndTimeRange(
  query: unknown,
  timeZone: string,
  timeColumn: 'created_at' | 'finished_at',
  conditions: string[],
  params: unknown[],
  acceptsBase: boolean,
): Parsed<null> {
  const rawBaseUuid = acceptsBase ? queryValue(query, 'base_uuid') : undefined;
  if (rawBaseUuid !== undefined) {
    const baseUuid = baseUuidValue(rawBaseUuid);
    if (!baseUuid.ok) return baseUuid;
    conditions.push('dtable_uuid = ?');
    params.push(baseUuid.value);
  }
  const range = timeRangeValue(query, timeZone);
  if (!range.ok) return range;
  if (range.value.from) {
    conditions.push(`${timeColumn} >= ?`);
    params.push(sqlUtc(range.value.from));
  }
  if (range.value.until) {
    conditions.push(`${timeColumn} < ?`);
    params.push(sqlUtc(range.value.until));
  }
  return accept(null);
}
