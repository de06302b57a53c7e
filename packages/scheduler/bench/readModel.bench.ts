/**
 * The read endpoints over a read model of one million runs: p50 and p95 of each, measured
 * through `inject` on the scheduler's app (token check included). Seeds its own database on
 * the shared MariaDB and drops it at the end. Not a test: it prints a table.
 *
 *   node packages/scheduler/bench/readModel.bench.ts [runs] [requests per endpoint]
 */
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { createTestDatabase, type TestDatabase } from '../../../test/support/mariadb.ts';
import { migrateDatabase, openDatabase } from '../src/db/orm.ts';
import { buildApp } from '../src/http/app.ts';
import type { RunAdmission } from '../src/submission/runAdmission.ts';

const runCount = Number(process.argv[2] ?? 1_000_000);
const requestsPerEndpoint = Number(process.argv[3] ?? 300);
const orgCount = 500;
const baseCount = 20_000;
const userCount = 5_000;
/** Every run is requested in the 30 days before this instant (the log's keeping time). */
const newest = new Date('2026-12-04T12:00:00Z');
const token = 'bench-token';

const write = (line: string) => process.stdout.write(`${line}\n`);

/** Deterministic spread: the same seed gives the same requests on every run of the bench. */
function pseudoRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

const baseUuidSql = (numberSql: string) =>
  `LOWER(CONCAT_WS('-', SUBSTRING(MD5(${numberSql}), 1, 8), SUBSTRING(MD5(${numberSql}), 9, 4), SUBSTRING(MD5(${numberSql}), 13, 4), SUBSTRING(MD5(${numberSql}), 17, 4), SUBSTRING(MD5(${numberSql}), 21, 12)))`;

function baseUuidOf(baseNumber: number, md5: (text: string) => string): string {
  const hex = md5(String(baseNumber));
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The secondary indexes of a table as `ADD INDEX` clauses, so they can be dropped for a bulk
 * load and built afterwards in one sorted pass (much faster than row by row).
 */
async function secondaryIndexes(
  db: TestDatabase,
  table: string,
): Promise<{ drop: string; add: string }> {
  const indexes = await db.query<{ name: string; columns: string; non_unique: number }>(
    `SELECT INDEX_NAME AS name, MIN(NON_UNIQUE) AS non_unique,
       GROUP_CONCAT(CONCAT(COLUMN_NAME, IF(SUB_PART IS NULL, '', CONCAT('(', SUB_PART, ')'))) ORDER BY SEQ_IN_INDEX) AS columns
     FROM information_schema.STATISTICS
     WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME <> 'PRIMARY' GROUP BY INDEX_NAME`,
    [db.name, table],
  );
  return {
    drop: indexes.map((index) => `DROP INDEX ${index.name}`).join(', '),
    add: indexes
      .map(
        (index) =>
          `ADD ${Number(index.non_unique) === 0 ? 'UNIQUE ' : ''}INDEX ${index.name} (${index.columns})`,
      )
      .join(', '),
  };
}

/**
 * One million runs in one statement from MariaDB's sequence engine. A run's base decides
 * its org (7 bases in 10 belong to one of 500 orgs, 28 bases each; the rest to none) and
 * its owner.
 */
async function seedRuns(db: TestDatabase): Promise<void> {
  const indexes = await secondaryIndexes(db, 'script_log');
  await db.query(`ALTER TABLE script_log ${indexes.drop}`);
  const baseNumber = `((seq * 7919) % ${baseCount})`;
  const requestedAt = `DATE_SUB('${newest.toISOString().slice(0, 19).replace('T', ' ')}', INTERVAL ((seq * 104729) % 2592000) SECOND)`;
  await db.query(`INSERT INTO script_log (id, dtable_uuid, owner, org_id, script_name, context_data,
      created_at, started_at, finished_at, success, return_code, output, operate_from, state)
    SELECT seq, ${baseUuidSql(baseNumber)},
      CONCAT('user', ${baseNumber} % ${userCount}, '@example.invalid'),
      IF(${baseNumber} % 10 < 7, FLOOR(${baseNumber} / 10) % ${orgCount} + 1, -1),
      CONCAT('script', seq % 5, '.py'),
      IF(seq % 4 = 0, '{"table":"Tasks","row":{"_id":"abc"}}', NULL),
      ${requestedAt},
      IF(seq > ${runCount - 100}, NULL, ${requestedAt} + INTERVAL 1 SECOND),
      IF(seq > ${runCount - 200}, NULL, ${requestedAt} + INTERVAL (1 + seq % 120) SECOND + INTERVAL (seq % 1000) * 1000 MICROSECOND),
      IF(seq > ${runCount - 200}, NULL, seq % 10 <> 0),
      IF(seq > ${runCount - 200}, NULL, IF(seq % 10 <> 0, 0, 1)),
      IF(seq > ${runCount - 200}, NULL, 'done\\n'),
      IF(seq % 3 = 0, 'automation-rule', 'manualy'),
      IF(seq > ${runCount - 100}, 'pending', IF(seq > ${runCount - 200}, 'running', 'finished'))
    FROM seq_1_to_${runCount}`);
  await db.query(`ALTER TABLE script_log ${indexes.add}`);
}

const statisticsTables = [
  ['user_run_script_statistics', 'username', 'owner', 'org_id, '],
  ['org_run_script_statistics', 'org_id', 'org_id', ''],
  ['dtable_run_script_statistics', 'dtable_uuid', 'dtable_uuid', ''],
] as const;

/**
 * The daily statistics rows the projector would have written for those runs (days in
 * Berlin winter time), the same again for the two months before them (statistics are
 * kept 90 days), and their monthly totals as Migration0004 fills them.
 */
async function seedStatistics(db: TestDatabase): Promise<void> {
  // The first local day with finished runs; the copies for earlier months come from there on.
  const firstSeededDay = new Date(newest.getTime() - 30 * 86_400_000).toISOString().slice(0, 10);
  const runDate = 'DATE(finished_at + INTERVAL 1 HOUR)';
  const runTime = 'SUM(TIMESTAMPDIFF(MICROSECOND, started_at, finished_at)) / 1e6';
  for (const [table, column, source, extra] of statisticsTables) {
    const orgColumn = extra === '' ? '' : 'MIN(org_id), ';
    const skipNoOrg = column === 'org_id' ? 'AND org_id <> -1' : '';
    await db.query(`INSERT INTO ${table} (${column}, ${extra}run_date, total_run_count, total_run_time, update_at)
      SELECT ${source}, ${orgColumn}${runDate}, COUNT(*), ${runTime}, NOW()
      FROM script_log WHERE finished_at IS NOT NULL ${skipNoOrg} GROUP BY ${source}, ${runDate}`);
    for (const shift of [32, 64]) {
      await db.query(`INSERT INTO ${table} (${column}, ${extra}run_date, total_run_count, total_run_time, update_at)
        SELECT ${column}, ${extra}run_date - INTERVAL ${shift} DAY, total_run_count, total_run_time, update_at
        FROM ${table} WHERE run_date >= '${firstSeededDay}'`);
    }
    await db.query(`INSERT INTO ${table}_monthly (month, ${column}, total_run_count, total_run_time)
      SELECT DATE_FORMAT(run_date, '%Y-%m-01'), ${column}, SUM(total_run_count), SUM(total_run_time)
      FROM ${table} GROUP BY DATE_FORMAT(run_date, '%Y-%m-01'), ${column}`);
  }
  await db.query(
    'ANALYZE TABLE script_log, user_run_script_statistics, org_run_script_statistics, dtable_run_script_statistics',
  );
}

interface Endpoint {
  name: string;
  url: (random: () => number) => string;
}

function endpoints(md5: (text: string) => string): Endpoint[] {
  const pick = (random: () => number, count: number) => Math.floor(random() * count);
  const orgWithRuns = (random: () => number) => pick(random, orgCount) + 1;
  /** A base of org n: its number b has b % 10 < 7 and floor(b / 10) % 500 = n - 1. */
  const baseOfOrg = (org: number, random: () => number) =>
    baseUuidOf(
      10 * (org - 1 + orgCount * pick(random, baseCount / 10 / orgCount)) + pick(random, 7),
      md5,
    );
  const base = (random: () => number) => baseUuidOf(pick(random, baseCount), md5);
  /** The log of the one script each base runs: seq % 5, which is 4 × base number % 5. */
  const scriptLogs = (random: () => number, form: (uuid: string) => string, query: string) => {
    const baseNumber = pick(random, baseCount);
    return `/tasks/${form(baseUuidOf(baseNumber, md5))}/script${(baseNumber * 4) % 5}.py/logs/${query}`;
  };
  const day = (random: () => number) =>
    new Date(newest.getTime() - pick(random, 25) * 86_400_000).toISOString().slice(0, 10);
  return [
    { name: 'task logs, page 1', url: (r) => scriptLogs(r, (uuid) => uuid, '') },
    {
      name: 'task logs, page 2 of 5, 32-char uuid',
      url: (r) => scriptLogs(r, (uuid) => uuid.replaceAll('-', ''), '?page=2&per_page=5'),
    },
    {
      name: 'task log detail',
      url: (r) => {
        const id = pick(r, runCount - 1000) + 1;
        return `/tasks/${baseUuidOf((id * 7919) % baseCount, md5)}/script${id % 5}.py/logs/${id}/`;
      },
    },
    {
      name: 'running count, user',
      url: (r) =>
        `/scripts-running-count/?username=user${pick(r, userCount)}@example.invalid&month=2026-11`,
    },
    {
      name: 'running count, org',
      url: (r) => `/scripts-running-count/?org_id=${orgWithRuns(r)}&month=2026-11`,
    },
    {
      name: 'monthly by-user, -total_run_count',
      url: (r) =>
        `/admin/statistics/scripts-running/by-user/?month=2026-11&order_by=-total_run_count&page=${pick(r, 20) + 1}`,
    },
    {
      name: 'monthly by-org, total_run_time desc',
      url: (r) =>
        `/admin/statistics/scripts-running/by-org/?month=2026-11&order_by=total_run_time&direction=desc&page=${pick(r, 3) + 1}`,
    },
    {
      name: 'monthly by-base, no order',
      url: (r) =>
        `/admin/statistics/scripts-running/by-base/?month=2026-11&page=${pick(r, 50) + 1}`,
    },
    { name: 'admin runs, no filter', url: (r) => `/admin/runs/?page=${pick(r, 10) + 1}` },
    { name: 'admin runs, org', url: (r) => `/admin/runs/?org_id=${orgWithRuns(r)}` },
    { name: 'admin runs, base', url: (r) => `/admin/runs/?base_uuid=${base(r)}` },
    {
      name: 'admin runs, org + base',
      url: (r) => {
        const org = orgWithRuns(r);
        return `/admin/runs/?org_id=${org}&base_uuid=${baseOfOrg(org, r)}`;
      },
    },
    {
      name: 'admin runs, org + one day',
      url: (r) => {
        const date = day(r);
        return `/admin/runs/?org_id=${orgWithRuns(r)}&start=${date}&end=${date}`;
      },
    },
    {
      name: 'admin runs, one day, page 5',
      url: (r) => {
        const date = day(r);
        return `/admin/runs/?start=${date}&end=${date}&page=5`;
      },
    },
    {
      name: 'statistics by-base, org, 30 days',
      url: (r) =>
        `/admin/statistics/by-base/?org_id=${orgWithRuns(r)}&start=2026-11-04&end=2026-12-04`,
    },
    {
      name: 'statistics by-day, org',
      url: (r) => `/admin/statistics/by-day/?org_id=${orgWithRuns(r)}`,
    },
    {
      name: 'statistics by-day, org + base',
      url: (r) => {
        const org = orgWithRuns(r);
        return `/admin/statistics/by-day/?org_id=${org}&base_uuid=${baseOfOrg(org, r)}`;
      },
    },
  ];
}

function percentile(sorted: number[], fraction: number): number {
  const index = Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1);
  return sorted[Math.max(0, index)] ?? Number.NaN;
}

async function main(): Promise<void> {
  const { createHash } = await import('node:crypto');
  const md5 = (text: string) => createHash('md5').update(text).digest('hex');

  const db = await createTestDatabase('bench_read_model');
  const orm = await openDatabase({ ...db, name: db.name, poolSize: 4 });
  try {
    await migrateDatabase(orm);
    let started = performance.now();
    await seedRuns(db);
    write(
      `seeded ${runCount.toLocaleString('en')} runs in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    started = performance.now();
    await seedStatistics(db);
    const [rows] = await db.query<{ users: number; orgs: number; bases: number }>(
      `SELECT (SELECT COUNT(*) FROM user_run_script_statistics) AS users,
        (SELECT COUNT(*) FROM org_run_script_statistics) AS orgs,
        (SELECT COUNT(*) FROM dtable_run_script_statistics) AS bases`,
    );
    write(
      `seeded statistics (${rows?.users} user, ${rows?.orgs} org, ${rows?.bases} base rows) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );

    const app = await buildApp({
      authToken: token,
      timeZone: 'Europe/Berlin',
      maxBodyBytes: 1_000_000,
      logger: pino({ level: 'silent' }),
      orm,
      admission: {} as RunAdmission,
    });
    await app.ready();

    write('');
    write(
      `${'endpoint'.padEnd(40)} ${'n'.padStart(5)} ${'p50 ms'.padStart(8)} ${'p95 ms'.padStart(8)} ${'max ms'.padStart(8)}  rows`,
    );
    let worstP95 = 0;
    for (const endpoint of endpoints(md5)) {
      const random = pseudoRandom(endpoint.name.length * 7_919);
      const timings: number[] = [];
      let answered = 0;
      for (let warmUp = 0; warmUp < 5; warmUp++) {
        await app.inject({
          method: 'GET',
          url: endpoint.url(random),
          headers: { authorization: `Token ${token}` },
        });
      }
      for (let request = 0; request < requestsPerEndpoint; request++) {
        const url = endpoint.url(random);
        const before = performance.now();
        const response = await app.inject({
          method: 'GET',
          url,
          headers: { authorization: `Token ${token}` },
        });
        timings.push(performance.now() - before);
        if (response.statusCode !== 200)
          throw new Error(`${url} answered ${response.statusCode}: ${response.body}`);
        answered += listLength(response.json());
      }
      timings.sort((left, right) => left - right);
      const p95 = percentile(timings, 0.95);
      worstP95 = Math.max(worstP95, p95);
      write(
        `${endpoint.name.padEnd(40)} ${String(timings.length).padStart(5)} ${percentile(timings, 0.5).toFixed(1).padStart(8)} ${p95.toFixed(1).padStart(8)} ${(timings.at(-1) ?? 0).toFixed(1).padStart(8)}  ${(answered / timings.length).toFixed(1)}`,
      );
    }
    write('');
    write(`worst p95: ${worstP95.toFixed(1)} ms (target < 50 ms)`);
    await app.close();
  } finally {
    await orm.close();
    await db.drop();
  }
}

/** How many runs or rows an answer holds, to show that the requests found something. */
function listLength(body: Record<string, unknown>): number {
  for (const key of ['task_logs', 'results', 'runs']) {
    if (Array.isArray(body[key])) return body[key].length;
  }
  return 1;
}

await main();
