import type { Sql } from '../db/sql.ts';

interface IndexPart {
  index_name: string;
  column_name: string;
  sub_part: number | string | null;
}

/**
 * Drops the secondary (non-unique) indexes of fresh tables before a bulk load and returns
 * how to add them back. InnoDB then keeps only the keys the projection's upserts need while
 * the log is replayed, and builds each dropped index once, sorted, at the end: much less
 * work than maintaining it row by row (a run's row changes state two or three times).
 */
export async function deferSecondaryIndexes(
  sql: Sql,
  schema: string,
  tables: readonly string[],
): Promise<() => Promise<void>> {
  const restores: string[] = [];
  for (const table of tables) {
    const parts = await sql.all<IndexPart>(
      `SELECT INDEX_NAME AS index_name, COLUMN_NAME AS column_name, SUB_PART AS sub_part
       FROM information_schema.STATISTICS
       WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 1
       ORDER BY INDEX_NAME, SEQ_IN_INDEX`,
      [schema, table],
    );
    const indexes = new Map<string, string[]>();
    for (const part of parts) {
      const column = `\`${part.column_name}\`${part.sub_part === null ? '' : `(${Number(part.sub_part)})`}`;
      indexes.set(part.index_name, [...(indexes.get(part.index_name) ?? []), column]);
    }
    if (indexes.size === 0) continue;
    const names = [...indexes.keys()];
    await sql.run(
      `ALTER TABLE \`${schema}\`.\`${table}\` ${names.map((name) => `DROP INDEX \`${name}\``).join(', ')}`,
    );
    restores.push(
      `ALTER TABLE \`${schema}\`.\`${table}\` ${[...indexes]
        .map(([name, columns]) => `ADD INDEX \`${name}\` (${columns.join(', ')})`)
        .join(', ')}`,
    );
  }
  return async () => {
    for (const statement of restores) await sql.run(statement);
  };
}
