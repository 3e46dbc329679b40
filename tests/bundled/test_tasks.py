"""The synthetic task families of the bundled model."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from daedal.models.bundled import tasks


def test_answers_are_computed_from_the_prompt() -> None:
    assert tasks.expected_answer("reverse: a b c") == "c b a"
    assert tasks.expected_answer("sort: d a c b") == "a b c d"
    assert tasks.expected_answer("repeat: a b") == "a a b b"
    assert tasks.expected_answer("add: 3 4 5") == "3 + 4 = 7 , 7 + 5 = 12"
    assert tasks.expected_answer("reverse:x y") == "y x"  # the tokenizer's split, not str.split


@pytest.mark.parametrize("family", tasks.FAMILIES)
def test_answer_length_grows_with_the_size(family: str) -> None:
    rng = random.Random(0)
    lo, hi = tasks.SIZES[family]
    lengths = []
    for size in range(lo, hi + 1):
        prompt, answer = tasks.make_example(family, rng, size)
        assert len(tasks.normalize(answer)) == tasks.answer_tokens(family, size)
        assert tasks.expected_answer(prompt) == answer
        lengths.append(tasks.answer_tokens(family, size))
    assert lengths == sorted(lengths) and lengths[0] < lengths[-1]


def test_list_families_cover_1_to_24_distinct_items() -> None:
    rng = random.Random(1)
    for family in ("reverse", "sort", "repeat"):
        assert tasks.SIZES[family] == (1, 24)
        prompt, _ = tasks.make_example(family, rng, 24)
        items = tasks.normalize(prompt)[2:]
        assert len(items) == len(set(items)) == 24


def test_score_ignores_end_tokens_only() -> None:
    prompt = "sort: b a"
    assert tasks.score("sort", prompt, "a b <|eot_id|> <|endoftext|><|endoftext|>")
    assert tasks.score("sort", prompt, "a  b")
    assert not tasks.score("sort", prompt, "a")  # truncated
    assert not tasks.score("sort", prompt, "a b b")  # an extra token
    assert not tasks.score("sort", prompt, "b a")


def test_heldout_set_spreads_sizes_and_is_fixed() -> None:
    data = tasks.heldout_set(50, seed=1234)
    assert len(data) == 50 * len(tasks.FAMILIES)
    assert data == tasks.heldout_set(50, seed=1234)
    for family in tasks.FAMILIES:
        sizes = Counter(d["size"] for d in data if d["family"] == family)
        lo, hi = tasks.SIZES[family]
        assert set(sizes) == set(range(lo, hi + 1))
        assert max(sizes.values()) - min(sizes.values()) <= 1 + 50 // (hi - lo + 1)
    for d in data:
        assert tasks.score(d["family"], d["prompt"], d["answer"])


def test_training_split_never_draws_heldout_prompts() -> None:
    heldout = {d["prompt"] for d in tasks.heldout_set(50)}
    large = {
        p
        for p in heldout
        if tasks._n_prompts(tasks.family_of(p), len(tasks.normalize(p)) - 2) >= tasks.SPLIT_MIN_PROMPTS
    }
    assert len(large) > 150
    stream = tasks.iter_examples(random.Random(0), split="train")
    seen = {next(stream)[1] for _ in range(20000)}
    assert not seen & large
    assert all(tasks.is_heldout(p) for p in large)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: tasks.make_example("shuffle", random.Random(0)), "family='shuffle'"),
        (lambda: tasks.make_example("reverse", random.Random(0), 25), "size=25"),
        (lambda: tasks.make_example("add", random.Random(0), 1), "size=1"),
        (lambda: tasks.heldout_set(0), "n_per_family=0"),
        (lambda: tasks.expected_answer("hello world"), "does not start with a task family"),
    ],
)
def test_bad_input_names_the_argument(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()
