"""The shipped checkpoint: LLaDA's format, loaded by the LLaDA adapter, reproducing recorded generations."""

from __future__ import annotations

import json

import pytest
import torch

from daedal.core import Engine, FixedLength, SemiAutoregressive
from daedal.models import bundled
from daedal.models.bundled import tasks
from daedal.models.llada import LLaDA
from daedal.models.llada.modeling import LLaDAConfig, LLaDAModelLM
from daedal.policies import Daedal

# Recorded with the shipped checkpoint (greedy, CPU, float32): the generation slots of each
# prompt, EOS tail included. A change here means the weights, the adapter or a policy changed.
RECORDED_DAEDAL: dict[str, list[int]] = {
    "reverse: q w e r t y u i o p": [32, 31, 25, 37, 41, 36, 34, 21, 39, 33, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    "sort: m d x a k": [17, 20, 27, 29, 40, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    "sort: z y x w v u t s": [35, 36, 37, 38, 39, 40, 41, 42, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    "repeat: a b c": [17, 17, 18, 18, 19, 19, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    "repeat: h e l o": [24, 24, 21, 21, 28, 28, 31, 31, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    "add: 1 2 3": [44, 10, 45, 11, 46, 12, 46, 10, 46, 11, 49, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    "add: 3 4 5 1": [
        46,
        10,
        47,
        11,
        50,
        12,
        50,
        10,
        48,
        11,
        55,
        12,
        55,
        10,
        44,
        11,
        56,
        4,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ],
    "add: 2 2 2": [45, 10, 45, 11, 47, 12, 47, 10, 45, 11, 49, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    "reverse: a b c d e f g": [23, 22, 21, 20, 19, 18, 17, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    "sort: a b c": [17, 18, 19, 4, 0, 0, 0, 0, 0, 0, 0, 0],
}
KNOWN_WRONG: set[str] = set()  # prompts the model card lists as known mistakes (none of these)
RECORDED_FIXED_32: dict[str, list[int]] = {
    "reverse: q w e r t y u i o p": [
        32,
        31,
        25,
        37,
        41,
        36,
        34,
        21,
        39,
        33,
        4,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ],
    "sort: m d x a k": [
        17,
        20,
        27,
        29,
        40,
        4,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ],
    "sort: z y x w v u t s": [
        35,
        36,
        37,
        38,
        39,
        40,
        41,
        42,
        4,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ],
    "repeat: a b c": [
        17,
        17,
        18,
        18,
        19,
        19,
        4,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ],
}


@pytest.fixture(scope="module")
def adapter() -> LLaDA:
    return bundled.load()


def test_checkpoint_files_and_size() -> None:
    directory = bundled.path()
    names = {p.name for p in directory.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "daedal.json",
        "README.md",
        "training.json",
    } <= names
    assert sum(p.stat().st_size for p in directory.iterdir()) <= 25 * 2**20


def test_config_and_keys_are_llada_8b_format() -> None:
    raw = json.loads((bundled.path() / "config.json").read_text())
    assert raw["model_type"] == "llada" and raw["architectures"] == ["LLaDAModelLM"]
    eight_b = LLaDAConfig()  # LLaDA-8B-Instruct's config, field for field
    assert set(eight_b.to_dict()) - {"extra"} <= set(raw)
    from safetensors import safe_open

    with safe_open(str(bundled.path() / "model.safetensors"), "pt") as fh:
        keys = set(fh.keys())
    with torch.device("meta"):
        reference = LLaDAModelLM(LLaDAConfig(n_layers=raw["n_layers"]))
    assert keys == set(reference.state_dict())  # the 8B model's parameter names, layer for layer


def test_loads_through_the_llada_adapter(adapter: LLaDA) -> None:
    assert type(adapter) is LLaDA
    tok = adapter.tokenizer
    assert adapter.mask_id == tok.convert_tokens_to_ids("<|mdm_mask|>")
    assert adapter.eos_id == tok.convert_tokens_to_ids("<|endoftext|>") == adapter.pad_id
    assert adapter.eos_ids == {adapter.eos_id, tok.convert_tokens_to_ids("<|eot_id|>")}
    direct = LLaDA.from_pretrained(str(bundled.path()))
    ids = torch.tensor(adapter.encode(["reverse: a b c"]))
    assert torch.equal(adapter.logits(ids, None), direct.logits(ids, None))
    assert adapter.decode(ids)[0].startswith("<|startoftext|> <|start_header_id|> user")


def test_recommended_daedal_settings_are_valid() -> None:
    settings = bundled.daedal_settings()
    assert settings["initial_gen_length"] <= 16 < settings["max_gen_length"]
    Daedal(**settings)


def test_reproduces_recorded_generations(adapter: LLaDA) -> None:
    assert RECORDED_DAEDAL and RECORDED_FIXED_32
    prompts = list(RECORDED_DAEDAL)
    result = Engine(adapter, [Daedal(**bundled.daedal_settings())]).generate(prompts)
    assert dict(zip(prompts, result.tokens, strict=False)) == RECORDED_DAEDAL
    assert result.stats.expansions == 0  # stage 1 sizes these canvases; stage 2 has nothing to insert
    for prompt, text in zip(prompts, result.texts, strict=False):
        assert tasks.score(tasks.family_of(prompt), prompt, text) == (prompt not in KNOWN_WRONG)
    prompts = list(RECORDED_FIXED_32)
    fixed = Engine(adapter, [FixedLength(gen_length=32), SemiAutoregressive(block_length=32, steps=32)])
    assert dict(zip(prompts, fixed.generate(prompts).tokens, strict=False)) == RECORDED_FIXED_32
