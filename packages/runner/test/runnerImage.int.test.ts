import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  HANDOVER_ERROR_EXIT_CODE,
  imageLabels,
  OFFLINE_RUNNER_IMAGE,
  runnerNetworkCreateOptions,
  SEATABLE_API_ABSENT,
} from '../src/index.ts';
import { fixture, SandboxHarness, testProfile } from './sandboxHarness.ts';

const harness = new SandboxHarness();
const engineAnswers = await harness.engineAnswers();
// A laptop without Docker may skip; in CI a skip would hide a broken sandbox, so it fails.
const skip = !engineAnswers && process.env.CI !== 'true' ? 'no Docker engine answers' : false;

const seatableEnv = {
  dtable_web_url: 'https://seatable.example.invalid',
  api_token: 'temp-token-3f9a1c',
  is_cloud: '1',
  TZ: 'Europe/Berlin',
};
const tmpfsBytes = 100 * 1024 * 1024;

describe('the offline runner image', { skip }, () => {
  before(async () => {
    assert.ok(engineAnswers, 'the Docker engine at /var/run/docker.sock does not answer');
    await harness.ensureOfflineImage();
  });

  after(async () => {
    await harness.removeContainers();
  });

  test('prints Hello World and exits 0', async () => {
    const run = await harness.run(testProfile(), { env: seatableEnv, script: fixture('hello.py') });

    assert.equal(run.stdout, 'Hello World\n');
    assert.equal(run.stderr, '');
    assert.equal(run.exitCode, 0);
  });

  test("returns the script's exit code with both streams in the order they were written", async () => {
    const run = await harness.run(testProfile(), {
      env: seatableEnv,
      script: fixture('exit_code.py'),
    });

    assert.equal(run.exitCode, 3);
    assert.equal(run.stdout, 'x\ngiving up\n');
    assert.equal(run.stderr, '');
  });

  test('an uncaught exception exits 1 with the traceback of the script itself', async () => {
    const run = await harness.run(testProfile(), {
      env: seatableEnv,
      script: fixture('uncaught_exception.py'),
    });

    assert.equal(run.exitCode, 1);
    assert.match(run.stdout, /^out\nTraceback \(most recent call last\):\n/);
    assert.match(
      run.stdout,
      /File "\/run\/pipeline\/run-[0-9a-f]+\/index\.py", line 2, in <module>\n/,
    );
    assert.match(run.stdout, /\nValueError: boom\n$/);
    assert.doesNotMatch(run.stdout, /entrypoint/);
  });

  test('the context reaches standard input byte for byte, emoji and all', async () => {
    const context = JSON.stringify({
      row: { Name: 'Zoë 😀 \u2028 "q"', n: 1 },
      big: 'x'.repeat(200_000),
    });
    const bytes = Buffer.from(context, 'utf8');
    const run = await harness.run(testProfile(), {
      env: seatableEnv,
      script: fixture('context_digest.py'),
      context,
    });

    const digest = createHash('sha256').update(bytes).digest('hex');
    assert.equal(run.stderr, '');
    assert.equal(run.stdout, `${bytes.length} ${digest}\nTrue 1 200000\n`);
    assert.equal(run.exitCode, 0);
  });

  test('a script that never reads its 200 KB context still exits normally', async () => {
    const run = await harness.run(testProfile(), {
      env: seatableEnv,
      script: fixture('ignores_stdin.py'),
      context: JSON.stringify({ big: 'x'.repeat(200_000) }),
    });

    assert.equal(run.stdout, 'ignored\n');
    assert.equal(run.exitCode, 0);
  });

  test('without a context standard input is empty and ends at once', async () => {
    const run = await harness.run(testProfile(), {
      env: seatableEnv,
      script: fixture('reads_stdin.py'),
    });

    assert.equal(run.stdout, "''\n");
    assert.equal(run.exitCode, 0);
  });

  test('only a bounded /tmp is writable and pandas imports under the read-only root', async () => {
    const run = await harness.run(testProfile(), {
      env: seatableEnv,
      script: fixture('filesystem.py'),
    });

    assert.equal(run.stderr, '');
    assert.equal(run.exitCode, 0);
    const result = JSON.parse(run.stdout);
    for (const path of [
      '/x.txt',
      '/etc/x.txt',
      '/usr/x.txt',
      '/opt/pipeline/x.txt',
      `${result.home}/x.txt`,
    ]) {
      assert.ok(
        [30, 13].includes(result[path]),
        `${path} gave ${result[path]}, not EROFS or EACCES`,
      );
    }
    assert.equal(result.home, '/home/seatable');
    assert.equal(result.tmp_ok, true);
    assert.equal(result.fill_errno, 28);
    assert.ok(result.filled_bytes <= tmpfsBytes, `filled ${result.filled_bytes} bytes`);
    assert.ok(
      result.filled_bytes >= tmpfsBytes - 2 * 1024 * 1024,
      `filled ${result.filled_bytes} bytes`,
    );
    assert.equal(result.pandas, true);
  });

  test('a later run sees nothing of an earlier one in /tmp', async () => {
    await harness.run(testProfile(), { env: seatableEnv, script: fixture('filesystem.py') });
    const run = await harness.run(testProfile(), {
      env: seatableEnv,
      script: 'import os; print(sorted(os.listdir("/tmp")))',
    });

    // The hand-over puts the script on its own tmpfs, so /tmp starts empty (BC-07).
    assert.equal(run.stdout, '[]\n');
  });

  test('runs as the unprivileged image user with no capabilities and no new privileges', async () => {
    const run = await harness.run(testProfile(), {
      env: seatableEnv,
      script: fixture('identity.py'),
    });
    const identity = JSON.parse(run.stdout);

    assert.equal(identity.uid, 1000);
    assert.equal(identity.euid, 1000);
    assert.equal(identity.gid, 1000);
    // The entrypoint is PID 1 and forwards signals; the script runs as its child.
    assert.notEqual(identity.pid, 1, 'the script is not PID 1, the entrypoint is');
    assert.equal(identity.cap_eff, '0000000000000000');
    assert.equal(identity.cap_bnd, '0000000000000000');
    assert.equal(identity.no_new_privs, '1');
  });

  test('the script gets the header environment while docker inspect shows no secret', async () => {
    const run = await harness.run(testProfile(), {
      env: seatableEnv,
      script: fixture('identity.py'),
    });
    const { env, tz_names: tzNames, cwd } = JSON.parse(run.stdout);

    assert.equal(env.dtable_web_url, seatableEnv.dtable_web_url);
    assert.equal(env.api_token, seatableEnv.api_token);
    assert.equal(env.is_cloud, '1');
    assert.equal(env.TZ, 'Europe/Berlin');
    assert.deepEqual(tzNames, ['CET', 'CEST']);
    assert.equal(env.HOME, `${cwd}/home`);
    assert.equal(env.PYTHONDONTWRITEBYTECODE, '1');

    const configEnv = run.inspect.Config.Env ?? [];
    assert.ok(
      !configEnv.some((entry) => entry.includes(seatableEnv.api_token)),
      configEnv.join(' '),
    );
    assert.ok(
      !configEnv.some((entry) => /^(api_token|dtable_web_url|TZ)=/.test(entry)),
      configEnv.join(' '),
    );
  });

  test('python writes no __pycache__, even next to the script in the writable /tmp', async () => {
    const run = await harness.run(testProfile(), {
      env: seatableEnv,
      script: fixture('local_import.py'),
    });

    assert.equal(run.stdout, '42 []\n');
    assert.equal(run.exitCode, 0);
  });

  test('the pids limit stops a script from starting more than P threads', async () => {
    const run = await harness.run(testProfile({ PYTHON_RUNNER_PIDS_LIMIT: '32' }), {
      env: seatableEnv,
      script: fixture('many_threads.py'),
    });

    const match = /^refused after (\d+) RuntimeError\n$/.exec(run.stdout);
    assert.ok(match, run.stdout);
    assert.ok(Number(match[1]) < 32, run.stdout);
  });

  test('a script over the memory limit is killed by the kernel: exit 137 and OOMKilled', async () => {
    const run = await harness.run(testProfile({ PYTHON_RUNNER_CONTAINER_MEMORY: '64m' }), {
      env: seatableEnv,
      script: fixture('memory_hog.py'),
    });

    assert.equal(run.stdout, 'allocating\n');
    assert.equal(run.exitCode, 137);
    assert.equal(run.inspect.State.OOMKilled, true);
  });

  test('a malformed hand-over ends with the hand-over exit code and one line on stderr', async () => {
    const run = await harness.runBytes(testProfile(), Buffer.from('{"v":1,"scriptBytes":-1}\n'));

    assert.equal(run.exitCode, HANDOVER_ERROR_EXIT_CODE);
    assert.equal(run.stdout, '');
    assert.equal(
      run.stderr,
      'pipeline entrypoint: header field scriptBytes must be a non-negative integer, got -1\n',
    );
  });

  test('a hand-over cut short is refused rather than run', async () => {
    const run = await harness.runBytes(
      testProfile(),
      Buffer.from('{"v":1,"env":{},"scriptBytes":100,"contextBytes":0}\nprint(1)'),
    );

    assert.equal(run.exitCode, HANDOVER_ERROR_EXIT_CODE);
    assert.equal(run.stdout, '');
    assert.match(
      run.stderr,
      /^pipeline entrypoint: standard input ended after 8 of 100 script bytes\n$/,
    );
  });

  test('the engine keeps no log of the output and the container config holds the profile', async () => {
    const run = await harness.run(testProfile(), { env: seatableEnv, script: fixture('hello.py') });
    const host = run.inspect.HostConfig;

    assert.equal(host.LogConfig?.Type, 'none');
    assert.equal(host.ReadonlyRootfs, true);
    assert.equal(host.Memory, 256 * 1024 * 1024);
    assert.equal(host.MemorySwap, 256 * 1024 * 1024);
    assert.equal(host.PidsLimit, 128);
    assert.deepEqual(host.CapDrop, ['ALL']);
    assert.equal(run.inspect.Config.User, '1000:1000');
  });

  test('runs on a runner network made from runnerNetworkCreateOptions', async () => {
    const name = `runner-net-test-${process.pid}`;
    const network = await harness.docker.createNetwork(runnerNetworkCreateOptions(name));
    try {
      const run = await harness.run(testProfile({ PYTHON_RUNNER_NETWORK: name }), {
        env: seatableEnv,
        script: fixture('hello.py'),
      });
      const details = await network.inspect();

      assert.equal(run.stdout, 'Hello World\n');
      assert.equal(details.Options?.['com.docker.network.bridge.enable_icc'], 'false');
    } finally {
      await network.remove();
    }
  });

  test('the offline image says that it lacks seatable-api, and it does', async () => {
    const image = await harness.docker.getImage(OFFLINE_RUNNER_IMAGE).inspect();
    const run = await harness.run(testProfile(), {
      env: seatableEnv,
      script: 'import seatable_api',
    });

    assert.equal(image.Config.Labels?.[imageLabels.seatableApi], SEATABLE_API_ABSENT);
    assert.equal(run.exitCode, 1);
    assert.match(run.stdout, /ModuleNotFoundError: No module named 'seatable_api'\n$/);
  });

  test('every container of a run is removed afterwards', async () => {
    await harness.run(testProfile(), { env: seatableEnv, script: fixture('hello.py') });

    assert.equal(await harness.countContainers(), 0);
  });
});
