import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { baseA, type ReadFixture, seedRuns, startReadFixture } from './readFixture.ts';

let fixture: ReadFixture;

before(async () => {
  fixture = await startReadFixture('read_deadline');
  await seedRuns(fixture.db, [{ id: 1 }]);
});

after(async () => {
  await fixture.close();
});

test('answers 503 instead of hanging when the database does not answer a read (BC-17)', async () => {
  // Another session holds the table: every read of it waits until the lock goes.
  await fixture.db.query('LOCK TABLES script_log WRITE');
  try {
    const response = await fixture.get(`/tasks/${baseA}/t.py/logs/`);

    assert.equal(response.statusCode, 503);
    assert.match(response.body, /^Service unavailable/);
  } finally {
    await fixture.db.query('UNLOCK TABLES');
  }

  const afterwards = await fixture.get(`/tasks/${baseA}/t.py/logs/`);
  assert.equal(afterwards.statusCode, 200);
});
