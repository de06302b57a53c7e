import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  baseA,
  baseB,
  bodyOf,
  type ReadFixture,
  seedRuns,
  startReadFixture,
} from './readFixture.ts';

interface TaskLogs {
  task_logs: Record<string, unknown>[];
  count: number;
}

const logsOf = (base: string, name: string, query = '') =>
  `/tasks/${base}/${encodeURIComponent(name)}/logs/${query}`;
const idsOf = (body: TaskLogs) => body.task_logs.map((run) => run.id);

const emojiName = 'Report März 😀.py';
const longName = `${'n'.repeat(252)}.py`;
/** 255 code points, 507 UTF-16 units, 3,015 characters once percent-encoded. */
const longEmojiName = `${'😀'.repeat(252)}.py`;

let fixture: ReadFixture;

before(async () => {
  fixture = await startReadFixture('task_logs');
  // 25 runs of t.py on base A, one of another script, one of t.py on another base.
  await seedRuns(
    fixture.db,
    Array.from({ length: 25 }, (_, index) => ({
      id: 101 + index,
      created_at: `2026-12-0${1 + (index % 3)} 08:00:0${index % 10}`,
    })),
  );
  await seedRuns(fixture.db, [
    { id: 200, script_name: 'other.py' },
    { id: 201, dtable_uuid: baseB },
    { id: 300, script_name: emojiName },
    { id: 301, script_name: 'Report Marz 😁.py' },
    { id: 302, script_name: 'a+b c.py' },
    { id: 303, script_name: 'A+B C.py' },
    { id: 304, script_name: '100%.py' },
    { id: 305, script_name: longName },
    { id: 306, script_name: 'trailing.py ' },
    { id: 307, script_name: 'what?.py' },
    { id: 308, script_name: `it's "quoted" \\ back.py` },
    { id: 309, script_name: longEmojiName },
    {
      id: 400,
      script_name: 'detail.py',
      owner: 'user-b@example.invalid',
      org_id: 42,
      context_data: '{"table":"Tasks","row":{"Name":"Zoë ✓"}}',
      created_at: '2026-12-04 13:02:59.750000',
      started_at: '2026-12-04 13:03:00.400000',
      finished_at: '2026-12-04 13:03:07.999999',
      success: false,
      return_code: 1,
      output: 'Traceback (most recent call last):\n  boom\n',
      operate_from: 'automation-rule',
    },
    { id: 401, script_name: 'detail.py', created_at: '2026-07-01 10:00:00' },
  ]);
});

after(async () => {
  await fixture.close();
});

describe('GET /tasks/<base>/<script>/logs/', () => {
  test('answers the newest 20 runs and the total count by default', async () => {
    const response = await fixture.get(logsOf(baseA, 't.py'));

    assert.equal(response.statusCode, 200);
    const body = bodyOf<TaskLogs>(response);
    assert.equal(body.count, 25);
    assert.deepEqual(
      idsOf(body),
      Array.from({ length: 20 }, (_, index) => 125 - index),
    );
  });

  test('pages through the runs with page and per_page', async () => {
    const second = bodyOf<TaskLogs>(
      await fixture.get(logsOf(baseA, 't.py', '?page=2&per_page=10')),
    );
    const last = bodyOf<TaskLogs>(await fixture.get(logsOf(baseA, 't.py', '?page=3&per_page=10')));

    assert.deepEqual(idsOf(second), [115, 114, 113, 112, 111, 110, 109, 108, 107, 106]);
    assert.deepEqual(idsOf(last), [105, 104, 103, 102, 101]);
    assert.equal(last.count, 25);
  });

  test('answers an empty page with the full count beyond the last page', async () => {
    const response = await fixture.get(logsOf(baseA, 't.py', '?page=9&per_page=10'));

    assert.equal(response.statusCode, 200);
    assert.deepEqual(bodyOf<TaskLogs>(response), { task_logs: [], count: 25 });
  });

  test('orders oldest first with order_by=id and with the original spelling org_by=id', async () => {
    for (const query of ['?order_by=id&per_page=3', '?org_by=id&per_page=3']) {
      const body = bodyOf<TaskLogs>(await fixture.get(logsOf(baseA, 't.py', query)));
      assert.deepEqual(idsOf(body), [101, 102, 103], query);
    }
    const newest = bodyOf<TaskLogs>(
      await fixture.get(logsOf(baseA, 't.py', '?order_by=-id&per_page=2')),
    );
    assert.deepEqual(idsOf(newest), [125, 124]);
  });

  test('refuses another order field with 400 order_by invalid.', async () => {
    for (const query of ['?order_by=created_at', '?org_by=-state', '?order_by=id;DROP']) {
      const response = await fixture.get(logsOf(baseA, 't.py', query));
      assert.equal(response.statusCode, 400, query);
      assert.equal(response.body, 'order_by invalid.');
      assert.match(String(response.headers['content-type']), /^text\/html/);
    }
  });

  test('refuses a page or page size that is not a positive integer with 400, never 500', async () => {
    for (const query of [
      '?page=0',
      '?page=-1',
      '?page=abc',
      '?page=1.5',
      '?per_page=-1',
      '?per_page=0',
      '?per_page=ten',
      '?per_page=1001',
      '?page=99999999999999999999',
    ]) {
      const response = await fixture.get(logsOf(baseA, 't.py', query));
      assert.equal(response.statusCode, 400, query);
    }
  });

  test('finds the same runs whatever form the base uuid takes', async () => {
    const forms = [
      baseA,
      baseA.replaceAll('-', ''),
      baseA.toUpperCase(),
      baseA.replaceAll('-', '').toUpperCase(),
    ];
    for (const form of forms) {
      const body = bodyOf<TaskLogs>(await fixture.get(logsOf(form, 't.py', '?per_page=1')));
      assert.equal(body.count, 25, form);
      assert.equal(body.task_logs[0]?.dtable_uuid, baseA);
    }
  });

  test('refuses a base that is not a uuid with 400', async () => {
    for (const base of [
      'not-a-uuid',
      `${baseA}0`,
      '6a1f3c2e-9b7d4e21-8f0a-0c5d2b7e9a11',
      'g'.repeat(32),
    ]) {
      const response = await fixture.get(logsOf(base, 't.py'));
      assert.equal(response.statusCode, 400, base);
    }
  });

  test('matches script names with emoji, plus, space, percent and full length exactly (BC-10)', async () => {
    for (const [name, id] of [
      [emojiName, 300],
      ['a+b c.py', 302],
      ['100%.py', 304],
      [longName, 305],
      ['trailing.py ', 306],
      ['what?.py', 307],
      [`it's "quoted" \\ back.py`, 308],
    ] as const) {
      const response = await fixture.get(logsOf(baseA, name));
      assert.equal(response.statusCode, 200, name);
      const body = bodyOf<TaskLogs>(response);
      assert.deepEqual(idsOf(body), [id], name);
      assert.equal(body.task_logs[0]?.script_name, name);
    }
  });

  test('does not mix up names that differ only in case, accents, emoji or trailing space', async () => {
    for (const name of [
      'REPORT MÄRZ 😀.PY',
      'Report Marz 😀.py',
      'Report März 😃.py',
      'trailing.py',
      'T.PY',
    ]) {
      const body = bodyOf<TaskLogs>(await fixture.get(logsOf(baseA, name)));
      assert.equal(body.count, 0, name);
    }
  });

  test('finds nothing for an encoded slash, since names with a slash are never stored', async () => {
    const response = await fixture.get(`/tasks/${baseA}/dir%2Fsub.py/logs/`);

    assert.equal(response.statusCode, 200);
    assert.deepEqual(bodyOf<TaskLogs>(response), { task_logs: [], count: 0 });
  });

  test('answers each run with the contract fields, parsed context and zoned times', async () => {
    const body = bodyOf<TaskLogs>(await fixture.get(logsOf(baseA, 'detail.py')));

    assert.equal(body.count, 2);
    assert.deepEqual(body.task_logs[0], {
      id: 401,
      dtable_uuid: baseA,
      owner: 'user-a@example.invalid',
      org_id: -1,
      script_name: 'detail.py',
      context_data: null,
      started_at: '',
      finished_at: null,
      success: null,
      return_code: null,
      output: null,
      operate_from: 'manualy',
      state: 'pending',
      created_at: '2026-07-01T12:00:00+02:00',
    });
    assert.deepEqual(body.task_logs[1], {
      id: 400,
      dtable_uuid: baseA,
      owner: 'user-b@example.invalid',
      org_id: 42,
      script_name: 'detail.py',
      context_data: { table: 'Tasks', row: { Name: 'Zoë ✓' } },
      started_at: '2026-12-04T14:03:00+01:00',
      finished_at: '2026-12-04T14:03:07+01:00',
      success: false,
      return_code: 1,
      output: 'Traceback (most recent call last):\n  boom\n',
      operate_from: 'automation-rule',
      state: 'finished',
      created_at: '2026-12-04T14:02:59+01:00',
    });
  });
});

describe('GET /tasks/<base>/<script>/logs/<id>/', () => {
  test('answers the run as task_log', async () => {
    const response = await fixture.get(`/tasks/${baseA}/detail.py/logs/400/`);

    assert.equal(response.statusCode, 200);
    const run = bodyOf<{ task_log: Record<string, unknown> }>(response).task_log;
    assert.equal(run.id, 400);
    assert.equal(run.output, 'Traceback (most recent call last):\n  boom\n');
    assert.equal(run.finished_at, '2026-12-04T14:03:07+01:00');
  });

  test('finds the run through the 32-character and upper-case forms of its base', async () => {
    for (const form of [baseA.replaceAll('-', ''), baseA.toUpperCase()]) {
      const response = await fixture.get(`/tasks/${form}/detail.py/logs/400/`);
      assert.equal(response.statusCode, 200, form);
    }
  });

  test('answers 404 Script log not found for another base, another script or an unknown id', async () => {
    for (const url of [
      `/tasks/${baseB}/detail.py/logs/400/`,
      `/tasks/${baseA}/other.py/logs/400/`,
      `/tasks/${baseA}/DETAIL.PY/logs/400/`,
      `/tasks/${baseA}/detail.py/logs/999999/`,
      `/tasks/${baseA}/detail.py/logs/abc/`,
      `/tasks/${baseA}/detail.py/logs/-4/`,
      `/tasks/${baseA}/detail.py/logs/99999999999999/`,
    ]) {
      const response = await fixture.get(url);
      assert.equal(response.statusCode, 404, url);
      assert.deepEqual(bodyOf(response), { error_msg: 'Script log not found' });
    }
  });

  test('refuses a base that is not a uuid with 400', async () => {
    const response = await fixture.get('/tasks/not-a-uuid/detail.py/logs/400/');

    assert.equal(response.statusCode, 400);
  });

  test('finds a run whose name holds emoji and a percent sign', async () => {
    const emoji = await fixture.get(`/tasks/${baseA}/${encodeURIComponent(emojiName)}/logs/300/`);
    const percent = await fixture.get(`/tasks/${baseA}/100%25.py/logs/304/`);
    const lookalike = await fixture.get(
      `/tasks/${baseA}/${encodeURIComponent('Report Marz 😁.py')}/logs/300/`,
    );

    assert.equal(emoji.statusCode, 200);
    assert.equal(percent.statusCode, 200);
    assert.equal(lookalike.statusCode, 404);
  });
});

describe('the read routes in the scheduler app', () => {
  test('refuse a request without the token with 403', async () => {
    for (const url of [
      `/tasks/${baseA}/t.py/logs/`,
      '/scripts-running-count/?username=a',
      '/admin/runs/',
      '/admin/statistics/by-day/?org_id=1',
      '/admin/statistics/scripts-running/by-user/',
    ]) {
      const response = await fixture.app.inject({ method: 'GET', url });
      assert.equal(response.statusCode, 403, url);
    }
  });

  test('redirect a path without its trailing slash with 308, keeping the query', async () => {
    const response = await fixture.get(`/tasks/${baseA}/t.py/logs?page=2`);

    assert.equal(response.statusCode, 308);
    assert.equal(response.headers.location, `/tasks/${baseA}/t.py/logs/?page=2`);
  });

  test('answer a malformed percent escape in the script name with 400, never 500', async () => {
    const response = await fixture.get(`/tasks/${baseA}/100%.py/logs/`);

    assert.equal(response.statusCode, 400);
  });

  test('find a run whose 255-character name is all emoji', async () => {
    const response = await fixture.get(logsOf(baseA, longEmojiName));

    assert.equal(response.statusCode, 200);
    assert.deepEqual(idsOf(bodyOf<TaskLogs>(response)), [309]);
  });
});
