import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { imageLabels } from '../../packages/runner/src/containerOptions.ts';

/**
 * Release automation and images (issue #8), read as data: CI lints and tests on every push;
 * a tag `testing-<component>-v<version>` or `release-<component>-v<version>` builds that
 * component's image with the tag's version; each image carries its version; the runner
 * image chooses the SeaTable library's version in one place, which its label shows.
 */
const run = promisify(execFile);
const repoRoot = join(import.meta.dirname, '..', '..');
const read = (path: string) => readFileSync(join(repoRoot, path), 'utf8');

interface WorkflowStep {
  name?: string;
  id?: string;
  uses?: string;
  run?: string;
  with?: Record<string, string | boolean>;
}
interface Workflow {
  on: { push?: { tags?: string[]; branches?: string[] } | null; pull_request?: unknown };
  jobs: Record<string, { steps: WorkflowStep[] }>;
}

const ci = parse(read('.github/workflows/ci.yml')) as Workflow;
const release = parse(read('.github/workflows/release.yml')) as Workflow;
const releaseSteps = Object.values(release.jobs).flatMap((job) => job.steps);
const tagStep = releaseSteps.find((step) => step.id === 'tag');
const buildStep = releaseSteps.find((step) => step.uses?.startsWith('docker/build-push-action'));

const workDirs: string[] = [];
after(async () => {
  for (const dir of workDirs) await rm(dir, { recursive: true, force: true });
});

/** Runs the workflow's tag step as GitHub would for `tag`, and returns its outputs. */
async function readTag(tag: string): Promise<Record<string, string>> {
  assert.ok(tagStep?.run, 'the release workflow has a step with id "tag"');
  const dir = await mkdtemp(join(tmpdir(), 'pipeline-release-'));
  workDirs.push(dir);
  const outputFile = join(dir, 'output');
  // GitHub replaces ${{ ... }} before the shell runs; here the namespace's default stands in.
  const script = tagStep.run.replace(/\$\{\{\s*vars\.IMAGE_NAMESPACE[^}]*\}\}/g, 'seatable');
  assert.doesNotMatch(script, /\$\{\{/, 'no other GitHub expression in the tag step');
  await run('bash', ['-euo', 'pipefail', '-c', script], {
    env: {
      PATH: process.env.PATH ?? '',
      GITHUB_REF_NAME: tag,
      GITHUB_SHA: '0123456789abcdef0123456789abcdef01234567',
      GITHUB_OUTPUT: outputFile,
    },
  });
  const lines = (await readFile(outputFile, 'utf8')).trim().split('\n');
  return Object.fromEntries(lines.map((line) => line.split(/=(.*)/s).slice(0, 2)));
}

describe('the CI workflow', () => {
  test('lints and runs every test on every push and pull request', () => {
    assert.ok('push' in ci.on && !ci.on.push?.tags && !ci.on.push?.branches, 'every push');
    assert.ok('pull_request' in ci.on);
    const runs = Object.values(ci.jobs).flatMap((job) => job.steps.map((step) => step.run ?? ''));
    assert.ok(
      runs.some((command) => /\blint(:all)?\b/.test(command)),
      'a lint step',
    );
    assert.ok(
      runs.some((command) => /\.ci\/run\b/.test(command)),
      'the test step runs .ci/run',
    );
  });
});

describe('the release workflow', () => {
  test('runs on testing-<component>-v* and release-<component>-v* tags only', () => {
    assert.deepEqual(release.on.push?.tags?.sort(), ['release-*-v*', 'testing-*-v*']);
    assert.equal(release.on.push?.branches, undefined);
    assert.equal(release.on.pull_request, undefined);
  });

  for (const component of ['scheduler', 'starter', 'runner']) {
    test(`builds the ${component} image with the version of its tag`, async () => {
      const released = await readTag(`release-${component}-v1.4.2`);
      assert.equal(released.component, component);
      assert.equal(released.version, '1.4.2');
      const image = `seatable/seatable-pipeline-${component}`;
      assert.equal(released.tags, `${image}:1.4.2,${image}:latest`);
      const dockerfile = released.dockerfile ?? '';
      assert.ok(existsSync(join(repoRoot, dockerfile)), `${dockerfile} exists`);
      assert.ok(existsSync(join(repoRoot, released.context ?? '', 'package.json')));

      const testing = await readTag(`testing-${component}-v1.5.0-rc.1`);
      assert.equal(testing.version, '1.5.0-rc.1');
      assert.equal(testing.tags, `${image}:testing-1.5.0-rc.1,${image}:testing-0123456`);
      assert.equal(testing.dockerfile, dockerfile);
    });
  }

  test('refuses a tag that names no component or no version', async () => {
    for (const tag of [
      'release-dashboard-v1.0.0',
      'release-scheduler-1.0.0',
      'testing-starter-v',
    ]) {
      await assert.rejects(readTag(tag), /is not testing\|release-/, tag);
    }
  });

  test('hands the version to the Dockerfile under the build argument each one reads', () => {
    assert.ok(buildStep?.with, 'a docker/build-push-action step');
    const output = (name: string) => `\${{ steps.tag.outputs.${name} }}`;
    assert.equal(buildStep.with.context, output('context'));
    assert.equal(buildStep.with.file, output('dockerfile'));
    assert.equal(buildStep.with.tags, output('tags'));
    const args = String(buildStep.with['build-args']);
    for (const [dockerfile, argument] of [
      ['deploy/scheduler.Dockerfile', 'VERSION'],
      ['deploy/starter.Dockerfile', 'VERSION'],
      ['packages/runner/Dockerfile', 'RUNNER_VERSION'],
    ] as const) {
      assert.match(
        args,
        new RegExp(`^${argument}=\\$\\{\\{ steps\\.tag\\.outputs\\.version \\}\\}$`, 'm'),
      );
      assert.match(
        read(dockerfile),
        new RegExp(`^ARG ${argument}=`, 'm'),
        `${dockerfile} reads ${argument}`,
      );
    }
  });
});

describe('the images', () => {
  for (const component of ['scheduler', 'starter']) {
    test(`the ${component} image is multi-stage, unprivileged, checked and carries its version`, () => {
      const text = read(`deploy/${component}.Dockerfile`);
      const stages = text.split(/^FROM /m).slice(1);
      assert.ok(stages.length >= 2, 'dependencies are installed in a stage of their own');
      const last = stages.at(-1) ?? '';
      assert.match(last, /^USER node$/m);
      assert.match(last, /org\.opencontainers\.image\.version="\$\{VERSION\}"/);
      assert.match(last, /PIPELINE_VERSION=\$\{VERSION\}/, 'the version at run time');
      const probe = /^\s*CMD \["node", "([^"]+healthProbe\.ts)"\]/m.exec(last)?.[1];
      assert.ok(probe, 'the health check runs the probe');
      assert.ok(existsSync(join(repoRoot, probe)), `${probe} exists`);
      assert.match(
        last,
        new RegExp(`^COPY packages/${component}/src `, 'm'),
        'the probe is in the image',
      );
    });
  }

  test('the runner image chooses the SeaTable library version in one place and labels it', async () => {
    const dockerfile = read('packages/runner/Dockerfile');
    const pins = [...dockerfile.matchAll(/^ARG SEATABLE_API_VERSION=(\S+)$/gm)];
    assert.equal(pins.length, 1, 'one ARG SEATABLE_API_VERSION');
    assert.match(pins[0]?.[1] ?? '', /^\d+\.\d+\.\d+$/, 'an exact version');
    assert.match(
      dockerfile,
      /"seatable-api==\$\{SEATABLE_API_VERSION\}"/,
      'pip installs that version',
    );
    assert.match(
      dockerfile,
      new RegExp(
        `${imageLabels.seatableApi.replaceAll('.', '\\.')}="\\$\\{SEATABLE_API_VERSION\\}"`,
      ),
    );
    assert.match(
      dockerfile,
      new RegExp(`${imageLabels.runnerVersion.replaceAll('.', '\\.')}="\\$\\{RUNNER_VERSION\\}"`),
    );
    assert.match(dockerfile, /org\.opencontainers\.image\.version="\$\{RUNNER_VERSION\}"/);
    assert.match(dockerfile, /^USER \$\{RUNNER_UID\}:\$\{RUNNER_GID\}$/m);

    // No second place: no other tracked file pins the library (requirements.txt included).
    const { stdout } = await run('git', ['ls-files'], { cwd: repoRoot });
    const pinned = stdout
      .split('\n')
      .filter((file) => file !== '' && file !== 'packages/runner/Dockerfile')
      .filter((file) => /\.(txt|toml|cfg|py|sh|ya?ml|json|Dockerfile\w*)$|Dockerfile/.test(file))
      .filter((file) => existsSync(join(repoRoot, file)))
      .filter((file) => /seatable[-_]api\s*(==|>=|<=|~=|===)\s*\d/i.test(read(file)));
    assert.deepEqual(pinned, []);
    assert.doesNotMatch(read('packages/runner/requirements.txt'), /^\s*seatable[-_]api/im);
  });
});
