"""What one forward pass says about a canvas, at the columns policies read.

A :class:`Prediction` is either *dense* (logits for every column, as an adapter's
``logits`` returns them) or *sparse*: logits only at the columns the step's policies
declared they read (``prediction_reads``), gathered into a ``[B, K, V]`` store. Both
answer the same ``[B, T]`` questions -- ``tokens``, ``confidence``, ``prob_of``,
``argmax`` -- indexed by canvas columns; in a sparse prediction a column outside the store
holds a filler (``-1`` for ids, NaN for probabilities), which no policy reads. ``logits``
itself (``[B, T, V]``) exists only in a dense prediction; vocabulary-wide computations on a
sparse one go through :attr:`values` / :meth:`gather` / :meth:`scatter` or
:meth:`map_logits`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

import torch

from daedal.core.errors import PolicyError

if TYPE_CHECKING:
    from daedal.core.session import LogitSource

#: ``(index [B, K], ids [N] | None) -> fp32 logits [B, K, V | N]``: logits at any columns.
Source = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]


class Prediction:
    """Logits (at every column, or at the read columns), plus the token each column would take.

    ``tokens`` is the proposed id of each column: the argmax by default, or a sample when a
    temperature wrapper is active. Confidences always come from the un-noised softmax.

    The proposal rule: once the ``predict`` hook has answered, the engine replaces every
    proposal that equals the mask id by the most likely other id (:func:`best_non_mask`),
    so the ``tokens`` a fill rule reads are never the mask id. What the hook proposed stays
    available as ``raw_tokens`` (and the plain argmax as ``argmax``), for reference
    reproductions whose reference treats a mask proposal its own way.

    Args:
        logits: ``[B, T, V]`` (dense) or, with ``index``, ``[B, K, V]`` logits at the columns
            ``index`` (sparse). fp32 after the engine's ``predict``.
        tokens: ``[B, T]`` long proposed ids.
        sampled: Whether ``tokens`` were sampled (then they may differ from the argmax).
        index: ``[B, K]`` canvas columns of the rows of ``logits`` (None: dense).
        width: Canvas width ``T`` of a sparse prediction.
        source: Computes logits at further columns (the same transforms applied), which
            lets a reader such as DAEDAL's EOS scan extend a sparse prediction.
        peak: ``[B, T]`` the largest logit of each column, when already computed (``greedy``
            does); the engine's finiteness check reuses it.
        replaced: ``[B, T]`` the proposals before the engine replaced mask-id proposals (None
            when none was replaced).
    """

    def __init__(
        self,
        logits: torch.Tensor,
        tokens: torch.Tensor,
        sampled: bool = False,
        *,
        index: torch.Tensor | None = None,
        width: int | None = None,
        source: Source | None = None,
        peak: torch.Tensor | None = None,
        replaced: torch.Tensor | None = None,
    ) -> None:
        self._values = logits
        self.tokens = tokens
        self.sampled = sampled
        self._index = index
        self.width = logits.shape[1] if index is None else int(width if width is not None else tokens.shape[1])
        self._source = source
        self.peak = peak
        self.replaced = replaced

    def __repr__(self) -> str:
        b, k, v = (tuple(self._values.shape) + (0, 0, 0))[:3]
        extra = "" if self._index is None else f", computed at {k} columns"
        extra += ", sampled" if self.sampled else ""
        extra += ", mask proposals replaced" if self.replaced is not None else ""
        return f"Prediction(batch={b}, width={self.width}, vocab={v}{extra})"

    # -- construction ----------------------------------------------------------------

    @classmethod
    def greedy(cls, logits: torch.Tensor) -> Prediction:
        """Take the argmax (lowest id on ties) as each column's proposal."""
        logits = logits.float()
        # One reduction gives both the argmax and the peak the engine's finiteness check reads.
        peak, tokens = logits.max(-1)
        return cls(logits=logits, tokens=tokens, peak=peak)

    @classmethod
    def from_source(cls, source: LogitSource, reads: torch.Tensor | None) -> Prediction:
        """A greedy prediction over a forward pass: dense when ``reads`` is None, else at the ``[B, T]`` True columns."""
        if reads is None:
            prediction = cls.greedy(source.dense())
            prediction._source = source.at
            return prediction
        index = read_index(reads)
        values = source.at(index)
        return cls._sparse_greedy(values, index, source.width, source.at)

    @classmethod
    def _sparse_greedy(cls, values: torch.Tensor, index: torch.Tensor, width: int, source: Source | None) -> Prediction:
        peak, top = values.max(-1)
        tokens = _scatter(top, index, width, -1)
        # Columns not computed get a finite peak: the engine checks finiteness where logits exist.
        return cls(
            logits=values,
            tokens=tokens,
            index=index,
            width=width,
            source=source,
            peak=_scatter(peak, index, width, 0.0),
        )

    def with_logits(self, logits: torch.Tensor) -> Prediction:
        """The same prediction with new dense logits and greedy proposals (for logit transforms)."""
        return Prediction.greedy(logits)

    def map_logits(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Prediction:
        """A greedy prediction whose logits are ``fn(logits)``; ``fn`` works on each logit row alone.

        Works on dense and sparse predictions alike (``fn`` sees ``[B, T, V]`` or ``[B, K, V]``).
        """
        parent = self._source

        def source(index: torch.Tensor, ids: torch.Tensor | None) -> torch.Tensor:
            if parent is None:
                raise PolicyError("this prediction cannot be extended: it has no logit source", code="sparse-read")
            rows = fn(parent(index, None))
            return rows if ids is None else rows.index_select(-1, ids)

        if self.is_dense:
            out = Prediction.greedy(fn(self._values))
        else:
            out = Prediction._sparse_greedy(fn(self._values).float(), self.index, self.width, None)
        out._source = source if parent is not None else None
        return out

    def combine(self, other: Prediction, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Prediction:
        """A greedy prediction from ``fn(self_logits, other_logits)``, ``fn`` elementwise (e.g. guidance).

        Both predictions must cover the same columns (the same reads).
        """
        if self.is_dense != other.is_dense or (not self.is_dense and not torch.equal(self.index, other.index)):
            raise PolicyError("combined predictions must cover the same columns", code="sparse-read")
        a, b = self._source, other._source

        def source(index: torch.Tensor, ids: torch.Tensor | None) -> torch.Tensor:
            if a is None or b is None:
                raise PolicyError("this prediction cannot be extended: it has no logit source", code="sparse-read")
            return fn(a(index, ids), b(index, ids))

        values = fn(self._values, other._values)
        if self.is_dense:
            out = Prediction.greedy(values)
        else:
            out = Prediction._sparse_greedy(values.float(), self.index, self.width, None)
        out._source = source if a is not None and b is not None else None
        return out

    def resampled(self, tokens: torch.Tensor) -> Prediction:
        """The same logits with sampled proposals ``tokens`` (``[B, T]``)."""
        return Prediction(
            self._values, tokens, True, index=self._index, width=self.width, source=self._source, peak=self.peak
        )

    def without_mask_proposals(self, mask_id: int) -> Prediction:
        """The proposal rule: every proposal equal to ``mask_id`` replaced by the best other id."""
        hit = self.tokens == mask_id
        # best_non_mask's token without its probability: one masked copy and one argmax.
        masked = self._values.index_fill(-1, torch.tensor([mask_id], device=self._values.device), float("-inf"))
        other = self.scatter(masked.argmax(-1), -1)
        return Prediction(
            self._values,
            torch.where(hit, other, self.tokens),
            self.sampled,
            index=self._index,
            width=self.width,
            source=self._source,
            peak=self.peak,
            replaced=self.tokens,
        )

    @property
    def raw_tokens(self) -> torch.Tensor:
        """``[B, T]`` the proposals as the ``predict`` hook returned them (they may be the mask id)."""
        return self.tokens if self.replaced is None else self.replaced

    @cached_property
    def raw_confidence(self) -> torch.Tensor:
        """``[B, T]`` softmax probability of each raw proposal (``raw_tokens``)."""
        return self.confidence if self.replaced is None else self.prob_of(self.replaced)

    # -- the store ----------------------------------------------------------------------

    @property
    def is_dense(self) -> bool:
        """Whether logits exist for every column."""
        return self._index is None

    @property
    def batch_size(self) -> int:
        return self._values.shape[0]

    @property
    def vocab_size(self) -> int:
        return self._values.shape[-1]

    @property
    def logits(self) -> torch.Tensor:
        """``[B, T, V]`` logits of a dense prediction.

        Raises:
            PolicyError: On a sparse prediction: declare ``prediction_reads`` returning True
                (the whole canvas) in the policy that needs every column, or use
                :attr:`values` with :meth:`gather` / :meth:`scatter`.
        """
        if self._index is not None:
            raise PolicyError(
                "`prediction.logits` is not available: this step computed logits only at the columns its "
                "policies read; a policy that needs the whole canvas must return True from `prediction_reads`, "
                "or read `prediction.values` at `prediction.index`",
                code="sparse-read",
            )
        return self._values

    @property
    def values(self) -> torch.Tensor:
        """``[B, K, V]`` logits at :attr:`index` (the dense logits when dense)."""
        return self._values

    @cached_property
    def index(self) -> torch.Tensor:
        """``[B, K]`` columns of :attr:`values` (``0..T-1`` when dense)."""
        if self._index is not None:
            return self._index
        b, t = self._values.shape[:2]
        return torch.arange(t, device=self._values.device).expand(b, t)

    @cached_property
    def covered(self) -> torch.Tensor:
        """``[B, T]`` bool: the columns whose logits are known."""
        if self._index is None:
            return torch.ones(self._values.shape[:2], dtype=torch.bool, device=self._values.device)
        return _scatter(torch.ones_like(self._index, dtype=torch.bool), self._index, self.width, False)

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` per-column values -> ``[B, K]`` at :attr:`index`."""
        return x if self._index is None else x.gather(1, self._index)

    def scatter(self, y: torch.Tensor, fill: float | int | bool) -> torch.Tensor:
        """``[B, K]`` values at :attr:`index` -> ``[B, T]``, ``fill`` elsewhere."""
        return y if self._index is None else _scatter(y, self._index, self.width, fill)

    def logits_at(self, index: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        """fp32 logits at any ``[B, K]`` columns (``ids``: those vocabulary entries only).

        Raises:
            PolicyError: The prediction has no logit source (built from bare logits and sparse).
        """
        if self._index is None:
            rows = self._values.gather(1, index[..., None].expand(-1, -1, self._values.shape[-1]))
            return rows if ids is None else rows.index_select(-1, ids)
        if self._source is None:
            raise PolicyError("this prediction cannot be extended: it has no logit source", code="sparse-read")
        return self._source(index, ids)

    # -- per-column views ------------------------------------------------------------------

    @cached_property
    def argmax(self) -> torch.Tensor:
        """``[B, T]`` raw argmax of the logits (it may be the mask id; the raw proposals unless sampled)."""
        if not self.sampled:
            return self.raw_tokens
        return self.scatter(self._values.argmax(-1), -1)

    @cached_property
    def log_normalizer(self) -> torch.Tensor:
        """``[B, T]`` log-sum-exp of the logits."""
        return self.scatter(torch.logsumexp(self._values, -1), float("nan"))

    @cached_property
    def confidence(self) -> torch.Tensor:
        """``[B, T]`` softmax probability of each proposed token."""
        return self.prob_of(self.tokens)

    def prob_of(self, ids: torch.Tensor | int) -> torch.Tensor:
        """``[B, T]`` softmax probability of ``ids`` (a ``[B, T]`` tensor or one id for all columns)."""
        picked = ids if isinstance(ids, int) else self.gather(ids).clamp(min=0)
        return self.scatter(self._prob_rows(picked), float("nan"))

    def _prob_rows(self, ids: torch.Tensor | int) -> torch.Tensor:
        if self._values.device.type == "cpu":
            # On CPU one softmax, cached and gathered from, is 3-6x cheaper than logsumexp
            # (measured in benchmarks/bench_prediction.py); on accelerators logsumexp is
            # cheap and avoids materialising a second [B, K, V] tensor.
            return _pick(self._probs_rows, ids)
        return torch.exp(_pick(self._values, ids) - torch.logsumexp(self._values, -1))

    @cached_property
    def _probs_rows(self) -> torch.Tensor:
        return torch.softmax(self._values, -1)

    @cached_property
    def probs(self) -> torch.Tensor:
        """``[B, T, V]`` full softmax (dense predictions only)."""
        self.logits  # noqa: B018 -- raises on a sparse prediction
        return self._probs_rows


def read_index(reads: torch.Tensor) -> torch.Tensor:
    """``[B, K]`` columns of the True entries of ``reads`` in column order, ``K`` the largest row count.

    Shorter rows are padded with other columns (their logits are genuine, merely unread).
    """
    k = int(reads.sum(1).max()) if reads.numel() else 0
    order = torch.sort((~reads).to(torch.int8), dim=1, stable=True).indices
    return order[:, :k]


def prob_rows(values: torch.Tensor, ids: torch.Tensor | int) -> torch.Tensor:
    """Softmax probability of ``ids`` in each logit row, by the same route as :meth:`Prediction.prob_of`."""
    if values.device.type == "cpu":
        return _pick(torch.softmax(values, -1), ids)
    return torch.exp(_pick(values, ids) - torch.logsumexp(values, -1))


def _scatter(y: torch.Tensor, index: torch.Tensor, width: int, fill: float | int | bool) -> torch.Tensor:
    out = torch.full((y.shape[0], width), fill, dtype=y.dtype, device=y.device)
    return out.scatter(1, index, y)


def _pick(values: torch.Tensor, ids: torch.Tensor | int) -> torch.Tensor:
    if isinstance(ids, int):
        return values[..., ids]
    return values.gather(-1, ids.unsqueeze(-1)).squeeze(-1)


def probability_of(logits: torch.Tensor, ids: torch.Tensor | int) -> torch.Tensor:
    """``[B, T]`` softmax probability of ``ids`` under raw ``logits`` (fp32), by the fastest exact route."""
    return prob_rows(logits.float(), ids)


def best_non_mask(logits: torch.Tensor, mask_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(probability, token)`` of the most likely id other than ``mask_id`` at each slot.

    The one helper behind the proposal rule: the engine uses it to replace mask-id
    proposals, and fill rules that need a fallback use it too. The probability is
    renormalised without the mask id (DAEDAL's fallback ranks slots by it). ``logits`` are
    any ``[..., V]`` rows (a dense prediction's logits or a sparse one's ``values``).
    """
    no_mask = logits.index_fill(-1, torch.tensor([mask_id], device=logits.device), float("-inf"))
    top, token = no_mask.max(-1)
    return torch.exp(top - torch.logsumexp(no_mask, -1)), token


def without_mask_proposals(prediction: Prediction, mask_id: int) -> Prediction:
    """The proposal rule: ``prediction`` with every proposal equal to ``mask_id`` replaced by the best other id."""
    return prediction.without_mask_proposals(mask_id)
