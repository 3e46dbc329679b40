"""Per-row random streams: a row's random numbers depend on its seed, never on its batch.

A run's random numbers come from two sources on :class:`~daedal.core.State`:

* ``state.generator``, one ``torch.Generator`` seeded with the run's seed, drawn over whole
  batch tensors. The published references (LLaDA's ``generate``, Dream's
  ``diffusion_generate``, Fast-dLLM, DAEDAL's ``generate``) draw this way, so the policies
  that reproduce them do too. A row's numbers then depend on the rest of the batch.
* ``state.streams``, a :class:`RowStreams`: one counter-based stream per row. Row ``b``'s
  value at (draw ``d``, element ``i``) is a hash of ``(row_seed[b], d, i)``, where ``i`` is
  the element's index inside the row (``t * V + v`` for a ``[B, T, V]`` draw: the index does
  not depend on the canvas width), so a row draws the same numbers whatever else is in its
  batch. It is vectorised: integer tensor operations over the whole draw, no loop over rows.

Policies draw through :meth:`~daedal.core.State.uniform`, which picks the source: the row
streams unless the policy asks for the batch stream *and* the run has one seed for the
batch. A run given one seed per row (``Engine.generate(prompts, seed=[...])``) has no
batch stream: every draw comes from the row streams.

Row seeds: an int seed ``s`` gives row ``b`` the stream of ``(s, b)``; a sequence gives row
``b`` the stream of ``seed[b]`` alone, so a sample keeps its numbers in any batch, at any
position (what an evaluation runner wants: one seed per sample).

The hash is a 32-bit xorshift-multiply mix of a Weyl sequence, in int64 arithmetic with
no overflow, so it gives the same bits on every device: fine for sampling, not for
cryptography. Uniforms lie strictly inside (0, 1): 23 random bits for float32, 32 bits for
float64 (both exact: no uniform rounds to 0 or 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from daedal.core.errors import ConfigError

_MASK32 = 0xFFFFFFFF
# Odd multipliers below 2**31: a 32-bit value times one of them fits in int64 exactly, so the
# hash needs no overflow tricks (and gives the same bits on every device).
_WEYL = 0x61C88647
_M1 = 0x7FEB352D
_M2 = 0x046CA68B


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit avalanche mix (xorshift-multiply, two rounds) of ``0 <= x < 2**32``, in place."""
    x ^= x >> 16
    x *= _M1
    x &= _MASK32
    x ^= x >> 15
    x *= _M2
    x &= _MASK32
    x ^= x >> 16
    return x


def _mix_int(*values: int) -> int:
    """The same mix in plain Python, folding several ints (set-up and once per draw, never per element)."""
    h = 0
    for v in values:
        for part in (v & _MASK32, (v >> 32) & _MASK32):
            h = ((h ^ part) + _WEYL) & _MASK32
            for _ in range(2):
                h ^= h >> 16
                h = (h * _M1) & _MASK32
                h ^= h >> 15
                h = (h * _M2) & _MASK32
                h ^= h >> 16
    return h


def _check_seed(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"`{name}` must be an int >= 0, got {value!r}")
    return value


def row_seeds(seed: int | Sequence[int], batch: int) -> list[int]:
    """The 32-bit key of each row's stream.

    Args:
        seed: One int for the batch (row ``b`` gets the stream of ``(seed, b)``) or one int
            per row (row ``b`` gets the stream of ``seed[b]`` alone).
        batch: Number of rows.

    Raises:
        ConfigError: A negative or non-int seed, or a sequence whose length is not ``batch``.
    """
    if isinstance(seed, int) and not isinstance(seed, bool):
        _check_seed(seed, "seed")
        return [_mix_int(seed, b, 1) for b in range(batch)]
    if isinstance(seed, (str, bytes)) or not isinstance(seed, Sequence):
        raise ConfigError(f"`seed` must be an int or a sequence of ints (one per prompt), got {type(seed).__name__}")
    if len(seed) != batch:
        raise ConfigError(
            f"`seed` holds {len(seed)} seeds for {batch} prompts: pass one seed per prompt, or one int for the batch"
        )
    return [_mix_int(_check_seed(s, f"seed[{i}]"), 2) for i, s in enumerate(seed)]


class RowStreams:
    """One counter-based random stream per row of a run.

    Args:
        keys: ``[B]`` int64 stream keys (see :func:`row_seeds`), on the run's device.
    """

    __slots__ = ("_draws", "keys")

    def __init__(self, keys: torch.Tensor) -> None:
        self.keys = keys
        self._draws = 0

    def __repr__(self) -> str:
        return f"RowStreams(rows={self.keys.shape[0]}, draws={self._draws})"

    def uniform(self, shape: Sequence[int], *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """A ``shape`` tensor of uniforms in (0, 1); ``shape[0]`` must be the number of rows.

        Each call is one draw: the row streams advance by one draw whatever the shape, so a
        row's numbers depend only on its key, how many draws came before, and the element's
        position inside the row.
        """
        if dtype not in (torch.float32, torch.float64):
            raise ConfigError(f"row-stream uniforms are float32 or float64, got {dtype}: draw float32 and convert")
        shape = tuple(int(s) for s in shape)
        if not shape or shape[0] != self.keys.shape[0]:
            raise ConfigError(f"a row-stream draw needs shape [rows={self.keys.shape[0]}, ...], got {list(shape)}")
        draw = self._draws
        self._draws += 1
        per_row = math.prod(shape[1:])
        device = self.keys.device
        # The row's key for this draw, mixed once per row: [B, 1].
        key = _mix32((self.keys ^ _mix_int(draw, 3)) & _MASK32)[:, None]
        # A Weyl sequence over the element index, offset by the row's key, then mixed:
        # element i of row b depends on (key[b], draw, i) only.
        bits = torch.arange(per_row, dtype=torch.long, device=device)
        bits *= _WEYL
        bits &= _MASK32
        bits = bits[None, :] + key
        bits &= _MASK32
        _mix32(bits)
        if dtype == torch.float64:
            u = bits.double().add_(0.5).mul_(2.0**-32)
        else:
            # 23 bits: n + 0.5 with n < 2**23 is exact in float32, so u is never rounded to 1.
            bits >>= 9
            u = bits.float().add_(0.5).mul_(2.0**-23)
        return u.reshape(shape)
