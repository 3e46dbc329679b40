"""Sampling transforms, as ``predict`` wrappers.

Each wrapper receives the prediction of the policies inside it and returns a new one:

* :class:`ClassifierFreeGuidance` (the innermost answer, ``trylast``): runs the canvas and an
  unconditional copy with every prompt slot set to the mask id as one batched forward and combines
  ``ℓ_u + (s + 1)(ℓ_c − ℓ_u)``. The prompt slots are read from the current canvas, so it
  keeps working after a length change.
* :class:`SuppressTokens`: bans ids (their logits become ``-inf``): the hook a deployment
  uses for content policy.
* :class:`TopPTopK`: nucleus / top-k filtering of the logits (removed logits become the
  dtype's minimum, as in Dream's ``sample_tokens``).
* temperature: ``daedal.core.GumbelTemperature`` (outermost, ``tryfirst``), re-exported
  here as :data:`Temperature`: Gumbel-max on the final logits, confidences un-noised.

Logit transforms return greedy proposals, so confidences and proposals both reflect the
transformed distribution; temperature, outermost, samples from it.
"""

from __future__ import annotations

import attrs
import torch

from daedal.core import ConfigError, GumbelTemperature, Prediction, State, Window, hookimpl
from daedal.core.prediction import read_index
from daedal.policies._validate import int_at_least, non_negative, optional

#: Gumbel-max temperature sampling (LLaDA/DAEDAL's), from the core.
Temperature = GumbelTemperature


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of top tokens whose probability reaches ``top_p`` (the first over the line stays)."""
    ordered, order = torch.sort(logits, dim=-1, descending=True)
    cumulative = torch.softmax(ordered, dim=-1).cumsum(-1)
    drop = cumulative > top_p
    # Shift right: the token that crosses the line is kept, and so is the most likely one.
    drop = torch.cat([torch.zeros_like(drop[..., :1]), drop[..., :-1]], dim=-1)
    removed = torch.zeros_like(drop).scatter(-1, order, drop)
    return logits.masked_fill(removed, torch.finfo(logits.dtype).min)


def top_k_filter(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Keep the ``top_k`` largest logits (ties with the k-th kept too)."""
    k = min(top_k, logits.shape[-1])
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, torch.finfo(logits.dtype).min)


@attrs.frozen(kw_only=True)
class ClassifierFreeGuidance:
    """Unsupervised classifier-free guidance: ``ℓ_u + (scale + 1)(ℓ_c − ℓ_u)``.

    The conditional canvas and the unconditional one (its prompt slots masked; with
    left-padded prompts, the pads too) run as one batched forward pass of ``2B`` rows,
    as the references do; it is counted as two forward passes (two canvases of compute).
    Guidance is elementwise, so it composes with sparse logits: both halves are computed
    at the same read columns.

    Attributes:
        scale: Guidance scale ``s`` (0 disables it).
    """

    scale: float = attrs.field(default=0.0, validator=non_negative)

    @hookimpl
    def prediction_reads(self, state: State) -> None:
        return None  # guidance reads what the other policies read

    @hookimpl(trylast=True)
    def predict(self, state: State) -> Prediction:
        canvas = state.canvas
        assert canvas is not None
        if self.scale == 0:
            return Prediction.from_source(state.run(canvas.tokens, canvas.length, window=state.window), state.reads)
        prompt = canvas.columns < canvas.prompt_len[:, None]
        tokens = torch.cat([canvas.tokens, canvas.tokens.masked_fill(prompt, canvas.mask_id)])
        window = state.window
        if window is not None:
            window = Window(start=window.start.repeat(2), end=window.end.repeat(2))
        source = state.run(tokens, canvas.length.repeat(2), window=window, passes=2)
        batch = canvas.batch_size
        scale = self.scale

        def halves(index: torch.Tensor, ids: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
            both = source.at(index.repeat(2, 1), ids)
            return both[:batch], both[batch:]

        def guide(cond: torch.Tensor, uncond: torch.Tensor) -> torch.Tensor:
            guided = uncond + (scale + 1.0) * (cond - uncond)
            # A logit that is -inf on either side (a banned or impossible id) stays -inf instead of NaN.
            finite = torch.isfinite(cond) & torch.isfinite(uncond)
            return torch.where(finite, guided, torch.minimum(cond, uncond))

        def guided_source(index: torch.Tensor, ids: torch.Tensor | None) -> torch.Tensor:
            return guide(*halves(index, ids))

        if state.reads is None:
            dense = source.dense()
            prediction = Prediction.greedy(guide(dense[:batch], dense[batch:]))
        else:
            index = read_index(state.reads)
            prediction = Prediction._sparse_greedy(guide(*halves(index, None)), index, canvas.width, None)
        prediction._source = guided_source
        return prediction


@attrs.frozen(kw_only=True)
class SuppressTokens:
    """Never propose the listed ids: their logits become ``-inf`` before anything else sees them.

    Attributes:
        ids: Token ids to ban.
    """

    ids: tuple[int, ...] = attrs.field(converter=lambda v: tuple(sorted({int(i) for i in v})))

    @ids.validator
    def _check_ids(self, _attribute: attrs.Attribute, value: tuple[int, ...]) -> None:
        if not value or min(value) < 0:
            raise ConfigError(f"`ids` must be a non-empty list of token ids >= 0, got {list(value)!r}")

    @hookimpl
    def prediction_reads(self, state: State) -> None:
        return None  # a per-column transform: it reads what the other policies read

    @hookimpl(wrapper=True)
    def predict(self, state: State):  # type: ignore[no-untyped-def]
        prediction: Prediction = yield
        vocab = prediction.vocab_size
        if self.ids[-1] >= vocab:
            raise ConfigError(f"`ids` {list(self.ids)} holds ids outside the vocabulary [0, {vocab})")
        if state.canvas is not None and state.canvas.mask_id in self.ids:
            raise ConfigError(f"`ids` must not hold the mask id {state.canvas.mask_id}")
        index = torch.tensor(self.ids, device=prediction.values.device)
        return prediction.map_logits(lambda logits: logits.index_fill(-1, index, float("-inf")))


@attrs.frozen(kw_only=True)
class TopPTopK:
    """Filter the logits to the nucleus ``top_p`` and/or the ``top_k`` most likely ids.

    Attributes:
        top_p: Nucleus mass in (0, 1] (None or 1: off).
        top_k: Number of ids kept (None: off).
    """

    top_p: float | None = attrs.field(default=None, validator=optional(non_negative))
    top_k: int | None = attrs.field(default=None, validator=optional(int_at_least(1)))

    def __attrs_post_init__(self) -> None:
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ConfigError(f"`top_p` must be in (0, 1], got {self.top_p!r}")
        if self.top_p is None and self.top_k is None:
            raise ConfigError("`TopPTopK` needs `top_p` or `top_k`")

    @hookimpl
    def prediction_reads(self, state: State) -> None:
        return None  # a per-column transform: it reads what the other policies read

    @hookimpl(wrapper=True)
    def predict(self, state: State):  # type: ignore[no-untyped-def]
        prediction: Prediction = yield
        return prediction.map_logits(self._filter)

    def _filter(self, logits: torch.Tensor) -> torch.Tensor:
        if self.top_p is not None and self.top_p < 1:
            logits = top_p_filter(logits, self.top_p)
        if self.top_k is not None:
            logits = top_k_filter(logits, self.top_k)
        return logits
