import assert from 'node:assert/strict';
import { constants } from 'node:fs';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { type Pipeline, type RunView, startPipeline } from '../support/pipeline.ts';

// The admin dashboard (issue #8) in Debian's headless Chromium, driven by playwright-core,
// over real runs through the whole pipeline (real NATS, MariaDB and Docker).

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const screenshotPath = resolve('test-output/dashboard.png');
const liveScreenshotPath = resolve('test-output/dashboard-live.png');
const baseA = '6a1f3c2e-9b7d-4e21-8f0a-0c5d2b7e9a11';
const baseB = 'b0b0b0b0-1111-4222-8333-444455556666';
const hostileName = '<img src=x onerror=window.__pwned=1>.py';
const hostileOutput = '<script>window.__pwned=2</script><img src=x onerror="window.__pwned=3">';

let pipeline: Pipeline;
let userDataDir: string;
let browser: BrowserContext;
let page: Page;
const finished: RunView[] = [];
const requestedUrls: string[] = [];
const pageProblems: string[] = [];

async function runToEnd(script: string, body: Record<string, unknown>, scriptName?: string) {
  const submitted = await pipeline.submit({ script, body, scriptName });
  assert.equal(submitted.status, 200, submitted.text);
  const query = `dtable_uuid=${body.dtable_uuid}&script_name=${encodeURIComponent(submitted.scriptName)}`;
  for (let attempt = 0; attempt < 300; attempt++) {
    const response = await pipeline.request(`/run-script/${submitted.id}/?${query}`);
    const run = ((await response.json()) as { script: RunView }).script;
    if (run.state === 'finished') return run;
    await new Promise((done) => setTimeout(done, 200));
  }
  throw new Error(`run ${submitted.id} did not finish`);
}

function todayIn(timeZone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone }).format(new Date());
}

before(async () => {
  await access(chromiumPath, constants.X_OK).catch(() => {
    throw new Error(`no Chromium at ${chromiumPath}: install Debian's chromium package`);
  });
  pipeline = await startPipeline({ label: 'dashboard', env: { PYTHON_PROCESS_TIMEOUT: '30' } });
  const orgSeven = { dtable_uuid: baseA, org_id: 7, owner: 'ada@example.invalid' };
  const orgEight = { dtable_uuid: baseB, org_id: 8, owner: 'bob@example.invalid' };
  finished.push(await runToEnd('print("Hello from the pipeline")\n', orgSeven));
  finished.push(await runToEnd(`print(${JSON.stringify(hostileOutput)})\n`, orgSeven, hostileName));
  finished.push(await runToEnd('print("about to fail")\nraise SystemExit(2)\n', orgEight));
  finished.push(await runToEnd('import time\ntime.sleep(1.2)\nprint("slow one")\n', orgEight));
  finished.push(await runToEnd('print("third of org 8")\n', orgEight));

  userDataDir = await mkdtemp(join(tmpdir(), 'pipeline-dashboard-chromium-'));
  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1440, height: 1000 },
  });
  page = browser.pages()[0] ?? (await browser.newPage());
  page.on('request', (request) => requestedUrls.push(request.url()));
  page.on('pageerror', (error) => pageProblems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // Docker adds and removes network interfaces on this host as the runs' containers come
    // and go; Chromium then aborts its requests in flight with ERR_NETWORK_CHANGED. The page
    // shows "not updated" and its next refresh answers, so that notice is not a page problem.
    if (message.type() === 'error' && !message.text().includes('net::ERR_NETWORK_CHANGED')) {
      pageProblems.push(`console: ${message.text()}`);
    }
  });
});

after(async () => {
  await browser?.close();
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
  await pipeline?.stop();
});

describe('the admin dashboard in Chromium', () => {
  test('serves its page to anyone, but its data only with the token', async () => {
    const shell = await fetch(`${pipeline.url}/admin/dashboard/`);
    assert.equal(shell.status, 200);
    assert.match(shell.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.match(await shell.text(), /<form id="login-form"/);

    const refused = await pipeline.request('/admin/dashboard/statistics/', { auth: false });
    assert.equal(refused.status, 403);
    await refused.arrayBuffer();
    for (const days of ['0', '91', 'x']) {
      const bad = await pipeline.request(`/admin/dashboard/statistics/?days=${days}`);
      assert.equal(bad.status, 400, days);
      assert.match(((await bad.json()) as { error: string }).error, /days/);
    }
  });

  test('refuses a wrong token and signs in with the right one, which never enters a URL', async () => {
    await page.goto(`${pipeline.url}/admin/dashboard/`);
    await page.locator('#token').fill('not-the-token');
    await page.locator('#login-form button[type=submit]').click();
    await page.locator('#login-error', { hasText: 'That token was refused.' }).waitFor();
    assert.equal(await page.locator('#dashboard').isHidden(), true);
    // The browser reports the refused call (403) on its console: expected here, nowhere else.
    assert.deepEqual(pageProblems, [
      'console: Failed to load resource: the server responded with a status of 403 (Forbidden)',
    ]);
    pageProblems.length = 0;

    await page.locator('#token').fill(pipeline.token);
    await page.locator('#login-form button[type=submit]').click();
    await page.locator('#dashboard').waitFor();

    assert.equal(
      await page.evaluate(() => sessionStorage.getItem('pipeline.adminToken')),
      pipeline.token,
    );
    assert.ok(requestedUrls.length > 3);
    for (const url of requestedUrls) {
      assert.ok(url.startsWith(pipeline.url), `only the scheduler is asked: ${url}`);
      assert.ok(!url.includes(pipeline.token), `the token is in a URL: ${url}`);
    }
  });

  test('lists the recent runs with their state, and hostile names only as text', async () => {
    for (const run of finished) {
      const row = page.locator(`#runs tbody tr[data-run-id="${run.id}"]`);
      await row.waitFor();
      const expected = run.success ? 'succeeded' : 'failed';
      assert.equal(
        await row.locator('.state').getAttribute('data-state'),
        expected,
        `run ${run.id}`,
      );
      assert.equal(await row.locator('td').nth(1).textContent(), run.script_name);
    }
    const failed = finished.filter((run) => run.success === false);
    assert.equal(failed.length, 1);
    assert.equal(await page.locator('#runs img').count(), 0);
    assert.equal(
      await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned),
      undefined,
    );
  });

  test("shows one run's output and its event timeline from the log", async () => {
    const hostile = finished.find((run) => run.script_name === hostileName);
    assert.ok(hostile);
    await page.locator(`#runs tbody tr[data-run-id="${hostile.id}"]`).click();
    await page.locator('#run-title', { hasText: `Run ${hostile.id}` }).waitFor();
    await page.locator('#run-events tbody tr[data-event-type="RunFinished"]').waitFor();

    assert.equal(await page.locator('#run-output').textContent(), `${hostileOutput}\n`);
    assert.equal(await page.locator('#run-output img, #run-output script').count(), 0);
    const types = await page
      .locator('#run-events tbody tr')
      .evaluateAll((rows) => rows.map((row) => row.getAttribute('data-event-type')));
    assert.deepEqual(types, ['RunRequested', 'RunClaimed', 'RunStarted', 'RunFinished']);
    const finishedRow = page.locator('#run-events tbody tr[data-event-type="RunFinished"]');
    assert.match((await finishedRow.textContent()) ?? '', /succeeded, return code 0/);
    assert.equal(
      await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned),
      undefined,
    );
  });

  test('shows the fleet: the starter with its slots', async () => {
    const row = page.locator(`#fleet tbody tr[data-starter-id="${pipeline.starterIds[0]}"]`);
    await row.waitFor();
    assert.match((await row.textContent()) ?? '', /\d \/ 4/);
    assert.match((await page.locator('#tile-starters').textContent()) ?? '', /^1starters$/);
  });

  test('charts runs and run time by day, by org and by base with the statistics values', async () => {
    const today = todayIn('Europe/Berlin');
    const response = await pipeline.request('/admin/dashboard/statistics/?days=14');
    const statistics = (await response.json()) as {
      by_day: Array<{ date: string; runs: number; run_time: number }>;
      by_org: Array<{ org_id: number; runs: number; run_time: number }>;
      by_base: Array<{ base_uuid: string; runs: number; run_time: number }>;
    };
    assert.equal(statistics.by_day.length, 14);
    assert.equal(statistics.by_day.at(-1)?.date, today);
    assert.equal(statistics.by_day.at(-1)?.runs, 5);
    assert.deepEqual(
      statistics.by_org.map((org) => [org.org_id, org.runs]),
      [
        [8, 3],
        [7, 2],
      ],
    );
    assert.deepEqual(
      statistics.by_base.map((base) => [base.base_uuid, base.runs]),
      [
        [baseB, 3],
        [baseA, 2],
      ],
    );
    const orgEightTime = statistics.by_org[0]?.run_time ?? 0;
    assert.ok(orgEightTime >= 1.2, `org 8 ran a script that sleeps 1.2 s: ${orgEightTime}`);

    const dayBar = page.locator(`#chart-runs-by-day rect[data-label="${today}"]`);
    assert.equal(await dayBar.getAttribute('data-value'), '5');
    assert.equal(await page.locator('#chart-runs-by-day rect.bar').count(), 14);
    const timeBar = page.locator(`#chart-time-by-day rect[data-label="${today}"]`);
    assert.equal(
      Number(await timeBar.getAttribute('data-value')),
      statistics.by_day.at(-1)?.run_time,
    );
    assert.equal(
      await page.locator('#chart-by-org rect[data-label="8"]').first().getAttribute('data-value'),
      '3',
    );
    assert.equal(
      await page.locator('#chart-by-org rect[data-label="7"]').first().getAttribute('data-value'),
      '2',
    );
    assert.equal(
      await page
        .locator(`#chart-by-base rect[data-label="${baseB}"]`)
        .first()
        .getAttribute('data-value'),
      '3',
    );
    assert.match((await page.locator('#chart-by-org').textContent()) ?? '', /3 runs ·/);
    assert.match((await page.locator('#tile-runs').textContent()) ?? '', /^5runs in 14 days$/);
  });

  test('shows the output of a running run as it is printed, then its result', async () => {
    const submitted = await pipeline.submit({
      script:
        'import time\nprint("first piece", flush=True)\ntime.sleep(6)\nprint("second piece")\n',
      body: { dtable_uuid: baseA, org_id: 7, owner: 'ada@example.invalid' },
    });
    assert.equal(submitted.status, 200, submitted.text);
    await page.goto(`${pipeline.url}/admin/dashboard/#run=${submitted.id}`);
    const output = page.locator('#run-output');
    await output.filter({ hasText: 'first piece' }).waitFor({ timeout: 20_000 });

    // The facts and the timeline follow the run while it runs.
    await page.locator('#run-facts .state[data-state="running"]').waitFor({ timeout: 5000 });
    await page.locator('#run-events tbody tr[data-event-type="RunStarted"]').waitFor();
    assert.equal(await page.locator('#run-live').isVisible(), true);
    assert.doesNotMatch((await output.textContent()) ?? '', /second piece/);
    await page.screenshot({ path: liveScreenshotPath, fullPage: true });

    await page.locator('#run-facts .state[data-state="succeeded"]').waitFor({ timeout: 20_000 });
    assert.equal(await output.textContent(), 'first piece\nsecond piece\n');
    assert.equal(await page.locator('#run-live').isHidden(), true);
    await page.locator('#run-events tbody tr[data-event-type="RunFinished"]').waitFor();
    await page
      .locator(`#runs tbody tr[data-run-id="${submitted.id}"] .state[data-state="succeeded"]`)
      .waitFor();

    await page.screenshot({ path: screenshotPath, fullPage: true });
    console.log(`dashboard screenshot: ${screenshotPath} (while running: ${liveScreenshotPath})`);
    assert.deepEqual(pageProblems, []);
  });
});
