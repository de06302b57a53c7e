import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type SeaTableStandin, startSeaTableStandin } from '../src/index.ts';

const baseUuid = '6a1f3c2e-9b7d-4e21-8f0a-0c5d2b7e9a11';
const secret = 'shared-secret-for-tests';

let standin: SeaTableStandin;

before(async () => {
  standin = await startSeaTableStandin({
    secret,
    scripts: [
      { dtableUuid: baseUuid, scriptName: 't.py', source: 'print("t")\n' },
      { dtableUuid: baseUuid.replace(/-/g, '').toUpperCase(), scriptName: '100%.py', source: 'p' },
      { dtableUuid: baseUuid, scriptName: 'a+b c.py', source: 'plus and space' },
      { dtableUuid: baseUuid, scriptName: 'Report März 😀.py', source: 'unicode' },
    ],
  });
});

after(async () => {
  await standin.stop();
});

function taskFileUrl(encodedScriptName: string, dtableUuid = baseUuid): string {
  return `${standin.url}/api/v2.1/dtable/${dtableUuid}/run-script/${encodedScriptName}/task/file/`;
}

async function getTaskFile(encodedScriptName: string, authorization = `Token ${secret}`) {
  return await fetch(taskFileUrl(encodedScriptName), { headers: { authorization } });
}

async function issueLink(
  scriptName: string,
): Promise<{ script_url: string; temp_api_token: string }> {
  const response = await getTaskFile(encodeURIComponent(scriptName));
  assert.equal(response.status, 200);
  return (await response.json()) as { script_url: string; temp_api_token: string };
}

describe('task/file', () => {
  test('answers a script url on the stand-in and a temporary token for a known script', async () => {
    const link = await issueLink('t.py');

    assert.match(link.script_url, new RegExp(`^${standin.url}/files/[0-9a-f]+$`));
    assert.match(link.temp_api_token, /^[0-9a-f]{40}$/);
    assert.notEqual(link.temp_api_token, secret);
  });

  test('refuses with 403 a missing secret, a wrong one and a Bearer header', async () => {
    const missing = await fetch(taskFileUrl('t.py'));
    const wrong = await getTaskFile('t.py', `Token ${secret}x`);
    const bearer = await getTaskFile('t.py', `Bearer ${secret}`);

    assert.deepEqual([missing.status, wrong.status, bearer.status], [403, 403, 403]);
  });

  test('answers 404 for a script the base does not hold', async () => {
    const response = await getTaskFile('missing.py');

    assert.equal(response.status, 404);
    assert.deepEqual(await response.json(), { error_msg: 'Script not found.' });
  });

  test('answers 404 when the base uuid is not in the lower-case dashed form', async () => {
    const undashed = await fetch(taskFileUrl('t.py', baseUuid.replace(/-/g, '')), {
      headers: { authorization: `Token ${secret}` },
    });
    const upper = await fetch(taskFileUrl('t.py', baseUuid.toUpperCase()), {
      headers: { authorization: `Token ${secret}` },
    });

    assert.equal(undashed.status, 404);
    assert.equal(upper.status, 404);
  });

  test('decodes the script name segment exactly once', async () => {
    const percent = await getTaskFile('100%25.py');
    const plusAndSpace = await getTaskFile('a%2Bb%20c.py');
    const unicode = await getTaskFile(encodeURIComponent('Report März 😀.py'));
    const decodedTwice = await getTaskFile('100%2525.py');

    assert.equal(percent.status, 200);
    assert.equal(plusAndSpace.status, 200);
    assert.equal(unicode.status, 200);
    assert.equal(decodedTwice.status, 404);
  });

  test('answers 400 for a script name segment that is not valid percent-encoding', async () => {
    const response = await getTaskFile('100%.py');

    assert.equal(response.status, 400);
  });

  test('mints a new link and token on every call', async () => {
    const first = await issueLink('t.py');
    const second = await issueLink('t.py');

    assert.notEqual(first.script_url, second.script_url);
    assert.notEqual(first.temp_api_token, second.temp_api_token);
    const issued = standin.issuedFiles().find((file) => file.scriptUrl === second.script_url);
    assert.equal(issued?.tempApiToken, second.temp_api_token);
    assert.equal(issued?.dtableUuid, baseUuid);
    assert.equal(issued?.scriptName, 't.py');
  });
});

describe('script files', () => {
  test('serves the source at the script url without any authorization', async () => {
    const link = await issueLink('a+b c.py');

    const response = await fetch(link.script_url);

    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'plus and space');
  });

  test('counts downloads per link and per script name', async () => {
    const name = 'counted.py';
    standin.setScript({ dtableUuid: baseUuid, scriptName: name, source: 'x' });
    const first = await issueLink(name);
    const second = await issueLink(name);
    const firstKey = first.script_url.split('/').pop()!;

    await (await fetch(first.script_url)).text();
    await (await fetch(first.script_url)).text();
    await (await fetch(second.script_url)).text();

    assert.equal(standin.fetchCount(firstKey), 2);
    assert.equal(standin.fetchCount(name), 3);
    assert.equal(standin.fetchCount('never-issued.py'), 0);
  });

  test('serves the source as it was when the link was minted, bytes unchanged', async () => {
    const name = 'bytes.py';
    const bytes = Uint8Array.from([0x70, 0xff, 0xfe, 0x0a]);
    standin.setScript({ dtableUuid: baseUuid, scriptName: name, source: bytes });
    const link = await issueLink(name);
    standin.setScript({ dtableUuid: baseUuid, scriptName: name, source: 'changed later' });

    const body = new Uint8Array(await (await fetch(link.script_url)).arrayBuffer());

    assert.deepEqual(body, bytes);
  });

  test('answers 404 for a link it never minted and does not count it', async () => {
    const response = await fetch(`${standin.url}/files/0123abcd`);

    assert.equal(response.status, 404);
    assert.equal(standin.fetchCount('0123abcd'), 0);
  });

  test('answers 404 on task/file once a script is removed', async () => {
    standin.setScript({ dtableUuid: baseUuid, scriptName: 'gone.py', source: 'x' });
    assert.equal(standin.removeScript(baseUuid, 'gone.py'), true);

    const response = await getTaskFile('gone.py');

    assert.equal(response.status, 404);
  });
});

describe('scripts-running-limit', () => {
  async function limitOf(query: string, authorization = `Token ${secret}`) {
    return await fetch(`${standin.url}/api/v2.1/scripts-running-limit/?${query}`, {
      headers: { authorization },
    });
  }

  test('answers -1 for an owner without a limit and the set limit otherwise', async () => {
    standin.setRunningLimit({ username: 'limited@example.invalid' }, 5);
    standin.setRunningLimit({ orgId: 42 }, 100);

    const unset = await limitOf('username=free%40example.invalid');
    const user = await limitOf('username=limited%40example.invalid');
    const org = await limitOf('org_id=42');

    assert.deepEqual(await unset.json(), { scripts_running_limit: -1 });
    assert.deepEqual(await user.json(), { scripts_running_limit: 5 });
    assert.deepEqual(await org.json(), { scripts_running_limit: 100 });
  });

  test('answers 400 without a username or org_id, and for an org_id that is no integer', async () => {
    const neither = await limitOf('');
    const badOrg = await limitOf('org_id=abc');

    assert.equal(neither.status, 400);
    assert.equal(badOrg.status, 400);
  });

  test('refuses with 403 a request without the secret', async () => {
    const response = await limitOf('username=a', '');

    assert.equal(response.status, 403);
  });
});

describe('scripts-exceeded-notifications', () => {
  async function notify(body: string) {
    return await fetch(`${standin.url}/api/v2.1/scripts-exceeded-notifications/`, {
      method: 'POST',
      headers: { authorization: `Token ${secret}`, 'content-type': 'application/json' },
      body,
    });
  }

  test('keeps each body it accepted, in order', async () => {
    const before = standin.notifications.length;

    const orgs = await notify(JSON.stringify({ org_ids: [42, 7] }));
    const owners = await notify(JSON.stringify({ owners: ['user-a@example.invalid'] }));

    assert.equal(orgs.status, 200);
    assert.equal(owners.status, 200);
    assert.deepEqual(standin.notifications.slice(before), [
      { org_ids: [42, 7] },
      { owners: ['user-a@example.invalid'] },
    ]);
  });

  test('answers 400 for a body that is not JSON or names no org ids or owners', async () => {
    const before = standin.notifications.length;

    const statuses = [];
    for (const body of ['not json', '[]', '{}', '{"org_ids": ["x"]}', '{"owners": [1]}']) {
      statuses.push((await notify(body)).status);
    }

    assert.deepEqual(statuses, [400, 400, 400, 400, 400]);
    assert.equal(standin.notifications.length, before);
  });

  test('answers 405 to a GET', async () => {
    const response = await fetch(`${standin.url}/api/v2.1/scripts-exceeded-notifications/`, {
      headers: { authorization: `Token ${secret}` },
    });

    assert.equal(response.status, 405);
  });
});

describe('recorded requests', () => {
  test('records method, raw path, query, headers and body of every request', async () => {
    await fetch(`${standin.url}/api/v2.1/scripts-exceeded-notifications/?x=1`, {
      method: 'POST',
      headers: { authorization: `Token ${secret}`, 'x-probe': 'recorded' },
      body: '{"owners": ["o"]}',
    });
    await fetch(`${standin.url}/unknown/path`);

    const [posted, unknown] = standin.requests.slice(-2);
    assert.equal(posted?.method, 'POST');
    assert.equal(posted?.path, '/api/v2.1/scripts-exceeded-notifications/');
    assert.deepEqual(posted?.query, { x: '1' });
    assert.equal(posted?.headers['x-probe'], 'recorded');
    assert.equal(posted?.body, '{"owners": ["o"]}');
    assert.equal(posted?.route, 'notifications');
    assert.equal(posted?.status, 200);
    assert.ok(posted?.time instanceof Date);
    assert.equal(unknown?.route, null);
    assert.equal(unknown?.status, 404);
  });

  test('keeps the script name percent-encoded in the recorded path', async () => {
    await getTaskFile('a%2Bb%20c.py');

    assert.equal(standin.requests.at(-1)?.path.includes('/run-script/a%2Bb%20c.py/'), true);
  });
});

describe('failNext', () => {
  test('answers the given status for the given number of requests, then normally', async () => {
    standin.failNext('task-file', { status: 502, times: 2 });

    const statuses = [];
    for (let attempt = 0; attempt < 3; attempt++) statuses.push((await getTaskFile('t.py')).status);

    assert.deepEqual(statuses, [502, 502, 200]);
  });

  test('answers 200 with a body that is not JSON when asked for bad JSON', async () => {
    standin.failNext('running-limit', { badJson: true });

    const response = await fetch(`${standin.url}/api/v2.1/scripts-running-limit/?username=u`, {
      headers: { authorization: `Token ${secret}` },
    });

    assert.equal(response.status, 200);
    await assert.rejects(response.json(), SyntaxError);
  });

  test('closes the connection without an answer when asked to drop', async () => {
    standin.failNext('task-file', { drop: true });

    await assert.rejects(getTaskFile('t.py'), TypeError);
    assert.equal(standin.requests.at(-1)?.status, null);
  });

  test('does not count a download that failed', async () => {
    standin.setScript({ dtableUuid: baseUuid, scriptName: 'flaky.py', source: 'x' });
    const link = await issueLink('flaky.py');
    standin.failNext('script-file', { status: 500 });

    const failed = await fetch(link.script_url);
    const retried = await fetch(link.script_url);

    assert.equal(failed.status, 500);
    assert.equal(await retried.text(), 'x');
    assert.equal(standin.fetchCount('flaky.py'), 1);
  });

  test('holds the answer back when asked for a delay, then answers normally', async () => {
    standin.failNext('task-file', { delayMs: 300 });
    const requestsBefore = standin.requests.length;

    const pending = getTaskFile('t.py');
    while (standin.requests.length === requestsBefore) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const statusWhileHeld = standin.requests.at(-1)?.status;
    const response = await pending;

    assert.equal(statusWhileHeld, null);
    assert.equal(response.status, 200);
  });

  test('refuses an unknown route and a times that is not a positive integer', () => {
    assert.throws(
      () => standin.failNext('files' as never, { status: 500 }),
      /unknown stand-in route/,
    );
    assert.throws(() => standin.failNext('task-file', { status: 500, times: 0 }), /positive/);
  });
});

describe('options and lifecycle', () => {
  test('puts the given script url base into the links', async () => {
    const other = await startSeaTableStandin({
      secret,
      scriptUrlBase: 'https://files.example.invalid/',
      scripts: [{ dtableUuid: baseUuid, scriptName: 't.py', source: 'x' }],
    });
    try {
      const response = await fetch(
        `${other.url}/api/v2.1/dtable/${baseUuid}/run-script/t.py/task/file/`,
        { headers: { authorization: `Token ${secret}` } },
      );
      const link = (await response.json()) as { script_url: string };

      assert.match(link.script_url, /^https:\/\/files\.example\.invalid\/files\/[0-9a-f]+$/);
    } finally {
      await other.stop();
    }
  });

  test('makes up a secret when none is given and accepts only that one', async () => {
    const other = await startSeaTableStandin();
    try {
      const limitUrl = `${other.url}/api/v2.1/scripts-running-limit/?username=u`;
      const accepted = await fetch(limitUrl, {
        headers: { authorization: `Token ${other.secret}` },
      });
      const refused = await fetch(limitUrl, { headers: { authorization: 'Token ' } });

      assert.ok(other.secret.length >= 32);
      assert.equal(accepted.status, 200);
      assert.equal(refused.status, 403);
    } finally {
      await other.stop();
    }
  });

  test('stops listening on stop, also with a delayed answer pending', async () => {
    const other = await startSeaTableStandin({ secret });
    other.failNext('running-limit', { delayMs: 60_000 });
    const limitUrl = `${other.url}/api/v2.1/scripts-running-limit/?username=u`;
    const pending = fetch(limitUrl, { headers: { authorization: `Token ${secret}` } });
    while (other.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));

    await other.stop();

    await assert.rejects(pending, TypeError);
    await assert.rejects(fetch(limitUrl), TypeError);
  });
});

describe('storing a script of your own', () => {
  test('puts the body under the base and name, for the next task/file to hand out', async () => {
    const stored = await fetch(
      `${standin.url}/standin/scripts/${baseUuid}/${encodeURIComponent('mine 😀.py')}/`,
      { method: 'PUT', headers: { authorization: `Token ${secret}` }, body: 'print("mine")\n' },
    );
    const link = await issueLink('mine 😀.py');

    assert.equal(stored.status, 200);
    assert.equal(await (await fetch(link.script_url)).text(), 'print("mine")\n');
  });

  test('needs the shared secret', async () => {
    const refused = await fetch(`${standin.url}/standin/scripts/${baseUuid}/x.py/`, {
      method: 'PUT',
      body: 'print(1)',
    });
    assert.equal(refused.status, 403);
  });
});
