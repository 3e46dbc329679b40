"""Perplexity runs under the ELBO: per document and aggregated, resumable, with standard errors.

The data is a text file (one document per blank-line-separated paragraph) or a JSONL file
whose rows hold either a ``text`` (scored whole, in windows) or a ``prompt`` and an
``answer`` (the answer scored given the prompt, which the adapter's chat template wraps by
default). An output directory holds, like every run of :mod:`daedal.eval.runner`:

* ``manifest.json`` — the data (path, fields, SHA-256 of the file), the model, the
  estimator's settings and where it ran;
* ``samples.jsonl`` — one record per document, appended durably as soon as it is scored
  (``log_likelihood``, ``stderr``, ``tokens``, ``nll`` per token, ``ppl``);
* ``summary.json`` — the aggregate (:func:`aggregate`).

Running again into the same directory resumes: recorded documents are skipped, and the
manifest must describe the same run.

Perplexity is ``exp(-sum log-likelihood / sum tokens)``. Since the ELBO bounds the
log-likelihood from below, it bounds the model's perplexity from above.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import attrs

from daedal.core.errors import ConfigError

__all__ = ["PerplexityData", "aggregate", "run_perplexity"]

#: Manifest keys that must match for a run to resume.
IDENTITY_KEYS = ("data", "model", "estimator", "seed")


def _optional_positive(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"`{attribute.name}` must be a positive int or None, got {value!r}")


@attrs.frozen(kw_only=True)
class PerplexityData:
    """Where the documents of a perplexity run come from.

    Attributes:
        path: A ``.txt`` file (paragraphs are documents) or a ``.jsonl`` / ``.jsonl.gz`` file.
        text_field: JSONL field scored whole.
        prompt_field: JSONL field of the condition (with ``answer_field``).
        answer_field: JSONL field scored given the prompt.
        chat_template: Wrap prompts in the adapter's chat template.
        limit: Only the first ``limit`` documents.
    """

    path: str = attrs.field(converter=os.fspath)
    text_field: str = "text"
    prompt_field: str = "prompt"
    answer_field: str = "answer"
    chat_template: bool = True
    limit: int | None = attrs.field(default=None, validator=_optional_positive)

    def load(self) -> list[dict[str, Any]]:
        """The documents: dicts with ``text``, or ``prompt`` and ``answer``."""
        p = Path(self.path)
        if not p.is_file():
            raise ConfigError(f"`path` {self.path!r} is not a file: pass a .txt or .jsonl(.gz) file of documents")
        if p.suffix == ".txt":
            paragraphs = [block.strip() for block in p.read_text(encoding="utf-8").split("\n\n")]
            docs = [{"text": t} for t in paragraphs if t]
        else:
            from daedal.eval.suites.base import read_jsonl

            docs = []
            for i, row in enumerate(read_jsonl(p)):
                if self.text_field in row:
                    docs.append({"text": str(row[self.text_field])})
                elif self.prompt_field in row and self.answer_field in row:
                    docs.append({"prompt": str(row[self.prompt_field]), "answer": str(row[self.answer_field])})
                else:
                    raise ConfigError(
                        f"line {i + 1} of `path` {self.path!r} has neither {self.text_field!r} nor "
                        f"{self.prompt_field!r} and {self.answer_field!r} (has {sorted(row)}): set the field names"
                    )
        if self.limit is not None:
            docs = docs[: self.limit]
        if not docs:
            raise ConfigError(f"`path` {self.path!r} holds no documents")
        return docs

    def describe(self) -> dict[str, Any]:
        digest = hashlib.sha256(Path(self.path).read_bytes()).hexdigest() if Path(self.path).is_file() else None
        return {**attrs.asdict(self), "path": str(Path(self.path).resolve()), "sha256": digest}

    def encode(self, adapter: Any, doc: Mapping[str, Any]) -> tuple[list[int], list[int]]:
        """``(prompt_ids, text_ids)`` of a document; the prompt is empty for a plain text."""
        if "text" in doc:
            return [], list(adapter.encode([doc["text"]], chat_template=False)[0])
        prompt = list(adapter.encode([doc["prompt"]], chat_template=self.chat_template)[0])
        return prompt, list(adapter.encode([doc["answer"]], chat_template=False)[0])


def aggregate(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Token-weighted perplexity of scored documents, with its standard error.

    Returns:
        ``n`` documents, ``tokens``, ``log_likelihood`` (sum) and its ``stderr`` (the
        documents' in quadrature: their samples are independent), ``nll`` per token and its
        ``nll_stderr``, ``ppl = exp(nll)`` and ``ppl_stderr`` (delta method), and
        ``mean_doc_ppl``, the plain mean of the documents' perplexities.
    """
    n = len(records)
    tokens = sum(int(r["tokens"]) for r in records)
    total = sum(float(r["log_likelihood"]) for r in records)
    se = math.sqrt(sum(float(r["stderr"]) ** 2 for r in records))
    nll = -total / tokens if tokens else float("nan")
    nll_se = se / tokens if tokens else float("nan")
    ppl = math.exp(nll) if tokens and nll < 700 else float("inf") if tokens else float("nan")
    return {
        "n": n,
        "tokens": tokens,
        "log_likelihood": total,
        "stderr": se,
        "nll": nll,
        "nll_stderr": nll_se,
        "ppl": ppl,
        "ppl_stderr": ppl * nll_se,
        "mean_doc_ppl": sum(float(r["ppl"]) for r in records) / n if n else float("nan"),
    }


def run_perplexity(
    adapter: Any,
    data: PerplexityData,
    output: str | os.PathLike[str],
    *,
    mc_num: int = 128,
    batch_size: int = 32,
    cfg_scale: float = 0.0,
    seed: int = 0,
    exact: bool = False,
    window: int | None = None,
    context: int | None = None,
    docs_per_call: int = 8,
    model: Mapping[str, Any] | None = None,
    progress: bool = True,
    overwrite: bool = False,
    config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Score every document of ``data``, resumably, and aggregate.

    Args:
        adapter: The model adapter.
        data: The documents.
        output: Run directory (created; an existing one is resumed).
        mc_num: Monte-Carlo samples per window (:func:`~daedal.eval.likelihood.log_likelihood`).
        batch_size: Rows per stratified mini-batch and forward pass.
        cfg_scale: Classifier-free guidance scale (0: none).
        seed: Seed of the estimates.
        exact: Enumerate every mask subset (windows of at most 12 tokens).
        window: Tokens per window (:func:`~daedal.eval.likelihood.rolling_log_likelihoods`).
        context: Tokens of context before each window.
        docs_per_call: Documents whose windows share forward passes.
        model: How the model was loaded, for the manifest.
        progress: Show a progress bar over documents.
        overwrite: Discard the directory's previous results.
        config: The ``daedal eval ppl`` config that reruns this run
            (:mod:`daedal.eval.config`), recorded as the manifest's ``"config"``.

    Returns:
        The summary (also in ``summary.json``): ``metrics`` (:func:`aggregate`),
        ``complete`` and the manifest.
    """
    from daedal.eval.likelihood.estimator import check_settings
    from daedal.eval.likelihood.rolling import _resolve, rolling_log_likelihoods
    from daedal.eval.runner import (
        MANIFEST,
        SAMPLES,
        SUMMARY,
        _Appender,
        _engine_facts,
        _git_revision,
        _progress,
        _versions,
        _write_json_atomic,
        read_records,
    )

    check_settings(mc_num, batch_size, cfg_scale, seed)
    window, context = _resolve(adapter, window, context)
    if isinstance(docs_per_call, bool) or not isinstance(docs_per_call, int) or docs_per_call < 1:
        raise ConfigError(f"`docs_per_call` must be a positive int, got {docs_per_call!r}")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    docs = data.load()

    facts = _engine_facts(SimpleNamespace(adapter=adapter))
    manifest = json.loads(
        json.dumps(
            {
                **({"config": dict(config)} if config is not None else {}),
                "kind": "perplexity",
                "data": {**data.describe(), "n_docs": len(docs)},
                "model": dict(model) if model is not None else {"adapter": facts["adapter"]},
                "estimator": {
                    "mc_num": mc_num,
                    "batch_size": batch_size,
                    "cfg_scale": float(cfg_scale),
                    "exact": bool(exact),
                    "window": window,
                    "context": context,
                },
                "seed": seed,
                "dtype": facts["dtype"],
                "device": facts["device"],
                "packages": _versions(),
                "git": _git_revision(),
            },
            default=repr,
        )
    )
    manifest_path = out / MANIFEST
    if overwrite:
        for path in (out / SAMPLES, out / SUMMARY):
            path.unlink(missing_ok=True)
    if manifest_path.is_file() and not overwrite:
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
        for key in IDENTITY_KEYS:
            if old.get(key) != manifest.get(key):
                raise ConfigError(
                    f"`output` {str(out)!r} holds a run with a different {key!r} ({json.dumps(old.get(key))[:200]} vs "
                    f"{json.dumps(manifest.get(key))[:200]}): resume with the same settings, pick a new output "
                    "directory, or pass overwrite=True (--overwrite)"
                )
    else:
        _write_json_atomic(manifest_path, manifest)

    done = {int(r["index"]) for r in read_records(out / SAMPLES)}
    todo = [i for i in range(len(docs)) if i not in done]
    writer = _Appender(out / SAMPLES)
    try:
        with _progress(progress, "perplexity", len(docs), len(docs) - len(todo)) as advance:
            for start in range(0, len(todo), docs_per_call):
                batch = todo[start : start + docs_per_call]
                encoded = [data.encode(adapter, docs[i]) for i in batch]
                for i, (_, text) in zip(batch, encoded, strict=True):
                    if not text:
                        raise ConfigError(f"document {i} of `path` {data.path!r} has no tokens to score: remove it")
                began = time.perf_counter()
                values = rolling_log_likelihoods(
                    adapter,
                    encoded,
                    window=window,
                    context=context,
                    mc_num=mc_num,
                    batch_size=batch_size,
                    cfg_scale=cfg_scale,
                    seed=seed,
                    exact=exact,
                    progress=False,
                )
                wall = (time.perf_counter() - began) / len(batch)
                for i, (prompt, text), value in zip(batch, encoded, values, strict=True):
                    nll = -float(value) / len(text)
                    writer.write(
                        {
                            "index": i,
                            "doc_id": f"ppl/{i}",
                            "tokens": len(text),
                            "prompt_tokens": len(prompt),
                            "windows": math.ceil(len(text) / window),
                            "log_likelihood": float(value),
                            "stderr": value.stderr,
                            "nll": nll,
                            "ppl": math.exp(nll) if nll < 700 else float("inf"),
                            "wall_time": wall,
                            "doc": docs[i],
                        }
                    )
                    advance()
    finally:
        writer.close()
    records = sorted(read_records(out / SAMPLES), key=lambda r: int(r["index"]))
    summary = {
        "kind": "perplexity",
        "metrics": aggregate(records),
        "complete": len(records) == len(docs),
        "manifest": manifest,
    }
    _write_json_atomic(out / SUMMARY, summary)
    return summary
