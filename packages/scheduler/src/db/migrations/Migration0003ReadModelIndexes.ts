import { Migration } from '@mikro-orm/migrations';

/** The canonical form (lower case, with dashes) of a 32-character uuid column value. */
function dashed(column: string): string {
  return `LOWER(CONCAT_WS('-', SUBSTRING(${column}, 1, 8), SUBSTRING(${column}, 9, 4), SUBSTRING(${column}, 13, 4), SUBSTRING(${column}, 17, 4), SUBSTRING(${column}, 21, 12)))`;
}

const undashed = (column: string) =>
  `CHAR_LENGTH(${column}) = 32 AND ${column} REGEXP '^[0-9a-fA-F]{32}$'`;
const notLowerCase = (column: string) =>
  `CHAR_LENGTH(${column}) = 36 AND CAST(${column} AS BINARY) <> CAST(LOWER(${column}) AS BINARY)`;

/**
 * What the read side needs to answer from big tables with index range scans:
 *
 * - base ids in one form. The original stored whatever a client sent, so an adopted
 *   installation can hold the same base as `6A1F...` and `6a1f-...`; those rows are
 *   rewritten to the canonical form (daily base statistics of both forms are added up),
 *   so every query can compare with `=` and group by the column (BC-11);
 * - indexes for the admin lists and statistics: runs by org or base in request-time
 *   order, finished runs by org (covering the counters), and each statistics table by
 *   day (covering the monthly sums).
 */
export class Migration0003ReadModelIndexes extends Migration {
  override name = 'Migration0003ReadModelIndexes';

  override async up(): Promise<void> {
    // The rows first, in one transaction: merging a base's daily statistics is an INSERT
    // and a DELETE, and a crash between the two would count the merged days twice on the
    // next start. Done here, before the index changes below, which MariaDB commits on
    // their own.
    const connection = this.getEntityManager().getConnection();
    await connection.transactional(async (transaction) => {
      for (const statement of canonicalBaseStatements()) {
        await connection.execute(statement, [], 'run', transaction);
      }
    });

    this.addSql(
      'ALTER TABLE script_log ADD INDEX IF NOT EXISTS org_id_created_at_key (org_id, created_at)',
    );
    this.addSql(
      'ALTER TABLE script_log ADD INDEX IF NOT EXISTS dtable_uuid_created_at_key (dtable_uuid, created_at)',
    );
    this.addSql(
      'ALTER TABLE script_log ADD INDEX IF NOT EXISTS org_id_finished_at_counters_key (org_id, finished_at, dtable_uuid, started_at, success, operate_from)',
    );
    for (const [table, column] of [
      ['user_run_script_statistics', 'username'],
      ['org_run_script_statistics', 'org_id'],
      ['dtable_run_script_statistics', 'dtable_uuid'],
    ] as const) {
      this.addSql(
        `ALTER TABLE ${table} ADD INDEX IF NOT EXISTS run_date_totals_key (run_date, ${column}, total_run_count, total_run_time)`,
      );
    }
  }
}

/** Rewrites every base id of the adopted rows to the canonical form, merging statistics days. */
function canonicalBaseStatements(): string[] {
  return [
    `UPDATE script_log SET dtable_uuid = ${dashed('dtable_uuid')} WHERE ${undashed('dtable_uuid')}`,
    `UPDATE script_log SET dtable_uuid = LOWER(dtable_uuid) WHERE ${notLowerCase('dtable_uuid')}`,
    `INSERT INTO dtable_run_script_statistics
        (dtable_uuid, run_date, total_run_count, total_run_time, update_at)
      SELECT legacy.canonical, legacy.day, legacy.runs, legacy.run_time, legacy.updated
      FROM (
        SELECT ${dashed('dtable_uuid')} AS canonical, run_date AS day, total_run_count AS runs,
          total_run_time AS run_time, update_at AS updated
        FROM dtable_run_script_statistics WHERE ${undashed('dtable_uuid')}
      ) AS legacy
      ON DUPLICATE KEY UPDATE
        total_run_count = total_run_count + VALUES(total_run_count),
        total_run_time = total_run_time + VALUES(total_run_time)`,
    `DELETE FROM dtable_run_script_statistics WHERE ${undashed('dtable_uuid')}`,
    `UPDATE dtable_run_script_statistics SET dtable_uuid = LOWER(dtable_uuid) WHERE ${notLowerCase('dtable_uuid')}`,
  ];
}
