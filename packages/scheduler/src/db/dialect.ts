/**
 * The few places where the read model's SQL differs between MariaDB (production, and the
 * tests' main database) and SQLite (a single scheduler's first run without a database
 * server). Everything else the scheduler writes is SQL both understand; a statement that
 * needs one of these forms asks the dialect of its `Sql` for it. Every form keeps the `?`
 * placeholders of its arguments in the order the arguments are given.
 */
export interface SqlDialect {
  readonly name: 'mariadb' | 'sqlite';
  /**
   * The tail of an INSERT that updates the row already holding `key` instead. `assignments`
   * writes the SET list; `incoming(column)` names the value the INSERT brought, and a bare
   * column name is the stored value.
   */
  onConflictUpdate(
    key: readonly string[],
    assignments: (incoming: (column: string) => string) => string,
  ): string;
  /** The tail of an INSERT that leaves the row already holding `key` as it is. */
  onConflictIgnore(key: readonly string[]): string;
  /**
   * Locks the selected rows for the rest of the transaction. SQLite has no row locks and
   * needs none: its transactions run one after the other on the scheduler's one connection.
   */
  readonly forUpdate: string;
  /** The largest of the expressions (NULL when one of them is NULL, in both). */
  greatest(...expressions: string[]): string;
  /** Microseconds from one datetime expression to a later one. */
  microsecondsBetween(from: string, to: string): string;
  /** The calendar day (`YYYY-MM-DD`) of a datetime expression moved by `minutes` minutes. */
  dayAfterMinutes(datetime: string, minutes: string): string;
  /** A `date` column as `YYYY-MM-DD` text. */
  dayText(column: string): string;
  /** A text column compared byte for byte (the columns' collation folds case). */
  exactly(column: string): string;
}

export const mariadbDialect: SqlDialect = {
  name: 'mariadb',
  onConflictUpdate: (_key, assignments) =>
    `ON DUPLICATE KEY UPDATE ${assignments((column) => `VALUES(${column})`)}`,
  // Assigning a key column to itself changes nothing and counts no affected row.
  onConflictIgnore: (key) => `ON DUPLICATE KEY UPDATE ${key[0]} = ${key[0]}`,
  forUpdate: ' FOR UPDATE',
  greatest: (...expressions) => `GREATEST(${expressions.join(', ')})`,
  microsecondsBetween: (from, to) => `TIMESTAMPDIFF(MICROSECOND, ${from}, ${to})`,
  dayAfterMinutes: (datetime, minutes) => `DATE(DATE_ADD(${datetime}, INTERVAL ${minutes} MINUTE))`,
  dayText: (column) => `DATE_FORMAT(${column}, '%Y-%m-%d')`,
  exactly: (column) => `${column} COLLATE utf8mb4_nopad_bin`,
};

/**
 * SQLite keeps datetimes as the text the scheduler writes (`2026-12-04 13:03:07.123`, UTC),
 * which sorts and compares like the instants, and dates as `YYYY-MM-DD` text.
 */
export const sqliteDialect: SqlDialect = {
  name: 'sqlite',
  onConflictUpdate: (key, assignments) =>
    `ON CONFLICT (${key.join(', ')}) DO UPDATE SET ${assignments((column) => `excluded.${column}`)}`,
  onConflictIgnore: (key) => `ON CONFLICT (${key.join(', ')}) DO NOTHING`,
  forUpdate: '',
  // SQLite's MAX with several arguments is the scalar one, not the aggregate.
  greatest: (...expressions) => `MAX(${expressions.join(', ')})`,
  // The stored times have milliseconds; `subsec` keeps them, rounding drops float noise.
  // `from` stays before `to` in the text, so their placeholders keep their order.
  microsecondsBetween: (from, to) =>
    `(ROUND((unixepoch(${from}, 'subsec') - unixepoch(${to}, 'subsec')) * -1000) * 1000)`,
  dayAfterMinutes: (datetime, minutes) => `date(${datetime}, (${minutes}) || ' minutes')`,
  dayText: (column) => column,
  exactly: (column) => `${column} COLLATE BINARY`,
};
