import { Migration } from '@mikro-orm/migrations';

/**
 * MariaDB's Migration0006: the note of an adopted history's import. A SQLite file starts
 * empty and adopts nothing, but the scheduler looks for the note at every start.
 */
export class SqliteMigration0002AdoptedHistory extends Migration {
  override name = 'SqliteMigration0002AdoptedHistory';

  override async up(): Promise<void> {
    this.addSql(`CREATE TABLE IF NOT EXISTS pipeline_adoption (
      stream TEXT NOT NULL PRIMARY KEY,
      first_run_id INTEGER NOT NULL,
      imported_through INTEGER NOT NULL DEFAULT 0,
      imported_at TEXT DEFAULT NULL
    )`);
  }
}
