"""Engine behaviour: ordering, isolation, errors, events, statistics."""

from __future__ import annotations

import json
import subprocess
import sys

import attrs
import pytest
import torch

from daedal.core import (
    ConfigError,
    DaedalError,
    Engine,
    EngineConfig,
    Expand,
    FixedLength,
    NoDecisionError,
    PluginError,
    PolicyError,
    SemiAutoregressive,
    Trace,
    Unmask,
    hookimpl,
)
from daedal.core.testing import FakeAdapter


@pytest.fixture
def adapter():
    return FakeAdapter(vocab_size=40, seed=1)


PROMPTS = [[5, 6, 7], [8, 9, 10, 11, 12]]


@attrs.frozen
class FillLeftmost:
    """Commit the leftmost mask of every row with token ``token``."""

    token: int = 4

    @hookimpl
    def select_unmask(self, state, prediction):
        masked = state.canvas.masked
        first = masked & (masked.cumsum(1) == 1)
        return Unmask(where=first, tokens=torch.full_like(state.canvas.tokens, self.token))


# -- ordering and isolation ----------------------------------------------------------


def test_first_listed_policy_answers_first(adapter):
    with pytest.warns(UserWarning, match="consulted only when"):
        engine = Engine(adapter, [FixedLength(gen_length=4), FillLeftmost(token=4), FillLeftmost(token=5)])
    out = engine.generate(PROMPTS)
    assert out.tokens == [[4] * 4, [4] * 4]


def test_user_policy_replaces_the_default_unmask_and_its_schedule(adapter):
    # SemiAutoregressive (default) would stop after 128 steps; with FillLeftmost it steps aside.
    out = Engine(adapter, [FixedLength(gen_length=200), FillLeftmost()]).generate([[5]])
    assert out.tokens == [[4] * 200]
    assert out.stats.forward_passes == 200


def test_two_engines_with_different_policies_coexist(adapter):
    a = Engine(adapter, [FixedLength(gen_length=4), FillLeftmost(token=6)])
    b = Engine(adapter, [FixedLength(gen_length=4), FillLeftmost(token=7)])
    assert a.generate(PROMPTS).tokens == [[6] * 4] * 2
    assert b.generate(PROMPTS).tokens == [[7] * 4] * 2
    assert a.generate(PROMPTS).tokens == [[6] * 4] * 2


def test_bundles_are_flattened(adapter):
    @attrs.frozen
    class Bundle:
        def parts(self):
            return [FixedLength(gen_length=3), FillLeftmost(token=9)]

    assert Engine(adapter, [Bundle()]).generate(PROMPTS).tokens == [[9] * 3] * 2


# -- construction errors -----------------------------------------------------------------


def test_typo_in_hook_name_fails_at_construction(adapter):
    class Typo:
        @hookimpl
        def select_unmsk(self, state, prediction):
            return None

    with pytest.raises(PluginError, match="select_unmsk"):
        Engine(adapter, [Typo()])


def test_policy_without_hooks_fails(adapter):
    with pytest.raises(PluginError, match="implements no hook"):
        Engine(adapter, [object()])


def test_duplicate_policy_fails(adapter):
    p = FixedLength(gen_length=8)
    with pytest.raises(ConfigError, match="listed twice"):
        Engine(adapter, [p, p])
    with pytest.raises(ConfigError, match="listed twice"):
        Engine(adapter, [FixedLength(gen_length=8), FixedLength(gen_length=8)])


def test_shadowed_policy_warns(adapter):
    with pytest.warns(UserWarning, match="consulted only when"):
        Engine(adapter, [FixedLength(gen_length=8), FixedLength(gen_length=9)])


def test_not_an_adapter_fails():
    with pytest.raises(ConfigError, match="adapter"):
        Engine(object())


# -- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompts", "match"),
    [
        ([], "empty"),
        ([[]], r"prompts\[0\]` is empty"),
        ("hello", "list of prompts"),
        ([[5, 500]], "outside the vocabulary"),
        ([[5, 1.5]], "token ids"),
    ],
)
def test_bad_prompts(adapter, prompts, match):
    with pytest.raises(ConfigError, match=match):
        Engine(adapter).generate(prompts)


def test_prompt_longer_than_model_maximum():
    adapter = FakeAdapter(max_length=16)
    with pytest.raises(ConfigError, match="at most 16"):
        Engine(adapter).generate([[5] * 20])
    with pytest.raises(ConfigError, match="at most 16"):
        Engine(adapter, [FixedLength(gen_length=32)]).generate([[5] * 4])


@pytest.mark.parametrize("value", [0, -3, 1.5, True])
def test_non_positive_lengths(value):
    with pytest.raises(ConfigError, match="gen_length"):
        FixedLength(gen_length=value)
    with pytest.raises(ConfigError, match="block_length"):
        SemiAutoregressive(block_length=value)
    with pytest.raises(ConfigError, match="steps"):
        SemiAutoregressive(steps=value)


def test_block_length_must_divide_length(adapter):
    engine = Engine(adapter, [FixedLength(gen_length=30), SemiAutoregressive(block_length=8, steps=8)])
    with pytest.raises(ConfigError, match="block_length` 8 does not divide the generation length 30"):
        engine.generate(PROMPTS)


def test_steps_must_divide_per_block(adapter):
    engine = Engine(adapter, [FixedLength(gen_length=32), SemiAutoregressive(block_length=8, steps=6)])
    with pytest.raises(ConfigError, match="multiple of the number of blocks 4"):
        engine.generate(PROMPTS)


def test_errors_subclass_builtins_and_link_docs():
    err = ConfigError("`x` is bad")
    assert isinstance(err, ValueError) and isinstance(err, DaedalError)
    assert "reference/errors/#bad-argument" in str(err)


# -- illegal decisions and progress --------------------------------------------------------


def test_illegal_unmask_names_hook_and_policy(adapter):
    @attrs.frozen
    class WritesPrompt:
        @hookimpl
        def select_unmask(self, state, prediction):
            return Unmask(where=~state.canvas.masked & state.canvas.valid, tokens=state.canvas.tokens)

    with pytest.raises(PolicyError, match=r"hook `select_unmask` of policy WritesPrompt\(\)") as info:
        Engine(adapter, [FixedLength(gen_length=4), WritesPrompt()]).generate(PROMPTS)
    assert info.value.code == "illegal-decision"


def test_illegal_expand_names_hook_and_policy(adapter):
    @attrs.frozen
    class ExpandPrompt:
        @hookimpl
        def select_expand(self, state, prediction, unmask):
            return Expand(where=~state.canvas.masked & state.canvas.valid, factor=2)

    with pytest.raises(PolicyError, match=r"hook `select_expand` of policy ExpandPrompt"):
        Engine(adapter, [FixedLength(gen_length=4), ExpandPrompt()]).generate(PROMPTS)


def test_policy_without_progress_is_stopped(adapter):
    @attrs.frozen
    class Idle:
        @hookimpl
        def select_unmask(self, state, prediction):
            return Unmask.none_like(state.canvas)

    with pytest.raises(PolicyError, match="changed nothing") as info:
        Engine(adapter, [FixedLength(gen_length=4), Idle()]).generate(PROMPTS)
    assert info.value.code == "no-progress"


def test_no_unmask_answer_raises(adapter):
    @attrs.frozen
    class Defers:
        @hookimpl
        def select_unmask(self, state, prediction):
            return None

    with pytest.raises(NoDecisionError, match="select_unmask"):
        Engine(adapter, [FixedLength(gen_length=4), Defers()]).generate(PROMPTS)


def test_max_steps_ends_the_loop_with_a_final_fill(adapter):
    engine = Engine(adapter, [FixedLength(gen_length=8), FillLeftmost()], config=EngineConfig(max_steps=3))
    out = engine.generate(PROMPTS, record=True)
    assert out.stats.stopped_by == "max_steps"
    assert out.stats.steps == 3
    # FillLeftmost wrote 4 three times; the engine's final fill committed the other 5 slots per row.
    assert all(row[:3] == [4, 4, 4] for row in out.tokens)
    assert out.stats.final_fill == 2 * 5
    assert all(adapter.mask_id not in row for row in out.tokens)
    assert out.stats.forward_passes == 4  # one more for the final fill
    steps = out.trace.of_kind("step-finished")
    assert [e["decided_by"]["select_unmask"] for e in steps] == ["FillLeftmost(token=4)"] * 3 + ["engine (final fill)"]
    assert steps[-1]["step"] == 3 and sum(len(r) for r in steps[-1]["filled"]) == 10


# -- results, events, trace ----------------------------------------------------------------


def test_stats_count_forward_passes_and_tokens(adapter):
    out = Engine(adapter, [FixedLength(gen_length=16), SemiAutoregressive(block_length=16, steps=8)]).generate(PROMPTS)
    s = out.stats
    assert s.forward_passes == 8 == s.steps
    assert s.canvas_tokens == 8 * 2 * (5 + 16)
    assert s.generated_tokens == 32 and out.lengths == [16, 16]
    specials = adapter.eos_ids | {adapter.pad_id, adapter.mask_id}
    assert s.effective_tokens == sum(t not in specials for row in out.tokens for t in row)
    assert 0 < s.model_time <= s.wall_time
    assert out.texts is not None and len(out.texts) == 2


def test_observers_see_every_step(adapter):
    seen = []

    @attrs.frozen
    class Spy:
        @hookimpl
        def on_event(self, event):
            seen.append(event.kind)

    Engine(adapter, [FixedLength(gen_length=8), SemiAutoregressive(block_length=8, steps=4), Spy()]).generate(PROMPTS)
    assert seen == ["run-started", "canvas-initialized"] + ["step-finished"] * 4 + ["run-finished"]


def test_trace_round_trips_through_jsonl_and_replays(adapter, tmp_path):
    engine = Engine(adapter, [FixedLength(gen_length=16), SemiAutoregressive(block_length=8, steps=8)])
    out = engine.generate(PROMPTS, record=True)
    path = out.trace.to_jsonl(tmp_path / "run.jsonl")
    lines = path.read_text().splitlines()
    assert all(json.loads(line)["kind"] for line in lines)
    back = Trace.from_jsonl(path)
    assert back.events == out.trace.events
    frames = list(back.frames())
    assert len(frames) == 1 + 8
    assert frames[-1].rows == out.canvas.rows()
    steps = back.of_kind("step-finished")
    filled = sum(len(r) for e in steps for r in e["filled"])
    assert filled == 32  # every generation slot was filled exactly once
    assert all(0.0 <= p <= 1.0 for e in steps for r in e["filled"] for _, _, p in r)


def test_trace_records_insertions(adapter):
    @attrs.frozen
    class GrowOnce:
        @hookimpl
        def select_expand(self, state, prediction, unmask):
            if state.step != 0:
                return None
            free = state.canvas.masked & ~unmask.where
            last = free & (free.long().flip(1).cumsum(1).flip(1) == 1)
            return Expand(where=last, factor=3)

    with pytest.raises(PolicyError, match="max_length"):
        Engine(adapter, [FixedLength(gen_length=4), FillLeftmost(), GrowOnce()]).generate(PROMPTS)
    policies = [FixedLength(gen_length=4, max_gen_length=6), FillLeftmost(), GrowOnce()]
    engine = Engine(adapter, policies, config=EngineConfig(record=True))
    out = engine.generate(PROMPTS)
    assert out.lengths == [6, 6] and out.stats.expansions == 2
    frames = list(out.trace.frames())
    assert frames[1].inserted == [[6, 7, 8], [8, 9, 10]]
    assert frames[-1].rows == out.canvas.rows()


def test_seed_controls_sampling(adapter):
    from daedal.core import GumbelTemperature

    engine = Engine(adapter, [FixedLength(gen_length=16), GumbelTemperature(temperature=1.0)])
    a, b, c = (engine.generate(PROMPTS, seed=s).tokens for s in (1, 1, 2))
    assert a == b and a != c


def test_core_imports_without_transformers():
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'transformers': raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from daedal.core import Engine\nfrom daedal.core.testing import FakeAdapter\n"
        "r = Engine(FakeAdapter()).generate([[5, 6]])\n"
        "assert len(r.tokens[0]) == 128 and 'transformers' not in sys.modules\nprint('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr
