import { Migration0001OriginalTables } from './Migration0001OriginalTables.ts';
import { Migration0002PipelineTables } from './Migration0002PipelineTables.ts';

/** Every migration, in order. A new one is added at the end and never edited afterwards. */
export const migrationsList = [
  { name: 'Migration0001OriginalTables', class: Migration0001OriginalTables },
  { name: 'Migration0002PipelineTables', class: Migration0002PipelineTables },
];
