"""config.json (de)serialisation shared by the native LLaDA and Dream configs.

A family's config is a dataclass with one field per config.json key plus ``extra`` (the
keys it does not know, written back unchanged); it inherits :class:`CheckpointConfig`
and names its family in the class attributes ``FAMILY``, ``MODEL_TYPE`` and
``ARCHITECTURES``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from daedal.core.errors import AdapterError, ConfigError
from daedal.models._loading import read_config

__all__ = ["CheckpointConfig", "check_model_type"]

_C = TypeVar("_C", bound="CheckpointConfig")


def check_model_type(
    data: dict[str, Any],
    *,
    family: str,
    model_type: str,
    path: str | os.PathLike[str],
    argument: str = "path",
    hint: str = "",
) -> None:
    """Check, case-insensitively, that a config.json mapping names ``model_type``.

    Args:
        data: The config.json mapping.
        family: The family's display name (``"LLaDA"``, ``"Dream"``).
        model_type: The expected ``model_type``.
        path: The checkpoint, for the message.
        argument: The argument name the message shows for ``path``.
        hint: A sentence appended to the message (e.g. which adapter to use instead).

    Raises:
        AdapterError: When ``model_type`` differs.
    """
    if str(data.get("model_type", "")).lower() != model_type.lower():
        hint = hint or _other_adapter_hint(data.get("model_type"))
        raise AdapterError(
            f"{argument}={str(path)!r} is not a {family} checkpoint: its config.json has model_type="
            f"{data.get('model_type')!r} (expected {model_type!r}).{hint}",
            code="checkpoint",
        )


def _other_adapter_hint(found: Any) -> str:
    """Which installed adapter declares ``found`` (families are data: read from the entry points)."""
    from daedal.core import registry
    from daedal.core.errors import PluginError

    try:
        name = registry.adapter_for_model_type(str(found or ""))
    except PluginError:
        return ""
    return f" The installed adapter {name!r} declares that model_type: load it with that adapter." if name else ""


class CheckpointConfig:
    """Base of the dataclass configs: ``from_dict`` / ``from_file`` / ``to_dict``.

    Attributes:
        FAMILY: Display name used in messages and by :func:`read_config`.
        MODEL_TYPE: The ``model_type`` written to (and expected in) config.json.
        ARCHITECTURES: The ``architectures`` written to config.json.
        OMIT_IF_NONE: Fields left out of :meth:`to_dict` while they are None.
    """

    FAMILY: ClassVar[str]
    MODEL_TYPE: ClassVar[str]
    ARCHITECTURES: ClassVar[tuple[str, ...]]
    OMIT_IF_NONE: ClassVar[tuple[str, ...]] = ()

    extra: dict[str, Any]

    def validate(self) -> None:
        """Reject configurations the native implementation does not compute exactly."""
        raise NotImplementedError

    @classmethod
    def from_dict(cls: type[_C], d: dict[str, Any]) -> _C:
        """Build from a config.json mapping; unknown keys go to ``extra``."""
        if not isinstance(d, dict):
            raise ConfigError(f"config={d!r} must be a dict (the contents of {cls.FAMILY}'s config.json).")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}  # type: ignore[arg-type]
        known = {k: v for k, v in d.items() if k in names}
        extra = {k: v for k, v in d.items() if k not in names and k not in ("model_type", "architectures")}
        extra.update(d.get("extra", {}) if isinstance(d.get("extra"), dict) else {})
        if known.get("torch_dtype") is None and isinstance(d.get("dtype"), str):
            known["torch_dtype"] = d["dtype"]  # transformers >= 5 spells it "dtype"
        cfg = cls(**known, extra=extra)  # type: ignore[call-arg]
        cfg.validate()
        return cfg

    @classmethod
    def from_file(cls: type[_C], path: str | os.PathLike[str]) -> _C:
        """Read a config.json file, or the config.json inside a checkpoint directory."""
        p = Path(path)
        if p.is_dir():
            data = read_config(p, family=cls.FAMILY)
        else:
            try:
                data = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"path={str(path)!r} could not be read as a JSON config: {exc}") from exc
        return cls.from_dict(data)

    @classmethod
    def from_checkpoint_dict(cls: type[_C], data: dict[str, Any], *, path: str | os.PathLike[str], hint: str = "") -> _C:
        """Check ``model_type`` and parse; a field of the wrong kind becomes an :class:`AdapterError`.

        Args:
            data: The config.json mapping.
            path: The checkpoint, for messages.
            hint: Appended to the wrong-``model_type`` message (default: the installed adapter
                that declares the checkpoint's ``model_type``, if any).

        Raises:
            AdapterError: When ``model_type`` is not :attr:`MODEL_TYPE`, or a field has the wrong type.
        """
        check_model_type(data, family=cls.FAMILY, model_type=cls.MODEL_TYPE, path=path, hint=hint)
        try:
            return cls.from_dict(data)
        except TypeError as exc:  # a field of the wrong kind, e.g. a list where an int belongs
            raise AdapterError(f"path={str(path)!r}: config.json is not a valid {cls.FAMILY} config: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """The config.json contents, with ``model_type`` and ``architectures`` of the family."""
        out: dict[str, Any] = dict(self.extra)
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if f.name != "extra":
                out[f.name] = getattr(self, f.name)
        for name in self.OMIT_IF_NONE:
            if out[name] is None:
                del out[name]
        out["model_type"] = self.MODEL_TYPE
        out["architectures"] = list(self.ARCHITECTURES)
        return out
