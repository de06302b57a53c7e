import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { outputTexts } from '@pipeline/events';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildApp } from '../src/http/app.ts';
import { localDate } from '../src/http/runView.ts';
import { SeaTableClient } from '../src/seatable/seatableClient.ts';
import { RunAdmission } from '../src/submission/runAdmission.ts';
import { baseUuid, type Services, standardSubmission, startServices } from './support/harness.ts';

const timeZone = 'Europe/Berlin';
let services: Services;
let app: FastifyInstance;
let token: string;

before(async () => {
  services = await startServices('runapi');
  token = services.standin.secret;
  const admission = new RunAdmission({
    orm: services.orm,
    eventLog: services.eventLog,
    seatable: new SeaTableClient({ serverUrl: services.standin.url, authToken: token }),
    timeZone,
    logger: services.logger,
  });
  app = await buildApp({
    authToken: token,
    timeZone,
    maxBodyBytes: 1_000_000,
    logger: services.logger,
    orm: services.orm,
    admission,
  });
});

after(async () => {
  await app?.close();
  await services?.close();
});

function auth(): Record<string, string> {
  return { authorization: `Token ${token}` };
}

async function submit(body: unknown, headers: Record<string, string> = {}) {
  return await app.inject({
    method: 'POST',
    url: '/run-script/',
    headers: { ...auth(), 'content-type': 'application/json', ...headers },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function poll(id: unknown, dtableUuid: string, scriptName: string) {
  return await app.inject({
    method: 'GET',
    url: `/run-script/${id}/?dtable_uuid=${encodeURIComponent(dtableUuid)}&script_name=${encodeURIComponent(scriptName)}`,
    headers: auth(),
  });
}

async function submitAccepted(body: Record<string, unknown>): Promise<number> {
  const response = await submit(body);
  assert.equal(response.statusCode, 200, response.body);
  const id = response.json().script_id;
  assert.ok(Number.isInteger(id) && id > 0);
  return id;
}

describe('ping and authentication', () => {
  test('answers /ping/ with Pong without a token', async () => {
    const response = await app.inject({ method: 'GET', url: '/ping/' });
    assert.equal(response.statusCode, 200);
    assert.equal(response.body, 'Pong');
  });

  test('refuses a submission without a token or with a wrong one with 403', async () => {
    const missing = await app.inject({
      method: 'POST',
      url: '/run-script/',
      payload: standardSubmission(),
    });
    assert.equal(missing.statusCode, 403);
    const wrong = await submit(standardSubmission(), { authorization: `Token ${token}x` });
    assert.equal(wrong.statusCode, 403);
    const wrongScheme = await submit(standardSubmission(), { authorization: `Basic ${token}` });
    assert.equal(wrongScheme.statusCode, 403);
  });

  test('accepts the token as a Bearer token too', async () => {
    const response = await submit(standardSubmission(), { authorization: `Bearer ${token}` });
    assert.equal(response.statusCode, 200);
  });

  test('refuses a poll without a token with 403', async () => {
    const response = await app.inject({
      method: 'GET',
      url: `/run-script/1/?dtable_uuid=${baseUuid}&script_name=t.py`,
    });
    assert.equal(response.statusCode, 403);
  });
});

describe('paths', () => {
  test('redirects a path without its trailing slash with 308 and keeps the query', async () => {
    const post = await app.inject({ method: 'POST', url: '/run-script', headers: auth() });
    assert.equal(post.statusCode, 308);
    assert.equal(post.headers.location, '/run-script/');
    const get = await app.inject({
      method: 'GET',
      url: '/run-script/12?dtable_uuid=a&script_name=b%2Bc',
    });
    assert.equal(get.statusCode, 308);
    assert.equal(get.headers.location, '/run-script/12/?dtable_uuid=a&script_name=b%2Bc');
    const ping = await app.inject({ method: 'GET', url: '/ping' });
    assert.equal(ping.statusCode, 308);
    assert.equal(ping.headers.location, '/ping/');
  });

  test('answers an unknown path with 404 Not found', async () => {
    for (const url of ['/nothing/here/', '/nothing', '/run-script/1/extra/']) {
      const response = await app.inject({ method: 'GET', url, headers: auth() });
      assert.equal(response.statusCode, 404, url);
      assert.equal(response.body, 'Not found');
    }
  });
});

describe('POST /run-script/ validation', () => {
  test('answers a body that is not JSON, or not an object, with 400 Bad request', async () => {
    for (const body of ['{"dtable_uuid": ', 'null', '["a"]', '"text"', '42', '']) {
      const response = await submit(body);
      assert.equal(response.statusCode, 400, body);
      assert.equal(response.body, 'Bad request');
    }
  });

  test('answers a body sent without a JSON content type like any other body', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/run-script/',
      headers: { ...auth(), 'content-type': 'text/plain' },
      payload: JSON.stringify(standardSubmission()),
    });
    assert.equal(response.statusCode, 200);
  });

  test('answers each missing or empty required field with 400 Parameters invalid', async () => {
    for (const field of ['dtable_uuid', 'script_name', 'owner']) {
      const missing = standardSubmission();
      delete missing[field];
      const missingResponse = await submit(missing);
      assert.equal(missingResponse.statusCode, 400, field);
      assert.equal(missingResponse.body, 'Parameters invalid');
      const empty = await submit(standardSubmission({ [field]: '' }));
      assert.equal(empty.statusCode, 400, field);
      const wrongType = await submit(standardSubmission({ [field]: 7 }));
      assert.equal(wrongType.statusCode, 400, field);
    }
  });

  test('refuses a dtable_uuid that is not a uuid', async () => {
    for (const value of [
      'not-a-uuid',
      '6a1f3c2e-9b7d-4e21-8f0a-0c5d2b7e9a1',
      '6a1f3c2e9b7d4e218f0a0c5d2b7e9a11ff',
    ]) {
      const response = await submit(standardSubmission({ dtable_uuid: value }));
      assert.equal(response.statusCode, 400, value);
    }
  });

  test('refuses script names with a slash, a NUL or more than 255 characters', async () => {
    for (const name of ['dir/sub.py', 'a\u0000b.py', 'x'.repeat(256)]) {
      const response = await submit(standardSubmission({ script_name: name }));
      assert.equal(response.statusCode, 400, name.slice(0, 20));
      assert.equal(response.body, 'Parameters invalid');
    }
  });

  test('refuses wrongly typed optional fields with 400 instead of failing', async () => {
    const cases = [
      { org_id: '42' },
      { org_id: 1.5 },
      { scripts_running_limit: '10' },
      { scripts_running_limit: -7 },
      { operate_from: 5 },
      { operate_from: 'x'.repeat(51) },
      { operator: ['a'] },
    ];
    for (const overrides of cases) {
      const response = await submit(standardSubmission(overrides));
      assert.equal(response.statusCode, 400, JSON.stringify(overrides));
    }
  });

  test('answers 413 for a run request that fits the body limit but not a NATS message', async () => {
    const roomy = await buildApp({
      authToken: token,
      timeZone,
      maxBodyBytes: 20_000_000,
      logger: services.logger,
      orm: services.orm,
      admission: new RunAdmission({
        orm: services.orm,
        eventLog: services.eventLog,
        seatable: new SeaTableClient({ serverUrl: services.standin.url, authToken: token }),
        timeZone,
        logger: services.logger,
      }),
    });
    try {
      const response = await roomy.inject({
        method: 'POST',
        url: '/run-script/',
        headers: auth(),
        // The test server takes 8 MB per message.
        payload: JSON.stringify(
          standardSubmission({ context_data: { big: 'x'.repeat(9_000_000) } }),
        ),
      });
      assert.equal(response.statusCode, 413);
    } finally {
      await roomy.close();
    }
  });

  test('answers a body over the size limit with 413', async () => {
    const response = await submit(
      standardSubmission({ context_data: { big: 'x'.repeat(1_100_000) } }),
    );
    assert.equal(response.statusCode, 413);
  });
});

describe('POST then GET /run-script/', () => {
  test('returns a pending run with the contract fields right after the submission', async () => {
    const id = await submitAccepted(standardSubmission({ operator: 'user-a@example.invalid' }));
    const response = await poll(id, baseUuid, 't.py');
    assert.equal(response.statusCode, 200);
    const { script } = response.json();
    assert.deepEqual(Object.keys(script).sort(), [
      'context_data',
      'created_at',
      'dtable_uuid',
      'finished_at',
      'id',
      'operate_from',
      'org_id',
      'output',
      'owner',
      'return_code',
      'script_name',
      'started_at',
      'state',
      'success',
    ]);
    assert.equal(script.id, id);
    assert.equal(script.state, 'pending');
    assert.equal(script.started_at, '');
    assert.equal(script.finished_at, null);
    assert.equal(script.success, null);
    assert.equal(script.operate_from, 'manualy');
    assert.equal(script.org_id, -1);
    assert.match(script.created_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0[12]:00$/);
  });

  test('gives every accepted submission a new, increasing id', async () => {
    const first = await submitAccepted(standardSubmission());
    const second = await submitAccepted(standardSubmission());
    assert.ok(second > first);
  });

  test('round-trips script names with emoji, plus, percent, spaces and 255 characters (BC-10)', async () => {
    for (const name of [
      'Report März 😀.py',
      'a+b c.py',
      '100%.py',
      'n'.repeat(255),
      'back\\slash.py',
    ]) {
      const id = await submitAccepted(standardSubmission({ script_name: name }));
      const response = await poll(id, baseUuid, name);
      assert.equal(response.statusCode, 200, name);
      assert.equal(response.json().script.script_name, name);
    }
  });

  test('treats a raw plus in the query as a space, so a+b c.py polled as a+b%20c.py is another name', async () => {
    const id = await submitAccepted(standardSubmission({ script_name: 'a+b c.py' }));
    const response = await app.inject({
      method: 'GET',
      url: `/run-script/${id}/?dtable_uuid=${baseUuid}&script_name=a+b%20c.py`,
      headers: auth(),
    });
    assert.equal(response.statusCode, 400);
    assert.equal(response.body, 'Bad request');
  });

  test('stores the canonical uuid and finds the run by every form of it (BC-11)', async () => {
    const id = await submitAccepted(
      standardSubmission({ dtable_uuid: '6A1F3C2E9B7D4E218F0A0C5D2B7E9A11', org_id: 42 }),
    );
    for (const form of [baseUuid, '6a1f3c2e9b7d4e218f0a0c5d2b7e9a11', baseUuid.toUpperCase()]) {
      const response = await poll(id, form, 't.py');
      assert.equal(response.statusCode, 200, form);
      assert.equal(response.json().script.dtable_uuid, baseUuid);
    }
    const [row] = await services.db.query<{ dtable_uuid: string }>(
      'SELECT dtable_uuid FROM script_log WHERE id = ?',
      [id],
    );
    assert.equal(row?.dtable_uuid, baseUuid);
  });

  test('round-trips an object context with emoji and line separators (BC-09)', async () => {
    const context = { row: { Name: 'Zoë 😀 \u2028 "q"', n: 1 }, big: 'x'.repeat(200_000) };
    const id = await submitAccepted(standardSubmission({ context_data: context }));
    const response = await poll(id, baseUuid, 't.py');
    assert.deepEqual(response.json().script.context_data, context);
  });

  test('accepts a context that is not an object but keeps nothing of it (BC-09 C)', async () => {
    const id = await submitAccepted(standardSubmission({ context_data: ['a'] }));
    const response = await poll(id, baseUuid, 't.py');
    assert.equal(response.json().script.context_data, null);
  });

  test('returns the first id when a submission is resent with the same Idempotency-Key', async () => {
    const headers = { 'idempotency-key': `key-${Date.now()}` };
    const first = await submit(standardSubmission(), headers);
    const resent = await submit(standardSubmission(), headers);
    assert.equal(first.statusCode, 200);
    assert.equal(resent.statusCode, 200);
    assert.equal(resent.json().script_id, first.json().script_id);
    const other = await submit(standardSubmission(), { 'idempotency-key': `other-${Date.now()}` });
    assert.notEqual(other.json().script_id, first.json().script_id);
  });

  test("a resend's pending row is the first request's, not the resend's", async () => {
    const headers = { 'idempotency-key': `row-${Date.now()}` };
    const first = await submit(standardSubmission(), headers);
    const id = first.json().script_id as number;
    const createdAt = async () => {
      const rows = await services.db.query<{ created_at: string }>(
        'SELECT CAST(created_at AS CHAR) AS created_at FROM script_log WHERE id = ?',
        [id],
      );
      return rows[0]?.created_at;
    };
    const firstCreatedAt = await createdAt();
    assert.ok(firstCreatedAt);
    // As when the first pending row was lost in a database outage and the projector has not
    // written the row yet: the resend writes it.
    await services.db.query('DELETE FROM script_log WHERE id = ?', [id]);
    await new Promise((resolve) => setTimeout(resolve, 20));

    const resent = await submit(standardSubmission(), headers);

    assert.equal(resent.json().script_id, id);
    assert.equal(await createdAt(), firstCreatedAt);
  });

  test('refuses with 422 an Idempotency-Key used again for another submission', async () => {
    const headers = { 'idempotency-key': `reused-${Date.now()}` };
    const context = { row: { b: 2, a: 1 } };
    const first = await submit(standardSubmission({ context_data: context }), headers);
    // The same submission with its context's keys in another order is the same run.
    const resent = await submit(
      standardSubmission({ context_data: { row: { a: 1, b: 2 } } }),
      headers,
    );
    const another = await submit(
      standardSubmission({ script_name: 'other.py', context_data: context }),
      headers,
    );

    assert.equal(first.statusCode, 200);
    assert.equal(resent.statusCode, 200);
    assert.equal(resent.json().script_id, first.json().script_id);
    assert.equal(another.statusCode, 422);
    assert.match(another.body, /Idempotency-Key already used for run \d+, a different submission/);
    const rows = await services.db.query(
      "SELECT COUNT(*) AS n FROM script_log WHERE script_name = 'other.py'",
    );
    assert.equal(Number((rows[0] as { n: number }).n), 0);
  });

  test('keeps the temporary API token out of the log and the database', async () => {
    const id = await submitAccepted(
      standardSubmission({
        temp_api_token: 'temp-token-never-kept',
        operator: 'op@example.invalid',
      }),
    );
    const stored = await services.eventLog.jetStreamManager.streams.getMessage(
      services.naming.stream,
      { seq: id },
    );
    assert.ok(stored);
    assert.ok(!new TextDecoder().decode(stored.data).includes('temp-token-never-kept'));
    const rows = await services.db.query('SELECT * FROM script_log WHERE id = ?', [id]);
    assert.equal(rows.length, 1);
    assert.ok(!JSON.stringify(rows).includes('temp-token-never-kept'));
  });

  test('refuses an Idempotency-Key with spaces or control characters', async () => {
    const response = await submit(standardSubmission(), { 'idempotency-key': 'a b' });
    assert.equal(response.statusCode, 400);
  });
});

describe('GET /run-script/<id>/ errors', () => {
  test('answers a non-integer id with 400 and an unknown one with 404 Not found', async () => {
    assert.equal((await poll('abc', baseUuid, 't.py')).statusCode, 400);
    assert.equal((await poll('1.5', baseUuid, 't.py')).statusCode, 400);
    const unknown = await poll(987654321, baseUuid, 't.py');
    assert.equal(unknown.statusCode, 404);
    assert.equal(unknown.body, 'Not found');
  });

  test('answers a run of another base or another script name with 400 Bad request', async () => {
    const id = await submitAccepted(standardSubmission());
    const otherBase = await poll(id, '00000000-0000-4000-8000-000000000000', 't.py');
    assert.equal(otherBase.statusCode, 400);
    assert.equal(otherBase.body, 'Bad request');
    const otherName = await poll(id, baseUuid, 'T.py');
    assert.equal(otherName.statusCode, 400);
  });

  test('answers missing query parameters with 400 and a malformed uuid with 400', async () => {
    const id = await submitAccepted(standardSubmission());
    const missing = await app.inject({
      method: 'GET',
      url: `/run-script/${id}/?dtable_uuid=${baseUuid}`,
      headers: auth(),
    });
    assert.equal(missing.statusCode, 400);
    assert.equal(missing.body, 'Parameters invalid');
    assert.equal((await poll(id, 'not-a-uuid', 't.py')).statusCode, 400);
  });
});

describe('monthly quota (BC-13)', () => {
  const today = () => localDate(new Date(), timeZone);

  async function seedUserRuns(username: string, count: number, orgId = -1) {
    await services.db.query(
      'INSERT INTO user_run_script_statistics (username, org_id, run_date, total_run_count, total_run_time) VALUES (?, ?, ?, ?, 1)',
      [username, orgId, today(), count],
    );
  }

  async function submitConcurrently(body: Record<string, unknown>, count: number) {
    return await Promise.all(Array.from({ length: count }, () => submit(body)));
  }

  function tally(responses: Awaited<ReturnType<typeof submit>>[]) {
    const accepted = responses.filter((response) => response.statusCode === 200);
    const refused = responses.filter((response) => response.statusCode === 400);
    for (const response of refused) assert.equal(response.body, outputTexts.quotaExceeded);
    assert.equal(accepted.length + refused.length, responses.length, 'no other status');
    const ids = new Set(accepted.map((response) => response.json().script_id));
    assert.equal(ids.size, accepted.length, 'distinct ids');
    return { accepted: accepted.length, refused: refused.length };
  }

  test('admits exactly one of ten concurrent submissions when one run is left', async () => {
    const owner = 'user-c@example.invalid';
    await seedUserRuns(owner, 9);
    const responses = await submitConcurrently(
      standardSubmission({ owner, scripts_running_limit: 10 }),
      10,
    );
    assert.deepEqual(tally(responses), { accepted: 1, refused: 9 });
    const again = await submit(standardSubmission({ owner, scripts_running_limit: 10 }));
    assert.equal(again.statusCode, 400);
    assert.equal(again.body, 'The number of runs exceeds the limit');
  });

  test('counts queued runs against the limit even with no statistics yet', async () => {
    const owner = 'user-queued@example.invalid';
    const body = standardSubmission({ owner, scripts_running_limit: 3 });
    assert.deepEqual(tally(await submitConcurrently(body, 8)), { accepted: 3, refused: 5 });
  });

  test('uses the org total for an org and ignores the personal one', async () => {
    const owner = 'user-org@example.invalid';
    await seedUserRuns(owner, 500, 7);
    await services.db.query(
      'INSERT INTO org_run_script_statistics (org_id, run_date, total_run_count, total_run_time) VALUES (7, ?, 9, 1)',
      [today()],
    );
    const responses = await submitConcurrently(
      standardSubmission({ owner, org_id: 7, scripts_running_limit: 10 }),
      10,
    );
    assert.deepEqual(tally(responses), { accepted: 1, refused: 9 });
  });

  test('never limits a group owner', async () => {
    const owner = '123@seafile_group';
    await seedUserRuns(owner, 50);
    const responses = await submitConcurrently(
      standardSubmission({ owner, scripts_running_limit: 1 }),
      5,
    );
    assert.deepEqual(tally(responses), { accepted: 5, refused: 0 });
  });

  test('ignores runs of earlier months', async () => {
    const owner = 'user-old@example.invalid';
    await services.db.query(
      'INSERT INTO user_run_script_statistics (username, org_id, run_date, total_run_count, total_run_time) VALUES (?, -1, ?, 100, 1)',
      [owner, '2001-01-31'],
    );
    assert.equal(
      (await submit(standardSubmission({ owner, scripts_running_limit: 1 }))).statusCode,
      200,
    );
  });

  test('asks SeaTable for the limit when the request carries 0', async () => {
    const owner = 'user-ask@example.invalid';
    services.standin.setRunningLimit({ username: owner }, 100);
    await seedUserRuns(owner, 99);
    const before = services.standin.requests.length;
    const accepted = await submit(standardSubmission({ owner, scripts_running_limit: 0 }));
    assert.equal(accepted.statusCode, 200);
    const asked = services.standin.requests
      .slice(before)
      .filter((request) => request.route === 'running-limit');
    assert.equal(asked.length, 1);
    assert.deepEqual(asked[0]?.query, { username: owner });
    assert.equal(asked[0]?.status, 200);

    services.standin.setRunningLimit({ username: owner }, 100);
    const full = await submit(standardSubmission({ owner, scripts_running_limit: 0 }));
    assert.equal(full.statusCode, 400);
  });

  test('asks SeaTable by org id for an org owner', async () => {
    services.standin.setRunningLimit({ orgId: 8 }, -1);
    const before = services.standin.requests.length;
    const response = await submit(
      standardSubmission({ owner: 'user-o8@example.invalid', org_id: 8, scripts_running_limit: 0 }),
    );
    assert.equal(response.statusCode, 200);
    const asked = services.standin.requests
      .slice(before)
      .find((request) => request.route === 'running-limit');
    assert.deepEqual(asked?.query, { org_id: '8' });
  });

  test('refuses with the quota text when SeaTable cannot tell the limit', async () => {
    services.standin.failNext('running-limit', { status: 500 });
    const response = await submit(
      standardSubmission({ owner: 'user-err@example.invalid', scripts_running_limit: 0 }),
    );
    assert.equal(response.statusCode, 400);
    assert.equal(response.body, 'The number of runs exceeds the limit');
  });
});

describe('error answers and their log levels', () => {
  test('answers an unexpected failure with 500 Internal server error logged at error, a 4xx at info', async () => {
    const lines: { level: number; msg: string; err?: { message: string } }[] = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => lines.push(JSON.parse(line)) },
    );
    const failing = await buildApp({
      authToken: token,
      timeZone,
      maxBodyBytes: 1_000_000,
      logger,
      orm: services.orm,
      admission: {
        admit: async () => {
          throw new Error('a bug, with internal details');
        },
      } as unknown as RunAdmission,
    });
    try {
      const crashed = await failing.inject({
        method: 'POST',
        url: '/run-script/',
        headers: auth(),
        payload: JSON.stringify(standardSubmission()),
      });
      assert.equal(crashed.statusCode, 500);
      assert.equal(crashed.body, 'Internal server error');
      const failure = lines.find((line) => line.msg === 'request failed');
      assert.equal(failure?.level, 50);
      assert.equal(failure?.err?.message, 'a bug, with internal details');

      const refused = await failing.inject({
        method: 'POST',
        url: '/run-script/',
        headers: auth(),
        payload: '[',
      });
      assert.equal(refused.statusCode, 400);
      assert.equal(lines.find((line) => line.msg === 'request refused')?.level, 30);
    } finally {
      await failing.close();
    }
  });
});
