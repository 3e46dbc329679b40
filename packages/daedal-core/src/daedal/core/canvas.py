"""The canvas and the decisions that change it.

A :class:`Canvas` is an immutable, batched, right-padded token grid. Policies never
edit it: they return :class:`Unmask` and :class:`Expand` values, and
:meth:`Canvas.apply` is the only way to get the next canvas. ``apply`` checks every
invariant and raises :class:`~daedal.core.CanvasError` instead of producing a
broken canvas:

* I1 the prompt never changes;
* I2 unmasking writes only at masked positions, never writes the mask id, and (when the
  canvas knows its vocabulary) writes only ids inside it;
* I3 expansion turns a masked position into ``factor`` masks and keeps the order of
  every other token;
* I4 positions past a row's length hold the pad id, and no length exceeds
  ``max_length`` (unless an expansion explicitly asks to truncate);
* I5 rows are independent;
* I6 unmask, remask and expand positions are disjoint, all in pre-step coordinates;
* I7 remasking turns committed generation tokens (never prompt tokens) back into masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import attrs
import torch

from daedal.core.errors import CanvasError


def _long(x: torch.Tensor | Sequence[int] | int, batch: int, device: torch.device, name: str) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=torch.long, device=device)
    if t.ndim == 0:
        t = t.expand(batch).clone()
    if t.shape != (batch,):
        raise CanvasError(f"`{name}` must have one entry per row ({batch}), got shape {tuple(t.shape)}")
    return t


@attrs.frozen(eq=False, repr=False)
class Canvas:
    """An immutable batch of token rows: prompt, then generation slots, then padding.

    Attributes:
        tokens: ``[B, T]`` long tensor; columns ``>= length[b]`` hold ``pad_id``.
        prompt_len: ``[B]`` number of prompt tokens at the start of each row.
        length: ``[B]`` prompt plus generation slots of each row.
        max_length: ``[B]`` the largest ``length`` each row may reach.
        mask_id: Id of the mask token.
        pad_id: Id written past each row's length.
        vocab_size: When set, every id an ``Unmask`` commits must lie in ``[0, vocab_size)``
            (the engine sets it from the adapter).
    """

    tokens: torch.Tensor
    prompt_len: torch.Tensor
    length: torch.Tensor
    max_length: torch.Tensor
    mask_id: int
    pad_id: int
    vocab_size: int | None = attrs.field(default=None, kw_only=True)

    def __repr__(self) -> str:
        b, w = self.tokens.shape
        lengths = self.length.tolist() if b <= 8 else f"{int(self.length.min())}..{int(self.length.max())}"
        return f"Canvas(batch={b}, width={w}, length={lengths}, masks={int(self.masked.sum())})"

    def __attrs_post_init__(self) -> None:
        if self.tokens.ndim != 2 or self.tokens.dtype != torch.long:
            raise CanvasError(
                f"`tokens` must be a 2-D long tensor [batch, width], got {self.tokens.dtype} of shape "
                f"{tuple(self.tokens.shape)}"
            )
        b = self.tokens.shape[0]
        for name in ("prompt_len", "length", "max_length"):
            t = getattr(self, name)
            if t.shape != (b,) or t.dtype != torch.long:
                raise CanvasError(f"`{name}` must be a long tensor of shape ({b},), got {t.dtype} {tuple(t.shape)}")

    # -- construction -------------------------------------------------------------

    @classmethod
    def from_prompts(
        cls,
        prompts: Sequence[Sequence[int]],
        *,
        gen_length: int | Sequence[int] | torch.Tensor,
        mask_id: int,
        pad_id: int,
        max_length: int | Sequence[int] | torch.Tensor | None = None,
        device: torch.device | str | None = None,
    ) -> Canvas:
        """Build ``[prompt | MASK x gen_length | pad]`` rows.

        Args:
            prompts: Token ids of each prompt (any lengths).
            gen_length: Generation slots per row (one int for all rows, or one per row).
            mask_id: Mask token id.
            pad_id: Padding id.
            max_length: Largest total row length (prompt included); defaults to the initial length.
            device: Where to put the tensors.
        """
        if len(prompts) == 0:
            raise CanvasError("`prompts` is empty: pass at least one prompt")
        device = torch.device(device) if device is not None else torch.device("cpu")
        b = len(prompts)
        plen = torch.tensor([len(p) for p in prompts], dtype=torch.long)
        glen = _long(gen_length, b, torch.device("cpu"), "gen_length")
        if (glen < 0).any():
            raise CanvasError(f"`gen_length` must be >= 0, got {glen.tolist()}")
        length = plen + glen
        width = int(length.max())
        tokens = torch.full((b, width), pad_id, dtype=torch.long)
        cols = torch.arange(width)
        tokens[(cols >= plen[:, None]) & (cols < length[:, None])] = mask_id
        for i, p in enumerate(prompts):  # construction only, not in the step loop
            if len(p):
                tokens[i, : len(p)] = torch.as_tensor(list(p), dtype=torch.long)
        mx = length.clone() if max_length is None else _long(max_length, b, torch.device("cpu"), "max_length")
        if (mx < length).any():
            raise CanvasError(
                f"`max_length` {mx.tolist()} is smaller than the initial lengths {length.tolist()}: "
                "raise max_length or shorten the prompt/generation"
            )
        return cls(
            tokens=tokens.to(device),
            prompt_len=plen.to(device),
            length=length.to(device),
            max_length=mx.to(device),
            mask_id=mask_id,
            pad_id=pad_id,
        )

    # -- views ----------------------------------------------------------------------

    @property
    def batch_size(self) -> int:
        return self.tokens.shape[0]

    @property
    def width(self) -> int:
        return self.tokens.shape[1]

    @property
    def device(self) -> torch.device:
        return self.tokens.device

    @cached_property
    def columns(self) -> torch.Tensor:
        """``[T]`` column indices."""
        return torch.arange(self.width, device=self.device)

    @cached_property
    def valid(self) -> torch.Tensor:
        """``[B, T]`` True where a column is inside its row's length."""
        return self.columns < self.length[:, None]

    @cached_property
    def generation(self) -> torch.Tensor:
        """``[B, T]`` True on generation slots (after the prompt, inside the length)."""
        return self.valid & (self.columns >= self.prompt_len[:, None])

    @cached_property
    def masked(self) -> torch.Tensor:
        """``[B, T]`` True where a generation slot still holds the mask id."""
        return self.generation & (self.tokens == self.mask_id)

    @property
    def gen_length(self) -> torch.Tensor:
        """``[B]`` number of generation slots per row."""
        return self.length - self.prompt_len

    def rows(self) -> list[list[int]]:
        """Each row's tokens up to its length (prompt included)."""
        return [r[:n] for r, n in zip(self.tokens.tolist(), self.length.tolist(), strict=True)]

    def generated(self) -> list[list[int]]:
        """Each row's generation slots (prompt excluded)."""
        return [
            r[p:n] for r, p, n in zip(self.tokens.tolist(), self.prompt_len.tolist(), self.length.tolist(), strict=True)
        ]

    # -- the only mutation path --------------------------------------------------------

    def apply(self, unmask: Unmask | None = None, expand: Expand | None = None, remask: Remask | None = None) -> Canvas:
        """Return the canvas after committing ``unmask``, re-masking ``remask`` and widening ``expand``.

        All decisions are in this canvas's coordinates and are applied atomically.

        Raises:
            CanvasError: If a decision would break an invariant.
        """
        tokens = self.tokens
        shape = tuple(tokens.shape)
        if unmask is not None:
            _check_shape("Unmask.where", unmask.where, shape, torch.bool)
            _check_shape("Unmask.tokens", unmask.tokens, shape, torch.long)
            where = unmask.where
            bad = (where & ~self.masked) | (where & (unmask.tokens == self.mask_id))
            if self.vocab_size is not None:
                bad = bad | (where & ((unmask.tokens < 0) | (unmask.tokens >= self.vocab_size)))
            if bad.any():
                self._raise_bad("Unmask", bad, unmask.tokens)
            tokens = torch.where(where, unmask.tokens, tokens)
        if remask is not None:
            _check_shape("Remask.where", remask.where, shape, torch.bool)
            rw = remask.where
            bad = rw & ~(self.generation & ~self.masked)
            if unmask is not None:
                bad = bad | (rw & unmask.where)
            if expand is not None:
                bad = bad | (rw & expand.where)
            if bad.any():
                b, c = (int(v) for v in torch.nonzero(bad)[0])
                raise CanvasError(
                    f"Remask selects row {b}, column {c}, which is not a committed generation token or is also "
                    "unmasked/expanded this step: remask only committed, non-prompt tokens"
                )
            tokens = torch.where(rw, self.mask_id, tokens)
        if expand is None:
            return attrs.evolve(self, tokens=tokens)
        _check_shape("Expand.where", expand.where, shape, torch.bool)
        ew = expand.where
        bad = ew & ~self.masked
        if unmask is not None:
            bad = bad | (ew & unmask.where)
        if bad.any():
            self._raise_bad("Expand", bad, None, overlap=unmask is not None and bool((ew & unmask.where).any()))
        return self._expand(tokens, ew, expand.factor, expand.truncate)

    def _expand(self, tokens: torch.Tensor, where: torch.Tensor, factor: int, truncate: bool) -> Canvas:
        extra = where.long() * (factor - 1)
        grown = extra.sum(1)
        new_len = self.length + grown
        if truncate:
            new_len = torch.minimum(new_len, self.max_length)
        elif (new_len > self.max_length).any():
            rows = torch.nonzero(new_len > self.max_length).flatten().tolist()
            raise CanvasError(
                f"Expand would grow rows {rows} to lengths {new_len[rows].tolist()}, past their `max_length` "
                f"{self.max_length[rows].tolist()}: expand fewer positions, use a smaller `factor`, or pass "
                "`truncate=True` to cut rows at their maximum explicitly"
            )
        width = max(int(new_len.max()), 1)
        # Where each old slot lands: its column plus the growth of every expansion before it.
        dest = self.columns + (torch.cumsum(extra, 1) - extra)
        cols = torch.arange(width, device=self.device)
        out = torch.where(cols < new_len[:, None], self.mask_id, self.pad_id).to(torch.long)
        keep = self.valid & (dest < new_len[:, None])
        # Dropped slots go to a spare column that is sliced away.
        out = torch.cat([out, out.new_full((out.shape[0], 1), self.pad_id)], 1)
        out.scatter_(1, torch.where(keep, dest, width), torch.where(keep, tokens, self.pad_id))
        return attrs.evolve(self, tokens=out[:, :width].contiguous(), length=new_len)

    def _raise_bad(self, kind: str, bad: torch.Tensor, tokens: torch.Tensor | None, overlap: bool = False) -> None:
        b, c = (int(v) for v in torch.nonzero(bad)[0])
        if c >= int(self.length[b]):
            why = "is past the row's length"
        elif c < int(self.prompt_len[b]):
            why = "is in the prompt"
        elif int(self.tokens[b, c]) != self.mask_id:
            why = f"is not masked (holds {int(self.tokens[b, c])})"
        elif overlap:
            why = "is both unmasked and expanded in the same step"
        elif tokens is not None and int(tokens[b, c]) == self.mask_id:
            why = "would be written with the mask id"
        elif tokens is not None and self.vocab_size is not None and not 0 <= int(tokens[b, c]) < self.vocab_size:
            why = f"would be written with id {int(tokens[b, c])}, outside the vocabulary [0, {self.vocab_size})"
        else:
            why = "is not allowed"
        raise CanvasError(
            f"{kind} selects row {b}, column {c}, which {why}: decisions may only touch masked generation "
            f"slots ({int(bad.sum())} illegal positions in total)",
            code="canvas-invariant",
        )


def _count(where: object) -> str:
    """``positions=[per-row counts]`` for a decision's repr (no tensor dump)."""
    if not isinstance(where, torch.Tensor) or where.ndim != 2:
        return f"where={type(where).__name__}"
    counts = where.sum(1).tolist()
    return f"positions={counts}" if len(counts) <= 8 else f"positions={sum(counts)} in {len(counts)} rows"


def _check_shape(name: str, t: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> None:
    if not isinstance(t, torch.Tensor) or tuple(t.shape) != shape or t.dtype != dtype:
        got = f"{t.dtype} {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__
        raise CanvasError(f"`{name}` must be a {dtype} tensor of the canvas shape {shape}, got {got}")


@attrs.frozen(eq=False, kw_only=True, repr=False)
class Unmask:
    """Commit ``tokens`` at the positions in ``where``.

    Attributes:
        where: ``[B, T]`` bool; every True position must be masked.
        tokens: ``[B, T]`` long; the ids to write (read only where ``where`` is True).
    """

    where: torch.Tensor
    tokens: torch.Tensor

    def __repr__(self) -> str:
        return f"Unmask({_count(self.where)})"

    @classmethod
    def none_like(cls, canvas: Canvas) -> Unmask:
        """A decision that commits nothing."""
        return cls(where=torch.zeros_like(canvas.tokens, dtype=torch.bool), tokens=canvas.tokens)


@attrs.frozen(eq=False, kw_only=True, repr=False)
class Remask:
    """Turn committed generation tokens in ``where`` back into masks, to be predicted again.

    Attributes:
        where: ``[B, T]`` bool; every True position must hold a committed (non-mask),
            non-prompt token that is not unmasked or expanded in the same step.
    """

    where: torch.Tensor

    def __repr__(self) -> str:
        return f"Remask({_count(self.where)})"


@attrs.frozen(eq=False, kw_only=True, repr=False)
class Expand:
    """Widen each masked position in ``where`` into ``factor`` masks.

    Attributes:
        where: ``[B, T]`` bool; every True position must be masked and not unmasked this step.
        factor: How many masks each selected position becomes (``>= 1``).
        truncate: Cut rows that would pass ``max_length`` at ``max_length`` instead of
            raising. Off by default: truncation drops tokens and must be asked for.
    """

    where: torch.Tensor
    factor: int = attrs.field()
    truncate: bool = False

    def __repr__(self) -> str:
        return f"Expand({_count(self.where)}, factor={self.factor}, truncate={self.truncate})"

    @factor.validator
    def _check_factor(self, _attribute: attrs.Attribute, value: int) -> None:
        if not isinstance(value, int) or value < 1:
            raise CanvasError(f"`factor` must be an int >= 1, got {value!r}")
