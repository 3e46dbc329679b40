"""The sandbox contains hostile programs, scores them as failures and survives them."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from daedal.core.errors import ConfigError
from daedal.eval.sandbox import Limits, Sandbox, network_isolation

LIMITS = Limits(timeout=2.0, memory_mb=256)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(LIMITS)


@pytest.fixture(scope="module")
def bare() -> Sandbox:
    """Kernel layers only: no Python guard."""
    return Sandbox(LIMITS, guard=False)


def test_a_correct_program_passes_and_its_output_is_kept(sandbox):
    out = sandbox.run("print('hello')\nassert sum([1, 2]) == 3\n")
    assert out.passed, out.stderr
    assert out.returncode == 0
    assert out.stdout.strip() == "hello"


def test_a_failing_assertion_fails(sandbox):
    out = sandbox.run("assert 1 + 1 == 3, 'arithmetic'\n")
    assert out.status == "failed"
    assert "AssertionError: arithmetic" in out.stderr


@pytest.mark.parametrize("exit_code", ["import os\nos._exit(0)\n", "import sys\nsys.exit(0)\n", "raise SystemExit\n"])
def test_exiting_early_with_status_zero_is_not_a_pass(sandbox, exit_code):
    out = sandbox.run(exit_code + "assert False\n")
    assert out.status == "failed"


def test_infinite_loop_is_killed_at_the_timeout(sandbox):
    start = time.monotonic()
    out = sandbox.run("while True:\n    pass\n")
    assert out.status == "timeout"
    assert out.returncode is None
    assert time.monotonic() - start < LIMITS.timeout + 3


def _processes_with_cmdline(args: list[bytes]) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if f.read().split(b"\0")[: len(args)] == args:
                        found.append(pid)
            except OSError:
                continue
    return found


def test_children_of_a_timed_out_program_die_with_it(bare):
    # Without the guard the program may fork; the whole group must still go.
    duration = f"{29 + (os.getpid() % 1000) / 1000:.3f}"  # a command line no one else runs
    program = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        f"    os.execvp('sleep', ['sleep', '{duration}'])\n"
        "time.sleep(30)\n"
    )
    out = bare.run(program)
    assert out.status == "timeout"
    time.sleep(0.3)
    assert _processes_with_cmdline([b"sleep", duration.encode()]) == []


@pytest.mark.parametrize("guard", [True, False], ids=["guard", "kernel-only"])
def test_memory_bomb_is_contained(guard):
    box = Sandbox(LIMITS, guard=guard)
    out = box.run("blocks = []\nwhile True:\n    blocks.append(bytearray(32 * 1024 * 1024))\n")
    assert out.status == "failed"
    assert "MemoryError" in out.stderr


def test_one_huge_allocation_is_refused(sandbox):
    out = sandbox.run("x = bytearray(8 * 1024 ** 3)\n")
    assert out.status == "failed"
    assert "MemoryError" in out.stderr


def test_fork_bomb_is_contained(sandbox):
    out = sandbox.run("import os\nwhile True:\n    os.fork()\n")
    assert out.status == "failed"
    assert "os.fork" in out.stderr


def test_subprocess_and_system_are_refused(sandbox):
    for program in ("import subprocess\nsubprocess.run(['true'])\n", "import os\nos.system('true')\n"):
        out = sandbox.run(program)
        assert out.status == "failed"
        assert "not allowed" in out.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="the kernel does not apply RLIMIT_NPROC to root")
def test_fork_bomb_hits_the_process_limit_without_the_guard(bare):
    out = bare.run("import os\nfor _ in range(10_000):\n    os.fork()\n")
    assert out.status in ("failed", "timeout")
    assert "BlockingIOError" in out.stderr or "Resource temporarily unavailable" in out.stderr


def test_write_outside_the_temporary_directory_is_refused(sandbox, tmp_path):
    target = tmp_path / "escaped.txt"
    out = sandbox.run(f"with open({str(target)!r}, 'w') as f:\n    f.write('x')\n")
    assert out.status == "failed"
    assert not target.exists()


@pytest.mark.parametrize(
    "program",
    [
        "import os\nos.chdir('/')\nopen('daedal-escape.txt', 'w').write('x')\n",
        "import os\nos.symlink({target!r}, 'link')\nopen('link', 'w').write('x')\n",
        "import pathlib\npathlib.Path({target!r}).write_text('x')\n",
        "import os\nfd = os.open({target!r}, os.O_WRONLY | os.O_CREAT)\nos.write(fd, b'x')\n",
    ],
    ids=["chdir", "symlink", "pathlib", "os.open"],
)
def test_indirect_writes_outside_are_refused(sandbox, tmp_path, program):
    target = tmp_path / "escaped.txt"
    out = sandbox.run(program.format(target=str(target)))
    assert out.status == "failed"
    assert not target.exists()
    assert not os.path.exists("/daedal-escape.txt")


def test_removing_files_outside_is_refused(sandbox, tmp_path):
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    out = sandbox.run(f"import os\nos.remove({str(victim)!r})\n")
    assert out.status == "failed"
    assert victim.read_text() == "precious"


def test_writes_inside_the_temporary_directory_are_fine(sandbox):
    out = sandbox.run("open('scratch.txt', 'w').write('ok')\nassert open('scratch.txt').read() == 'ok'\n")
    assert out.passed, out.stderr


def test_output_beyond_the_file_size_limit_is_a_failure():
    box = Sandbox(Limits(timeout=5, memory_mb=256, file_size_mb=1))
    out = box.run("import sys\nfor _ in range(100_000):\n    sys.stdout.write('x' * 100)\n")
    assert out.status == "failed"
    assert len(out.stdout) < 50_000  # only head and tail were kept


class _Listener:
    """A local TCP server that records whether anyone connected."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self.thread.join()
        self.sock.close()


@pytest.mark.parametrize("guard", [True, False], ids=["guard", "kernel-only"])
def test_network_connection_attempt_is_contained(guard):
    box = Sandbox(LIMITS, guard=guard)
    if not guard and not box.isolated:
        pytest.skip("no network namespace here: only the guard isolates the network")
    listener = _Listener()
    try:
        # Sanity: the listener is reachable from outside the sandbox.
        socket.create_connection(("127.0.0.1", listener.port), timeout=1).close()
        time.sleep(0.3)
        assert listener.connections == 1
        program = (
            "import socket\n"
            "s = socket.socket()\n"
            "s.settimeout(1)\n"
            f"s.connect(('127.0.0.1', {listener.port}))\n"
            "s.sendall(b'leak')\n"
        )
        out = box.run(program)
        time.sleep(0.3)
    finally:
        listener.close()
    assert out.status == "failed"
    assert listener.connections == 1


@pytest.mark.parametrize("guard", [True, False], ids=["guard", "kernel-only"])
def test_killing_the_parent_is_contained(guard):
    box = Sandbox(LIMITS, guard=guard)
    if not guard and not box.isolated and os.geteuid() == 0:
        pytest.skip("root without a PID namespace could really kill the test process")
    me = os.getpid()
    for program in (
        f"import os, signal\nos.kill({me}, signal.SIGKILL)\nassert False\n",
        "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nassert False\n",
        f"import os, signal\nos.killpg(os.getpgid({me}), signal.SIGKILL)\nassert False\n",
    ):
        out = box.run(program)
        assert out.status == "failed"
    # Still here: the evaluator survived, and it still runs programs.
    assert box.run("assert True\n").passed


def test_ctypes_is_refused(sandbox):
    out = sandbox.run("import ctypes\nctypes.CDLL(None).kill(1, 9)\n")
    assert out.status == "failed"


def test_run_many_keeps_order_and_survives_hostile_neighbours(sandbox):
    programs = ["assert True\n", "while True: pass\n", "import os\nos.fork()\n", "x = 1\nassert x == 1\n"]
    outs = sandbox.run_many(programs, workers=2)
    assert [o.status for o in outs] == ["passed", "timeout", "failed", "passed"]


def test_bad_arguments_name_the_argument():
    with pytest.raises(ConfigError, match="timeout"):
        Limits(timeout=0)
    with pytest.raises(ConfigError, match="isolate"):
        Sandbox(isolate="maybe")
    with pytest.raises(ConfigError, match="workers"):
        Sandbox(LIMITS).run_many(["pass"], workers=0)
    with pytest.raises(ConfigError, match="program"):
        Sandbox(LIMITS).run(b"pass")  # type: ignore[arg-type]


def test_network_isolation_probe_is_consistent():
    prefix = network_isolation()
    assert prefix == () or prefix[0].endswith("unshare")
