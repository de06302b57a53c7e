import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadSandboxProfile, type SandboxProfile } from '../src/index.ts';

function profileFrom(env: Record<string, string>): SandboxProfile {
  const result = loadSandboxProfile(env);
  if (!result.ok) assert.fail(`unexpected problems: ${result.problems.join(' | ')}`);
  return result.profile;
}

function problemsFrom(env: Record<string, string>): string[] {
  const result = loadSandboxProfile(env);
  if (result.ok) assert.fail('expected the profile to be refused');
  return result.problems;
}

describe('loadSandboxProfile', () => {
  test('an empty environment gives the locked-down defaults', () => {
    const profile = profileFrom({});

    assert.equal(profile.image, 'seatable-pipeline-runner:offline');
    assert.equal(profile.memoryBytes, 2 * 1024 ** 3);
    assert.equal(profile.nanoCpus, 1_000_000_000);
    assert.equal(profile.pidsLimit, 128);
    assert.equal(profile.readOnlyRootfs, true);
    assert.equal(profile.tmpfsSizeBytes, 104_857_600);
    assert.deepEqual(profile.droppedCapabilities, ['ALL']);
    assert.equal(profile.noNewPrivileges, true);
    assert.equal(profile.user, '1000:1000');
    assert.equal(profile.network, 'runner-net');
    assert.deepEqual(profile.extraOptions.extraHosts, []);
  });

  test('blank variables count as unset, as in an .env file with empty values', () => {
    const profile = profileFrom({ PYTHON_RUNNER_CONTAINER_CPUS: '', PYTHON_RUNNER_IMAGE: '  ' });

    assert.equal(profile.nanoCpus, 1_000_000_000);
    assert.equal(profile.image, 'seatable-pipeline-runner:offline');
  });

  test("reads the original's variables with their meanings", () => {
    const profile = profileFrom({
      PYTHON_RUNNER_IMAGE: 'registry.example.invalid/runner:5.1',
      PYTHON_RUNNER_CONTAINER_MEMORY: '256m',
      PYTHON_RUNNER_CONTAINER_CPUS: '0.5',
      PYTHON_RUNNER_READ_ONLY_FILESYSTEM: 'FALSE',
      PYTHON_RUNNER_TMPFS_MOUNT_SIZE_IN_BYTES: '1048576',
      PYTHON_RUNNER_NO_NEW_PRIVILEGES: 'false',
      PYTHON_RUNNER_NETWORK: 'pipeline_runner-net',
      PYTHON_RUNNER_PIDS_LIMIT: '64',
    });

    assert.equal(profile.image, 'registry.example.invalid/runner:5.1');
    assert.equal(profile.memoryBytes, 256 * 1024 ** 2);
    assert.equal(profile.nanoCpus, 500_000_000);
    assert.equal(profile.readOnlyRootfs, false);
    assert.equal(profile.tmpfsSizeBytes, 1_048_576);
    assert.equal(profile.noNewPrivileges, false);
    assert.equal(profile.network, 'pipeline_runner-net');
    assert.equal(profile.pidsLimit, 64);
  });

  test('memory takes every docker spelling of a size', () => {
    const cases: [string, number][] = [
      ['2g', 2 * 1024 ** 3],
      ['2G', 2 * 1024 ** 3],
      ['512MiB', 512 * 1024 ** 2],
      ['512 mb', 512 * 1024 ** 2],
      ['1.5g', 1.5 * 1024 ** 3],
      ['8388608', 8_388_608],
      ['10000k', 10_240_000],
    ];
    for (const [text, bytes] of cases) {
      assert.equal(profileFrom({ PYTHON_RUNNER_CONTAINER_MEMORY: text }).memoryBytes, bytes, text);
    }
  });

  test('dropped capabilities always include NET_RAW and lose a CAP_ prefix', () => {
    const profile = profileFrom({ PYTHON_RUNNER_DROPPED_CAPABILITIES: 'cap_mknod, SETUID,,' });

    assert.deepEqual(profile.droppedCapabilities, ['MKNOD', 'SETUID', 'NET_RAW']);
  });

  test('the user comes from PYTHON_RUNNER_USER over _UID and the group from _GROUP over _GID', () => {
    assert.equal(
      profileFrom({ PYTHON_RUNNER_UID: '1001', PYTHON_RUNNER_GID: '1002' }).user,
      '1001:1002',
    );
    assert.equal(
      profileFrom({
        PYTHON_RUNNER_USER: 'seatable',
        PYTHON_RUNNER_UID: '1001',
        PYTHON_RUNNER_GROUP: 'seatable',
      }).user,
      'seatable:seatable',
    );
    assert.equal(profileFrom({ PYTHON_RUNNER_UID: '2000' }).user, '2000:1000');
  });

  test('other options from a Python list literal become typed extra options', () => {
    const profile = profileFrom({
      PYTHON_RUNNER_OTHER_OPTIONS:
        '[\'--add-host=files.example.invalid:192.0.2.10\', "--ulimit=nofile=256:512"]',
    });

    assert.deepEqual(profile.extraOptions.extraHosts, ['files.example.invalid:192.0.2.10']);
    assert.deepEqual(profile.extraOptions.ulimits, [{ Name: 'nofile', Soft: 256, Hard: 512 }]);
  });

  test('each bad value is reported on its own line that names the variable and the value', () => {
    const problems = problemsFrom({
      PYTHON_RUNNER_CONTAINER_MEMORY: 'lots',
      PYTHON_RUNNER_CONTAINER_CPUS: 'abc',
      PYTHON_RUNNER_READ_ONLY_FILESYSTEM: 'yes',
      PYTHON_RUNNER_TMPFS_MOUNT_SIZE_IN_BYTES: '100MB',
      PYTHON_RUNNER_DROPPED_CAPABILITIES: 'NET RAW',
      PYTHON_RUNNER_NO_NEW_PRIVILEGES: '1',
      PYTHON_RUNNER_PIDS_LIMIT: '0',
      PYTHON_RUNNER_NETWORK: 'bad network',
      PYTHON_RUNNER_IMAGE: 'an image',
      PYTHON_RUNNER_OTHER_OPTIONS: 'not a list',
    });

    assert.deepEqual(problems.map((line) => line.split(':')[0]).sort(), [
      'PYTHON_RUNNER_CONTAINER_CPUS',
      'PYTHON_RUNNER_CONTAINER_MEMORY',
      'PYTHON_RUNNER_DROPPED_CAPABILITIES',
      'PYTHON_RUNNER_IMAGE',
      'PYTHON_RUNNER_NETWORK',
      'PYTHON_RUNNER_NO_NEW_PRIVILEGES',
      'PYTHON_RUNNER_OTHER_OPTIONS',
      'PYTHON_RUNNER_PIDS_LIMIT',
      'PYTHON_RUNNER_READ_ONLY_FILESYSTEM',
      'PYTHON_RUNNER_TMPFS_MOUNT_SIZE_IN_BYTES',
    ]);
    assert.ok(
      problems.includes(
        'PYTHON_RUNNER_CONTAINER_CPUS: must be a positive number of CPUs like 1 or 0.5, got "abc"',
      ),
    );
    assert.ok(problems.every((line) => !line.includes('\n')));
  });

  test('zero or negative CPUs and a memory below docker’s 6 MiB floor are refused', () => {
    for (const cpus of ['0', '-1', '0.0']) {
      assert.match(
        problemsFrom({ PYTHON_RUNNER_CONTAINER_CPUS: cpus })[0] ?? '',
        /^PYTHON_RUNNER_CONTAINER_CPUS: /,
      );
    }
    assert.match(
      problemsFrom({ PYTHON_RUNNER_CONTAINER_MEMORY: '4m' })[0] ?? '',
      /^PYTHON_RUNNER_CONTAINER_MEMORY: .*"4m"$/,
    );
  });

  test('root as the user or the group is refused', () => {
    assert.deepEqual(problemsFrom({ PYTHON_RUNNER_UID: '0' }), [
      'PYTHON_RUNNER_UID: must not be root, got "0"',
    ]);
    assert.deepEqual(problemsFrom({ PYTHON_RUNNER_USER: 'root', PYTHON_RUNNER_GROUP: 'root' }), [
      'PYTHON_RUNNER_USER: must not be root, got "root"',
      'PYTHON_RUNNER_GROUP: must not be the root group, got "root"',
    ]);
  });

  test('other options that would weaken the sandbox are refused by name', () => {
    const [problem] = problemsFrom({
      PYTHON_RUNNER_OTHER_OPTIONS: "['--privileged', '--volume=/:/host', '--dns=192.0.2.53']",
    });

    assert.equal(
      problem,
      'PYTHON_RUNNER_OTHER_OPTIONS: "--privileged" is refused: it would weaken the sandbox; ' +
        '"--volume=/:/host" is refused: it would weaken the sandbox',
    );
  });
});
