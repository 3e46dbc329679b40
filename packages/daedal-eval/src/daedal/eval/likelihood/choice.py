"""A multiple-choice task made from the bundled model's own families, scored by the ELBO.

Each question is a held-out prompt of :mod:`daedal.models.bundled.tasks` with its correct
answer and ``n_wrong`` corrupted ones of the same length in tokens (two items swapped, one
item replaced, the items of the prompt left in their order), in a seeded order. The model
picks the choice with the highest log-likelihood, as lm-eval's ``acc`` does.

:func:`write_lm_eval_task` writes the questions and an lm-eval task YAML
(``output_type: multiple_choice``) so that stock lm-eval runs it through the ``daedal``
model type::

    python -c "from daedal.eval.likelihood.choice import write_lm_eval_task; write_lm_eval_task('mc')"
    daedal-lm-eval --model daedal --model_args model=bundled,mc_num=32 --tasks daedal_synthetic_mc \\
        --include_path mc --apply_chat_template --device cpu
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from daedal.core.errors import ConfigError

__all__ = ["TASK_NAME", "choice_docs", "corruptions", "score_choices", "write_lm_eval_task"]

TASK_NAME = "daedal_synthetic_mc"


def _tasks() -> Any:
    try:
        from daedal.models.bundled import tasks
    except ImportError as err:  # pragma: no cover - daedal-models is a dependency
        raise ConfigError("the synthetic multiple-choice task needs daedal-models: pip install daedal-models") from err
    return tasks


def _replacement(token: str, rng: random.Random) -> str:
    tasks = _tasks()
    if token.isdigit():
        value = int(token)
        options = [str(v) for v in range(max(0, value - 3), min(tasks.MAX_NUMBER, value + 3) + 1) if v != value]
    else:
        options = [w for w in tasks.LETTERS if w != token]
    return rng.choice(options)


def corruptions(prompt: str, answer: str, rng: random.Random, n_wrong: int = 3) -> list[str]:
    """``n_wrong`` distinct wrong answers with as many tokens as ``answer``.

    Tried in turn: the prompt's items in their own order (wrong unless the task leaves
    them so), two different items swapped, one item replaced by a near one (a letter by
    another letter, a number by a number within 3); symbols (``+ = ,``) are never touched.
    """
    tasks = _tasks()
    words = tasks.normalize(answer)
    items = [i for i, w in enumerate(words) if w.isdigit() or w in tasks.LETTERS]
    wrong: list[str] = []

    def add(candidate: list[str]) -> None:
        text = " ".join(candidate)
        if candidate != words and text not in wrong and len(candidate) == len(words):
            wrong.append(text)

    given = tasks.normalize(prompt)[2:]
    if len(given) == len(words):
        add(given)
    for _ in range(200):
        if len(wrong) >= n_wrong:
            break
        out = list(words)
        if len(items) >= 2 and rng.random() < 0.5:
            i, j = rng.sample(items, 2)
            out[i], out[j] = out[j], out[i]
        elif items:
            i = rng.choice(items)
            out[i] = _replacement(out[i], rng)
        add(out)
    return wrong[:n_wrong]


def choice_docs(
    n_per_family: int = 10,
    *,
    seed: int = 1234,
    n_wrong: int = 3,
    max_answer_tokens: int | None = None,
    families: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Multiple-choice questions from the bundled model's held-out prompts.

    Args:
        n_per_family: Questions per family (sizes spread evenly, as in the held-out set).
        seed: Seed of the prompts, the corruptions and the order of the choices.
        n_wrong: Wrong choices per question.
        max_answer_tokens: Keep only questions whose answer has at most this many tokens.
        families: Restrict to these families.

    Returns:
        Dicts with ``family``, ``size``, ``prompt``, ``choices`` (strings) and ``gold``
        (index of the correct choice).
    """
    tasks = _tasks()
    if isinstance(n_wrong, bool) or not isinstance(n_wrong, int) or n_wrong < 1:
        raise ConfigError(f"`n_wrong` must be a positive int, got {n_wrong!r}")
    rng = random.Random(seed)
    out = []
    for doc in tasks.heldout_set(n_per_family, seed=seed):
        if families is not None and doc["family"] not in families:
            continue
        if max_answer_tokens is not None and tasks.answer_tokens(doc["family"], doc["size"]) > max_answer_tokens:
            continue
        wrong = corruptions(doc["prompt"], doc["answer"], rng, n_wrong)
        if len(wrong) < n_wrong:
            continue  # e.g. one-item answers with too few distinct corruptions
        choices = [doc["answer"], *wrong]
        rng.shuffle(choices)
        out.append({**doc, "choices": choices, "gold": choices.index(doc["answer"])})
    return out


def score_choices(
    adapter: Any, docs: Sequence[dict[str, Any]], *, chat_template: bool = True, **estimator: Any
) -> dict[str, Any]:
    """Accuracy of picking the highest-ELBO choice, overall and per family.

    Args:
        adapter: The model adapter.
        docs: Questions as made by :func:`choice_docs`.
        chat_template: Wrap each prompt in the adapter's chat template (the bundled model
            was trained that way).
        **estimator: Passed to :func:`~daedal.eval.likelihood.log_likelihoods`
            (``mc_num``, ``batch_size``, ``exact``, ``cfg_scale``, ``seed``...).

    Returns:
        ``{"accuracy": ..., "n": ..., "families": {family: accuracy}, "log_likelihoods": [[...], ...]}``.
    """
    from daedal.eval.likelihood.estimator import log_likelihoods

    prompts = adapter.encode([d["prompt"] for d in docs], chat_template=chat_template)
    pairs, owners = [], []
    for q, (doc, prompt) in enumerate(zip(docs, prompts, strict=True)):
        answers = adapter.encode(list(doc["choices"]), chat_template=False)
        for answer in answers:
            pairs.append((prompt, answer))
            owners.append(q)
    values = log_likelihoods(adapter, pairs, **estimator)
    per_doc: list[list[float]] = [[] for _ in docs]
    for q, value in zip(owners, values, strict=True):
        per_doc[q].append(float(value))
    hits = [max(range(len(v)), key=v.__getitem__) == int(d["gold"]) for d, v in zip(docs, per_doc, strict=True)]
    families: dict[str, list[bool]] = {}
    for doc, hit in zip(docs, hits, strict=True):
        families.setdefault(str(doc.get("family", "")), []).append(hit)
    return {
        "accuracy": sum(hits) / len(hits) if hits else float("nan"),
        "n": len(hits),
        "families": {f: sum(h) / len(h) for f, h in families.items()},
        "log_likelihoods": per_doc,
    }


def write_lm_eval_task(
    directory: str | os.PathLike[str], docs: Sequence[dict[str, Any]] | None = None, *, name: str = TASK_NAME
) -> Path:
    """Write ``<name>.jsonl`` and ``<name>.yaml`` (an lm-eval multiple-choice task) into ``directory``.

    Args:
        directory: Where to write (created); pass it to lm-eval as ``--include_path``.
        docs: The questions (default: :func:`choice_docs` with its defaults).
        name: The task name.

    Returns:
        The YAML file.
    """
    out = Path(directory).resolve()
    out.mkdir(parents=True, exist_ok=True)
    docs = choice_docs() if docs is None else docs
    data = out / f"{name}.jsonl"
    data.write_text("".join(json.dumps(dict(d)) + "\n" for d in docs), encoding="utf-8")
    yaml = out / f"{name}.yaml"
    yaml.write_text(
        f"task: {name}\n"
        "dataset_path: json\n"
        "dataset_kwargs:\n"
        "  data_files:\n"
        f"    test: {json.dumps(str(data))}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        'doc_to_text: "{{prompt}}"\n'
        'doc_to_choice: "{{choices}}"\n'
        'doc_to_target: "{{gold}}"\n'
        "metric_list:\n"
        "  - metric: acc\n"
        "    aggregation: mean\n"
        "    higher_is_better: true\n",
        encoding="utf-8",
    )
    return yaml
