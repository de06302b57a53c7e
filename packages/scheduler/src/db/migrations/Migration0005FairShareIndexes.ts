import { Migration } from '@mikro-orm/migrations';

/** Fair share sums a user's run time in the window by a range on finished_at. */
export class Migration0005FairShareIndexes extends Migration {
  override name = 'Migration0005FairShareIndexes';

  override async up(): Promise<void> {
    this.addSql(
      'ALTER TABLE script_log ADD INDEX IF NOT EXISTS owner_finished_at_key (owner, finished_at)',
    );
  }
}
