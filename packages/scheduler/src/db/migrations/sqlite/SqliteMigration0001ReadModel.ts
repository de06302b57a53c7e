import { Migration } from '@mikro-orm/migrations';

/** Text compared as MariaDB's `utf8mb4_unicode_ci` compares it, as far as SQLite can (ASCII case). */
const text = 'TEXT COLLATE NOCASE';

/**
 * The read model of MariaDB's Migration0001 to Migration0005 in one step, for a SQLite file
 * that starts empty (there is no original installation to adopt): the same tables, columns,
 * keys and indexes. Datetimes are the UTC text the scheduler writes, dates `YYYY-MM-DD`.
 * SQLite's REAL is a double where MariaDB's daily `total_run_time` is a single-precision
 * float; the answers round run time to whole seconds either way.
 */
export class SqliteMigration0001ReadModel extends Migration {
  override name = 'SqliteMigration0001ReadModel';

  override async up(): Promise<void> {
    this.addSql(`CREATE TABLE IF NOT EXISTS script_log (
      id INTEGER PRIMARY KEY,
      dtable_uuid ${text} NOT NULL,
      owner ${text} DEFAULT NULL,
      org_id INTEGER DEFAULT NULL,
      script_name ${text} NOT NULL,
      context_data TEXT DEFAULT NULL,
      started_at TEXT DEFAULT NULL,
      finished_at TEXT DEFAULT NULL,
      success INTEGER DEFAULT NULL,
      return_code INTEGER DEFAULT NULL,
      output TEXT DEFAULT NULL,
      operate_from ${text} DEFAULT NULL,
      state ${text} DEFAULT NULL,
      created_at TEXT DEFAULT NULL
    )`);
    for (const [name, columns] of [
      ['started_at_c6ns09vt', 'started_at'],
      ['dtable_uuid_script_name_l0j7h5f2_union_key', 'dtable_uuid, script_name'],
      ['state_h3u8i9o1_key', 'state'],
      ['created_at_h3u7y9o4_key', 'created_at'],
      ['owner_state_key', 'owner, state'],
      ['org_id_state_key', 'org_id, state'],
      ['org_id_created_at_key', 'org_id, created_at'],
      ['dtable_uuid_created_at_key', 'dtable_uuid, created_at'],
      [
        'org_id_finished_at_counters_key',
        'org_id, finished_at, dtable_uuid, started_at, success, operate_from',
      ],
      ['owner_finished_at_key', 'owner, finished_at'],
    ] as const) {
      this.addSql(`CREATE INDEX IF NOT EXISTS ${name} ON script_log (${columns})`);
    }

    for (const [table, column, type] of [
      ['dtable_run_script_statistics', 'dtable_uuid', text],
      ['org_run_script_statistics', 'org_id', 'INTEGER'],
      ['user_run_script_statistics', 'username', text],
    ] as const) {
      const orgColumn = table === 'user_run_script_statistics' ? 'org_id INTEGER NOT NULL,' : '';
      this.addSql(`CREATE TABLE IF NOT EXISTS ${table} (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ${column} ${type} NOT NULL,
        ${orgColumn}
        run_date TEXT NOT NULL,
        total_run_count INTEGER DEFAULT 0,
        total_run_time REAL DEFAULT 0,
        update_at TEXT DEFAULT NULL,
        UNIQUE (${column}, run_date)
      )`);
      this.addSql(`CREATE INDEX IF NOT EXISTS ${table}_${column}_key ON ${table} (${column})`);
      this.addSql(`CREATE INDEX IF NOT EXISTS ${table}_run_date_key ON ${table} (run_date)`);
      this.addSql(`CREATE TABLE IF NOT EXISTS ${table}_monthly (
        month TEXT NOT NULL,
        ${column} ${type} NOT NULL,
        total_run_count INTEGER NOT NULL DEFAULT 0,
        total_run_time REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (month, ${column})
      )`);
    }

    this.addSql(`CREATE TABLE IF NOT EXISTS pipeline_checkpoint (
      projection TEXT NOT NULL PRIMARY KEY,
      stream_sequence INTEGER NOT NULL,
      updated_at TEXT NOT NULL
    )`);
    this.addSql(`CREATE TABLE IF NOT EXISTS run_output_chunk (
      run_id INTEGER NOT NULL,
      chunk_index INTEGER NOT NULL,
      text TEXT NOT NULL,
      PRIMARY KEY (run_id, chunk_index)
    )`);
    this.addSql(`CREATE TABLE IF NOT EXISTS run_detail (
      run_id INTEGER NOT NULL PRIMARY KEY,
      operator TEXT DEFAULT NULL,
      starter_id TEXT DEFAULT NULL,
      claimed_at TEXT DEFAULT NULL,
      duration_ms INTEGER DEFAULT NULL,
      timed_out INTEGER NOT NULL DEFAULT 0,
      out_of_memory INTEGER NOT NULL DEFAULT 0,
      cancelled INTEGER NOT NULL DEFAULT 0,
      lost INTEGER NOT NULL DEFAULT 0,
      output_truncated INTEGER NOT NULL DEFAULT 0,
      rejected_reason TEXT DEFAULT NULL
    )`);
    this.addSql('CREATE INDEX IF NOT EXISTS starter_id_key ON run_detail (starter_id)');
    this.addSql(`CREATE TABLE IF NOT EXISTS quota_owner (
      owner_key TEXT NOT NULL PRIMARY KEY
    )`);
  }
}
