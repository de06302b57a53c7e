"""The sandbox entrypoint: takes over one run from the starter, then becomes the script.

Standard input carries the hand-over (docs/internals.md, "The sandbox hand-over"):

1. one line of JSON, the header: {"v": 1, "env": {...}, "scriptBytes": N, "contextBytes": M};
2. N bytes: the script source;
3. M bytes: the context data as JSON (0 bytes when there is none).

The script is written to a fresh private directory under /tmp, the header's environment is
set, and a child of the entrypoint runs the script in the interpreter that is already up
(`become_script`: as `python3 -B index.py` would, without the tens of milliseconds a second
interpreter takes to start), its standard input holding exactly the context bytes, then end
of file. The exit code, the tracebacks and
the signals that end the process are therefore the script's own.

A hand-over that cannot be read or used ends the container with HANDOVER_ERROR_EXIT_CODE and
one line on standard error. Only the standard library is used. When the header names an
`endMarker`, the end line (NUL, `pipeline-end:<marker>:<status>`, newline) follows the
script's output on standard output once the script ended: the starter learns the end from
it without waiting for the engine to tear the container down. Nothing else is printed: the
script's output is all there is.

The entrypoint may start long before its hand-over arrives (a prepared sandbox of the
starter's pool): it then waits on standard input, holding nothing of any run.
"""

import builtins
import importlib.machinery
import json
import os
import re
import signal
import sys
import time
import types

HANDOVER_ERROR_EXIT_CODE = 125
HEADER_VERSION = 1
# The header holds a few short variables; anything longer is not a header.
HEADER_LIMIT_BYTES = 1 << 20
READ_CHUNK_BYTES = 1 << 16
SCRIPT_FILE_NAME = "index.py"


class HandoverError(Exception):
    """The hand-over on standard input is malformed or cannot be carried out."""


class HandoverReader:
    """Reads the hand-over from a file descriptor without reading past what it is asked for
    more than one chunk (the rest is never used: the script's stdin is a new file)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._pending = bytearray()
        self._ended = False

    def _fill(self) -> None:
        chunk = os.read(self._fd, READ_CHUNK_BYTES)
        if chunk:
            self._pending += chunk
        else:
            self._ended = True

    def read_line(self, limit: int) -> bytes:
        searched = 0
        while True:
            newline = self._pending.find(b"\n", searched)
            if newline >= 0:
                line = bytes(self._pending[:newline])
                del self._pending[: newline + 1]
                return line
            searched = len(self._pending)
            if searched > limit:
                raise HandoverError(f"header line is longer than {limit} bytes")
            if self._ended:
                raise HandoverError("standard input ended before the header line was complete")
            self._fill()

    def read_exactly(self, count: int, what: str) -> bytes:
        while len(self._pending) < count and not self._ended:
            self._fill()
        if len(self._pending) < count:
            raise HandoverError(
                f"standard input ended after {len(self._pending)} of {count} {what} bytes"
            )
        data = bytes(self._pending[:count])
        del self._pending[:count]
        return data


def byte_count(header: dict, key: str) -> int:
    value = header.get(key)
    # bool is an int in Python: reject it explicitly.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise HandoverError(f"header field {key} must be a non-negative integer, got {value!r}")
    return value


def header_env(header: dict) -> dict:
    env = header.get("env", {})
    if not isinstance(env, dict):
        raise HandoverError("header field env must be an object of strings")
    for name, value in env.items():
        if not name or "=" in name or "\0" in name:
            raise HandoverError(f"header env has an invalid variable name {name!r}")
        if not isinstance(value, str) or "\0" in value:
            raise HandoverError(f"header env variable {name} must be a string without NUL")
    return env


END_MARKER_PATTERN = re.compile(r"[0-9a-f]{16,64}")


def end_marker(header: dict):
    value = header.get("endMarker")
    if value is None:
        return None
    if not isinstance(value, str) or not END_MARKER_PATTERN.fullmatch(value):
        raise HandoverError("header field endMarker must be 16 to 64 lower-case hex digits")
    return value


def parse_header(line: bytes) -> tuple:
    try:
        header = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise HandoverError(f"header line is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise HandoverError("header line is not a JSON object")
    if header.get("v") != HEADER_VERSION:
        raise HandoverError(f"unsupported header version {header.get('v')!r}")
    return (
        header_env(header),
        byte_count(header, "scriptBytes"),
        byte_count(header, "contextBytes"),
        end_marker(header),
    )

RUN_ROOT = "/run/pipeline"


def make_run_directory() -> str:
    """A fresh directory only this user can enter.

    Under the sandbox's own small tmpfs (RUN_ROOT) when the profile mounts it, so that the
    script's /tmp starts empty; under TMPDIR or /tmp otherwise.
    """
    root = RUN_ROOT if os.path.isdir(RUN_ROOT) and os.access(RUN_ROOT, os.W_OK) else None
    root = root or os.environ.get("TMPDIR") or "/tmp"
    while True:
        path = os.path.join(root, "run-" + os.urandom(8).hex())
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_script(run_directory: str, source: bytes) -> str:
    path = os.path.join(run_directory, SCRIPT_FILE_NAME)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        write_all(fd, source)
    finally:
        os.close(fd)
    return path


def context_file(run_directory: str, context: bytes) -> int:
    """A read-only descriptor of an anonymous file holding exactly the context bytes.

    A file rather than a pipe: a script that never reads its standard input still exits
    normally, however large the context, and no writer process outlives the hand-over.
    """
    try:
        fd = os.memfd_create("context", os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        path = os.path.join(run_directory, ".context")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        os.unlink(path)
    write_all(fd, context)
    try:
        # A second, read-only open of the same file, so the script cannot rewrite its input.
        read_only = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        os.lseek(fd, 0, os.SEEK_SET)
        return fd
    os.close(fd)
    return read_only


def script_environment(env: dict, run_directory: str) -> dict:
    environment = dict(os.environ)
    environment.update(env)
    # A writable home inside the private directory: libraries that keep caches or settings
    # under ~ work under a read-only root, and nothing of one run is seen by another.
    home = os.path.join(run_directory, "home")
    os.mkdir(home, 0o700)
    environment["HOME"] = home
    environment["PYTHONDONTWRITEBYTECODE"] = "1"
    environment["PYTHONPATH"] = order_keeper(run_directory)
    return environment


# stdout stays block-buffered (a flood of prints costs a few large writes, not a write per
# line), and stderr shares its pipe. So that a traceback or a warning still comes after what
# the script printed before it, every text write to stderr first flushes stdout: the output
# reads as in a terminal.
ORDER_KEEPER = """\
import sys


class _StderrAfterStdout:
    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            sys.stdout.flush()
        except Exception:
            pass
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


sys.stderr = _StderrAfterStdout(sys.stderr)
"""


def order_keeper(run_directory: str) -> str:
    """A directory holding the sitecustomize module that keeps stderr after stdout."""
    directory = os.path.join(run_directory, "site")
    os.mkdir(directory, 0o700)
    with open(os.path.join(directory, "sitecustomize.py"), "w", encoding="utf-8") as module:
        module.write(ORDER_KEEPER)
    return directory


def take_over() -> None:
    reader = HandoverReader(0)
    env, script_bytes, context_bytes, marker = parse_header(reader.read_line(HEADER_LIMIT_BYTES))
    source = reader.read_exactly(script_bytes, "script")
    context = reader.read_exactly(context_bytes, "context")

    try:
        run_directory = make_run_directory()
        script_path = write_script(run_directory, source)
        stdin_fd = context_file(run_directory, context)
        environment = script_environment(env, run_directory)
        os.dup2(stdin_fd, 0)
        os.close(stdin_fd)
        # One stream for both, so Docker, which copies two pipes separately, cannot reorder
        # them (see ORDER_KEEPER for the order within).
        os.dup2(1, 2)
        os.chdir(run_directory)
    except OSError as error:
        raise HandoverError(f"cannot prepare the run: {error}") from None

    # The entrypoint stays PID 1 and runs the script as its child: PID 1 ignores SIGTERM
    # unless it handles it, so the entrypoint forwards it (a script stops at the deadline,
    # not after the grace period) and exits with the script's status, 128 + signal when a
    # signal ended it (137 after an OOM kill), as Docker reports for PID 1 itself.
    try:
        child = os.fork()
    except OSError as error:
        raise HandoverError(f"cannot start python: {error}") from None
    if child == 0:
        # The script's own exit (SystemExit) leaves through here: the interpreter then ends
        # with its status after the usual shutdown (threads joined, atexit, output flushed).
        become_script(script_path, source, run_directory, environment)
        sys.exit(0)
    status = supervise(child)
    if marker is not None:
        # Standard output is the pipe the script wrote to: the line comes after all it printed.
        write_all(1, b"\0pipeline-end:" + marker.encode("ascii") + b":%d\n" % status)
    sys.exit(status)


def become_script(script_path: str, source: bytes, run_directory: str, environment: dict) -> None:
    """In the forked child: runs the script in this interpreter, as `python3 -B script` would.

    The interpreter is already up (a prepared sandbox started it before its run came), so
    the script starts in a few milliseconds instead of the tens an interpreter needs. What
    a fresh `python3 -B index.py` would set up differently is set here: the environment
    (also for the script's own subprocesses), TZ, argv, the module search path with the
    script's directory first and the order keeper's directory next (as PYTHONPATH puts
    it), no byte code, and a fresh __main__ module. An uncaught exception is printed by
    sys.excepthook with the script's frames only, and the exit status is 1, as Python's.
    """
    os.environ.clear()
    os.environ.update(environment)
    time.tzset()
    sys.dont_write_bytecode = True
    sys.argv = [script_path]
    site_directory = environment["PYTHONPATH"]
    sys.path[0] = run_directory
    sys.path.insert(1, site_directory)
    # This interpreter imported its sitecustomize at start-up, before the run was known.
    exec(compile(ORDER_KEEPER, os.path.join(site_directory, "sitecustomize.py"), "exec"), {})

    main = types.ModuleType("__main__")
    main.__file__ = script_path
    main.__cached__ = None
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", script_path)
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    try:
        code = compile(source, script_path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        # As Python reports a script it cannot compile: the error alone, no traceback.
        error_type, error, _ = sys.exc_info()
        error.__traceback__ = None
        sys.excepthook(error_type, error, None)
        sys.exit(1)
    try:
        exec(code, main.__dict__)
    except SystemExit:
        raise
    except BaseException:
        # TODO(#7): an uncaught KeyboardInterrupt exits 1 here; Python itself re-raises SIGINT
        # after its shutdown (status 130). Only a script that raises it itself can tell.
        error_type, error, trace = sys.exc_info()
        # Drop this function's frame: the traceback starts in the script, as Python's does.
        error.__traceback__ = trace.tb_next if trace else None
        sys.excepthook(error_type, error, error.__traceback__)
        sys.exit(1)


FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


def supervise(child: int) -> int:
    """Forwards stop signals to the script, waits for it, and returns its exit status."""

    def forward(signum, _frame):
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, forward)
    os.close(0)
    while True:
        pid, status = os.waitpid(-1, 0)
        # Orphans of the script are reparented to PID 1: reap them, wait for the script.
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code


def main() -> None:
    try:
        take_over()
    except HandoverError as error:
        sys.stderr.write(f"pipeline entrypoint: {error}\n")
        sys.stderr.flush()
        sys.exit(HANDOVER_ERROR_EXIT_CODE)


if __name__ == "__main__":
    main()
