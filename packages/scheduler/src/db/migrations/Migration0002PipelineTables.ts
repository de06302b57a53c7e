import { Migration } from '@mikro-orm/migrations';

/** What event sourcing adds: the projection checkpoint, output pieces, per-run details. */
export class Migration0002PipelineTables extends Migration {
  override name = 'Migration0002PipelineTables';

  override async up(): Promise<void> {
    this.addSql(`CREATE TABLE IF NOT EXISTS pipeline_checkpoint (
      projection varchar(64) NOT NULL,
      stream_sequence bigint unsigned NOT NULL,
      updated_at datetime(6) NOT NULL,
      PRIMARY KEY (projection)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`);
    this.addSql(`CREATE TABLE IF NOT EXISTS run_output_chunk (
      run_id int(11) NOT NULL,
      chunk_index int(11) NOT NULL,
      text longtext NOT NULL,
      PRIMARY KEY (run_id, chunk_index)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`);
    this.addSql(`CREATE TABLE IF NOT EXISTS run_detail (
      run_id int(11) NOT NULL,
      operator varchar(255) DEFAULT NULL,
      starter_id varchar(128) DEFAULT NULL,
      claimed_at datetime(6) DEFAULT NULL,
      duration_ms bigint DEFAULT NULL,
      timed_out tinyint(1) NOT NULL DEFAULT 0,
      out_of_memory tinyint(1) NOT NULL DEFAULT 0,
      cancelled tinyint(1) NOT NULL DEFAULT 0,
      lost tinyint(1) NOT NULL DEFAULT 0,
      output_truncated tinyint(1) NOT NULL DEFAULT 0,
      rejected_reason varchar(64) DEFAULT NULL,
      PRIMARY KEY (run_id),
      KEY starter_id_key (starter_id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`);
    this.addSql(`CREATE TABLE IF NOT EXISTS quota_owner (
      owner_key varchar(300) NOT NULL,
      PRIMARY KEY (owner_key)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`);
  }
}
