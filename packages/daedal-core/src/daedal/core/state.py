"""The run state every hook receives, and the per-run stash policies keep data in."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs
import torch

from daedal.core.errors import AdapterError
from daedal.core.streams import RowStreams

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
    """Mutable counters shared by all states of one run.

    Attributes:
        forward_passes: Forward passes so far (stage-1 probes included); a batched pass over
            several canvases (guidance's conditional and unconditional rows) counts once per canvas.
        model_calls: Batched model invocations so far: every :meth:`State.run` is one, whatever
            it stacks (a guidance step is 1 call and 2 forward passes).
        canvas_tokens: Tokens fed to the model so far.
        model_time: Seconds inside the adapter's ``logits``.
        expansions: Masked positions widened during the loop (summed at the end of the run).
        reshaping_steps: Steps whose ``Expand`` or ``Remask`` answer changed, or may have
            changed, which slots are masked (a decoder that planned from the initial canvas
            re-plans when this moves).
    """

    forward_passes: int = 0
    model_calls: int = 0
    canvas_tokens: int = 0
    model_time: float = 0.0
    expansions: int = 0
    reshaping_steps: int = 0


@attrs.frozen
class Limits:
    """The caps of one run, enforced by the engine (None: no cap).

    A policy publishes them in the run's stash under :data:`LIMITS` when the run starts
    (``daedal.policies.Budget`` does); the engine reads them after ``RunStarted``.

    Attributes:
        max_new_tokens: Generation slots a row may reach: the engine lowers every row's
            ``Canvas.max_length`` to ``prompt_len + max_new_tokens``, so no ``Expand``,
            whoever proposes it, can pass it.
        max_forward_passes: Forward passes of the run; the engine stops the loop before a
            step would pass it (its final fill, if masks are left, takes one more).
        deadline_s: Wall-clock seconds; checked before each step.
    """

    max_new_tokens: int | None = None
    max_forward_passes: int | None = None
    deadline_s: float | None = None


#: Where the run's :class:`Limits` live in the stash.
LIMITS = StashKey[Limits]()


@attrs.frozen(eq=False, kw_only=True, repr=False)
class State:
    """A read-only view of one run, handed to every hook.

    Attributes:
        adapter: The model adapter.
        config: The engine configuration of this run.
        prompts: Each row's prompt ids.
        canvas: The current canvas (None inside ``initial_canvas``).
        step: Index of the current denoising step (0-based).
        window: The window chosen for this step (None before ``select_window`` answers).
        generator: The batch random stream: one ``torch.Generator`` seeded with the run's
            seed, for policies that reproduce a reference's draws over batch tensors.
        streams: The per-row random streams (see :mod:`daedal.core.streams`).
        batch_stream: Whether the run has a batch stream (one seed for the batch); with one
            seed per row every draw of :meth:`uniform` comes from the row streams.
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
    streams: RowStreams | None = None
    batch_stream: bool = True
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
        it stands for in ``forward_passes``, while ``model_calls`` counts the call once.
        """
        session = self.session
        from daedal.core.session import DenseSession, DenseSource

        if session is None:  # a State built by hand (tests): a plain dense session
            session = DenseSession(self.adapter)
        synced = tokens.device.type == "cuda"
        t0 = time.perf_counter()
        source = session.forward(tokens, length, window=window)
        if isinstance(source, DenseSource):  # an adapter's own logits: check them (metadata only: free)
            check_logits_shape(self.adapter, source.logits, tokens, self._where())
        if synced:
            torch.cuda.synchronize(tokens.device)
        self.counters.model_time += time.perf_counter() - t0
        self.counters.forward_passes += passes
        self.counters.model_calls += 1
        # What the model processed: a cached pass feeds only some columns.
        self.counters.canvas_tokens += int(getattr(source, "fed_tokens", tokens.numel()))
        return source

    def forward(self, tokens: torch.Tensor, length: torch.Tensor, *, window: Window | None = None) -> torch.Tensor:
        """Run one counted forward pass and return its full ``[B, T, V]`` fp32 logits.

        Prefer :meth:`run` (logits only where read); this materialises every column.
        """
        return self.run(tokens, length, window=window).dense()

    def uniform(self, shape: Sequence[int], *, dtype: torch.dtype = torch.float32, batch: bool = False) -> torch.Tensor:
        """Uniforms in (0, 1) of ``shape`` (``shape[0]`` is the batch), on the canvas's device.

        Args:
            shape: The draw's shape, rows first.
            dtype: float32 or float64.
            batch: Draw from the batch stream ``generator`` (as the references do) when the
                run has one; otherwise, and by default, from the per-row streams, so that a
                row's numbers do not depend on its batch.
        """
        if self.streams is None or (batch and self.batch_stream):
            device = self.canvas.device if self.canvas is not None else self.generator.device
            return torch.rand(tuple(shape), generator=self.generator, dtype=dtype, device=device)
        return self.streams.uniform(shape, dtype=dtype)

    def __repr__(self) -> str:
        return (
            f"State(step={self.step}, canvas={self.canvas!r}, window={'set' if self.window is not None else None}, "
            f"forward_passes={self.counters.forward_passes})"
        )

    def _where(self) -> str:
        return "in `initial_canvas`" if self.canvas is None else f"at step {self.step}"

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.started


def check_logits_shape(adapter: object, logits: object, tokens: torch.Tensor, where: str) -> None:
    """Refuse logits that are not a floating ``[B, T, V]`` tensor aligned with ``tokens`` (metadata only: free).

    Raises:
        AdapterError: Naming the adapter, the step and what is wrong.
    """
    name = type(adapter).__name__
    if not isinstance(logits, torch.Tensor):
        raise AdapterError(f"adapter {name} returned {type(logits).__name__} from `logits` {where}, not a tensor")
    b, t = tokens.shape
    vocab = getattr(adapter, "vocab_size", None)
    shape = tuple(logits.shape)
    if logits.ndim != 3 or shape[:2] != (b, t):
        raise AdapterError(
            f"adapter {name} returned logits of shape {shape} {where} for tokens of shape {(b, t)}: "
            f"`logits` must return [batch, width, vocab] = [{b}, {t}, {vocab if vocab is not None else 'V'}], "
            "one row of logits per canvas slot (not transposed, none missing)"
        )
    if vocab is not None and shape[2] != vocab:
        raise AdapterError(
            f"adapter {name} returned logits {shape[2]} wide {where}, but its `vocab_size` is {vocab}: "
            "the last dimension must be exactly the vocabulary (slice padded LM-head columns off, or fix vocab_size)"
        )
    if not logits.is_floating_point():
        raise AdapterError(f"adapter {name} returned {logits.dtype} logits {where}: logits must be a floating tensor")
