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

if TYPE_CHECKING:
    from daedal.core.adapter import ModelAdapter
    from daedal.core.canvas import Canvas, Expand, Remask, Unmask
    from daedal.core.window import Window

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
        self.batch_size, self.width, self.vocab_size = logits.shape

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
