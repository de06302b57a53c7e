import { Migration } from '@mikro-orm/migrations';

/** Monthly table, the daily table it totals, and the owner column of both. */
const monthlyTables = [
  ['user_run_script_statistics_monthly', 'user_run_script_statistics', 'username', 'varchar(255)'],
  ['org_run_script_statistics_monthly', 'org_run_script_statistics', 'org_id', 'int(11)'],
  [
    'dtable_run_script_statistics_monthly',
    'dtable_run_script_statistics',
    'dtable_uuid',
    'varchar(36)',
  ],
] as const;

/**
 * Per-owner monthly totals of the daily statistics tables. The admin's monthly lists sort
 * owners by their month's total; over the daily rows that means adding up every owner-day
 * of the month on each request (150,000 rows for 5,000 users), which is too slow. These
 * tables hold exactly `SUM` over the daily rows of each (owner, month): the projector adds
 * to them wherever it adds to the daily rows (`addToMonthlyTotals`), retention subtracts
 * what it deletes, and this migration fills them from the rows already there.
 *
 * The daily tables' covering indexes of Migration0003 served the monthly lists and go.
 */
export class Migration0004MonthlyStatistics extends Migration {
  override name = 'Migration0004MonthlyStatistics';

  override async up(): Promise<void> {
    for (const [monthly, daily, column, type] of monthlyTables) {
      this.addSql(`CREATE TABLE IF NOT EXISTS ${monthly} (
        month date NOT NULL COMMENT 'first day of the month, in TIME_ZONE',
        ${column} ${type} NOT NULL,
        total_run_count int(11) NOT NULL DEFAULT 0,
        total_run_time double NOT NULL DEFAULT 0,
        PRIMARY KEY (month, ${column})
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`);
      this.addSql(`INSERT INTO ${monthly} (month, ${column}, total_run_count, total_run_time)
        SELECT DATE_FORMAT(run_date, '%Y-%m-01'), ${column}, COALESCE(SUM(total_run_count), 0),
          COALESCE(SUM(total_run_time), 0)
        FROM ${daily} GROUP BY DATE_FORMAT(run_date, '%Y-%m-01'), ${column}
        ON DUPLICATE KEY UPDATE total_run_count = VALUES(total_run_count), total_run_time = VALUES(total_run_time)`);
      this.addSql(`ALTER TABLE ${daily} DROP INDEX IF EXISTS run_date_totals_key`);
    }
  }
}
