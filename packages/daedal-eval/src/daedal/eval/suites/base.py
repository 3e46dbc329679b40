"""The suite interface: where a benchmark's problems come from, its prompt and its scorer.

A suite is a frozen ``attrs`` value registered in the ``daedal.suites`` entry-point
group. It turns a problem (a ``doc``: one row of the dataset, a plain dict) into the chat
messages the model sees plus an assistant prefix, and scores a raw generation against
the doc. It also says which strings count as padding for the efficiency metrics.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import attrs

from daedal.core.errors import ConfigError

__all__ = ["Score", "Suite", "read_jsonl", "build_prompt", "render_prompt_text"]

#: The assistant turn of every paper suite starts with this (the DAEDAL harness appends it).
REASONING_PREFIX = "<reasoning>"


@attrs.frozen(kw_only=True)
class Score:
    """The verdict on one generation.

    Attributes:
        correct: Whether it counts as solved.
        prediction: What was extracted and compared (answer string or program).
        detail: Why, in a few words (e.g. the sandbox's status and last error line).
    """

    correct: bool
    prediction: str
    detail: str = ""


def _optional_positive(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ConfigError(f"`{attribute.name}` must be a positive int or None, got {value!r}")


def _optional_path(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if value is not None and not isinstance(value, (str, os.PathLike)):
        raise ConfigError(f"`{attribute.name}` must be a file path or None (hub data), got {value!r}")


#: The scoring protocols every suite accepts (see :attr:`Suite.protocol`).
PROTOCOLS = ("default", "paper")


def _protocol(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if value not in PROTOCOLS:
        raise ConfigError(
            f"`{attribute.name}` must be one of {', '.join(map(repr, PROTOCOLS))}, got {value!r}: "
            "'paper' scores exactly as the DAEDAL repository's metric scripts, 'default' fixes their accidents"
        )


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of a ``.jsonl`` or ``.jsonl.gz`` file (blank lines skipped).

    Raises:
        ConfigError: The file does not exist, cannot be read or decompressed (truncated
            gzip, bad UTF-8), holds no rows, or a line is not a JSON object; the message
            names the file and the line.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"`path` {str(p)!r} is not a file: pass a .jsonl or .jsonl.gz file of problems")
    opener = gzip.open if p.suffix == ".gz" else open
    rows = []
    number = 0
    try:
        with opener(p, "rt", encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    cut = "" if line.endswith("\n") else " (the file ends inside this line: truncated?)"
                    raise ConfigError(
                        f"`path` {str(p)!r} line {number} is not JSON ({err}){cut}: fix or remove it"
                    ) from err
                if not isinstance(row, dict):
                    raise ConfigError(f"`path` {str(p)!r} line {number} is not a JSON object: one problem per line")
                rows.append(row)
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise ConfigError(
            f"`path` {str(p)!r} cannot be read after line {number} ({type(err).__name__}: {err}): "
            "the file is truncated or not UTF-8 JSON lines; download it again"
        ) from err
    if not rows:
        raise ConfigError(
            f"`path` {str(p)!r} holds no problems (empty file): pass a file with one JSON object per line"
        )
    return rows


@attrs.frozen(kw_only=True)
class Suite:
    """Base of every suite. Subclasses set the class attributes and the three methods.

    Attributes:
        path: A local ``.jsonl``/``.jsonl.gz`` file in the dataset's schema; None loads
            the dataset from the hub (``datasets``, imported only then).
        limit: Use only the first ``limit`` problems.
        protocol: ``"paper"`` scores exactly as the DAEDAL repository's metric scripts,
            quirks included (each listed in the suite's docs); ``"default"`` fixes the
            scripts' accidents (each deviation listed with an example in the docs).
    """

    name: ClassVar[str] = ""
    hub_id: ClassVar[str | None] = None
    hub_config: ClassVar[str | None] = None
    hub_split: ClassVar[str] = "test"
    required_fields: ClassVar[tuple[str, ...]] = ()
    #: Strings counted as padding by the efficiency metrics (reference semantics E5).
    pad_strings: ClassVar[tuple[str, ...]] = ("<|endoftext|>",)
    #: Text the assistant turn starts with, after the chat template.
    assistant_prefix: ClassVar[str] = REASONING_PREFIX

    path: str | None = attrs.field(
        default=None,
        validator=_optional_path,
        converter=lambda p: None if p is None else os.fspath(p) if isinstance(p, os.PathLike) else p,
    )
    limit: int | None = attrs.field(default=None, validator=_optional_positive)
    protocol: str = attrs.field(default="default", validator=_protocol)

    # -- data ------------------------------------------------------------------------

    def _rows(self) -> list[dict[str, Any]]:
        if self.path is not None:
            return read_jsonl(self.path)
        if self.hub_id is None:
            raise ConfigError(f"suite {self.name!r} has no hub dataset: pass `path` to a local file")
        try:
            import datasets
        except ImportError as err:
            raise ConfigError(
                f"suite {self.name!r} loads {self.hub_id!r} from the hub, which needs the `datasets` package: "
                "pip install 'daedal-eval[hf]', or pass `path` to a local .jsonl file"
            ) from err
        data = datasets.load_dataset(self.hub_id, self.hub_config, split=self.hub_split)
        return [dict(row) for row in data]

    def load(self) -> list[dict[str, Any]]:
        """The problems, in dataset order, cut to ``limit``; each checked for the needed fields."""
        rows = self._rows()
        if self.limit is not None:
            rows = rows[: self.limit]
        for i, row in enumerate(rows):
            missing = [k for k in self.required_fields if k not in row]
            if missing:
                raise ConfigError(
                    f"problem {i} of suite {self.name!r} lacks {missing} (has {sorted(row)}): "
                    f"the file must follow the {self.hub_id or self.name} schema"
                )
        return rows

    def doc_id(self, doc: Mapping[str, Any], index: int) -> str:
        """A stable id of a problem for result files (the dataset's own id when it has one)."""
        for key in ("task_id", "unique_id", "id"):
            if key in doc:
                return str(doc[key])
        return f"{self.name}/{index}"

    # -- prompting -------------------------------------------------------------------

    def user_message(self, doc: Mapping[str, Any]) -> str:
        """The user turn for ``doc`` (benchmark data: must match the paper byte for byte)."""
        raise NotImplementedError

    def messages(self, doc: Mapping[str, Any]) -> list[dict[str, str]]:
        """The conversation: one user message, no system prompt."""
        return [{"role": "user", "content": self.user_message(doc)}]

    # -- scoring ---------------------------------------------------------------------

    def target(self, doc: Mapping[str, Any]) -> str:
        """The reference answer, as stored in result files."""
        raise NotImplementedError

    def score(self, doc: Mapping[str, Any], text: str) -> Score:
        """Score one raw generation (decoded, special tokens kept)."""
        raise NotImplementedError

    def score_many(self, docs: Sequence[Mapping[str, Any]], texts: Sequence[str]) -> list[Score]:
        """Score several generations; code suites run their programs concurrently."""
        if len(docs) != len(texts):
            raise ConfigError(f"`texts` has {len(texts)} entries for {len(docs)} docs: pass one text per doc")
        return [self.score(d, t) for d, t in zip(docs, texts, strict=True)]

    def describe(self) -> dict[str, Any]:
        """Name and parameters, for manifests."""
        return {"name": self.name, "params": attrs.asdict(self)}


def render_prompt_text(adapter: Any, messages: Sequence[Mapping[str, str]], prefix: str) -> str | None:
    """The full prompt string (chat template + prefix) when the adapter can render it, else None."""
    render = getattr(adapter, "render_chat", None)
    if callable(render):
        try:
            return render([dict(m) for m in messages]) + prefix
        except NotImplementedError:
            return None
    return None


def build_prompt(adapter: Any, messages: Sequence[Mapping[str, str]], prefix: str) -> list[int]:
    """Token ids of ``messages`` in the adapter's chat template followed by ``prefix``.

    Adapters that render their template as text (``render_chat``, as daedal's LLaDA and
    Dream do) get the whole string, prefix included, encoded in one go without a second
    template. Others encode the conversation with their template and the prefix separately.
    """
    text = render_prompt_text(adapter, messages, prefix)
    if text is not None:
        return list(adapter.encode([text], chat_template=False)[0])
    ids = list(adapter.encode([[dict(m) for m in messages]], chat_template=True)[0])
    if prefix:
        ids += list(adapter.encode([prefix], chat_template=False)[0])
    return ids


def iter_chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
