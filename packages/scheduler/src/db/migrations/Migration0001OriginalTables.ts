import { Migration } from '@mikro-orm/migrations';

/**
 * The original scheduler's tables, created when missing and brought up to date when an
 * original installation is adopted: its rows stay, the text columns become utf8mb4 (the
 * original's utf8 columns reject emoji), and the columns of its later upgrades are added.
 */
export class Migration0001OriginalTables extends Migration {
  override name = 'Migration0001OriginalTables';

  override async up(): Promise<void> {
    this.addSql(`CREATE TABLE IF NOT EXISTS script_log (
      id int(11) NOT NULL AUTO_INCREMENT,
      dtable_uuid varchar(36) NOT NULL,
      owner varchar(255) DEFAULT NULL,
      org_id int(11) DEFAULT NULL,
      script_name varchar(255) NOT NULL,
      context_data longtext DEFAULT NULL,
      started_at datetime(6) DEFAULT NULL,
      finished_at datetime(6) DEFAULT NULL,
      success tinyint(1) DEFAULT NULL,
      return_code int(11) DEFAULT NULL,
      output longtext DEFAULT NULL,
      operate_from varchar(50) DEFAULT NULL COMMENT 'manualy, automation-rule...etc',
      PRIMARY KEY (id),
      KEY started_at_c6ns09vt (started_at),
      KEY dtable_uuid_script_name_l0j7h5f2_union_key (dtable_uuid, script_name)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`);
    this.addSql('ALTER TABLE script_log MODIFY started_at datetime(6) NULL');
    this.addSql('ALTER TABLE script_log ADD COLUMN IF NOT EXISTS state varchar(10) DEFAULT NULL');
    this.addSql('ALTER TABLE script_log ADD INDEX IF NOT EXISTS state_h3u8i9o1_key (state)');
    this.addSql(
      'ALTER TABLE script_log ADD COLUMN IF NOT EXISTS created_at datetime(6) DEFAULT NULL',
    );
    this.addSql(
      'ALTER TABLE script_log ADD INDEX IF NOT EXISTS created_at_h3u7y9o4_key (created_at)',
    );
    this.addSql(
      'ALTER TABLE script_log CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci',
    );
    this.addSql('ALTER TABLE script_log ADD INDEX IF NOT EXISTS owner_state_key (owner, state)');
    this.addSql('ALTER TABLE script_log ADD INDEX IF NOT EXISTS org_id_state_key (org_id, state)');

    for (const [table, keyColumn, keyType, uniqueName, indexName] of [
      [
        'dtable_run_script_statistics',
        'dtable_uuid',
        'varchar(36)',
        'dtable_uuid_run_date_k2n9j3p1_uniq_key',
        'dtable_uuid_n3b5u4d1_key',
      ],
      [
        'org_run_script_statistics',
        'org_id',
        'int(11)',
        'org_id_run_date_a0g6y5r4_uniq_key',
        'org_id_v4b5h2d9_key',
      ],
    ] as const) {
      this.addSql(`CREATE TABLE IF NOT EXISTS ${table} (
        id int(11) NOT NULL AUTO_INCREMENT,
        ${keyColumn} ${keyType} NOT NULL,
        run_date date NOT NULL,
        total_run_count int(11) DEFAULT 0,
        total_run_time float DEFAULT 0,
        update_at datetime(6) DEFAULT NULL,
        PRIMARY KEY (id),
        UNIQUE KEY ${uniqueName} (${keyColumn}, run_date),
        KEY ${indexName} (${keyColumn})
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`);
    }
    this.addSql(`CREATE TABLE IF NOT EXISTS user_run_script_statistics (
      id int(11) NOT NULL AUTO_INCREMENT,
      username varchar(255) NOT NULL,
      org_id int(11) NOT NULL,
      run_date date NOT NULL,
      total_run_count int(11) DEFAULT 0,
      total_run_time float DEFAULT 0,
      update_at datetime(6) DEFAULT NULL,
      PRIMARY KEY (id),
      UNIQUE KEY username_run_date_n3x0p2i8_uniq_key (username, run_date),
      KEY username_m0o1g4d0_key (username)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`);
    for (const table of [
      'dtable_run_script_statistics',
      'org_run_script_statistics',
      'user_run_script_statistics',
    ]) {
      this.addSql(
        `ALTER TABLE ${table} CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
      );
      this.addSql(`ALTER TABLE ${table} ADD INDEX IF NOT EXISTS run_date_key (run_date)`);
    }
  }
}
