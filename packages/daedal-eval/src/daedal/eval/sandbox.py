"""Run untrusted Python programs (model-written code and its tests) contained by the OS.

The wall is the operating system, through bubblewrap (``bwrap``, see
:mod:`daedal.eval.isolation`): each program runs in new user, mount, PID, network,
IPC, UTS and cgroup namespaces as an unprivileged uid without capabilities, sees a
read-only interpreter with the allowed scientific modules and nothing else of the host,
and writes only to a private size-limited ``tmpfs``. Around it:

* **Kernel limits**, set by the runner before anything of the program runs: address
  space, CPU seconds, size of any file written (standard output included), no core
  dumps; and a pids cgroup per program where one can be made (``RLIMIT_NPROC``
  otherwise, which the kernel does not apply to root).
* **The clock**: past ``timeout`` seconds the whole tree is killed (the session's group;
  bubblewrap's init dies with its parent and the PID namespace with it).
* **A Python guard** (an audit hook) refuses creating processes: a second layer.

Two protocols decide "passed":

* :meth:`Sandbox.check` (the default of the code suites): the program's definitions
  run in the sandbox; the tests run in a separate, trusted *judge* process, where every
  name they take from the program is a stand-in that sends the call's arguments to the
  program's process and gets back plain data (JSON with tags for tuples, sets, bytes...;
  objects stay behind as opaque references). The verdict is written by the judge on a
  descriptor the program never holds: exiting early, patching ``os._exit``, printing
  markers or returning objects with a forged ``__eq__`` cannot make it "passed".
* :meth:`Sandbox.run` (the paper's protocol, as the official scripts do): program and
  tests in one process; "passed" means it ran to its end (exit status 0 and a marker
  printed after the program returned). The OS contains it all the same, but a hostile
  program can forge this verdict (see the threat model in the docs).

Without a working ``bwrap`` the sandbox refuses to run anything unless the caller opts
in to the weak fallback (``unsafe_exec=True``): the Python guard, rlimits and, where
``unshare`` works, network and PID namespaces, which do not contain a hostile program.

Example::

    sandbox = Sandbox(Limits(timeout=5))
    assert sandbox.check("def add(a, b):\\n    return a + b\\n", "assert add(1, 2) == 3\\n").passed
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import marshal
import math
import os
import secrets
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import attrs

from daedal.core.errors import ConfigError
from daedal.eval import _runners
from daedal.eval.isolation import (
    DEFAULT_MODULES,
    INSTALL_HINT,
    PROGRAM_PATH,
    PidsCgroup,
    bwrap_command,
    bwrap_path,
    bwrap_works,
    layout,
    warn_once,
)

__all__ = ["Execution", "Limits", "Sandbox", "SandboxUnavailableError", "network_isolation", "remove_tree"]

Status = Literal["passed", "failed", "timeout", "error"]

#: Largest reply line the judge accepts from the program's process.
_REPLY_LIMIT = 16 * 1024 * 1024


class SandboxUnavailableError(ConfigError):
    """No operating-system isolation here, and the weak fallback was not asked for."""


def _positive(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"`{attribute.name}` must be a positive number, got {value!r}")


@attrs.frozen(kw_only=True)
class Limits:
    """Resource limits of one sandboxed program.

    Attributes:
        timeout: Wall-clock seconds before the whole process tree is killed.
        memory_mb: Address-space limit (``RLIMIT_AS``) in MiB, per process.
        cpu_seconds: CPU-time limit (``RLIMIT_CPU``); None means ``ceil(timeout) + 1``.
        file_size_mb: Largest file the program may write (``RLIMIT_FSIZE``), output included.
        tmpfs_mb: Size of the program's writable ``/tmp`` (isolated runs).
        processes: Processes the program may start: the size of its pids cgroup (less
            a few for the sandbox's own) where one can be made, else the headroom of
            ``RLIMIT_NPROC`` over what its user already runs (which the kernel does not
            apply to root).
        output_bytes: How much of stdout and stderr to keep (head and tail).
    """

    timeout: float = attrs.field(default=10.0, validator=_positive)
    memory_mb: int = attrs.field(default=2048, validator=_positive)
    cpu_seconds: int | None = None
    file_size_mb: int = attrs.field(default=16, validator=_positive)
    tmpfs_mb: int = attrs.field(default=64, validator=_positive)
    processes: int = 8
    output_bytes: int = 8192


@attrs.frozen(kw_only=True)
class Execution:
    """The outcome of one sandboxed program.

    Attributes:
        status: ``"passed"``, ``"failed"`` (error, failed test, non-zero exit, killed by
            a limit), ``"timeout"``, or ``"error"`` (the sandbox itself could not run it).
        returncode: Exit status of the program's process (negative: killed by that
            signal); None when it timed out or never started.
        stdout: Captured standard output (head and tail when long), marker removed.
        stderr: Captured standard error (head and tail when long).
        wall_time: Seconds from start to the verdict.
        detail: The verdict's reason (the judge's failing test line, a sandbox error).
        backend: ``"bwrap"`` (isolated by the OS) or ``"unsafe"`` (the weak fallback).
    """

    status: Status
    returncode: int | None
    stdout: str
    stderr: str
    wall_time: float
    detail: str = ""
    backend: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def summary(self) -> str:
        """One line for logs and result files: status plus the reason or last error line."""
        if self.status == "passed":
            return "passed"
        last = self.detail or next((line for line in reversed(self.stderr.strip().splitlines()) if line.strip()), "")
        return f"{self.status}: {last}" if last else self.status


@functools.cache
def network_isolation() -> tuple[str, ...]:
    """The ``unshare`` prefix that isolates network and PID namespaces here, or ``()``.

    Used by the unsafe fallback only. Plain ``unshare`` works for root; other users need
    a user namespace (``-r``). Probed once per process.
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


def _read_fd_capped(fd: int, limit: int) -> bytes:
    """Head and tail of a file (a memfd) without reading all of it."""
    size = os.fstat(fd).st_size
    if size <= 2 * limit:
        return os.pread(fd, size, 0)
    return os.pread(fd, limit, 0) + b"\n...\n" + os.pread(fd, limit, size - limit)


def _memfd(name: str, data: bytes = b"") -> int:
    fd = os.memfd_create(name, 0)
    if data:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
    return fd


@functools.cache
def _sealed_code(name: str) -> int:
    """A sealed memfd holding the marshalled code of ``_runners.<name>`` (made once per process).

    Sealed against writes, so a program's process that inherits it cannot change the
    code of later runs (or of the judge).
    """
    data = marshal.dumps(compile(getattr(_runners, name), f"<daedal-{name.lower()}>", "exec"))
    fd = os.memfd_create(f"daedal-{name.lower()}", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL)
    return fd


# FS_IOC_GETFLAGS / FS_IOC_SETFLAGS and the flags that make a file undeletable.
_FS_IOC_GETFLAGS, _FS_IOC_SETFLAGS = 0x80086601, 0x40086602
_FS_IMMUTABLE_FL, _FS_APPEND_FL = 0x10, 0x20


def _clear_flags(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return
    try:
        buf = bytearray(4)
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, buf)
        flags = int.from_bytes(buf, sys.byteorder)
        if flags & (_FS_IMMUTABLE_FL | _FS_APPEND_FL):
            flags &= ~(_FS_IMMUTABLE_FL | _FS_APPEND_FL)
            fcntl.ioctl(fd, _FS_IOC_SETFLAGS, flags.to_bytes(4, sys.byteorder))
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_tree(path: str) -> bool:
    """Remove a directory tree a program wrote, whatever it did to it; True when it is gone.

    Clears the immutable and append-only flags (root can), restores owner permissions on
    directories, never follows links, and never raises.
    """
    if not os.path.lexists(path):
        return True
    with contextlib.suppress(OSError):
        shutil.rmtree(path)
    if not os.path.lexists(path):
        return True
    for root, dirs, files in os.walk(path, topdown=True, followlinks=False):
        _clear_flags(root)
        with contextlib.suppress(OSError):
            os.chmod(root, stat.S_IRWXU)
        for name in dirs + files:
            full = os.path.join(root, name)
            if not os.path.islink(full):
                _clear_flags(full)
                if os.path.isdir(full):
                    with contextlib.suppress(OSError):
                        os.chmod(full, stat.S_IRWXU)
    shutil.rmtree(path, ignore_errors=True)
    return not os.path.lexists(path)


def _wait(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait for ``proc`` to exit, at most ``timeout`` seconds; True when it did.

    ``Popen.wait(timeout)`` polls with sleeps of up to 50 ms; a pidfd wakes at the exit.
    """
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd here (or already reaped): the polling wait
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    try:
        ready, _, _ = select.select([pidfd], [], [], max(0.0, timeout))
    finally:
        os.close(pidfd)
    if not ready:
        return False
    proc.wait()
    return True


def _kill_group(proc: subprocess.Popen | None) -> None:
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        proc.wait()


class Sandbox:
    """Runs Python programs under :class:`Limits`, isolated by bubblewrap.

    Args:
        limits: Time, memory, file-size and process limits.
        isolate: ``"auto"``: bubblewrap when it works here, else the fallback if
            ``unsafe_exec``, else refuse. ``"bwrap"``: bubblewrap or refuse.
            ``"none"``: the fallback (needs ``unsafe_exec=True``).
        unsafe_exec: Allow the weak fallback (Python guard and rlimits, no file-system
            isolation) where bubblewrap is missing: only for code you trust.
        guard: Install the Python audit-hook guard as well (turning it off is for
            testing the other layers).
        modules: Third-party modules importable inside (those installed here).
        bwrap: Path of the ``bwrap`` executable (default: found on ``PATH``).

    Raises:
        ConfigError: An unknown ``isolate``.
        SandboxUnavailableError: No working bubblewrap and no ``unsafe_exec`` (the
            message says how to install it).
    """

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        isolate: Literal["auto", "bwrap", "none"] = "auto",
        unsafe_exec: bool = False,
        guard: bool = True,
        modules: Sequence[str] = DEFAULT_MODULES,
        bwrap: str | None = None,
    ) -> None:
        if isolate not in ("auto", "bwrap", "none"):
            raise ConfigError(f"`isolate` must be 'auto', 'bwrap' or 'none', got {isolate!r}")
        if not isinstance(unsafe_exec, bool):
            raise ConfigError(f"`unsafe_exec` must be True or False, got {unsafe_exec!r}")
        self.limits = limits or Limits()
        self.guard = guard
        self.modules = tuple(modules)
        self.bwrap: str | None = None
        why = "isolate='none' was asked for"
        if isolate != "none":
            exe = bwrap_path(bwrap)
            if exe is None:
                why = f"bubblewrap (`bwrap`) is not installed{'' if bwrap is None else f' at {bwrap!r}'}"
            else:
                works, reason = bwrap_works(exe)
                if works:
                    self.bwrap = exe
                else:
                    why = f"bubblewrap ({exe}) cannot build a sandbox here: {reason}"
        if self.bwrap is None:
            if isolate == "bwrap" or not unsafe_exec:
                message = (
                    f"{why}, so untrusted code cannot be isolated by the operating system and is not run. "
                    f"Install it: {INSTALL_HINT}. Only for code you trust: pass unsafe_exec=True "
                    "(daedal eval --unsafe-exec) to use the weak in-process guard instead."
                )
                warn_once(message)
                raise SandboxUnavailableError(message)
            warn_once(
                f"{why}: running code WITHOUT operating-system isolation (unsafe_exec). A hostile program can "
                f"read the host's files, forge its verdict and harm the machine. Install bubblewrap: {INSTALL_HINT}"
            )
        self.prefix: tuple[str, ...] = () if self.bwrap else network_isolation()

    @property
    def backend(self) -> str:
        """``"bwrap"`` or ``"unsafe"``."""
        return "bwrap" if self.bwrap else "unsafe"

    @property
    def isolated(self) -> bool:
        """Whether programs are isolated by the operating system (bubblewrap)."""
        return self.bwrap is not None

    # -- processes ---------------------------------------------------------------------

    def _limits_arg(self, nproc: int | None, memory_mb: int) -> str:
        """The rlimits the runner sets on itself first thing (see ``_runners._LIMITS``).

        Set inside rather than between fork and exec: a ``preexec_fn`` forces a full
        ``fork`` of the evaluator (tens of ms for a process with torch loaded) where a
        ``vfork`` costs nothing. Nothing of the program runs before them, and the program
        cannot raise a hard limit again (no capabilities in its namespace).
        """
        lim = self.limits
        cpu = lim.cpu_seconds if lim.cpu_seconds is not None else math.ceil(lim.timeout) + 1
        values = (int(memory_mb) << 20, cpu, int(lim.file_size_mb) << 20, -1 if nproc is None else nproc)
        return ",".join(str(v) for v in values)

    def _spawn_candidate(
        self, mode: str, program: str, fds: Sequence[int], stdout: int, stderr: int, work: str | None
    ) -> tuple[subprocess.Popen, PidsCgroup]:
        """Start the program's process (inside bubblewrap, or in ``work`` for the fallback) in its pids cgroup."""
        lim = self.limits
        # The kernel does not apply RLIMIT_NPROC to root: no need to count (a scan of /proc).
        nproc = None if os.getuid() == 0 else _user_process_count() + lim.processes + 4
        cgroup = PidsCgroup(lim.processes + 4)
        limits = self._limits_arg(nproc, lim.memory_mb)
        fd_args = [str(fd) for fd in fds]
        try:
            if self.bwrap is not None:
                lay = layout(self.modules)
                program_fd = _memfd("daedal-program", program.encode("utf-8"))
                try:
                    code = _sealed_code("CANDIDATE")
                    argv = [
                        lay.python,
                        "-I",
                        "-S",
                        "-B",
                        "-c",
                        _runners.BOOT,
                        str(code),
                        limits,
                        mode,
                        "process" if self.guard else "off",
                        PROGRAM_PATH,
                        os.pathsep.join(lay.sys_path),
                        *fd_args,
                    ]
                    cmd = bwrap_command(
                        self.bwrap, argv, lay=lay, program_fd=program_fd, tmpfs_bytes=int(lim.tmpfs_mb) * 1024 * 1024
                    )
                    proc = subprocess.Popen(
                        cgroup.wrap(cmd),
                        stdin=subprocess.DEVNULL,
                        stdout=stdout,
                        stderr=stderr,
                        env={"PATH": "/usr/bin:/bin"},
                        pass_fds=(program_fd, code, *fds),
                        start_new_session=True,
                    )
                finally:
                    os.close(program_fd)
                return proc, cgroup
            assert work is not None
            with open(os.path.join(work, "program.py"), "w", encoding="utf-8") as f:
                f.write(program)
            code = _sealed_code("CANDIDATE")
            argv = [
                *self.prefix,
                sys.executable,
                "-I",
                "-B",
                "-c",
                _runners.BOOT,
                str(code),
                limits,
                mode,
                "full" if self.guard else "off",
                "program.py",
                "",
                *fd_args,
            ]
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "LANG": "C.UTF-8",
                "HOME": work,
                "TMPDIR": work,
                "PYTHONHASHSEED": "0",
            }
            proc = subprocess.Popen(
                cgroup.wrap(argv),
                cwd=work,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                pass_fds=(code, *fds),
                start_new_session=True,
            )
            return proc, cgroup
        except BaseException:
            cgroup.close()
            raise

    @contextlib.contextmanager
    def _workspace(self):
        """The fallback's working directory (removed whatever the program did); None when isolated."""
        if self.bwrap is not None:
            yield None
            return
        work = tempfile.mkdtemp(prefix="daedal-sandbox-")
        try:
            yield work
        finally:
            if not remove_tree(work):
                warn_once(f"could not remove the sandbox directory {work}")

    def _outputs(self, out: int, err: int) -> tuple[bytes, str]:
        lim = self.limits
        return _read_fd_capped(out, lim.output_bytes), _clip(_read_fd_capped(err, lim.output_bytes), lim.output_bytes)

    # -- the paper's protocol: one process -------------------------------------------

    def run(self, program: str) -> Execution:
        """Run one program to its end, a limit, or the timeout (program and tests in one process).

        Args:
            program: Python source, run as ``__main__``.

        Returns:
            The :class:`Execution`; never raises for anything the program does.
        """
        if not isinstance(program, str):
            raise ConfigError(f"`program` must be Python source text, got {type(program).__name__}")
        start = time.monotonic()
        try:
            return self._run(program, start)
        except Exception as error:  # the sandbox's own failure: this program's verdict only
            return Execution(
                status="error",
                returncode=None,
                stdout="",
                stderr="",
                wall_time=time.monotonic() - start,
                detail=f"sandbox error: {type(error).__name__}: {error}",
                backend=self.backend,
            )

    def _run(self, program: str, start: float) -> Execution:
        lim = self.limits
        nonce = secrets.token_hex(16).encode()
        out, err = _memfd("daedal-stdout"), _memfd("daedal-stderr")
        proc = None
        cgroup: PidsCgroup | None = None
        timed_out = False
        try:
            with self._workspace() as work:
                nonce_r, nonce_w = os.pipe()
                try:
                    os.write(nonce_w, nonce)
                    os.close(nonce_w)
                    nonce_w = -1
                    proc, cgroup = self._spawn_candidate("program", program, [nonce_r], out, err, work)
                finally:
                    os.close(nonce_r)
                    if nonce_w >= 0:
                        os.close(nonce_w)
                try:
                    timed_out = not _wait(proc, lim.timeout)
                finally:
                    # The whole group, also after a normal exit: a program may leave children.
                    _kill_group(proc)
            wall = time.monotonic() - start
            stdout_bytes, stderr = self._outputs(out, err)
        finally:
            if cgroup is not None:
                cgroup.close()
            os.close(out)
            os.close(err)
        marker = b"\n" + nonce + b"\n"
        finished = stdout_bytes.endswith(marker)
        if finished:
            stdout_bytes = stdout_bytes[: -len(marker)]
        if timed_out:
            status: Status = "timeout"
        elif proc.returncode == 0 and finished:
            status = "passed"
        else:
            status = "failed"
        return Execution(
            status=status,
            returncode=None if timed_out else proc.returncode,
            stdout=_clip(stdout_bytes, lim.output_bytes),
            stderr=stderr,
            wall_time=wall,
            detail="timed out" if timed_out else "",
            backend=self.backend,
        )

    # -- the default protocol: a trusted judge ---------------------------------------

    def check(self, program: str, tests: str) -> Execution:
        """Run ``program``'s definitions in the sandbox and ``tests`` in a trusted judge process.

        The tests see the program's functions and values as stand-ins: calling one sends
        the arguments to the program's process and returns the result as plain data.
        Only the judge decides "passed", on a channel the program cannot reach.

        Args:
            program: Python source with the definitions (run as ``__main__``).
            tests: Python source of the tests (benchmark data: trusted); "passed" when it
                runs to its end without an exception.

        Returns:
            The :class:`Execution` (``stdout``/``stderr`` are the program's, ``detail``
            the judge's reason); never raises for anything the program does.
        """
        for name, value in (("program", program), ("tests", tests)):
            if not isinstance(value, str):
                raise ConfigError(f"`{name}` must be Python source text, got {type(value).__name__}")
        start = time.monotonic()
        try:
            return self._check(program, tests, start)
        except Exception as error:
            return Execution(
                status="error",
                returncode=None,
                stdout="",
                stderr="",
                wall_time=time.monotonic() - start,
                detail=f"sandbox error: {type(error).__name__}: {error}",
                backend=self.backend,
            )

    def _check(self, program: str, tests: str, start: float) -> Execution:
        lim = self.limits
        out, err = _memfd("daedal-stdout"), _memfd("daedal-stderr")
        judge_out = _memfd("daedal-judge-out")
        tests_fd = _memfd("daedal-tests", tests.encode("utf-8"))
        cand = judge = None
        cgroup: PidsCgroup | None = None
        timed_out = False
        verdict_data = b""
        judge_tail = ""
        ends: list[int] = []
        try:
            with self._workspace() as work:
                req_r, req_w = os.pipe()
                rep_r, rep_w = os.pipe()
                ver_r, ver_w = os.pipe()
                ends = [req_r, req_w, rep_r, rep_w, ver_w]
                try:
                    cand, cgroup = self._spawn_candidate("serve", program, [req_r, rep_w], out, err, work)
                    judge_code = _sealed_code("JUDGE")
                    judge_limits = self._limits_arg(
                        None if os.getuid() == 0 else _user_process_count() + 64, max(lim.memory_mb, 512)
                    )
                    judge = subprocess.Popen(
                        [
                            layout(self.modules).python,
                            "-I",
                            "-S",
                            "-B",
                            "-c",
                            _runners.BOOT,
                            str(judge_code),
                            judge_limits,
                            str(req_w),
                            str(rep_r),
                            str(ver_w),
                            str(_REPLY_LIMIT),
                            _judge_path(),
                        ],
                        stdin=tests_fd,
                        stdout=judge_out,
                        stderr=judge_out,
                        pass_fds=(judge_code, req_w, rep_r, ver_w),
                        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"},
                        start_new_session=True,
                    )
                finally:
                    for fd in ends:
                        os.close(fd)
                    ends = []
                timed_out = not _wait(judge, lim.timeout - (time.monotonic() - start))
                os.set_blocking(ver_r, False)
                with contextlib.suppress(OSError):
                    verdict_data = os.read(ver_r, 65536)
                os.close(ver_r)
                _kill_group(judge)
                _kill_group(cand)
            wall = time.monotonic() - start
            stdout_bytes, stderr = self._outputs(out, err)
            judge_tail = _read_fd_capped(judge_out, 1024).decode("utf-8", errors="replace").strip()
        finally:
            _kill_group(judge)
            _kill_group(cand)
            if cgroup is not None:
                cgroup.close()
            for fd in (out, err, judge_out, tests_fd, *ends):
                with contextlib.suppress(OSError):
                    os.close(fd)
        status: Status
        detail = ""
        if timed_out:
            status, detail = "timeout", "timed out"
        else:
            status, detail = _parse_verdict(verdict_data, judge.returncode if judge else None)
            if status == "error":  # the judge itself failed: say how, for whoever debugs it
                detail += f": {judge_tail[-300:]}" if judge_tail else ""
        return Execution(
            status=status,
            returncode=None if timed_out or cand is None else cand.returncode,
            stdout=_clip(stdout_bytes, lim.output_bytes),
            stderr=stderr,
            wall_time=wall,
            detail=detail,
            backend=self.backend,
        )

    # -- many --------------------------------------------------------------------------

    def run_many(self, programs: Sequence[str] | Iterable[str], *, workers: int = 1) -> list[Execution]:
        """:meth:`run` for each program, ``workers`` at a time, results in order."""
        programs = list(programs)
        return self._many(self.run, [(p,) for p in programs], workers)

    def check_many(
        self, pairs: Sequence[tuple[str, str]] | Iterable[tuple[str, str]], *, workers: int = 1
    ) -> list[Execution]:
        """:meth:`check` for each ``(program, tests)`` pair, ``workers`` at a time, results in order."""
        return self._many(self.check, [tuple(p) for p in pairs], workers)

    @staticmethod
    def _many(fn, items: list[tuple], workers: int) -> list[Execution]:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"`workers` must be a positive int, got {workers!r}")
        if workers == 1 or len(items) <= 1:
            return [fn(*item) for item in items]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda item: fn(*item), items))


@functools.cache
def _judge_path() -> str:
    """``sys.path`` entries of this interpreter's packages, for the judge (which starts without ``site``)."""
    import site

    paths = [*site.getsitepackages(), site.getusersitepackages()]
    return os.pathsep.join(
        p for p in dict.fromkeys([*(q for q in sys.path if "-packages" in q), *paths]) if os.path.isdir(p)
    )


def _parse_verdict(data: bytes, returncode: int | None) -> tuple[Status, str]:
    """The judge's verdict line; anything else (a dead judge) is a failure."""
    import json

    try:
        verdict = json.loads(data.decode("utf-8"))
        status, detail = verdict["status"], str(verdict.get("detail", ""))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return "error", f"the judge gave no verdict (exit status {returncode})"
    if returncode != 0 or status not in ("passed", "failed", "error"):
        return "error", f"the judge gave no verdict (exit status {returncode})"
    return status, detail
