import { Migration } from '@mikro-orm/migrations';

/** MariaDB's Migration0007: who each run in the log belongs to, for the audit's filters. */
export class SqliteMigration0003AuditRunIndex extends Migration {
  override name = 'SqliteMigration0003AuditRunIndex';

  override async up(): Promise<void> {
    this.addSql(`CREATE TABLE IF NOT EXISTS audit_run (
      run_id INTEGER PRIMARY KEY,
      dtable_uuid TEXT COLLATE NOCASE NOT NULL,
      owner TEXT COLLATE NOCASE DEFAULT NULL,
      org_id INTEGER DEFAULT NULL
    )`);
    this.addSql(
      'CREATE INDEX IF NOT EXISTS audit_run_dtable_uuid_key ON audit_run (dtable_uuid, run_id)',
    );
    this.addSql('CREATE INDEX IF NOT EXISTS audit_run_owner_key ON audit_run (owner, run_id)');
    this.addSql('CREATE INDEX IF NOT EXISTS audit_run_org_id_key ON audit_run (org_id, run_id)');
    this.addSql(`INSERT OR IGNORE INTO audit_run (run_id, dtable_uuid, owner, org_id)
      SELECT id, dtable_uuid, owner, org_id FROM script_log`);
  }
}
