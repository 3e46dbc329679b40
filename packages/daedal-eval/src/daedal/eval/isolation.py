"""Operating-system isolation of untrusted programs with bubblewrap (``bwrap``).

:func:`bwrap_command` builds the command line that runs this interpreter inside a new
user, mount, PID, network, IPC, UTS and cgroup namespace, as uid/gid 65534 without
capabilities, with ``no_new_privs`` (bubblewrap always sets it), a fresh ``/proc`` of the
new PID namespace, a minimal ``/dev`` and this view of the file system:

* read-only: ``/usr`` and the ``/bin``, ``/lib*`` links or directories, a few files of
  ``/etc`` the dynamic loader reads, the interpreter binary, its shared library and its
  standard library;
* read-only, one by one: the allowed third-party modules (numpy, scipy, sympy... see
  :data:`DEFAULT_MODULES`), each at its own path, so the rest of ``site-packages``
  (the evaluator, the benchmarks' data files, other packages) is not there at all;
* writable: ``/tmp``, a private size-limited ``tmpfs`` that is also the working
  directory and vanishes with the namespace;
* the program itself, read-only, at ``/sandbox/program.py``.

Nothing of the host's home, run directory, data sets or evaluator source is visible.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import secrets
import shutil
import subprocess
import sys
import sysconfig
import time
import warnings
from collections.abc import Iterable, Sequence

import attrs

from daedal.core.errors import DaedalWarning

__all__ = [
    "DEFAULT_MODULES",
    "INSTALL_HINT",
    "Layout",
    "PidsCgroup",
    "bwrap_command",
    "bwrap_path",
    "bwrap_works",
    "layout",
    "pids_cgroup_base",
]

#: Third-party modules a candidate may import (those installed here); the scientific
#: stack and what it needs at import time.
DEFAULT_MODULES: tuple[str, ...] = (
    "numpy",
    "scipy",
    "sympy",
    "mpmath",
    "pandas",
    "dateutil",
    "pytz",
    "tzdata",
    "six",
    "typing_extensions",
    "regex",
    "sortedcontainers",
    "networkx",
)

INSTALL_HINT = "apt-get install -y bubblewrap   (Debian/Ubuntu; Fedora: dnf install bubblewrap)"

#: Where the program is placed inside the sandbox, and the writable directory.
PROGRAM_PATH = "/sandbox/program.py"
WORK_DIR = "/tmp"
SANDBOX_UID = 65534

_ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/localtime")


@attrs.frozen
class Layout:
    """What of this interpreter is visible inside the sandbox.

    Attributes:
        python: The real interpreter binary (a virtualenv's ``python`` resolved).
        read_only: Host paths bound read-only at the same place.
        masked: Directories inside those paths replaced by an empty tmpfs
            (``site-packages`` under the standard library).
        module_paths: Allowed third-party module directories or files.
        sys_path: Directories the runner appends to ``sys.path`` inside.
    """

    python: str
    read_only: tuple[str, ...]
    masked: tuple[str, ...]
    module_paths: tuple[str, ...]
    sys_path: tuple[str, ...]


def _module_locations(name: str) -> list[str]:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return [os.path.realpath(p) for p in spec.submodule_search_locations if os.path.isdir(p)]
    if spec.origin and os.path.isfile(spec.origin):
        return [os.path.realpath(spec.origin)]
    return []


@functools.cache
def layout(modules: tuple[str, ...] = DEFAULT_MODULES) -> Layout:
    """The sandbox's view of this interpreter, with ``modules`` importable (cached)."""
    python = os.path.realpath(sys.executable)
    paths = sysconfig.get_paths()
    stdlib = os.path.realpath(paths["stdlib"])
    platstdlib = os.path.realpath(paths["platstdlib"])
    read_only = {python, stdlib, platstdlib}
    libdir, ldlib = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("LDLIBRARY")
    if libdir and ldlib and os.path.exists(os.path.join(libdir, ldlib)):
        lib = os.path.realpath(os.path.join(libdir, ldlib))
        read_only.add(lib)
        read_only.add(os.path.join(libdir, ldlib))
    # Every site directory that lies inside a bound path is hidden; the allowed
    # modules are then bound one by one.
    site_dirs = {os.path.realpath(p) for p in sys.path if p and ("site-packages" in p or "dist-packages" in p)}
    site_dirs |= {os.path.realpath(paths[k]) for k in ("purelib", "platlib")}
    base = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix})
    site_dirs |= {os.path.realpath(base[k]) for k in ("purelib", "platlib")}
    bound = [p for p in read_only if os.path.isdir(p)] + ["/usr"]
    masked = sorted(d for d in site_dirs if os.path.isdir(d) and any(d.startswith(b + os.sep) for b in bound))
    module_paths: list[str] = []
    sys_path: list[str] = []
    for name in modules:
        for loc in _module_locations(name):
            parent = os.path.dirname(loc)
            module_paths.append(loc)
            libs = os.path.join(parent, name + ".libs")  # vendored shared libraries of a wheel
            if os.path.isdir(libs):
                module_paths.append(libs)
            if parent not in sys_path:
                sys_path.append(parent)
    return Layout(
        python=python,
        read_only=tuple(sorted(p for p in read_only if os.path.exists(p))),
        masked=tuple(masked),
        module_paths=tuple(dict.fromkeys(module_paths)),
        sys_path=tuple(sys_path),
    )


def bwrap_path(explicit: str | None = None) -> str | None:
    """The ``bwrap`` executable: ``explicit`` when given (None if it does not exist), else from ``PATH``."""
    if explicit is not None:
        return explicit if os.path.isfile(explicit) and os.access(explicit, os.X_OK) else None
    return shutil.which("bwrap")


def bwrap_command(
    bwrap: str,
    argv: Sequence[str],
    *,
    lay: Layout,
    program_fd: int,
    tmpfs_bytes: int,
    disable_userns: bool = True,
) -> list[str]:
    """The ``bwrap`` command line that runs ``argv`` (its first item inside ``lay``) isolated.

    Args:
        bwrap: The bubblewrap executable.
        argv: The command inside (``[python, ...]``).
        lay: What of the interpreter to show.
        program_fd: A readable descriptor whose content becomes ``/sandbox/program.py``.
        tmpfs_bytes: Size of the writable ``/tmp``.
        disable_userns: Forbid creating further user namespaces inside.
    """
    cmd = [
        bwrap,
        "--unshare-all",
        "--unshare-user",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_UID),
        "--hostname",
        "sandbox",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--clearenv",
        "--setenv",
        "PATH",
        "/usr/bin:/bin",
        "--setenv",
        "HOME",
        WORK_DIR,
        "--setenv",
        "TMPDIR",
        WORK_DIR,
        "--setenv",
        "LANG",
        "C.UTF-8",
        "--setenv",
        "PYTHONHASHSEED",
        "0",
        "--setenv",
        "OMP_NUM_THREADS",
        "1",
        "--setenv",
        "OPENBLAS_NUM_THREADS",
        "1",
        "--setenv",
        "MKL_NUM_THREADS",
        "1",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    if disable_userns:
        cmd.append("--disable-userns")
    # The writable /tmp comes before every read-only bind: an interpreter or virtualenv that
    # lives under /tmp (a CI clone there, say) is then bound on top of it instead of hidden.
    cmd += ["--size", str(int(tmpfs_bytes)), "--tmpfs", WORK_DIR]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            cmd += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            cmd += ["--ro-bind", top, top]
    for path in _ETC_FILES:
        if os.path.exists(path):
            cmd += ["--ro-bind", path, path]
    for path in lay.read_only:
        if not path.startswith("/usr/"):
            cmd += ["--ro-bind", path, path]
    for path in lay.masked:
        cmd += ["--tmpfs", path]
    for path in lay.module_paths:
        cmd += ["--ro-bind", path, path]
    for path in lay.masked:
        cmd += ["--remount-ro", path]
    cmd += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        str(max(1 << 20, int(tmpfs_bytes) // 4)),
        "--tmpfs",
        "/dev/shm",
        "--remount-ro",
        "/dev",
        "--ro-bind-data",
        str(program_fd),
        PROGRAM_PATH,
        # The root bubblewrap builds is a tmpfs: read-only, so /tmp stays the only
        # writable place (and the only one that takes space).
        "--remount-ro",
        "/",
        "--chdir",
        WORK_DIR,
        "--",
        *argv,
    ]
    return cmd


@functools.cache
def bwrap_works(bwrap: str, disable_userns: bool = True) -> tuple[bool, str]:
    """Whether ``bwrap`` can build the sandbox here (probed once): ``(works, why not)``."""
    lay = layout()
    read, write = os.pipe()
    os.write(write, b"pass\n")
    os.close(write)
    try:
        cmd = bwrap_command(
            bwrap,
            [lay.python, "-I", "-S", "-c", "import sys; sys.exit(0)"],
            lay=lay,
            program_fd=read,
            tmpfs_bytes=1 << 20,
            disable_userns=disable_userns,
        )
        done = subprocess.run(cmd, capture_output=True, timeout=30, pass_fds=(read,))
    except (OSError, subprocess.SubprocessError) as error:
        return False, str(error)
    finally:
        os.close(read)
    if done.returncode != 0:
        return False, done.stderr.decode(errors="replace").strip()[-500:] or f"exit status {done.returncode}"
    return True, ""


_warned: set[str] = set()


def warn_once(message: str) -> None:
    """Say ``message`` once per process, loudly (a warning and standard error)."""
    if message in _warned:
        return
    _warned.add(message)
    warnings.warn(message, DaedalWarning, stacklevel=3)
    print(f"daedal.eval.sandbox: {message}", file=sys.stderr)


def unique(paths: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(paths))


# -- a pids cgroup per program ----------------------------------------------------------
#
# RLIMIT_NPROC counts processes per real uid and the kernel exempts root, whose uid the
# sandbox's uid maps to when the evaluator runs as root. A cgroup of the "pids"
# controller caps the whole tree whatever its uid; it is used where this process may
# create one (cgroup v1 "pids" hierarchy writable, as for root in most containers).

_PIDS_ROOT = "/sys/fs/cgroup/pids"


@functools.cache
def pids_cgroup_base() -> str | None:
    """The pids-cgroup directory in which this process can create children, or None."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3 and "pids" in parts[1].split(","):
            base = os.path.join(_PIDS_ROOT, parts[2].lstrip("/"))
            probe = os.path.join(base, f"daedal-probe-{os.getpid()}")
            try:
                os.mkdir(probe)
                os.rmdir(probe)
            except OSError:
                return None
            _remove_stale_cgroups(base)
            return base
    return None


def _remove_stale_cgroups(base: str) -> None:
    """Remove the empty cgroups of evaluators that died before removing theirs."""
    for name in os.listdir(base):
        parts = name.split("-")
        if len(parts) == 3 and parts[0] == "daedal" and parts[1].isdigit() and not os.path.exists(f"/proc/{parts[1]}"):
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(base, name))


class PidsCgroup:
    """A pids cgroup of at most ``limit`` tasks for one program's tree (a no-op where unavailable)."""

    def __init__(self, limit: int) -> None:
        self.path: str | None = None
        base = pids_cgroup_base()
        if base is None:
            return
        path = os.path.join(base, f"daedal-{os.getpid()}-{secrets.token_hex(6)}")
        try:
            os.mkdir(path)
            with open(os.path.join(path, "pids.max"), "w", encoding="ascii") as f:
                f.write(str(int(limit)))
        except OSError:
            with contextlib.suppress(OSError):
                os.rmdir(path)
            return
        self.path = path

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run from a shell that first moves itself into the cgroup (so is the whole tree).

        A shell rather than a ``preexec_fn``, which would force a full ``fork`` of the evaluator.
        """
        if self.path is None:
            return list(argv)
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', os.path.join(self.path, "cgroup.procs"), *argv]

    def close(self) -> None:
        """Kill whatever is left in it and remove it; never raises."""
        if self.path is None:
            return
        deadline = time.monotonic() + 5
        pause = 0.0005
        while time.monotonic() < deadline:
            try:
                with open(os.path.join(self.path, "cgroup.procs"), encoding="ascii") as f:
                    pids = [int(p) for p in f.read().split()]
            except OSError:
                break
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, 9)
            time.sleep(pause)  # the killed tree is still exiting
            pause = min(pause * 2, 0.02)
        with contextlib.suppress(OSError):
            os.rmdir(self.path)
        self.path = None
