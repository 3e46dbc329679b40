"""Stage-2 insertion on the bundled model: the documented example and the held-out effect."""

from __future__ import annotations

from pathlib import Path

import pytest

from daedal.core import Engine, EngineConfig
from daedal.models import bundled
from daedal.models.bundled import tasks
from daedal.models.viz.html import frames_data
from daedal.policies import Daedal

PAGE = Path(__file__).resolve().parents[2] / "docs" / "concepts" / "variable-length.md"
PROMPT = "add: 1 2 3 4"  # the page's example
STAGE_1_OFF = {"eos_confidence_threshold": 0.0}
NO_INSERTION = {"eos_confidence_threshold": 0.0, "low_conf_threshold": 0.0}


@pytest.fixture(scope="module")
def adapter():
    return bundled.load()


def _daedal(**overrides) -> Daedal:
    return Daedal(**{**bundled.daedal_settings(), **overrides})


def test_the_documented_example_grows_by_insertion_and_the_page_shows_it(adapter) -> None:
    assert f'"{PROMPT}"' in PAGE.read_text(encoding="utf-8")
    engine = Engine(adapter, [_daedal(**STAGE_1_OFF)], config=EngineConfig(record=True))
    result = engine.generate([PROMPT])
    assert tasks.score("add", PROMPT, result.texts[0])
    assert result.stats.expansions >= 1
    assert not result.trace.of_kind("length-changed") or all(
        e["reason"] == "eos-tail" for e in result.trace.of_kind("length-changed")
    )  # stage 1 did not grow the canvas: the insertions did
    initial = bundled.daedal_settings()["initial_gen_length"]
    assert result.lengths[0] > initial + bundled.daedal_settings()["eos_check_tokens"] // 2
    strings = {i: adapter.decode([[i]])[0] for i in range(adapter.vocab_size)}
    kinds = [
        kind
        for frame in frames_data(result.trace, strings, eos_ids=sorted(adapter.eos_ids))
        for row in frame["rows"]
        for _, kind, _ in row
    ]
    assert "inserted" in kinds  # the HTML replay draws the inserted block

    plain = Engine(adapter, [_daedal(**NO_INSERTION)]).generate([PROMPT])
    assert plain.stats.expansions == 0
    assert not tasks.score("add", PROMPT, plain.texts[0])  # 8 slots cannot hold 17 tokens


def test_insertion_rescues_most_held_out_prompts_when_stage_1_is_off(adapter) -> None:
    data = tasks.heldout_set(8, seed=1234)
    prompts = [d["prompt"] for d in data]
    scores = {}
    for name, overrides in (("stage 2", STAGE_1_OFF), ("none", NO_INSERTION)):
        result = Engine(adapter, [_daedal(**overrides)]).generate(prompts)
        scores[name] = sum(tasks.score(d["family"], d["prompt"], t) for d, t in zip(data, result.texts, strict=True))
        if name == "stage 2":
            assert result.stats.expansions >= len(prompts) // 2
    assert scores["stage 2"] >= 0.7 * len(data) and scores["none"] <= 0.4 * len(data)


def test_no_room_shows_as_a_flat_prediction(adapter) -> None:
    """The page's claim: where the answer has no room, confidence is far below low_conf_threshold."""
    import torch

    prompt = adapter.encode([PROMPT])[0]
    tail = bundled.daedal_settings()["eos_check_tokens"] // 2
    short = torch.tensor([prompt + [adapter.mask_id] * 8 + [adapter.eos_id] * tail])  # 17 tokens needed
    room = torch.tensor([prompt + [adapter.mask_id] * 24 + [adapter.eos_id] * tail])
    for canvas, flat in ((short, True), (room, False)):
        with torch.no_grad():
            probs = adapter.logits(canvas, None)[0].float().softmax(-1)
        masked = (canvas[0] == adapter.mask_id).nonzero().squeeze(1)
        confidence = probs[masked].max(-1).values
        assert (confidence.min() < 0.05) == flat, confidence
        if flat:
            assert confidence.min() < 3 / adapter.vocab_size  # about 1/143: flat
