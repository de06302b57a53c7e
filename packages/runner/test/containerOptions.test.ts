import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  containerCreateOptions,
  loadSandboxProfile,
  PIPELINE_LABEL,
  RUN_ID_LABEL,
  runnerNetworkCreateOptions,
  type SandboxProfile,
  STARTER_ID_LABEL,
} from '../src/index.ts';

function profileFrom(env: Record<string, string>): SandboxProfile {
  const result = loadSandboxProfile(env);
  if (!result.ok) assert.fail(result.problems.join(' | '));
  return result.profile;
}

describe('containerCreateOptions', () => {
  const identity = { runId: 4711, starterId: 'starter-a', name: 'pipeline-run-4711' };

  test('turns the default profile into a locked-down container with swap off', () => {
    const options = containerCreateOptions(profileFrom({}), identity);
    const host = options.HostConfig;

    assert.equal(options.name, 'pipeline-run-4711');
    assert.equal(options.Image, 'seatable-pipeline-runner:offline');
    assert.equal(options.User, '1000:1000');
    assert.equal(host?.Memory, 2 * 1024 ** 3);
    assert.equal(host?.MemorySwap, host?.Memory);
    assert.equal(host?.NanoCpus, 1_000_000_000);
    assert.equal(host?.PidsLimit, 128);
    assert.equal(host?.ReadonlyRootfs, true);
    assert.deepEqual(host?.Tmpfs, {
      '/tmp': 'rw,nosuid,nodev,size=104857600,mode=1777',
      '/run/pipeline': 'rw,nosuid,nodev,size=33554432,mode=1777',
    });
    assert.deepEqual(host?.CapDrop, ['ALL']);
    assert.deepEqual(host?.SecurityOpt, ['no-new-privileges:true']);
    assert.equal(host?.NetworkMode, 'runner-net');
    assert.equal(host?.AutoRemove, false);
    assert.equal(host?.Privileged, false);
    assert.equal(host?.Binds, undefined);
    assert.deepEqual(host?.LogConfig, { Type: 'none', Config: {} });
  });

  test('keeps standard input open for the hand-over and closes it after the first attach', () => {
    const options = containerCreateOptions(profileFrom({}), identity);

    assert.equal(options.OpenStdin, true);
    assert.equal(options.StdinOnce, true);
    assert.equal(options.AttachStdin, true);
    assert.equal(options.Tty, false);
    assert.deepEqual(options.Entrypoint, ['python3', '/opt/pipeline/entrypoint.py']);
    assert.deepEqual(options.Cmd, []);
  });

  test('labels the container with the run and the starter, over any caller label', () => {
    const options = containerCreateOptions(profileFrom({}), {
      ...identity,
      labels: { team: 'ops', [RUN_ID_LABEL]: 'forged' },
    });

    assert.deepEqual(options.Labels, {
      team: 'ops',
      [PIPELINE_LABEL]: 'run',
      [RUN_ID_LABEL]: '4711',
      [STARTER_ID_LABEL]: 'starter-a',
    });
  });

  test('carries no environment: secrets travel in the hand-over, not in the container config', () => {
    const options = containerCreateOptions(profileFrom({}), identity);

    assert.deepEqual(options.Env, []);
  });

  test('follows a relaxed profile: writable root, no no-new-privileges, fewer dropped capabilities', () => {
    const options = containerCreateOptions(
      profileFrom({
        PYTHON_RUNNER_READ_ONLY_FILESYSTEM: 'false',
        PYTHON_RUNNER_NO_NEW_PRIVILEGES: 'false',
        PYTHON_RUNNER_DROPPED_CAPABILITIES: 'MKNOD',
        PYTHON_RUNNER_CONTAINER_MEMORY: '256m',
        PYTHON_RUNNER_TMPFS_MOUNT_SIZE_IN_BYTES: '5000000',
      }),
      identity,
    );

    assert.equal(options.HostConfig?.ReadonlyRootfs, false);
    assert.deepEqual(options.HostConfig?.SecurityOpt, []);
    assert.deepEqual(options.HostConfig?.CapDrop, ['MKNOD', 'NET_RAW']);
    assert.equal(options.HostConfig?.MemorySwap, 256 * 1024 ** 2);
    assert.deepEqual(options.HostConfig?.Tmpfs, {
      '/tmp': 'rw,nosuid,nodev,size=5000000,mode=1777',
      '/run/pipeline': 'rw,nosuid,nodev,size=33554432,mode=1777',
    });
  });

  test('maps the supported other options to their Engine API fields', () => {
    const options = containerCreateOptions(
      profileFrom({
        PYTHON_RUNNER_OTHER_OPTIONS: JSON.stringify([
          '--add-host=files.example.invalid:192.0.2.10',
          '--dns=192.0.2.53',
          '--shm-size=64m',
          '--env=LANG=de_DE.UTF-8',
          '--label=team=ops',
          '--cpu-shares=512',
        ]),
      }),
      identity,
    );

    assert.deepEqual(options.HostConfig?.ExtraHosts, ['files.example.invalid:192.0.2.10']);
    assert.deepEqual(options.HostConfig?.Dns, ['192.0.2.53']);
    assert.equal(options.HostConfig?.ShmSize, 64 * 1024 ** 2);
    assert.equal(options.HostConfig?.CpuShares, 512);
    assert.deepEqual(options.Env, ['LANG=de_DE.UTF-8']);
    assert.equal(options.Labels?.team, 'ops');
  });

  test('leaves the name to Docker when none is given', () => {
    const options = containerCreateOptions(profileFrom({}), { runId: 1, starterId: 's' });

    assert.equal('name' in options, false);
  });
});

describe('runnerNetworkCreateOptions', () => {
  test('makes a labelled bridge with inter-container traffic off', () => {
    const options = runnerNetworkCreateOptions('runner-net');

    assert.equal(options.Name, 'runner-net');
    assert.equal(options.Driver, 'bridge');
    assert.equal(options.Options?.['com.docker.network.bridge.enable_icc'], 'false');
    assert.equal(options.Labels?.[PIPELINE_LABEL], 'runner-network');
  });
});
