import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { containerCreateOptions } from '@pipeline/runner';
import { loadConfig } from '../src/config.ts';

// What the starter asks the engine for, from its own configuration. The runner network's
// isolation from the host and the pipeline's services (the firewall the starter sets up) is
// tried from inside sandboxes in test/abuse/runnerNetwork.e2e.test.ts.

function createOptionsFor(env: Record<string, string>) {
  const config = loadConfig(env);
  return containerCreateOptions(config.sandbox, { runId: 1, starterId: config.starterId });
}

describe('the containers the starter creates', () => {
  test('sit on the runner network, never the host network or another container', () => {
    const host = createOptionsFor({}).HostConfig;
    assert.equal(host?.NetworkMode, 'runner-net');
    assert.equal(host?.PidMode, undefined);
    assert.equal(host?.IpcMode, 'private');
    assert.equal(host?.UsernsMode, undefined);
  });

  test('drop every capability and forbid new privileges', () => {
    const host = createOptionsFor({}).HostConfig;
    assert.deepEqual(host?.CapDrop, ['ALL']);
    assert.equal(host?.CapAdd, undefined);
    assert.deepEqual(host?.SecurityOpt, ['no-new-privileges:true']);
    assert.equal(host?.Privileged, false);
  });

  test('mount no host path and no device, on a read-only root', () => {
    const options = createOptionsFor({});
    const host = options.HostConfig;
    assert.equal(host?.Binds, undefined);
    assert.equal(host?.Mounts, undefined);
    assert.equal(host?.Devices, undefined);
    assert.equal(options.Volumes, undefined);
    assert.equal(host?.ReadonlyRootfs, true);
    assert.deepEqual(Object.keys(host?.Tmpfs ?? {}).sort(), ['/run/pipeline', '/tmp']);
  });

  test('keep NET_RAW dropped even when the operator narrows the dropped capabilities', () => {
    const host = createOptionsFor({ PYTHON_RUNNER_DROPPED_CAPABILITIES: 'SYS_ADMIN' }).HostConfig;
    assert.ok(host?.CapDrop?.includes('NET_RAW'));
  });

  test('run as the unprivileged user', () => {
    assert.equal(createOptionsFor({}).User, '1000:1000');
  });
});
