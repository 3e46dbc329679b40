"""The per-run model session: every forward pass of a run goes through it.

The engine opens one session per :meth:`~daedal.core.Engine.generate` call and closes it
when the run ends; a session is never shared between runs, engines or threads, so it is
the place for per-run model state such as a KV cache.

A forward pass returns a :class:`LogitSource`, not a ``[B, T, V]`` tensor: logits are
produced on demand at the columns some policy reads (:meth:`LogitSource.at`), so the LM
head, the softmax and the argmax run only there. After each step the engine tells the
session which decisions were applied (:meth:`ModelSession.applied`), so a cache can shift
or invalidate entries instead of diffing tokens.

An adapter opts in by defining ``open_session(*, cache)`` returning a
:class:`ModelSession`; any other adapter runs through :class:`DenseSession`, which calls
``adapter.logits`` and serves every read from the full logits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import attrs
import torch

from daedal.core.errors import ConfigError
from daedal.core.window import Window

if TYPE_CHECKING:
    from daedal.core.adapter import ModelAdapter
    from daedal.core.canvas import Canvas, Expand, Remask, Unmask

#: Cache strategies a session may be asked for (None: no cache).
CACHES = ("prefix", "dual")


@runtime_checkable
class LogitSource(Protocol):
    """The result of one forward pass: logits at any column, computed when asked for.

    Attributes:
        batch_size: Rows ``B`` of the forward pass.
        width: Columns ``T`` of the forward pass.
        vocab_size: Width ``V`` of a logit row.
    """

    batch_size: int
    width: int
    vocab_size: int

    def at(self, index: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        """fp32 logits at columns ``index`` (``[B, K]`` long): ``[B, K, V]``, or ``[B, K, N]`` for ``ids`` ``[N]`` only.

        Values equal those of the full ``[B, T, V]`` logits at the same places.
        """
        ...

    def dense(self) -> torch.Tensor:
        """The full ``[B, T, V]`` logits (fp32)."""
        ...


class DenseSource:
    """A :class:`LogitSource` over logits already computed for every column."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = logits

    @property
    def batch_size(self) -> int:
        return self.logits.shape[0]

    @property
    def width(self) -> int:
        return self.logits.shape[1]

    @property
    def vocab_size(self) -> int:
        return self.logits.shape[-1]

    def at(self, index: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        rows = self.logits.gather(1, index[..., None].expand(-1, -1, self.vocab_size))
        if ids is not None:
            rows = rows.index_select(-1, ids)
        return rows.float()

    def dense(self) -> torch.Tensor:
        return self.logits.float()


@attrs.frozen(eq=False)
class AppliedStep:
    """The decisions one step applied, in the coordinates of ``before``.

    Attributes:
        before: The canvas the step's forward pass saw.
        after: The canvas after ``Canvas.apply``.
        unmask: The committed positions.
        expand: The insertions (None: none).
        remask: The positions turned back into masks (None: none).
    """

    before: Canvas
    after: Canvas
    unmask: Unmask
    expand: Expand | None = None
    remask: Remask | None = None


@runtime_checkable
class ModelSession(Protocol):
    """One run's access to the model (see the module docstring)."""

    def forward(self, tokens: torch.Tensor, length: torch.Tensor, *, window: Window | None = None) -> LogitSource:
        """Run one forward pass over ``[B, T]`` right-padded tokens with ``[B]`` row lengths.

        ``window`` is the step's decision span, or None for a pass outside the step loop
        (a length policy's probe); a cached session recomputes only what the window needs
        and runs a full pass when ``window`` is None.
        """
        ...

    def applied(self, step: AppliedStep) -> None:
        """Learn the decisions the engine just applied (to shift or invalidate cache entries)."""
        ...

    def close(self) -> None:
        """Release per-run state; the session is not used afterwards."""
        ...


class DenseSession:
    """The session of an adapter without ``open_session``: ``adapter.logits`` for every pass."""

    def __init__(self, adapter: ModelAdapter) -> None:
        self.adapter = adapter

    def forward(self, tokens: torch.Tensor, length: torch.Tensor, *, window: Window | None = None) -> LogitSource:
        return DenseSource(self.adapter.logits(tokens, length, window=window))

    def applied(self, step: AppliedStep) -> None:
        pass

    def close(self) -> None:
        pass


def open_session(adapter: ModelAdapter, *, cache: str | None = None) -> ModelSession:
    """The session for one run: the adapter's own (``open_session``) or a :class:`DenseSession`.

    Raises:
        ConfigError: ``cache`` is not a known strategy, or the adapter has no cache support.
    """
    if cache is not None and cache not in CACHES:
        raise ConfigError(f"`cache` must be None, 'prefix' or 'dual', got {cache!r}")
    opener = getattr(adapter, "open_session", None)
    if opener is None:
        if cache is not None:
            raise ConfigError(
                f"`cache`={cache!r} needs an adapter with KV-cache support (an `open_session` method); "
                f"{type(adapter).__name__} has none: use cache=None or a daedal.models adapter"
            )
        return DenseSession(adapter)
    session = opener(cache=cache)
    if not isinstance(session, ModelSession):
        raise ConfigError(
            f"{type(adapter).__name__}.open_session returned {type(session).__name__}, which lacks "
            "forward/applied/close: return a daedal.core.session.ModelSession"
        )
    return session


def fed_columns(feed: torch.Tensor) -> torch.Tensor:
    """``[B, L]`` the True columns of ``feed`` in column order; shorter rows repeat their last one.

    A repeated column computes the same entries again, so padding never feeds a column a row
    did not ask for.
    """
    count = feed.sum(1)
    width = max(int(count.max()), 1)
    order = torch.sort((~feed).to(torch.int8), dim=1, stable=True).indices[:, :width]
    last = order.gather(1, (count - 1).clamp(min=0)[:, None])
    return torch.where(torch.arange(width, device=feed.device)[None, :] < count[:, None], order, last)


def expansion_sources(where: torch.Tensor, factor: int, width: int) -> torch.Tensor:
    """``[B, width]`` column of the pre-step canvas each post-expansion column comes from.

    Every column keeps its order, an expanded column becomes ``factor`` copies of itself;
    columns past a row's new content map to the row's last column (their values are padding
    and never read). A session shifts its cache with this map.
    """
    reps = torch.where(where, factor, 1)
    ends = reps.cumsum(1)  # one past the last new column of each old column
    cols = torch.arange(width, device=where.device).expand(where.shape[0], -1).contiguous()
    src = torch.searchsorted(ends, cols, right=True)
    return src.clamp(max=where.shape[1] - 1)


@runtime_checkable
class CacheBackend(Protocol):
    """What a model provides so that :class:`CachedSession` can run it (hidden states, head, KV store).

    A *store* is a list of tensors ``[B, X, T, D]`` (per layer keys and values before RoPE,
    say) whose column axis is 2: the session gathers, shifts and merges rows of it.

    Attributes:
        shifted: The model's hidden row ``q`` predicts column ``q + 1`` (Dream).
        vocab_size: Width of a logit row.
    """

    shifted: bool
    vocab_size: int

    def full(
        self, tokens: torch.Tensor, length: torch.Tensor, *, capture: bool
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """A full pass: ``([B, T, d] final hidden states, store)`` (an empty store unless ``capture``)."""
        ...

    def partial(
        self,
        tokens: torch.Tensor,
        length: torch.Tensor,
        cols: torch.Tensor,
        store: list[torch.Tensor],
        *,
        write_back: bool,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Feed only ``cols`` (``[B, L]``), attending to ``store`` elsewhere: ``([B, L, d] hidden, store)``.

        With ``write_back`` the returned store holds the fed columns' fresh entries (the
        backend may update ``store`` in place and return it).
        """
        ...

    def head(self, hidden: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of hidden states ``[..., d]`` (``ids``: only those vocabulary entries)."""
        ...


class HiddenSource:
    """A :class:`LogitSource` over final hidden states: the LM head runs only at the columns asked for."""

    def __init__(self, backend: CacheBackend, hidden: torch.Tensor, fed_tokens: int | None = None) -> None:
        self.backend = backend
        self.hidden = hidden
        #: Token positions the pass processed (all of them unless cached).
        self.fed_tokens = hidden.shape[0] * hidden.shape[1] if fed_tokens is None else fed_tokens
        self.batch_size, self.width = hidden.shape[:2]
        self.vocab_size = backend.vocab_size

    def at(self, index: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        if self.backend.shifted:  # column i is predicted by hidden row i - 1 (row 0 by itself)
            index = (index - 1).clamp(min=0)
        rows = self.hidden.gather(1, index[..., None].expand(-1, -1, self.hidden.shape[-1]))
        with torch.inference_mode():
            return self.backend.head(rows, ids).float()

    def dense(self) -> torch.Tensor:
        with torch.inference_mode():
            logits = self.backend.head(self.hidden).float()
        if self.backend.shifted:
            logits = torch.cat((logits[:, :1], logits[:, :-1]), dim=1)
        return logits


class CachedSession:
    """A session over a :class:`CacheBackend`: hidden states once per pass, logits where read, KV caches.

    Caches follow Fast-dLLM (prefix and dual), per row, with the step's window as the block.
    When a row's window moves to a new block the row gets a full pass that also refills the
    store. On later steps of the block only some columns are fed -- the block and everything
    after it (``"prefix"``), or the block only (``"dual"``, whose fresh entries then replace
    the stored ones) -- and the other columns attend from the store. The last hidden states
    of every column are kept too, so a column not fed this pass (DAEDAL's EOS scan reads the
    suffix) is read from its last computation. The store holds keys *before* RoPE, so an
    insertion only moves entries (:func:`expansion_sources`); a remask empties the store
    (the next pass is full). With ``cache=None`` every pass is full and nothing is kept.

    Attributes:
        passes: Model calls by kind (``"full"``, ``"partial"``), for tests and benchmarks.
    """

    def __init__(self, backend: CacheBackend, cache: str | None) -> None:
        if cache is not None and cache not in CACHES:
            raise ConfigError(f"`cache` must be None, 'prefix' or 'dual', got {cache!r}")
        self.backend = backend
        self.cache = cache
        self.closed = False
        self.passes = {"full": 0, "partial": 0}
        self._reset()

    def _reset(self) -> None:
        self.store: list[torch.Tensor] = []
        self.hidden: torch.Tensor | None = None
        self.block: torch.Tensor | None = None  # [B] window start each row's store was built for
        # [B, T] columns committed since their entries were computed and moved out of the block by
        # an insertion (dual cache): the next cached pass feeds them along with the block.
        self.dirty: torch.Tensor | None = None

    def forward(self, tokens: torch.Tensor, length: torch.Tensor, *, window: Window | None = None) -> LogitSource:
        if self.closed:
            raise RuntimeError("this model session is closed: a session serves one run only")
        if self.cache is None or window is None:
            self._reset()  # a pass outside the step loop (a length probe) leaves nothing to reuse
            self.passes["full"] += 1
            hidden, _ = self.backend.full(tokens, length, capture=False)
            return HiddenSource(self.backend, hidden)
        self._fed = 0
        start, end = window.start.to(tokens.device), window.end.to(tokens.device)
        fresh = self.hidden is None or self.block is None or self.hidden.shape[:2] != tokens.shape
        # A row whose window moved to a new block is refreshed; a row with nothing to decide is not.
        refresh = torch.ones_like(start, dtype=torch.bool) if fresh else (start != self.block) & (end > start)
        if bool(refresh.all()):
            self.passes["full"] += 1
            self.hidden, self.store = self.backend.full(tokens, length, capture=True)
            self.block = start.clone()
            self._fed = tokens.numel()
        elif bool(refresh.any()):
            rows = refresh.nonzero().squeeze(1)
            self.passes["full"] += 1
            self._fed += rows.numel() * tokens.shape[1]
            sub_hidden, sub_store = self.backend.full(tokens[rows], length[rows], capture=True)
            assert self.hidden is not None and self.block is not None
            self.hidden = self.hidden.index_copy(0, rows, sub_hidden)
            self.store = [t.index_copy(0, rows, s) for t, s in zip(self.store, sub_store, strict=True)]
            self.block = torch.where(refresh, start, self.block)
            self._partial(tokens, length, start, end, (~refresh).nonzero().squeeze(1))
        else:
            self._partial(tokens, length, start, end, None)
        assert self.hidden is not None
        return HiddenSource(self.backend, self.hidden, self._fed)

    def _partial(
        self,
        tokens: torch.Tensor,
        length: torch.Tensor,
        start: torch.Tensor,
        end: torch.Tensor,
        rows: torch.Tensor | None,
    ) -> None:
        assert self.hidden is not None
        self.passes["partial"] += 1
        store = self.store
        if rows is not None:
            tokens, length, start, end = tokens[rows], length[rows], start[rows], end[rows]
            store = [t[rows] for t in store]
        stop = end if self.cache == "dual" else torch.maximum(length, end)
        columns = torch.arange(tokens.shape[1], device=tokens.device)
        feed = (columns >= start[:, None]) & (columns < stop[:, None])
        if self.cache == "dual" and self.dirty is not None:
            feed = feed | (self.dirty if rows is None else self.dirty[rows])
        cols = fed_columns(feed)
        fed, store = self.backend.partial(tokens, length, cols, store, write_back=self.cache == "dual")
        if self.dirty is not None:
            if rows is None:
                self.dirty = torch.zeros_like(self.dirty)
            else:
                self.dirty = self.dirty.index_fill(0, rows, False)
        self._fed += cols.numel()
        index = cols[..., None].expand(-1, -1, fed.shape[-1])
        if rows is None:
            self.hidden = self.hidden.scatter(1, index, fed)
            self.store = store
        else:
            self.hidden = self.hidden.index_copy(0, rows, self.hidden[rows].scatter(1, index, fed))
            self.store = [t.index_copy(0, rows, s) for t, s in zip(self.store, store, strict=True)]

    def applied(self, step: AppliedStep) -> None:
        if self.cache is None or self.hidden is None:
            return
        if step.remask is not None and bool(step.remask.where.any()):
            self._reset()  # committed tokens turned back into masks: the store no longer describes the canvas
            return
        if step.expand is None or not bool(step.expand.where.any()):
            return
        src = expansion_sources(step.expand.where, step.expand.factor, step.after.width)
        rows = self.hidden.shape[0]
        if rows != src.shape[0]:  # guidance stacks conditional and unconditional rows
            src = src.repeat(rows // src.shape[0], 1)
        if self.cache == "dual":
            # Slots committed by this step hold entries computed while they were masks; those pushed
            # out of the block are fed again by the next pass (the block's own are fed anyway).
            committed = step.unmask.where.repeat(rows // step.unmask.where.shape[0], 1)
            dirty = committed if self.dirty is None or self.dirty.shape != committed.shape else self.dirty | committed
            self.dirty = dirty.gather(1, src)
        self.hidden = self.hidden.gather(1, src[..., None].expand(-1, -1, self.hidden.shape[-1]))
        self.store = [t.gather(2, src[:, None, :, None].expand(-1, t.shape[1], -1, t.shape[-1])) for t in self.store]

    def close(self) -> None:
        self._reset()
        self.closed = True
