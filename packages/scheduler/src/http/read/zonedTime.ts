/**
 * Wall-clock times in the configured `TIME_ZONE` and their UTC instants. The read model
 * stores UTC datetimes; requests speak of local days and months. MariaDB's own zone
 * tables are often not loaded, so every conversion happens here and SQL sees only UTC.
 */

const offsetFormatters = new Map<string, Intl.DateTimeFormat>();

function offsetFormatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = offsetFormatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    offsetFormatters.set(timeZone, formatter);
  }
  return formatter;
}

/** The zone's offset from UTC at an instant, in minutes (Europe/Berlin in winter: 60). */
export function offsetMinutesAt(instant: Date, timeZone: string): number {
  const parts: Record<string, number> = {};
  for (const part of offsetFormatterFor(timeZone).formatToParts(instant)) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  const wallClock = Date.UTC(
    parts.year ?? 1970,
    (parts.month ?? 1) - 1,
    parts.day ?? 1,
    parts.hour ?? 0,
    parts.minute ?? 0,
    parts.second ?? 0,
  );
  const wholeSeconds = Math.floor(instant.getTime() / 1000) * 1000;
  return Math.round((wallClock - wholeSeconds) / 60_000);
}

export interface WallClock {
  year: number;
  /** 1 to 12. */
  month: number;
  day: number;
  hour?: number;
  minute?: number;
  second?: number;
  millisecond?: number;
}

/**
 * The instant at which the zone's clocks show `wallClock`. A time the clocks show twice
 * (fall back) maps to the first of the two; a time they skip (spring forward) maps to the
 * same distance after the gap, so a skipped midnight becomes the first instant of the day.
 */
export function instantOfWallClock(wallClock: WallClock, timeZone: string): Date {
  const asIfUtc = Date.UTC(
    wallClock.year,
    wallClock.month - 1,
    wallClock.day,
    wallClock.hour ?? 0,
    wallClock.minute ?? 0,
    wallClock.second ?? 0,
    wallClock.millisecond ?? 0,
  );
  const day = 86_400_000;
  const offsetBefore = offsetMinutesAt(new Date(asIfUtc - day), timeZone);
  const offsetAfter = offsetMinutesAt(new Date(asIfUtc + day), timeZone);
  const withOffsetBefore = asIfUtc - offsetBefore * 60_000;
  const withOffsetAfter = asIfUtc - offsetAfter * 60_000;
  const candidates = [withOffsetBefore, withOffsetAfter].filter(
    (candidate) => offsetMinutesAt(new Date(candidate), timeZone) * 60_000 === asIfUtc - candidate,
  );
  if (candidates.length === 0) return new Date(withOffsetBefore);
  return new Date(Math.min(...candidates));
}

/** `YYYY-MM-DD` of the local calendar day `days` after the given one (negative: before). */
export function addDays(date: string, days: number): string {
  const [year, month, day] = date.split('-').map(Number);
  const shifted = new Date(Date.UTC(year ?? 1970, (month ?? 1) - 1, (day ?? 1) + days));
  return shifted.toISOString().slice(0, 10);
}

/** The first day of a month and of the month after it, as `YYYY-MM-DD`. */
export function monthDays(month: string): { first: string; next: string } {
  const [year, monthNumber] = month.split('-').map(Number);
  const first = new Date(Date.UTC(year ?? 1970, (monthNumber ?? 1) - 1, 1));
  const next = new Date(Date.UTC(year ?? 1970, monthNumber ?? 1, 1));
  return { first: first.toISOString().slice(0, 10), next: next.toISOString().slice(0, 10) };
}

/** A UTC instant as a MariaDB `datetime(6)` literal: `2026-12-04 13:03:07.000000`. */
export function sqlUtc(instant: Date): string {
  return `${instant.toISOString().slice(0, 23).replace('T', ' ')}000`;
}

/**
 * The stretches of constant UTC offset that cover `[from, to]`: each one holds until
 * `until` (exclusive, UTC), the last one has `until: null`. Offsets are sampled once a
 * day and every change is narrowed down to the second, so a zone's transitions are found
 * as long as they are more than a day apart (true of every zone in use).
 */
export function offsetStretches(
  from: Date,
  to: Date,
  timeZone: string,
): { until: Date | null; offsetMinutes: number }[] {
  const day = 86_400_000;
  const stretches: { until: Date | null; offsetMinutes: number }[] = [];
  let sampleTime = from.getTime() - day;
  let sampleOffset = offsetMinutesAt(new Date(sampleTime), timeZone);
  while (sampleTime < to.getTime() + day) {
    const nextTime = sampleTime + day;
    const nextOffset = offsetMinutesAt(new Date(nextTime), timeZone);
    if (nextOffset !== sampleOffset) {
      const change = firstInstantWithOffset(sampleTime, nextTime, nextOffset, timeZone);
      stretches.push({ until: new Date(change), offsetMinutes: sampleOffset });
    }
    sampleTime = nextTime;
    sampleOffset = nextOffset;
  }
  stretches.push({ until: null, offsetMinutes: sampleOffset });
  return stretches;
}

function firstInstantWithOffset(
  before: number,
  after: number,
  offsetAfter: number,
  timeZone: string,
): number {
  let low = before;
  let high = after;
  while (high - low > 1000) {
    const middle = low + Math.floor((high - low) / 2000) * 1000;
    if (offsetMinutesAt(new Date(middle), timeZone) === offsetAfter) high = middle;
    else low = middle;
  }
  return high;
}
