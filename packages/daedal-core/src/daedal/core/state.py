"""The run state every hook receives, and the per-run stash policies keep data in."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs
import torch

if TYPE_CHECKING:
    from daedal.core.adapter import ModelAdapter
    from daedal.core.canvas import Canvas
    from daedal.core.config import EngineConfig
    from daedal.core.events import Event
    from daedal.core.session import LogitSource, ModelSession
    from daedal.core.window import Window

T = TypeVar("T")


class StashKey(Generic[T]):
    """A typed key into a :class:`Stash`. Create one per piece of data at module level."""

    __slots__ = ()


class Stash:
    """Per-run storage for policies, keyed by :class:`StashKey` objects.

    Policies are immutable values that may serve many runs at once; whatever they must
    remember during one run (a block's mask count, a per-row flag) lives here.
    """

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data: dict[StashKey[Any], Any] = {}

    def __getitem__(self, key: StashKey[T]) -> T:
        return self._data[key]

    def __setitem__(self, key: StashKey[T], value: T) -> None:
        self._data[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: StashKey[T], default: T | None = None) -> T | None:
        return self._data.get(key, default)

    def setdefault(self, key: StashKey[T], default: T) -> T:
        return self._data.setdefault(key, default)


@attrs.define
class Counters:
    """Mutable counters shared by all states of one run."""

    forward_passes: int = 0
    canvas_tokens: int = 0
    model_time: float = 0.0
    expansions: int = 0


@attrs.frozen(eq=False, kw_only=True)
class State:
    """A read-only view of one run, handed to every hook.

    Attributes:
        adapter: The model adapter.
        config: The engine configuration of this run.
        prompts: Each row's prompt ids.
        canvas: The current canvas (None inside ``initial_canvas``).
        step: Index of the current denoising step (0-based).
        window: The window chosen for this step (None before ``select_window`` answers).
        generator: The source of every random number of the run.
        stash: Per-run storage for policies.
        report: Free-form facts for the result (``result.info``), e.g. which budget bound a run.
        session: The run's model session (every forward pass goes through it).
        reads: ``[B, T]`` bool, the columns this step's policies read (None: the whole canvas).
    """

    adapter: ModelAdapter
    config: EngineConfig
    prompts: list[list[int]]
    canvas: Canvas | None = None
    step: int = 0
    window: Window | None = None
    generator: torch.Generator
    stash: Stash = attrs.field(factory=Stash)
    report: dict[str, Any] = attrs.field(factory=dict)
    counters: Counters = attrs.field(factory=Counters)
    emit: Callable[[Event], None] = attrs.field(default=lambda event: None, repr=False)
    started: float = attrs.field(factory=time.perf_counter)
    session: ModelSession | None = attrs.field(default=None, repr=False)
    reads: torch.Tensor | None = attrs.field(default=None, repr=False)

    def run(
        self, tokens: torch.Tensor, length: torch.Tensor, *, window: Window | None = None, passes: int = 1
    ) -> LogitSource:
        """Run a counted forward pass through the run's session; logits come on demand.

        ``tokens`` may stack several canvases' rows (classifier-free guidance runs its
        conditional and unconditional rows as one batch); ``passes`` says how many canvases
        it stands for in ``forward_passes``.
        """
        session = self.session
        if session is None:  # a State built by hand (tests): a plain dense session
            from daedal.core.session import DenseSession

            session = DenseSession(self.adapter)
        synced = tokens.device.type == "cuda"
        t0 = time.perf_counter()
        source = session.forward(tokens, length, window=window)
        if synced:
            torch.cuda.synchronize(tokens.device)
        self.counters.model_time += time.perf_counter() - t0
        self.counters.forward_passes += passes
        self.counters.canvas_tokens += tokens.numel()
        return source

    def forward(self, tokens: torch.Tensor, length: torch.Tensor, *, window: Window | None = None) -> torch.Tensor:
        """Run one counted forward pass and return its full ``[B, T, V]`` fp32 logits.

        Prefer :meth:`run` (logits only where read); this materialises every column.
        """
        return self.run(tokens, length, window=window).dense()

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.started
