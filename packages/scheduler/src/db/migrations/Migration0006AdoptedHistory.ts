import { Migration } from '@mikro-orm/migrations';

/**
 * Where the import of an adopted original's history into the log stands: one row per
 * stream, written when the scheduler creates the log above the original's run ids. Not part
 * of the read model: a rebuild leaves it where it is.
 */
export class Migration0006AdoptedHistory extends Migration {
  override name = 'Migration0006AdoptedHistory';

  override async up(): Promise<void> {
    this.addSql(`CREATE TABLE IF NOT EXISTS pipeline_adoption (
      stream varchar(64) NOT NULL,
      first_run_id bigint NOT NULL COMMENT 'the first id of the log; the rows below are the original''s',
      imported_through bigint NOT NULL DEFAULT 0 COMMENT 'the highest original run id in the log',
      imported_at datetime(6) DEFAULT NULL COMMENT 'when the whole history was in the log',
      PRIMARY KEY (stream)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`);
  }
}
