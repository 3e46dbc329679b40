"""Data parallelism: a 2-process accelerate run on CPU merges to the same results as 1 process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from daedal.eval.distributed import Shard, current_shard
from daedal.eval.runner import read_records, run_suite
from daedal.eval.suites.gsm8k import GSM8K

VOLATILE = {"wall_time", "peak_memory", "rank"}


def _args(gsm8k_path, out) -> list[str]:
    return [
        "-m",
        "daedal.eval",
        "run",
        "--suite",
        "gsm8k",
        "--data",
        str(gsm8k_path),
        "--limit",
        "7",
        "--model",
        "fake",
        "--adapter-arg",
        "eos_bias=2.0",
        "--policy",
        "llada-decoding:gen_length=32",
        "--output",
        str(out),
        "--no-progress",
    ]


def _records(out):
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in read_records(out / "samples.jsonl")]


def test_two_accelerate_processes_on_cpu_match_one_process(tmp_path, gsm8k_path, subprocess_env):
    pytest.importorskip("accelerate")
    launcher = shutil.which("accelerate")
    if launcher is None:
        pytest.skip("the accelerate launcher is not on PATH")
    one = subprocess.run(
        [sys.executable, *_args(gsm8k_path, tmp_path / "one")],
        capture_output=True,
        text=True,
        timeout=300,
        env=subprocess_env,
    )
    assert one.returncode == 0, one.stderr
    # Without GPUs, the torchrun-based launcher (--multi_gpu) starts CPU processes with a gloo group.
    two = subprocess.run(
        [
            launcher,
            "launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            *_args(gsm8k_path, tmp_path / "two"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=subprocess_env,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    merged = read_records(tmp_path / "two" / "samples.jsonl")
    assert [r["index"] for r in merged] == list(range(7))
    assert [r["rank"] for r in merged] == [i % 2 for i in range(7)]  # each rank took its shard
    assert not list((tmp_path / "two").glob("samples.rank*.jsonl"))  # shards merged away
    assert _records(tmp_path / "two") == _records(tmp_path / "one")
    summary_one = json.loads((tmp_path / "one" / "summary.json").read_text())["metrics"]
    summary_two = json.loads((tmp_path / "two" / "summary.json").read_text())["metrics"]
    for key in ("n", "accuracy", "n_token", "e_token", "e_ratio", "forward_passes"):
        assert summary_one[key] == summary_two[key]


def test_shards_partition_the_problems_and_merge(tmp_path, gsm8k_path):
    # The same protocol in one process: rank 1 first, then rank 0, which merges.
    from daedal.core import Engine, FixedLength
    from daedal.core.testing import FakeAdapter

    engine = Engine(FakeAdapter(eos_bias=2.0), policies=[FixedLength(gen_length=8)])
    suite = GSM8K(path=gsm8k_path, limit=5)
    part = run_suite(engine, suite, tmp_path, rank=1, world_size=2, progress=False)
    assert part["metrics"]["n"] == 2
    assert [r["index"] for r in read_records(tmp_path / "samples.rank1.jsonl")] == [1, 3]
    full = run_suite(engine, suite, tmp_path, rank=0, world_size=2, progress=False)
    assert full["metrics"]["n"] == 5 and full["complete"]
    assert [r["index"] for r in read_records(tmp_path / "samples.jsonl")] == [0, 1, 2, 3, 4]


def test_outside_a_launch_there_is_one_shard(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    shard = current_shard()
    assert shard == Shard() or (shard.rank, shard.world_size) == (0, 1)
    assert shard.is_main
