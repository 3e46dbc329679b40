"""Runs: JSONL results, manifest, resume after a kill, no duplicates, re-scoring, metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from daedal.core import Engine, FixedLength
from daedal.core.errors import ConfigError
from daedal.core.testing import FakeAdapter
from daedal.eval.metrics import aggregate
from daedal.eval.runner import load_manifest, read_records, rescore, run_suite, sample_seed
from daedal.eval.suites.gsm8k import GSM8K
from tests.eval.eval_helpers import boxed_response

N = 6
VOLATILE = {"wall_time", "peak_memory"}


def _engine(gen_length: int = 12) -> Engine:
    return Engine(FakeAdapter(eos_bias=2.0), policies=[FixedLength(gen_length=gen_length)])


class _CrashingEngine:
    """Delegates to an engine, but dies (like Ctrl-C) at the (after+1)-th generate call."""

    def __init__(self, engine: Engine, after: int) -> None:
        self._engine, self.after, self.calls = engine, after, 0

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def generate(self, *args, **kwargs):
        if self.calls >= self.after:
            raise KeyboardInterrupt
        self.calls += 1
        return self._engine.generate(*args, **kwargs)


class _CountingEngine(_CrashingEngine):
    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, after=10**9)


def _stable(records):
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in records]


@pytest.fixture()
def suite(gsm8k_path):
    return GSM8K(path=gsm8k_path, limit=N)


def test_a_run_writes_one_record_per_sample_a_manifest_and_a_summary(tmp_path, suite):
    summary = run_suite(_engine(), suite, tmp_path, progress=False, model={"model": "fake"})
    records = read_records(tmp_path / "samples.jsonl")
    assert [r["index"] for r in records] == list(range(N))
    first = records[0]
    assert first["doc_id"] == "gsm8k/0" and first["target"] == "18"
    assert first["gen_length"] == 12 and first["forward_passes"] == 12
    assert first["doc"]["question"].startswith("Janet")
    manifest = load_manifest(tmp_path)
    assert manifest["suite"]["name"] == "gsm8k" and manifest["suite"]["n_docs"] == N
    assert manifest["policies"][0]["type"].endswith("FixedLength")
    assert manifest["policies"][0]["params"]["gen_length"] == 12
    assert manifest["packages"]["torch"] and "git" in manifest and manifest["seed"] == 0
    assert summary["complete"] and summary["metrics"]["n"] == N
    assert json.loads((tmp_path / "summary.json").read_text())["metrics"] == summary["metrics"]


def test_killed_run_resumes_without_rerunning_or_duplicating(tmp_path, suite):
    clean = run_suite(_engine(), suite, tmp_path / "clean", progress=False)
    crashing = _CrashingEngine(_engine(), after=3)
    with pytest.raises(KeyboardInterrupt):
        run_suite(crashing, suite, tmp_path / "run", progress=False)
    assert [r["index"] for r in read_records(tmp_path / "run" / "samples.jsonl")] == [0, 1, 2]
    counting = _CountingEngine(_engine())
    resumed = run_suite(counting, suite, tmp_path / "run", progress=False)
    assert counting.calls == N - 3  # only the missing samples were generated
    records = read_records(tmp_path / "run" / "samples.jsonl")
    assert sorted(r["index"] for r in records) == list(range(N))
    assert len(records) == N
    assert _stable(records) == _stable(read_records(tmp_path / "clean" / "samples.jsonl"))
    assert resumed["metrics"]["accuracy"] == clean["metrics"]["accuracy"]
    # A third run has nothing left to do.
    again = _CountingEngine(_engine())
    run_suite(again, suite, tmp_path / "run", progress=False)
    assert again.calls == 0 and len(read_records(tmp_path / "run" / "samples.jsonl")) == N


def test_a_half_written_last_line_is_dropped_and_redone(tmp_path, suite):
    with pytest.raises(KeyboardInterrupt):
        run_suite(_CrashingEngine(_engine(), after=2), suite, tmp_path, progress=False)
    with open(tmp_path / "samples.jsonl", "ab") as f:
        f.write(b'{"index": 2, "doc_id": "gsm8k/2", "text": "trunc')  # killed mid-write
    run_suite(_engine(), suite, tmp_path, progress=False)
    lines = (tmp_path / "samples.jsonl").read_bytes().splitlines()
    records = [json.loads(line) for line in lines]  # every line parses
    assert [r["index"] for r in records] == list(range(N))


def test_resuming_with_other_settings_is_refused(tmp_path, suite):
    run_suite(_engine(12), suite, tmp_path, progress=False)
    with pytest.raises(ConfigError, match="policies"):
        run_suite(_engine(16), suite, tmp_path, progress=False)
    with pytest.raises(ConfigError, match="seed"):
        run_suite(_engine(12), suite, tmp_path, progress=False, seed=3)
    summary = run_suite(_engine(16), suite, tmp_path, progress=False, overwrite=True)
    assert summary["metrics"]["gen_length"] == 16.0
    assert len(read_records(tmp_path / "samples.jsonl")) == N


def test_rescore_uses_recorded_texts_without_generating(tmp_path, suite):
    run_suite(_engine(), suite, tmp_path, progress=False)
    path = tmp_path / "samples.jsonl"
    records = read_records(path)
    assert not any(r["correct"] for r in records)
    records[1]["text"] = boxed_response(records[1]["target"])  # as if a scorer bug had hidden a right answer
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    summary = rescore(tmp_path)
    after = read_records(path)
    assert [r["correct"] for r in after] == [i == 1 for i in range(N)]
    assert after[1]["pad"] == 3 and after[1]["prediction"] == "18" or after[1]["prediction"] == records[1]["target"]
    assert summary["metrics"]["accuracy"] == pytest.approx(100 / N)
    assert "rescored" in json.loads((tmp_path / "summary.json").read_text())


def test_bad_run_arguments_are_named(tmp_path, suite):
    with pytest.raises(ConfigError, match="batch_size"):
        run_suite(_engine(), suite, tmp_path, batch_size=0, progress=False)
    with pytest.raises(ConfigError, match="rank"):
        run_suite(_engine(), suite, tmp_path, rank=2, world_size=2, progress=False)
    with pytest.raises(ConfigError, match="manifest"):
        rescore(tmp_path / "nothing-here")


def test_batched_runs_record_every_sample(tmp_path, suite):
    summary = run_suite(_engine(), suite, tmp_path, progress=False, batch_size=4)
    records = read_records(tmp_path / "samples.jsonl")
    assert [r["index"] for r in records] == list(range(N))
    assert [r["seed"] for r in records] == [sample_seed(0, i) for i in range(N)]
    assert summary["metrics"]["n"] == N


def test_aggregate_follows_the_paper_formulas():
    records = [
        {"correct": True, "tokens": 100, "pad": 60, "forward_passes": 10},
        {"correct": False, "tokens": 300, "pad": 40, "forward_passes": 30},
    ]
    m = aggregate(records)
    assert m["accuracy"] == 50.0
    assert m["n_token"] == 200.0  # (100 + 300) / 2
    assert m["e_token"] == 150.0  # (400 - 100) / 2
    assert m["e_ratio"] == pytest.approx(75.0)  # 1 - 100 / 400, token weighted
    assert m["forward_passes"] == 20.0
    assert aggregate([])["n"] == 0


def test_a_killed_process_resumes_to_exactly_n_unique_results(tmp_path, gsm8k_path, subprocess_env):
    n = 30
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "daedal.eval",
        "run",
        "--suite",
        "gsm8k",
        "--data",
        str(gsm8k_path),
        "--limit",
        str(n),
        "--model",
        "fake",
        "--adapter-arg",
        "eos_bias=2.0",
        "--policy",
        "llada-decoding:gen_length=256",
        "--output",
        str(out),
        "--no-progress",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=subprocess_env)
    samples = out / "samples.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if samples.is_file() and samples.read_bytes().count(b"\n") >= 3:
            break
        time.sleep(0.01)
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = samples.read_bytes().count(b"\n")
    assert 3 <= killed_at < n
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=subprocess_env)
    assert done.returncode == 0, done.stderr
    indices = [json.loads(line)["index"] for line in samples.read_text().splitlines()]
    assert sorted(indices) == list(range(n)) and len(indices) == n
    assert f"n={n}" in done.stdout
