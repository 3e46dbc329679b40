"""The variable-length tasks the bundled tiny model was trained on (reverse, sort, repeat, add)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from daedal.core.errors import ConfigError
from daedal.eval.suites.base import Score, Suite


def _tasks() -> Any:
    try:
        from daedal.models.bundled import tasks
    except ImportError as err:
        raise ConfigError("the synthetic suite needs daedal.models.bundled.tasks: pip install daedal-models") from err
    return tasks


@attrs.frozen(kw_only=True)
class Synthetic(Suite):
    """The bundled model's held-out set; exact match ignoring end-of-text tokens.

    Attributes:
        n_per_family: Problems per task family (families in the tasks module's order).
        seed: Seed of the held-out set.
        families: Restrict to these families (None: all).
    """

    name: ClassVar[str] = "synthetic"
    required_fields: ClassVar[tuple[str, ...]] = ("family", "prompt", "answer")
    assistant_prefix: ClassVar[str] = ""
    pad_strings: ClassVar[tuple[str, ...]] = ("<|endoftext|>", "<|eot_id|>")

    n_per_family: int = 25
    seed: int = 1234
    families: tuple[str, ...] | None = attrs.field(default=None, converter=lambda f: None if f is None else tuple(f))

    def _rows(self) -> list[dict[str, Any]]:
        if self.path is not None:
            rows = super()._rows()
        else:
            if not isinstance(self.n_per_family, int) or self.n_per_family < 1:
                raise ConfigError(f"`n_per_family` must be a positive int, got {self.n_per_family!r}")
            rows = _tasks().heldout_set(self.n_per_family, self.seed)
        if self.families is not None:
            known = set(_tasks().FAMILIES)
            unknown = sorted(set(self.families) - known)
            if unknown:
                raise ConfigError(f"`families` holds unknown families {unknown}: use some of {sorted(known)}")
            rows = [r for r in rows if r["family"] in self.families]
        return rows

    def doc_id(self, doc: Mapping[str, Any], index: int) -> str:
        return f"synthetic/{index}:{doc['family']}"

    def user_message(self, doc: Mapping[str, Any]) -> str:
        return str(doc["prompt"])

    def target(self, doc: Mapping[str, Any]) -> str:
        return str(doc["answer"])

    def score(self, doc: Mapping[str, Any], text: str) -> Score:
        tasks = _tasks()
        prediction = " ".join(tasks.normalize(text))
        return Score(correct=bool(tasks.score(doc["family"], doc["prompt"], text)), prediction=prediction)
