import { Migration } from '@mikro-orm/migrations';

/**
 * Who each run in the log belongs to, for the audit's filters by base, owner and org: the
 * projector adds a row per request (and per imported run), retention leaves it (the log
 * keeps runs longer than `script_log` does), so the audit reads only the runs that match
 * instead of the whole log. Filled here from the runs the tables still have.
 *
 * TODO(#5): runs that retention already took from `script_log` before this migration are not
 * filled in, so the audit's filters miss them until a `pipeline rebuild` (which writes the
 * index from the whole log).
 */
export class Migration0007AuditRunIndex extends Migration {
  override name = 'Migration0007AuditRunIndex';

  override async up(): Promise<void> {
    this.addSql(`CREATE TABLE IF NOT EXISTS audit_run (
      run_id int(11) NOT NULL,
      dtable_uuid varchar(36) NOT NULL,
      owner varchar(255) DEFAULT NULL,
      org_id int(11) DEFAULT NULL,
      PRIMARY KEY (run_id),
      KEY dtable_uuid_run_key (dtable_uuid, run_id),
      KEY owner_run_key (owner, run_id),
      KEY org_id_run_key (org_id, run_id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`);
    this.addSql(`INSERT IGNORE INTO audit_run (run_id, dtable_uuid, owner, org_id)
      SELECT id, dtable_uuid, owner, org_id FROM script_log`);
  }
}
