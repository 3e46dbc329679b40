"""Checkpoint I/O shared by the native LLaDA and Dream implementations.

A checkpoint is an HF-style directory: ``config.json`` in the model's own format,
weights as ``model.safetensors`` or as shards listed by ``model.safetensors.index.json``,
and tokenizer files. Loading is memory-frugal: the model is built on the meta device
and each shard is read, converted to the target dtype on the target device, and
*assigned* into the module before the next shard is opened, so an 8B bf16 model never
exists as a full fp32 copy in RAM.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch

from daedal.core.errors import AdapterError, ConfigError

CONFIG_NAME = "config.json"
SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_INDEX_NAME = "model.safetensors.index.json"

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}
_M = TypeVar("_M", bound=torch.nn.Module)

_DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


def dtype_name(dtype: torch.dtype) -> str:
    """The config.json spelling of a floating dtype (``torch.bfloat16`` -> ``"bfloat16"``)."""
    return _DTYPE_NAMES.get(dtype, str(dtype).removeprefix("torch."))


def resolve_dtype(dtype: Any, *, checkpoint_dtype: str | None = None, argument: str = "dtype") -> torch.dtype:
    """Turn a user dtype (torch dtype, name or ``"auto"``) into a floating torch dtype.

    Args:
        dtype: ``torch.float32`` / ``bfloat16`` / ``float16``, their names, ``"auto"``
            (the checkpoint's ``torch_dtype``) or None (same as ``"auto"``).
        checkpoint_dtype: The ``torch_dtype`` recorded in config.json, if any.
        argument: Argument name used in error messages.

    Raises:
        ConfigError: For anything that is not one of the three supported dtypes.
    """
    if dtype is None or (isinstance(dtype, str) and dtype == "auto"):
        if checkpoint_dtype is None:
            return torch.float32
        dtype = checkpoint_dtype
    if isinstance(dtype, torch.dtype):
        if dtype in _DTYPE_NAMES:
            return dtype
    elif isinstance(dtype, str) and dtype.removeprefix("torch.").lower() in _DTYPES:
        return _DTYPES[dtype.removeprefix("torch.").lower()]
    raise ConfigError(
        f"{argument}={dtype!r} is not a supported dtype; pass torch.float32, torch.bfloat16, "
        f"torch.float16, one of their names ('float32', 'bfloat16', 'float16') or 'auto' "
        f"(the checkpoint's own dtype)."
    )


def resolve_device(device: Any, *, argument: str = "device") -> torch.device:
    """Turn a user device (None, string or ``torch.device``) into a usable ``torch.device``.

    Raises:
        ConfigError: When the string is not a device or the device is not available here.
    """
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(
            f"{argument}={device!r} is not a torch device; pass 'cpu', 'cuda', 'cuda:0', 'mps' or a torch.device."
        ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"{argument}={device!r} asks for CUDA but no CUDA device is available on this machine; "
                "pass device='cpu' or install a CUDA build of torch."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"{argument}={device!r} names a CUDA device that does not exist "
                f"(this machine has {torch.cuda.device_count()}); pick an index below that."
            )
    elif dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ConfigError(f"{argument}={device!r} asks for MPS, which is not available here; pass device='cpu'.")
    elif dev.type == "meta":
        raise ConfigError(f"{argument}={device!r}: the meta device holds no data; pass 'cpu' or 'cuda'.")
    return dev


def parse_size(size: int | str | None, *, argument: str = "max_shard_size") -> int | None:
    """Parse a byte size such as ``10_000``, ``"500KB"``, ``"2GB"`` or ``"1GiB"``."""
    if size is None or isinstance(size, int) and not isinstance(size, bool):
        if isinstance(size, int) and size <= 0:
            raise ConfigError(f"{argument}={size!r} must be a positive number of bytes.")
        return size
    if isinstance(size, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(I?)B?\s*", size.upper())
        if m:
            base = 1024 if m.group(3) else 1000
            power = " KMGT".index(m.group(2) or " ")
            value = int(float(m.group(1)) * base**power)
            if value > 0:
                return value
    raise ConfigError(f"{argument}={size!r} is not a size; pass a positive int (bytes) or a string like '2GB'.")


# ---------------------------------------------------------------------------------------- config


def read_config(directory: str | os.PathLike[str], *, family: str, argument: str = "path") -> dict[str, Any]:
    """Read ``config.json`` from a checkpoint directory.

    Raises:
        AdapterError: When the directory or its config.json does not exist or is not JSON.
    """
    path = Path(directory)
    if not path.is_dir():
        raise AdapterError(
            f"{argument}={str(directory)!r} is not a directory; pass the path of a {family} checkpoint "
            f"directory (config.json, *.safetensors, tokenizer files) or a hub id on a machine with internet.",
            code="checkpoint",
        )
    cfg = path / CONFIG_NAME
    if not cfg.is_file():
        raise AdapterError(
            f"{argument}={str(directory)!r} has no {CONFIG_NAME}, so it is not a {family} checkpoint; "
            f"point it at the directory that holds config.json and the *.safetensors weights.",
            code="checkpoint",
        )
    try:
        data = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterError(
            f"{argument}={str(directory)!r}: {CONFIG_NAME} could not be read as JSON ({exc}); "
            "re-download or re-save the checkpoint.",
            code="checkpoint",
        ) from exc
    if not isinstance(data, dict):
        raise AdapterError(
            f"{argument}={str(directory)!r}: {CONFIG_NAME} must hold a JSON object, got {type(data).__name__}.",
            code="checkpoint",
        )
    return data


# ---------------------------------------------------------------------------------------- saving


def save_checkpoint(
    config: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    directory: str | os.PathLike[str],
    *,
    max_shard_size: int | str | None = None,
) -> Path:
    """Write ``config.json`` and the weights as one safetensors file or as indexed shards.

    Args:
        config: The config.json contents.
        state_dict: Parameter name -> tensor (moved to CPU and made contiguous here).
        directory: Created if missing.
        max_shard_size: Bytes (or ``"2GB"``) per shard; None writes a single
            ``model.safetensors``. A tensor larger than the limit gets a shard of its own.

    Returns:
        The directory.
    """
    from safetensors.torch import save_file

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    limit = parse_size(max_shard_size)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}

    shards: list[dict[str, torch.Tensor]] = [{}]
    used = 0
    for name, t in tensors.items():
        nbytes = t.numel() * t.element_size()
        if limit is not None and shards[-1] and used + nbytes > limit:
            shards.append({})
            used = 0
        shards[-1][name] = t
        used += nbytes

    # Remove stale weights from an earlier save so the directory is unambiguous.
    for old in list(out.glob("*.safetensors")) + [out / SAFE_INDEX_NAME]:
        if old.exists():
            old.unlink()
    if limit is None:
        save_file(shards[0], str(out / SAFE_WEIGHTS_NAME), metadata={"format": "pt"})
    else:
        n = len(shards)
        weight_map: dict[str, str] = {}
        for i, shard in enumerate(shards, start=1):
            fname = f"model-{i:05d}-of-{n:05d}.safetensors"
            save_file(shard, str(out / fname), metadata={"format": "pt"})
            weight_map.update(dict.fromkeys(shard, fname))
        total = sum(t.numel() * t.element_size() for t in tensors.values())
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (out / SAFE_INDEX_NAME).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (out / CONFIG_NAME).write_text(json.dumps(dict(config), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return out


def save_model(
    model: Any,
    directory: str | os.PathLike[str],
    *,
    max_shard_size: int | str | None = None,
    omit: tuple[str, ...] = (),
) -> Path:
    """Save a native model: its ``config.to_dict()`` with the weights' ``torch_dtype``, and its state dict.

    Args:
        model: A native model (``config``, ``dtype`` and ``state_dict()``).
        directory: Target directory (created if missing).
        max_shard_size: Bytes or ``"2GB"``; None writes one ``model.safetensors``.
        omit: State-dict keys not written (e.g. a tied LM head, stored once as the embedding).
    """
    config = model.config.to_dict()
    config["torch_dtype"] = dtype_name(model.dtype)
    state = model.state_dict()
    for key in omit:
        state.pop(key, None)
    return save_checkpoint(config, state, directory, max_shard_size=max_shard_size)


# ---------------------------------------------------------------------------------------- loading


def weight_files(directory: str | os.PathLike[str], *, family: str, argument: str = "path") -> list[Path]:
    """The safetensors files of a checkpoint, in index order when an index exists.

    Raises:
        AdapterError: When the directory holds no safetensors weights, or the index names
            a shard that is missing.
    """
    path = Path(directory)
    index = path / SAFE_INDEX_NAME
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AdapterError(
                f"{argument}={str(directory)!r}: {SAFE_INDEX_NAME} is not a valid safetensors index "
                f"(expected a 'weight_map' object): {exc}",
                code="checkpoint",
            ) from exc
        files = sorted(set(weight_map.values()))
        missing = [f for f in files if not (path / f).is_file()]
        if missing:
            raise AdapterError(
                f"{argument}={str(directory)!r}: the index lists shard(s) {missing} that are not in the "
                "directory; the download is incomplete, fetch the missing files.",
                code="checkpoint",
            )
        return [path / f for f in files]
    if (path / SAFE_WEIGHTS_NAME).is_file():
        return [path / SAFE_WEIGHTS_NAME]
    found = sorted(path.glob("*.safetensors"))
    if found:
        return found
    has_bin = any(path.glob("*.bin")) or any(path.glob("*.pt"))
    hint = (
        " It has PyTorch .bin weights only; convert them to safetensors (or use trust_remote_code=True)."
        if has_bin
        else ""
    )
    raise AdapterError(
        f"{argument}={str(directory)!r} holds no *.safetensors weights, so it is not a loadable {family} "
        f"checkpoint.{hint}",
        code="checkpoint",
    )


def iter_checkpoint(
    directory: str | os.PathLike[str],
    *,
    dtype: torch.dtype,
    device: torch.device,
    family: str,
) -> Iterator[dict[str, torch.Tensor]]:
    """Yield the checkpoint one shard at a time, converted to ``dtype`` on ``device``.

    Floating tensors are converted; integer tensors (none in LLaDA/Dream) are left alone.
    """
    from safetensors import safe_open

    # safetensors can place tensors straight on a CUDA device; anything else goes via CPU.
    open_device = str(device) if device.type == "cuda" else "cpu"
    for file in weight_files(directory, family=family):
        shard: dict[str, torch.Tensor] = {}
        with _unreadable_is_adapter_error(file), safe_open(str(file), framework="pt", device=open_device) as f:
            for key in f.keys():
                t = f.get_tensor(key)
                if t.is_floating_point():
                    t = t.to(dtype=dtype)
                shard[key] = t.to(device)
        yield shard


@contextlib.contextmanager
def _unreadable_is_adapter_error(file: Path) -> Iterator[None]:
    """Turn safetensors' own errors (empty, truncated or garbage files) into an AdapterError naming the file."""
    try:
        yield
    except AdapterError:
        raise
    except Exception as err:  # SafetensorError, OSError and the like: the file is not a safetensors file
        raise AdapterError(
            f"weight file {str(file)!r} cannot be read as safetensors ({type(err).__name__}: {err}): the file is "
            "empty, truncated or not a safetensors file; download or convert it again",
            code="checkpoint",
        ) from err


_SAFETENSORS_DTYPES = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}


def stored_dtype(directory: str | os.PathLike[str], *, family: str) -> str | None:
    """The dtype of the first floating tensor stored in the checkpoint (``"bfloat16"``), if any.

    Used when config.json records no ``torch_dtype``, so that ``dtype="auto"`` still means
    "as stored" and an 8B bf16 checkpoint is not upcast to fp32.
    """
    from safetensors import safe_open

    for file in weight_files(directory, family=family):
        with _unreadable_is_adapter_error(file), safe_open(str(file), framework="pt") as f:
            for key in f.keys():
                name = _SAFETENSORS_DTYPES.get(f.get_slice(key).get_dtype())
                if name is not None:
                    return name
    return None


def load_into(
    model: torch.nn.Module,
    directory: str | os.PathLike[str],
    *,
    dtype: torch.dtype,
    device: torch.device,
    family: str,
    optional: tuple[str, ...] = (),
) -> None:
    """Fill a (typically meta-device) model from a checkpoint directory, shard by shard.

    Every expected key must be present exactly once with the expected shape; anything
    else raises :class:`AdapterError` naming the offending keys.

    Args:
        model: The module; its ``state_dict()`` keys are the expected keys.
        directory: The checkpoint directory.
        dtype: Target dtype of floating parameters.
        device: Target device.
        family: Model family name for messages (``"LLaDA"``).
        optional: Expected keys that may be absent (e.g. a tied LM head, re-tied by the caller).
    """
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    seen: set[str] = set()
    unexpected: list[str] = []
    for shard in iter_checkpoint(directory, dtype=dtype, device=device, family=family):
        keep: dict[str, torch.Tensor] = {}
        for key, t in shard.items():
            if key not in expected:
                unexpected.append(key)
                continue
            if tuple(t.shape) != expected[key]:
                raise AdapterError(
                    f"checkpoint {str(directory)!r}: tensor {key!r} has shape {tuple(t.shape)} but the "
                    f"config.json describes a model whose {key!r} is {expected[key]}; the weights and "
                    "config.json belong to different models: re-download the checkpoint.",
                    code="checkpoint",
                )
            keep[key] = t
        if unexpected:
            break
        model.load_state_dict(keep, strict=False, assign=True)
        seen.update(keep)
        del keep, shard
    missing = sorted(set(expected) - seen - set(optional))
    if unexpected or missing:
        parts = []
        if missing:
            parts.append(f"missing keys {_preview(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_preview(sorted(unexpected))}")
        raise AdapterError(
            f"checkpoint {str(directory)!r} does not match the {family} architecture described by its "
            f"config.json: {'; '.join(parts)}. Check that the directory is a {family} checkpoint with all "
            "shards downloaded, or load it with trust_remote_code=True if it is a modified architecture.",
            code="checkpoint",
        )


def load_model(
    build: Callable[[], _M],
    directory: str | os.PathLike[str],
    *,
    config_dtype: str | None,
    dtype: Any,
    device: Any,
    family: str,
    optional: tuple[str, ...] = (),
) -> _M:
    """Build a model on the meta device and fill it from a checkpoint directory, shard by shard.

    Args:
        build: Builds the (unloaded) model; called under ``torch.device("meta")``.
        directory: The checkpoint directory.
        config_dtype: The ``torch_dtype`` of config.json; None falls back to the stored dtype.
        dtype: ``"auto"`` (checkpoint dtype), a torch dtype or its name.
        device: Target device (default CPU).
        family: Model family name for messages (``"LLaDA"``).
        optional: Expected keys that may be absent (see :func:`load_into`).

    Raises:
        AdapterError: Missing / unexpected / mis-shaped keys.
        ConfigError: Bad ``dtype`` or ``device``.
    """
    stored = config_dtype or stored_dtype(directory, family=family)
    target_dtype = resolve_dtype(dtype, checkpoint_dtype=stored)
    target_device = resolve_device(device)
    with torch.device("meta"), _no_weight_init():
        model = build()
    load_into(model, directory, dtype=target_dtype, device=target_device, family=family, optional=optional)
    return model


@contextlib.contextmanager
def _no_weight_init() -> Iterator[None]:
    """Make ``torch.nn.init``'s random initialisers no-ops while a meta model is built.

    The weights are overwritten by the checkpoint anyway, and a meta-device ``normal_``
    runs through ``torch._refs``, whose first call imports ``torch._dynamo`` (over a
    second of start-up for nothing).
    """
    names = (
        "normal_",
        "uniform_",
        "kaiming_uniform_",
        "kaiming_normal_",
        "trunc_normal_",
        "xavier_uniform_",
        "xavier_normal_",
    )
    saved = {n: getattr(torch.nn.init, n) for n in names}
    try:
        for n in names:
            setattr(torch.nn.init, n, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        for n, fn in saved.items():
            setattr(torch.nn.init, n, fn)


def _preview(keys: list[str], n: int = 5) -> str:
    shown = ", ".join(repr(k) for k in keys[:n])
    more = f" and {len(keys) - n} more" if len(keys) > n else ""
    return f"[{shown}{more}]"
