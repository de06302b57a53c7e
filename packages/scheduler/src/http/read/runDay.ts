import type { SqlDialect } from '../../db/dialect.ts';
import { offsetStretches, sqlUtc } from './zonedTime.ts';

/**
 * SQL for the local calendar day of a UTC datetime column, for grouping. MariaDB's zone
 * tables are often not loaded (CONVERT_TZ then answers NULL), so the zone's offsets over
 * the span of the data are worked out here and the column is shifted by the right one:
 * `DATE(column + INTERVAL (CASE WHEN column < t1 THEN o0 ... ELSE on END) MINUTE)`.
 * The expression is used only in the select list and GROUP BY, never in a filter, so the
 * range conditions on the column still use its index.
 */
export function localDayExpression(
  column: string,
  first: Date,
  last: Date,
  timeZone: string,
  dialect: SqlDialect,
): { sql: string; params: unknown[] } {
  const stretches = offsetStretches(first, last, timeZone);
  const params: unknown[] = [];
  let offset = '?';
  if (stretches.length === 1) {
    params.push(stretches[0]?.offsetMinutes ?? 0);
  } else {
    const branches = stretches.map((stretch) => {
      if (stretch.until === null) {
        params.push(stretch.offsetMinutes);
        return 'ELSE ?';
      }
      params.push(sqlUtc(stretch.until), stretch.offsetMinutes);
      return `WHEN ${column} < ? THEN ?`;
    });
    offset = `(CASE ${branches.join(' ')} END)`;
  }
  return { sql: dialect.dayAfterMinutes(column, offset), params };
}

/** A `datetime` value as the driver returns it (`YYYY-MM-DD HH:MM:SS[.ffffff]`, UTC). */
export function utcOfSql(text: string): Date {
  return new Date(`${text.trim().replace(' ', 'T').slice(0, 23)}Z`);
}
