import { Migration0001OriginalTables } from './Migration0001OriginalTables.ts';
import { Migration0002PipelineTables } from './Migration0002PipelineTables.ts';
import { Migration0003ReadModelIndexes } from './Migration0003ReadModelIndexes.ts';
import { Migration0004MonthlyStatistics } from './Migration0004MonthlyStatistics.ts';
import { Migration0005FairShareIndexes } from './Migration0005FairShareIndexes.ts';
import { Migration0006AdoptedHistory } from './Migration0006AdoptedHistory.ts';
import { Migration0007AuditRunIndex } from './Migration0007AuditRunIndex.ts';
import { SqliteMigration0001ReadModel } from './sqlite/SqliteMigration0001ReadModel.ts';
import { SqliteMigration0002AdoptedHistory } from './sqlite/SqliteMigration0002AdoptedHistory.ts';
import { SqliteMigration0003AuditRunIndex } from './sqlite/SqliteMigration0003AuditRunIndex.ts';

/**
 * Every MariaDB migration, in order. A new one is added at the end and never edited
 * afterwards; its SQLite counterpart goes at the end of `sqliteMigrationsList`, and the
 * pair into `sqliteCounterparts`.
 */
export const migrationsList = [
  { name: 'Migration0001OriginalTables', class: Migration0001OriginalTables },
  { name: 'Migration0002PipelineTables', class: Migration0002PipelineTables },
  { name: 'Migration0003ReadModelIndexes', class: Migration0003ReadModelIndexes },
  { name: 'Migration0004MonthlyStatistics', class: Migration0004MonthlyStatistics },
  { name: 'Migration0005FairShareIndexes', class: Migration0005FairShareIndexes },
  { name: 'Migration0006AdoptedHistory', class: Migration0006AdoptedHistory },
  { name: 'Migration0007AuditRunIndex', class: Migration0007AuditRunIndex },
];

/** The same read model in a SQLite file (a single scheduler's first run, see `openDatabase`). */
export const sqliteMigrationsList = [
  { name: 'SqliteMigration0001ReadModel', class: SqliteMigration0001ReadModel },
  { name: 'SqliteMigration0002AdoptedHistory', class: SqliteMigration0002AdoptedHistory },
  { name: 'SqliteMigration0003AuditRunIndex', class: SqliteMigration0003AuditRunIndex },
];

/** Which SQLite migration does what each MariaDB migration does (a test keeps them paired). */
export const sqliteCounterparts: Record<string, string> = {
  Migration0001OriginalTables: 'SqliteMigration0001ReadModel',
  Migration0002PipelineTables: 'SqliteMigration0001ReadModel',
  Migration0003ReadModelIndexes: 'SqliteMigration0001ReadModel',
  Migration0004MonthlyStatistics: 'SqliteMigration0001ReadModel',
  Migration0005FairShareIndexes: 'SqliteMigration0001ReadModel',
  Migration0006AdoptedHistory: 'SqliteMigration0002AdoptedHistory',
  Migration0007AuditRunIndex: 'SqliteMigration0003AuditRunIndex',
};
