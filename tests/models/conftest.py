"""Fixtures: tiny random LLaDA and Dream checkpoints written to temporary directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from daedal.models.testing import tiny_checkpoint


@pytest.fixture(scope="session")
def llada_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint("llada", tmp_path_factory.mktemp("llada"))


@pytest.fixture(scope="session")
def dream_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint("dream", tmp_path_factory.mktemp("dream"))


@pytest.fixture(scope="session")
def llada(llada_dir: Path):
    from daedal.models import LLaDA

    return LLaDA.from_pretrained(llada_dir)


@pytest.fixture(scope="session")
def dream(dream_dir: Path):
    from daedal.models import Dream

    return Dream.from_pretrained(dream_dir)


@pytest.fixture(params=["llada", "dream"])
def adapter(request: pytest.FixtureRequest):
    return request.getfixturevalue(request.param)
