"""Runs that do not depend on how they were cut: per-sample seeds, locks, bad data, interrupts, provenance."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time

import pytest

from daedal.core import Engine
from daedal.core.errors import ConfigError
from daedal.core.testing import FakeAdapter
from daedal.eval.distributed import current_shard
from daedal.eval.lock import RunLock
from daedal.eval.runner import load_manifest, merge_shards, read_records, rescore, run_suite, sample_seed
from daedal.eval.suites.base import read_jsonl
from daedal.eval.suites.gsm8k import GSM8K
from daedal.policies import LLaDADecoding

N = 8


def _sampling_engine(temperature: float = 0.9, **adapter) -> Engine:
    return Engine(
        FakeAdapter(**adapter), [LLaDADecoding(gen_length=16, steps=16, block_length=8, temperature=temperature)]
    )


def _texts(directory) -> dict[int, str]:
    return {r["index"]: r["text"] for r in read_records(directory / "samples.jsonl")}


@pytest.fixture()
def suite(gsm8k_path):
    return GSM8K(path=gsm8k_path, limit=N)


@pytest.fixture()
def reference(tmp_path, suite) -> dict[int, str]:
    run_suite(_sampling_engine(), suite, tmp_path / "ref", seed=3, progress=False)
    return _texts(tmp_path / "ref")


def test_sampling_depends_on_the_seed(tmp_path, suite, reference):
    run_suite(_sampling_engine(), suite, tmp_path / "other", seed=4, progress=False)
    assert _texts(tmp_path / "other") != reference


@pytest.mark.parametrize("batch_size", [2, 4])
def test_outputs_do_not_depend_on_the_batch_size(tmp_path, suite, reference, batch_size):
    run_suite(_sampling_engine(), suite, tmp_path / "b", seed=3, batch_size=batch_size, progress=False)
    assert _texts(tmp_path / "b") == reference
    assert [r["seed"] for r in read_records(tmp_path / "b" / "samples.jsonl")] == [sample_seed(3, i) for i in range(N)]


def test_outputs_do_not_depend_on_the_shard_count(tmp_path, suite, reference):
    out = tmp_path / "shards"
    for rank in (0, 1):
        run_suite(_sampling_engine(), suite, out, seed=3, batch_size=2, rank=rank, world_size=2, progress=False)
    merge_shards(out)
    assert _texts(out) == reference


def test_a_resume_after_a_kill_inside_a_batch_gives_the_same_outputs(tmp_path, suite, reference):
    out = tmp_path / "resumed"
    run_suite(_sampling_engine(), suite, out, seed=3, batch_size=4, progress=False)
    samples = out / "samples.jsonl"
    lines = samples.read_bytes().splitlines(keepends=True)
    samples.write_bytes(b"".join(lines[:1]) + lines[1][:20])  # killed while writing row 2 of the first batch
    run_suite(_sampling_engine(), suite, out, seed=3, batch_size=4, progress=False)
    assert _texts(out) == reference


def test_reference_compat_records_its_batch_dependence_and_warns_off_the_paper_scale(tmp_path, suite):
    engine = Engine(FakeAdapter(), [LLaDADecoding(gen_length=16, steps=16, block_length=8, reference_compat=True)])
    with pytest.warns(RuntimeWarning, match="depend on the scale-out: this run uses 1 process"):
        run_suite(engine, suite, tmp_path, batch_size=2, progress=False)
    manifest = load_manifest(tmp_path)
    assert manifest["randomness"]["batch_dependent"] is True and manifest["randomness"]["mode"] == "per-batch"
    default = tmp_path / "default"
    run_suite(_sampling_engine(), suite, default, progress=False)
    assert load_manifest(default)["randomness"] == {
        "mode": "per-sample",
        "seed": "sample_seed(seed, index)",
        "batch_dependent": False,
    }


def test_a_second_runner_on_the_directory_is_refused_naming_the_holder(tmp_path, suite, subprocess_env):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom daedal.eval.lock import RunLock\n"
            f"with RunLock({str(tmp_path)!r}):\n    print('locked', flush=True)\n    time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=subprocess_env,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ConfigError, match=rf"in use by another runner \(.*\"pid\": {holder.pid}, \"host\""):
            run_suite(_sampling_engine(), suite, tmp_path, progress=False)
    finally:
        holder.kill()
        holder.wait()
    assert not (tmp_path / "samples.jsonl").exists()
    summary = run_suite(_sampling_engine(), suite, tmp_path, progress=False)  # the lock died with its holder
    assert summary["metrics"]["n"] == N


def test_the_lock_is_released_after_a_run(tmp_path, suite):
    run_suite(_sampling_engine(), suite, tmp_path, progress=False)
    with RunLock(tmp_path):
        pass


def test_summaries_count_each_problem_once(tmp_path, suite):
    run_suite(_sampling_engine(), suite, tmp_path, progress=False)
    samples = tmp_path / "samples.jsonl"
    first = samples.read_text().splitlines()[0]
    with open(samples, "a") as f:
        f.write(first + "\n")  # a duplicated line
    summary = run_suite(_sampling_engine(), suite, tmp_path, progress=False)
    assert summary["metrics"]["n"] == N and summary["complete"]
    assert rescore(tmp_path)["metrics"]["n"] == N


def test_an_empty_data_file_is_an_error_naming_it(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match=r"empty\.jsonl.*holds no problems"):
        GSM8K(path=empty).load()


def test_a_truncated_jsonl_names_the_file_and_line(tmp_path, gsm8k_path):
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(gsm8k_path.read_bytes()[:1500])
    with pytest.raises(ConfigError, match=r"cut\.jsonl' line \d+ is not JSON .*truncated"):
        read_jsonl(cut)


def test_a_truncated_gzip_names_the_file(tmp_path, gsm8k_path):
    whole = gzip.compress(gsm8k_path.read_bytes())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ConfigError, match=r"cut\.jsonl\.gz' cannot be read after line \d+ \(EOFError"):
        read_jsonl(cut)


def test_not_utf8_names_the_file(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"question": "\xff"}\n')
    with pytest.raises(ConfigError, match=r"bad\.jsonl.*UnicodeDecodeError"):
        read_jsonl(bad)


def test_every_prompt_must_fit_before_the_first_sample(tmp_path, gsm8k_path):
    suite = GSM8K(path=gsm8k_path, limit=20)
    lengths = [len(p) for p in (FakeAdapter().encode([suite.user_message(d)])[0] for d in suite.load())]
    # a model just long enough for the shortest prompts: the longest do not fit
    engine = Engine(FakeAdapter(max_length=min(lengths) + 40), [LLaDADecoding(gen_length=16, steps=16, block_length=8)])
    with pytest.raises(
        ConfigError, match=r"prompt\(s\) of suite 'gsm8k' do not fit: problem \d+ has \d+ prompt tokens \+ 16"
    ):
        run_suite(engine, suite, tmp_path, progress=False)
    assert not (tmp_path / "samples.jsonl").exists() or not (tmp_path / "samples.jsonl").read_bytes()


class _InterruptedEngine:
    def __init__(self, engine, after):
        self._engine, self.after, self.calls = engine, after, 0

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def generate(self, *args, **kwargs):
        if self.calls >= self.after:
            raise KeyboardInterrupt
        self.calls += 1
        return self._engine.generate(*args, **kwargs)


def test_an_interrupted_run_writes_its_summary(tmp_path, suite):
    with pytest.raises(KeyboardInterrupt):
        run_suite(_InterruptedEngine(_sampling_engine(), after=3), suite, tmp_path, progress=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["metrics"]["n"] == 3 and not summary["complete"] and "interrupted" in summary


def test_the_manifest_records_dataset_and_checkpoint_hashes(tmp_path, suite, gsm8k_path):
    from daedal.models import bundled

    run_suite(_sampling_engine(), suite, tmp_path / "a", progress=False, model={"model": "bundled"})
    run_suite(_sampling_engine(), GSM8K(path=gsm8k_path, limit=N - 1), tmp_path / "b", progress=False)
    a, b = load_manifest(tmp_path / "a"), load_manifest(tmp_path / "b")
    assert len(a["dataset_sha256"]) == 64 and a["dataset_sha256"] != b["dataset_sha256"]
    weights = [name for name in a["checkpoint"] if name.endswith(".safetensors")]
    assert weights and a["checkpoint"][weights[0]]["size"] == (bundled.path() / weights[0]).stat().st_size
    assert b["checkpoint"] is None


def _costs(directory):
    return [(r["forward_passes"], r["canvas_tokens"]) for r in read_records(directory / "samples.jsonl")]


def test_costs_are_per_sample_whatever_the_batch(tmp_path, suite):
    run_suite(_sampling_engine(), suite, tmp_path / "b1", progress=False)
    run_suite(_sampling_engine(), suite, tmp_path / "b4", batch_size=4, progress=False)
    assert _costs(tmp_path / "b4") == _costs(tmp_path / "b1")
    records = read_records(tmp_path / "b4" / "samples.jsonl")
    assert all(r["canvas_tokens"] == 16 * (r["prompt_tokens"] + 16) for r in records)  # its own width, 16 passes
    assert len({r["prompt_tokens"] for r in records}) > 1  # so a batch-width count would differ
    assert all(r["wall_time"] > 0 and r["batch_size"] == 4 for r in records)


def test_daedal_rows_are_charged_their_own_steps_in_a_batch(tmp_path, suite):
    from daedal.policies import Daedal

    def engine():
        return Engine(FakeAdapter(eos_bias=2.0), [Daedal(initial_gen_length=8, max_gen_length=64, block_length=8)])

    run_suite(engine(), suite, tmp_path / "b1", progress=False)
    run_suite(engine(), suite, tmp_path / "b4", batch_size=4, progress=False)
    alone, batched = read_records(tmp_path / "b1" / "samples.jsonl"), read_records(tmp_path / "b4" / "samples.jsonl")
    assert [r["text"] for r in alone] == [r["text"] for r in batched]
    # the stage-1 probes are the batch's, the denoising steps the row's own
    for a, b in zip(alone, batched, strict=True):
        assert a["forward_passes"] <= b["forward_passes"] <= b["batch_forward_passes"]
    assert sum(b["forward_passes"] for b in batched) < sum(b["batch_forward_passes"] for b in batched)


def test_a_one_process_accelerate_launch_asked_for_two_is_refused(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    with pytest.raises(ConfigError, match="asked for several processes .* but started one"):
        current_shard()
    monkeypatch.delenv("MASTER_ADDR")
    assert current_shard().world_size == 1


def test_accelerate_launch_cpu_with_two_processes_exits_with_the_error(tmp_path, gsm8k_path, subprocess_env):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--cpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "-m",
            "daedal.eval",
            "run",
            "--suite",
            "gsm8k",
            "--data",
            str(gsm8k_path),
            "--limit",
            "2",
            "--model",
            "fake",
            "--policy",
            "llada-decoding:gen_length=16",
            "--output",
            str(tmp_path / "run"),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=subprocess_env,
    )
    assert done.returncode != 0
    assert "asked for several processes (--num_processes > 1) but started one" in done.stderr
    assert not (tmp_path / "run" / "samples.jsonl").exists()


def test_sigterm_stops_a_run_after_writing_its_summary(tmp_path, gsm8k_path, subprocess_env):
    import os
    import signal

    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daedal.eval",
            "run",
            "--suite",
            "gsm8k",
            "--data",
            str(gsm8k_path),
            "--limit",
            "40",
            "--model",
            "fake",
            "--policy",
            "llada-decoding:gen_length=256",
            "--output",
            str(out),
            "--no-progress",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=subprocess_env,
    )
    samples = out / "samples.jsonl"
    for _ in range(1200):
        if proc.poll() is not None or (samples.is_file() and samples.read_bytes().count(b"\n") >= 2):
            break
        time.sleep(0.1)
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(timeout=120)
    summary = json.loads((out / "summary.json").read_text())
    assert "interrupted" in summary and not summary["complete"]
    assert summary["metrics"]["n"] == len(read_records(samples)) >= 2
