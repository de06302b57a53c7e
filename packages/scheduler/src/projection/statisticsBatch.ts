import type { Sql } from '../db/sql.ts';

/**
 * The statistics rows of one projection batch, written together at its end. The tables must
 * come out exactly as if every run had been added by its own statement, in the order the
 * runs ended (`total_run_time = total_run_time + run time`): the daily tables' run time is a
 * single-precision FLOAT, rounded after each addition, so a sum formed beforehand would round
 * differently, and a rebuild with other batch boundaries would not give the same tables.
 *
 * On MariaDB the batch reads the rows its runs touch, adds the runs one by one in memory
 * with MariaDB's own rounding (`Math.fround` after each addition to a FLOAT), and writes
 * each row once. The columns' collation folds case and trailing spaces, which a key compared
 * in memory does not: when the rows read, or the rows the upsert reports, show that two
 * spellings met in one row, the batch takes the statistics back to a savepoint and writes
 * them as one upsert row per run instead (as it does on SQLite), which gives the same tables.
 */
export class StatisticsBatch {
  private readonly rows = new Map<StatisticsTable, unknown[][]>();

  /** Adds one run to a table: its values in the order of the table's `columns`. */
  add(table: StatisticsTable, values: unknown[]): void {
    const rows = this.rows.get(table);
    if (rows) rows.push(values);
    else this.rows.set(table, [values]);
  }

  /** Writes the runs added; returns the tables that had to be written one run per row. */
  async flush(sql: Sql): Promise<StatisticsTable[]> {
    const oneByOne: StatisticsTable[] = [];
    for (const [table, rows] of this.rows) {
      const shape = shapes[table];
      const summed = sql.dialect.name === 'mariadb' && (await writeSummed(sql, shape, rows));
      if (!summed) {
        await writeOneByOne(sql, shape, rows);
        oneByOne.push(table);
      }
    }
    this.rows.clear();
    return oneByOne;
  }
}

/** How the runs of one table are added, and what identifies its rows. */
interface TableShape {
  table: string;
  /** The columns of an added run, in the order `add` gets their values. */
  columns: readonly string[];
  /** The two columns of the table's unique key. */
  key: readonly [string, string];
  /** Columns the last run added sets (besides the key and the totals). */
  lastWins: readonly string[];
  /** `total_run_time` is a single-precision FLOAT (the daily tables), not a DOUBLE. */
  floatTime: boolean;
}

const daily = (owner: string, ownerFirst: readonly string[] = []): TableShape['columns'] => [
  owner,
  ...ownerFirst,
  'run_date',
  'total_run_count',
  'total_run_time',
  'update_at',
];

/** The statistics tables and how a run is added to each. */
const shapes = {
  dtableDaily: {
    table: 'dtable_run_script_statistics',
    columns: daily('dtable_uuid'),
    key: ['dtable_uuid', 'run_date'],
    lastWins: ['update_at'],
    floatTime: true,
  },
  orgDaily: {
    table: 'org_run_script_statistics',
    columns: daily('org_id'),
    key: ['org_id', 'run_date'],
    lastWins: ['update_at'],
    floatTime: true,
  },
  userDaily: {
    table: 'user_run_script_statistics',
    columns: daily('username', ['org_id']),
    key: ['username', 'run_date'],
    lastWins: ['org_id', 'update_at'],
    floatTime: true,
  },
  dtableMonthly: {
    table: 'dtable_run_script_statistics_monthly',
    columns: ['month', 'dtable_uuid', 'total_run_count', 'total_run_time'],
    key: ['month', 'dtable_uuid'],
    lastWins: [],
    floatTime: false,
  },
  orgMonthly: {
    table: 'org_run_script_statistics_monthly',
    columns: ['month', 'org_id', 'total_run_count', 'total_run_time'],
    key: ['month', 'org_id'],
    lastWins: [],
    floatTime: false,
  },
  userMonthly: {
    table: 'user_run_script_statistics_monthly',
    columns: ['month', 'username', 'total_run_count', 'total_run_time'],
    key: ['month', 'username'],
    lastWins: [],
    floatTime: false,
  },
} as const satisfies Record<string, TableShape>;

export type StatisticsTable = keyof typeof shapes;

const maxRowsPerStatement = 500;

/** One upsert row per run; MariaDB (or SQLite) adds them one after the other. */
async function writeOneByOne(sql: Sql, shape: TableShape, rows: unknown[][]): Promise<void> {
  const placeholders = `(${shape.columns.map(() => '?').join(', ')})`;
  const onDuplicate = sql.dialect.onConflictUpdate(shape.key, (incoming) =>
    [
      `total_run_count = total_run_count + ${incoming('total_run_count')}`,
      `total_run_time = total_run_time + ${incoming('total_run_time')}`,
      ...shape.lastWins.map((column) => `${column} = ${incoming(column)}`),
    ].join(', '),
  );
  for (let first = 0; first < rows.length; first += maxRowsPerStatement) {
    const group = rows.slice(first, first + maxRowsPerStatement);
    await sql.run(
      `INSERT INTO ${shape.table} (${shape.columns.join(', ')}) VALUES ${group.map(() => placeholders).join(', ')} ${onDuplicate}`,
      group.flat(),
    );
  }
}

interface StoredTotals {
  count: number | null;
  time: number | null;
}

/**
 * The runs summed per row in memory and each row written once; false (nothing written) when
 * a key of the batch met a row of the table spelled differently.
 */
async function writeSummed(sql: Sql, shape: TableShape, rows: unknown[][]): Promise<boolean> {
  const at = (column: string) => shape.columns.indexOf(column);
  const [first, second] = [at(shape.key[0]), at(shape.key[1])];
  const keyOf = (values: readonly unknown[]) =>
    JSON.stringify([String(values[first]), String(values[second])]);
  const byKey = new Map<string, unknown[][]>();
  for (const values of rows) {
    const key = keyOf(values);
    const runs = byKey.get(key);
    if (runs) runs.push(values);
    else byKey.set(key, [values]);
  }
  const stored = await storedTotals(
    sql,
    shape,
    [...byKey.values()].map((runs) => runs[0] ?? []),
  );
  if (stored === null) return false;

  const count = at('total_run_count');
  const time = at('total_run_time');
  const round = shape.floatTime ? Math.fround : (value: number) => value;
  const summed: unknown[][] = [];
  let expectedAffected = 0;
  for (const [key, runs] of byKey) {
    const before = stored.get(key);
    expectedAffected += before ? 2 : 1;
    let totals: StoredTotals | undefined = before;
    for (const values of runs) {
      const addedCount = Number(values[count]);
      const addedTime = round(Number(values[time]));
      totals =
        totals === undefined
          ? { count: addedCount, time: addedTime }
          : {
              count: totals.count === null ? null : totals.count + addedCount,
              time: totals.time === null ? null : round(totals.time + addedTime),
            };
    }
    const row = [...(runs.at(-1) ?? [])];
    row[count] = totals?.count ?? null;
    row[time] = totals?.time ?? null;
    summed.push(row);
  }

  await sql.run('SAVEPOINT statistics_summed');
  const placeholders = `(${shape.columns.map(() => '?').join(', ')})`;
  const onDuplicate = sql.dialect.onConflictUpdate(shape.key, (incoming) =>
    ['total_run_count', 'total_run_time', ...shape.lastWins]
      .map((column) => `${column} = ${incoming(column)}`)
      .join(', '),
  );
  let affected = 0;
  for (let start = 0; start < summed.length; start += maxRowsPerStatement) {
    const group = summed.slice(start, start + maxRowsPerStatement);
    const result = await sql.run(
      `INSERT INTO ${shape.table} (${shape.columns.join(', ')}) VALUES ${group.map(() => placeholders).join(', ')} ${onDuplicate}`,
      group.flat(),
    );
    affected += result.affectedRows;
  }
  // An insert counts 1, an update 2: more means two keys of the batch were one row.
  if (affected !== expectedAffected) {
    await sql.run('ROLLBACK TO SAVEPOINT statistics_summed');
    return false;
  }
  await sql.run('RELEASE SAVEPOINT statistics_summed');
  return true;
}

/**
 * The stored totals of the rows the runs' keys name, by key; null when the table holds a
 * row that its collation matched to a key of another spelling.
 */
async function storedTotals(
  sql: Sql,
  shape: TableShape,
  keys: readonly (readonly unknown[])[],
): Promise<Map<string, StoredTotals> | null> {
  const [firstColumn, secondColumn] = shape.key;
  const [first, second] = [shape.columns.indexOf(firstColumn), shape.columns.indexOf(secondColumn)];
  const asked = new Set(
    keys.map((values) => JSON.stringify([String(values[first]), String(values[second])])),
  );
  const found = new Map<string, StoredTotals>();
  for (let start = 0; start < keys.length; start += maxRowsPerStatement) {
    const group = keys.slice(start, start + maxRowsPerStatement);
    // Exact values: a FLOAT as a DOUBLE (as text MariaDB gives six digits), a DOUBLE as text
    // (the driver's own reading of a DOUBLE is off in the last digit now and then).
    const rows = await sql.all<{
      key_first: string;
      key_second: string;
      stored_count: number | string | null;
      stored_time: number | string | null;
    }>(
      `SELECT CAST(${firstColumn} AS CHAR) AS key_first, CAST(${secondColumn} AS CHAR) AS key_second,
         total_run_count AS stored_count, CAST(total_run_time AS ${shape.floatTime ? 'DOUBLE' : 'CHAR'}) AS stored_time
       FROM ${shape.table} WHERE (${firstColumn}, ${secondColumn}) IN (${group.map(() => '(?, ?)').join(', ')})`,
      group.flatMap((values) => [values[first], values[second]]),
    );
    for (const row of rows) {
      const key = JSON.stringify([row.key_first, row.key_second]);
      if (!asked.has(key)) return null;
      found.set(key, {
        count: row.stored_count === null ? null : Number(row.stored_count),
        time: row.stored_time === null ? null : Number(row.stored_time),
      });
    }
  }
  return found;
}
