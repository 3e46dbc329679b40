"""Run untrusted Python programs (model-written code plus its tests) in a sandbox.

Each program runs in its own process, started in a new session inside a fresh
temporary directory that is also its working directory, with these layers:

* **Kernel limits** (``resource.setrlimit`` in the child before ``exec``): address
  space (``RLIMIT_AS``), CPU seconds (``RLIMIT_CPU``), size of any file it writes
  (``RLIMIT_FSIZE``), no core dumps, and the number of processes of the user
  (``RLIMIT_NPROC``, set to what the user already runs plus a small headroom, so a fork
  bomb fails at once; note that the kernel does not apply it to root).
* **Namespaces**, when ``unshare`` works here (it does as root, and for other users where
  user namespaces are enabled): a new network namespace (only a downed loopback, so no
  connection leaves the process) and a new PID namespace (the program cannot see or
  signal processes outside it, and everything in it dies with it).
* **A Python guard**: an audit hook (``sys.addaudithook``, which a program cannot remove)
  installed before the program runs. It refuses process creation, signals to other
  processes, sockets that connect, bind or resolve names, ``ctypes``, and every write,
  rename or removal outside the temporary directory. This layer is what contains root,
  for whom ``RLIMIT_NPROC`` does not apply.
* **The clock**: past ``timeout`` seconds of wall time the whole process group is killed
  (``os.killpg(..., SIGKILL)``).

A program *passes* only when it ran to its end: exit status 0 and a sentinel line that
the runner prints after the program returns, so ``os._exit(0)`` or ``sys.exit(0)``
before the tests ran is a failure.

Example::

    sandbox = Sandbox(Limits(timeout=5))
    outcome = sandbox.run("assert sum([1, 2]) == 3")
    assert outcome.passed
"""

from __future__ import annotations

import functools
import math
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import attrs

from daedal.core.errors import ConfigError

__all__ = ["Execution", "Limits", "Sandbox", "network_isolation"]

Status = Literal["passed", "failed", "timeout"]


def _positive(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"`{attribute.name}` must be a positive number, got {value!r}")


@attrs.frozen(kw_only=True)
class Limits:
    """Resource limits of one sandboxed program.

    Attributes:
        timeout: Wall-clock seconds before the process group is killed.
        memory_mb: Address-space limit (``RLIMIT_AS``) in MiB.
        cpu_seconds: CPU-time limit (``RLIMIT_CPU``); None means ``ceil(timeout) + 1``.
        file_size_mb: Largest file the program may write (``RLIMIT_FSIZE``), output included.
        processes: Processes the program may start beyond those its user already runs
            (``RLIMIT_NPROC`` headroom; ignored by the kernel for root).
        output_bytes: How much of stdout and stderr to keep (head and tail).
    """

    timeout: float = attrs.field(default=10.0, validator=_positive)
    memory_mb: int = attrs.field(default=2048, validator=_positive)
    cpu_seconds: int | None = None
    file_size_mb: int = attrs.field(default=16, validator=_positive)
    processes: int = 8
    output_bytes: int = 8192


@attrs.frozen(kw_only=True)
class Execution:
    """The outcome of one sandboxed program.

    Attributes:
        status: ``"passed"``, ``"failed"`` (error, non-zero exit, killed by a limit) or ``"timeout"``.
        returncode: Exit status (negative: killed by that signal); None when it timed out.
        stdout: Captured standard output (head and tail when long), sentinel removed.
        stderr: Captured standard error (head and tail when long).
        wall_time: Seconds from start to exit or kill.
    """

    status: Status
    returncode: int | None
    stdout: str
    stderr: str
    wall_time: float

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def summary(self) -> str:
        """One line for logs and result files: status plus the last error line."""
        last = next((line for line in reversed(self.stderr.strip().splitlines()) if line.strip()), "")
        return f"{self.status}: {last}" if last and self.status != "passed" else self.status


# The runner executed by the child interpreter (``python -I -B -c RUNNER``). It reads the
# sentinel from stdin, installs the guard, runs ./program.py as __main__ and prints the
# sentinel only if the program returned normally.
_RUNNER = r'''
import os, sys
_nonce = sys.stdin.readline().strip()
_null = os.open(os.devnull, os.O_RDONLY)
os.dup2(_null, 0)
os.close(_null)
_root = os.path.realpath(os.getcwd())
_guard = sys.argv[1] == "1"

def _install_guard(root):
    import os, sys
    realpath, join, getpid, fspath = os.path.realpath, os.path.join, os.getpid, os.fspath
    sep = os.sep
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    allowed_files = {os.devnull}
    refused = {
        "os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
        "subprocess.Popen", "pty.spawn", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata",
        "socket.connect", "socket.connect_ex", "socket.bind", "socket.sendto", "socket.sendmsg",
        "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "os.chroot",
        "resource.setrlimit", "resource.prlimit", "sys.remote_exec", "os.setuid", "os.setgid",
    }
    mutating = {
        "os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.link",
        "os.truncate", "os.utime", "shutil.rmtree", "os.setxattr", "os.removexattr",
        "os.mkfifo", "os.mknod", "shutil.copyfile", "shutil.copymode", "shutil.copystat",
        "shutil.move", "os.lchflags", "os.chflags",
    }

    def inside(path):
        if isinstance(path, int) or path is None:
            return True  # an already-open descriptor: its opening was checked
        try:
            path = fspath(path)
        except TypeError:
            return True
        if isinstance(path, bytes):
            path = path.decode(errors="replace")
        full = realpath(join(os.getcwd(), path))
        return full == root or full.startswith(root + sep) or full in allowed_files

    def hook(event, args):
        if event in refused:
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event in ("os.kill", "os.killpg"):
            if event == "os.kill" and args[0] == getpid():
                return
            raise PermissionError(f"sandbox: {event}{args!r} is not allowed")
        if event == "open":
            path, mode, flags = args
            writes = (mode is not None and any(c in mode for c in "wax+")) or bool(flags & write_flags)
            if writes and not inside(path):
                raise PermissionError(f"sandbox: writing {path!r} outside the sandbox directory is not allowed")
        elif event in mutating:
            paths = [args[1]] if event == "os.symlink" else [a for a in args if isinstance(a, (str, bytes, os.PathLike))]
            dir_fds = [a for a in args[1:] if isinstance(a, int) and not isinstance(a, bool) and a >= 0]
            if event in ("os.remove", "os.rmdir", "os.mkdir", "os.rename", "os.link") and dir_fds:
                raise PermissionError(f"sandbox: {event} relative to a directory descriptor is not allowed")
            for p in paths:
                if not inside(p):
                    raise PermissionError(f"sandbox: {event} on {p!r} outside the sandbox directory is not allowed")
        elif event == "os.symlink":
            if not inside(args[1]):
                raise PermissionError(f"sandbox: creating a link at {args[1]!r} is not allowed")

    sys.addaudithook(hook)

if _guard:
    _install_guard(_root)
    del _install_guard
with open("program.py", encoding="utf-8") as _f:
    _source = _f.read()
_globals = {"__name__": "__main__", "__file__": os.path.join(_root, "program.py"), "__builtins__": __builtins__}
try:
    exec(compile(_source, "program.py", "exec"), _globals)
except BaseException:
    # SystemExit too: a program that exits before the end has not shown that its tests pass.
    import traceback
    traceback.print_exc()
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(1)
try:
    sys.stdout.flush()
except BaseException:
    pass
os.write(1, ("\n" + _nonce + "\n").encode())
os._exit(0)
'''


@functools.cache
def network_isolation() -> tuple[str, ...]:
    """The ``unshare`` prefix that isolates network and PID namespaces here, or ``()``.

    Probed once per process: plain ``unshare`` works for root; other users need a user
    namespace (``-r``). Returns the command prefix that worked, or an empty tuple when no
    namespace can be created (the Python guard then carries network isolation alone).
    """
    exe = shutil.which("unshare")
    if exe is None:
        return ()
    candidates = [(exe, "--net", "--pid", "--fork", "--kill-child")]
    if os.geteuid() != 0:
        candidates.insert(0, (exe, "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child"))
    for prefix in candidates:
        try:
            done = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            return prefix
    return ()


def _user_process_count() -> int:
    """Processes (threads included, as RLIMIT_NPROC counts them) the current real uid runs."""
    uid = os.getuid()
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(entry.path).st_uid == uid:
                count += max(1, len(os.listdir(os.path.join(entry.path, "task"))))
        except OSError:
            continue
    return count


def _clip(data: bytes, limit: int) -> str:
    text = data.decode("utf-8", errors="replace")
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + f"\n... [{len(text) - limit} characters cut] ...\n" + text[-half:]


class Sandbox:
    """Runs Python programs under :class:`Limits` in isolated processes.

    Args:
        limits: Time, memory, file-size and process limits.
        isolate: ``"auto"`` uses ``unshare`` namespaces when they work here; ``"none"``
            relies on the guard and the limits alone; ``"require"`` raises if namespaces
            are unavailable.
        guard: Install the Python audit-hook guard (recommended; turning it off is for
            testing the kernel layers).
        python: Interpreter that runs the programs (default: this one).

    Raises:
        ConfigError: ``isolate`` is unknown, or ``"require"`` where ``unshare`` fails.
    """

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        isolate: Literal["auto", "none", "require"] = "auto",
        guard: bool = True,
        python: str | None = None,
    ) -> None:
        if isolate not in ("auto", "none", "require"):
            raise ConfigError(f"`isolate` must be 'auto', 'none' or 'require', got {isolate!r}")
        self.limits = limits or Limits()
        self.guard = guard
        self.python = python or sys.executable
        self.prefix: tuple[str, ...] = () if isolate == "none" else network_isolation()
        if isolate == "require" and not self.prefix:
            raise ConfigError(
                "`isolate='require'` but `unshare --net --pid` does not work here: run as root, enable "
                "user namespaces, or pass isolate='auto'"
            )

    @property
    def isolated(self) -> bool:
        """Whether programs run in their own network and PID namespaces."""
        return bool(self.prefix)

    def _limit_child(self, nproc: int) -> None:
        # Runs in the child between fork and exec: no imports here (a thread of the
        # parent may hold the import lock at fork time).
        lim = self.limits
        memory = int(lim.memory_mb) * 1024 * 1024
        cpu = lim.cpu_seconds if lim.cpu_seconds is not None else math.ceil(lim.timeout) + 1
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        size = int(lim.file_size_mb) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

    def run(self, program: str) -> Execution:
        """Run one program to completion, a limit, or the timeout.

        Args:
            program: Python source, run as ``__main__`` from ``program.py`` in a fresh
                temporary directory (its working directory).

        Returns:
            The :class:`Execution`; never raises for anything the program does.
        """
        if not isinstance(program, str):
            raise ConfigError(f"`program` must be Python source text, got {type(program).__name__}")
        nonce = secrets.token_hex(16)
        lim = self.limits
        nproc = _user_process_count() + lim.processes + (2 if self.prefix else 0)
        with tempfile.TemporaryDirectory(prefix="daedal-sandbox-") as work:
            with open(os.path.join(work, "program.py"), "w", encoding="utf-8") as f:
                f.write(program)
            out_path, err_path = os.path.join(work, ".stdout"), os.path.join(work, ".stderr")
            argv = [*self.prefix, self.python, "-I", "-B", "-c", _RUNNER, "1" if self.guard else "0"]
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": work,
                   "TMPDIR": work, "PYTHONHASHSEED": "0"}
            start = time.monotonic()
            timed_out = False
            with open(out_path, "wb") as out, open(err_path, "wb") as err:
                try:
                    proc = subprocess.Popen(
                        argv,
                        cwd=work,
                        env=env,
                        stdin=subprocess.PIPE,
                        stdout=out,
                        stderr=err,
                        start_new_session=True,
                        close_fds=True,
                        preexec_fn=functools.partial(self._limit_child, nproc),
                    )
                except OSError as error:  # could not even start: count as a failure of this program
                    return Execution(status="failed", returncode=None, stdout="", stderr=f"sandbox start failed: {error}",
                                     wall_time=time.monotonic() - start)
                try:
                    proc.communicate(input=(nonce + "\n").encode(), timeout=lim.timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
                finally:
                    # Kill the whole group, also after a normal exit: a program may leave
                    # children behind (it is the group leader, so its pgid is its pid).
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                    proc.wait()
            wall = time.monotonic() - start
            stdout = _read_capped(out_path, lim.output_bytes)
            stderr = _clip(_read_capped_bytes(err_path, lim.output_bytes), lim.output_bytes)
        marker = "\n" + nonce + "\n"
        finished = stdout.endswith(marker)
        if finished:
            stdout = stdout[: -len(marker)]
        if timed_out:
            status: Status = "timeout"
        elif proc.returncode == 0 and finished:
            status = "passed"
        else:
            status = "failed"
        return Execution(status=status, returncode=None if timed_out else proc.returncode,
                         stdout=_clip(stdout.encode(), lim.output_bytes), stderr=stderr, wall_time=wall)

    def run_many(self, programs: Sequence[str] | Iterable[str], *, workers: int = 1) -> list[Execution]:
        """Run programs concurrently in ``workers`` threads (each program its own process)."""
        programs = list(programs)
        if not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"`workers` must be a positive int, got {workers!r}")
        if workers == 1 or len(programs) <= 1:
            return [self.run(p) for p in programs]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(self.run, programs))


def _read_capped_bytes(path: str, limit: int) -> bytes:
    """Head and tail of a file without reading all of it."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        if size <= 2 * limit:
            return f.read()
        head = f.read(limit)
        f.seek(size - limit)
        return head + b"\n...\n" + f.read()


def _read_capped(path: str, limit: int) -> str:
    # The sentinel sits at the very end, so the tail is always kept.
    return _read_capped_bytes(path, limit).decode("utf-8", errors="replace")
