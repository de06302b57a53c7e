import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { outputTexts } from '@pipeline/events';
import Docker from 'dockerode';
import { type Pipeline, type RunView, startPipeline, untilNoneLeft } from '../support/pipeline.ts';

// Hostile scripts against the real engine (issue #4, "Done when"): each one fails safely,
// the run ends finished with an output a person can read, and no container is left.
// Connections from inside a sandbox (NATS, MariaDB, the scheduler, another sandbox, the
// SeaTable server) are tried in runnerNetwork.e2e.test.ts, in network namespaces of its own.

const timeoutSeconds = 8;
let pipeline: Pipeline;
const docker = new Docker();

before(async () => {
  pipeline = await startPipeline({
    label: 'abuse',
    env: {
      PYTHON_PROCESS_TIMEOUT: String(timeoutSeconds),
      PYTHON_RUNNER_CONTAINER_MEMORY: '256m',
      PYTHON_RUNNER_PIDS_LIMIT: '128',
      PYTHON_RUNNER_TMPFS_MOUNT_SIZE_IN_BYTES: String(100 * 1024 * 1024),
      PYTHON_RUNNER_OUTPUT_LIMIT: '1000000',
      PYTHON_STARTER_STOP_GRACE_SECONDS: '2',
      PYTHON_STARTER_THREAD_COUNT: '4',
    },
  });
});

after(async () => {
  await pipeline?.stop();
});

async function run(script: string): Promise<RunView> {
  const submitted = await pipeline.submit({ script });
  assert.equal(submitted.status, 200, submitted.text);
  const finished = await pipeline.waitFinished(submitted.id, submitted.scriptName, 90_000);
  assert.equal(finished.state, 'finished');
  assert.equal(typeof finished.output, 'string');
  const left = await untilNoneLeft(
    async () =>
      (
        await docker.listContainers({
          all: true,
          // Run ids are per log: other test files' logs have the same ids, their starters not.
          filters: {
            label: [
              `org.seatable.pipeline.run-id=${finished.id}`,
              `org.seatable.pipeline.starter-id=${pipeline.starterIds[0]}`,
            ],
          },
        })
      ).length,
  );
  assert.equal(left, 0, 'no container is left behind');
  return finished;
}

function lines(view: RunView): string[] {
  return (view.output ?? '').split('\n');
}

describe('a hostile script fails safely', { concurrency: 4 }, () => {
  test('a fork bomb hits the pids limit and ends at the timeout', async () => {
    const result = await run(
      [
        'import os, time',
        'print("forking", flush=True)',
        'while True:',
        '    try:',
        '        os.fork()',
        '    except OSError:',
        '        time.sleep(0.01)',
      ].join('\n'),
    );

    assert.equal(result.success, false);
    assert.equal(result.return_code, -1);
    assert.ok(result.output?.startsWith('forking\n'), result.output ?? '');
    assert.ok(result.output?.endsWith(outputTexts.timeout), result.output ?? '');
  });

  test('a memory bomb is killed and reported as out of memory', async () => {
    const result = await run(
      [
        'print("allocating", flush=True)',
        'hoard = []',
        'while True:',
        '    hoard.append("x" * (16 * 1024 * 1024))',
      ].join('\n'),
    );

    assert.equal(result.success, false);
    assert.equal(result.return_code, 137);
    assert.equal(result.output, `allocating\n${outputTexts.outOfMemory}`);
  });

  test('filling /tmp stops at the tmpfs size with "no space left"', async () => {
    const result = await run(
      [
        'import errno',
        'written = 0',
        'try:',
        '    with open("/tmp/fill", "wb") as sink:',
        '        while True:',
        '            sink.write(b"x" * 1048576)',
        '            sink.flush()',
        '            written += 1',
        'except OSError as error:',
        '    print(errno.errorcode[error.errno], written <= 100)',
      ].join('\n'),
    );

    assert.equal(result.output, 'ENOSPC True\n');
    assert.equal(result.success, true);
  });

  test('writing to / and to the image fails: the root is read-only', async () => {
    const result = await run(
      [
        'import errno',
        'for path in ["/evil", "/usr/lib/evil", "/etc/evil"]:',
        '    try:',
        '        open(path, "w").write("x")',
        '        print(path, "WRITTEN")',
        '    except OSError as error:',
        '        print(path, errno.errorcode[error.errno])',
      ].join('\n'),
    );

    for (const line of lines(result).filter(Boolean)) {
      assert.match(line, / (EROFS|EACCES)$/);
    }
    assert.equal(lines(result).filter(Boolean).length, 3);
  });

  test('a script ignoring SIGTERM is killed after its timeout and the grace', async () => {
    const result = await run(
      [
        'import signal, time',
        'signal.signal(signal.SIGTERM, signal.SIG_IGN)',
        'print("ignoring SIGTERM", flush=True)',
        'while True:',
        '    time.sleep(0.1)',
      ].join('\n'),
    );

    assert.equal(result.output, `ignoring SIGTERM\n${outputTexts.timeout}`);
    assert.equal(result.return_code, -1);
  });

  test('binary output does not break the run: it ends with a readable text', async () => {
    const result = await run(
      'import os, sys\nos.write(1, os.urandom(200000))\nprint("\\nafter the noise")\n',
    );

    assert.equal(result.success, true);
    assert.ok(result.output?.endsWith('after the noise\n'));
    assert.ok((result.output?.length ?? 0) > 100_000);
  });

  test("the host's files are out of reach: no host path, no Docker socket, own PID 1", async () => {
    const result = await run(
      [
        'import errno, os',
        'def probe(path):',
        '    try:',
        '        open(path, "rb").read(1)',
        '        return "readable"',
        '    except OSError as error:',
        '        return errno.errorcode[error.errno]',
        'for path in ["/etc/shadow", "/var/run/docker.sock", "/run/docker.sock",',
        '             "/proc/1/root/var/run/docker.sock", "/proc/1/root/etc/shadow"]:',
        '    print(path, probe(path))',
        'print("pid1", open("/proc/1/cmdline", "rb").read().split(b"\\0")[0].decode())',
        '# Mounts of a disk file system, besides the three files Docker itself provides.',
        'docker_files = {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}',
        'virtual = {"overlay", "proc", "tmpfs", "devpts", "mqueue", "sysfs", "cgroup", "cgroup2"}',
        'host = []',
        'for line in open("/proc/self/mountinfo"):',
        '    fields, fstype = line.split(" - ")[0].split(), line.split(" - ")[1].split()[0]',
        '    if fstype not in virtual and fields[4] not in docker_files: host.append(fields[4])',
        'print("host paths", sorted(host))',
      ].join('\n'),
    );

    const output = result.output ?? '';
    assert.match(output, /^\/etc\/shadow EACCES$/m);
    assert.match(output, /^\/var\/run\/docker.sock ENOENT$/m);
    assert.match(output, /^\/run\/docker.sock ENOENT$/m);
    assert.match(output, /^\/proc\/1\/root\/var\/run\/docker.sock (ENOENT|EACCES)$/m);
    assert.match(output, /^\/proc\/1\/root\/etc\/shadow EACCES$/m);
    // The container's PID 1 is the script's own Python, not the host's init.
    assert.match(output, /^pid1 \S*python/m);
    assert.match(output, /^host paths \[\]$/m);
  });

  test('gaining privileges fails: setuid(0), su, /proc/sys, mount, setuid binaries', async () => {
    const result = await run(
      [
        'import os, stat, subprocess',
        'def attempt(name, action):',
        '    try:',
        '        action()',
        '        print(name, "SUCCEEDED")',
        '    except Exception as error:',
        '        print(name, "failed", type(error).__name__)',
        'def command(*argv):',
        '    return lambda: subprocess.run(argv, input=b"", capture_output=True, timeout=3, check=True)',
        'attempt("setuid", lambda: os.setuid(0))',
        'attempt("proc-sys", lambda: open("/proc/sys/kernel/hostname", "w").write("x"))',
        'attempt("mount", command("mount", "-t", "tmpfs", "none", "/tmp"))',
        'attempt("su", command("su", "-c", "id -u"))',
        '# With no-new-privileges a setuid bit does not raise the caller: su above is one.',
        'for folder in ["/bin", "/usr/bin", "/sbin", "/usr/sbin"]:',
        '    for name in sorted(os.listdir(folder)):',
        '        path = os.path.join(folder, name)',
        '        if os.path.isfile(path) and os.stat(path).st_mode & stat.S_ISUID:',
        '            print("setuid binary", path)',
        'print("uid", os.getuid(), os.geteuid())',
      ].join('\n'),
    );

    const output = result.output ?? '';
    assert.doesNotMatch(output, /SUCCEEDED/);
    for (const name of ['setuid', 'proc-sys', 'mount', 'su']) {
      assert.match(output, new RegExp(`^${name} failed `, 'm'));
    }
    assert.doesNotMatch(output, /^uid 0 /m);
    assert.match(output, /^uid \d+ \d+$/m);
  });
});

describe('an endless printer', () => {
  test('is capped at the output limit while the starter memory stays flat', async (context) => {
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 50);
    let result: RunView;
    try {
      result = await run(
        'import sys\nline = "y" * 1000 + "\\n"\nwhile True:\n    sys.stdout.write(line)\n',
      );
    } finally {
      clearInterval(sampler);
    }

    const output = result.output ?? '';
    assert.ok(output.length <= 1_000_000 + 500, `output of ${output.length} characters`);
    // The first L characters, then the timeout text (the output carries no truncation notice:
    // BC-03 B wants exactly L characters; the RunFinished event's outputTruncated says it).
    assert.ok(output.startsWith('y'.repeat(1000)));
    assert.ok(output.endsWith(outputTexts.timeout));
    const growthMb = (peak - baseline) / 1024 / 1024;
    context.diagnostic(`starter process RSS grew by ${growthMb.toFixed(1)} MB`);
    assert.ok(growthMb < 100, `the starter's process grew by ${growthMb.toFixed(1)} MB`);
  });
});
