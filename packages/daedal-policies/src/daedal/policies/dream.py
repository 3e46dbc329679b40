"""Dream's ``diffusion_generate`` (reference semantics b): four unmasking algorithms on one schedule.

Each step ``i`` of ``steps`` has the noise levels ``t_i > t_{i+1}`` of
``linspace(1, eps, steps + 1)``. Every masked slot gets a token from ``sample_tokens``
(temperature, then top-p, then top-k filtering, then the argmax or a sample) and a
confidence:

* ``origin``: each masked slot is revealed independently with probability
  ``1 - t_{i+1} / t_i`` (1 on the last step);
* ``maskgit_plus`` (probability of the token), ``topk_margin`` (top-1 minus top-2
  probability), ``entropy`` (negative entropy): the ``k`` most confident masked slots of
  each row are revealed, ``k = int(m * (1 - t_{i+1} / t_i))`` (``int(m)`` on the last step)
  with ``m`` the batch's average number of masks; with ``alg_temp > 0`` the ``k`` slots are
  drawn without replacement from ``softmax(confidence / alg_temp)``.

A slot whose token is the mask id stays masked. The model adapter absorbs Dream's logit
shift, so logits arrive aligned with their slots.

Where this port differs from the reference code (documented, not accidental):

* randomness comes from the run's generator: categorical samples by the exponential race
  (``argmax p / E``, ``E ~ Exp(1)``), sampling without replacement by Gumbel-top-k --
  the same distributions as ``Categorical`` and ``multinomial``, other random streams;
* ties among confidences go to the lowest column;
* a row with fewer masks than ``k`` reveals all of them (the reference would pick
  non-mask slots and overwrite them with the mask id);
* the run ends once no mask is left instead of running idle forward passes.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch

from daedal.core import ConfigError, FixedLength, Prediction, State, Unmask, hookimpl
from daedal.core.defaults import top_k_unmask
from daedal.core.hookspecs import IDLE_STEPS, KEEPS_MASK_PROPOSALS
from daedal.policies._bundle import from_part, part_kwargs
from daedal.policies._validate import int_at_least, non_negative, one_of, optional
from daedal.policies.sampling import top_k_filter, top_p_filter

ALGORITHMS = ("origin", "maskgit_plus", "topk_margin", "entropy")


def sample_tokens(
    logits: torch.Tensor,
    *,
    temperature: float,
    top_p: float | None,
    top_k: int | None,
    state: State,
    alg: str,
    batch: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dream's ``sample_tokens`` on ``[B, T, V]`` logits: ``(confidence, token)`` per slot.

    Random numbers come from ``state.uniform`` (the batch stream when ``batch``)."""
    if temperature > 0:
        logits = logits / temperature
    if top_p is not None and top_p < 1:
        logits = top_p_filter(logits, top_p)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    probs = torch.softmax(logits, dim=-1)
    if temperature > 0:
        race = state.uniform(probs.shape, dtype=probs.dtype, batch=batch)
        token = (probs / -torch.log(race)).argmax(-1)
        confidence = probs.gather(-1, token.unsqueeze(-1)).squeeze(-1)
    else:
        confidence, token = probs.max(-1)
    if alg == "topk_margin":
        top2 = torch.topk(probs, 2, dim=-1).values
        confidence = top2[..., 0] - top2[..., 1]
    elif alg == "entropy":
        confidence = (probs * torch.log(probs + 1e-10)).sum(-1)
    return confidence, token


@attrs.frozen(kw_only=True)
class DreamUnmask:
    """Dream's unmasking schedule and algorithms over the whole generation region.

    Attributes:
        steps: Denoising steps.
        alg: ``"origin"``, ``"maskgit_plus"``, ``"topk_margin"`` or ``"entropy"``.
        alg_temp: Temperature of the slot choice (None or 0: the top ``k``).
        temperature: Token sampling temperature (0: argmax).
        top_p: Nucleus filter (None: off).
        top_k: Top-k filter (None: off).
        eps: Final noise level of the schedule, in (0, 1).
        streams: ``"batch"`` (draws over the batch tensor, as the oracle of this port) or
            ``"rows"`` (per-row streams: a row's samples and reveal order do not depend on its
            batch); see ``daedal.core.streams``.
    """

    #: Dream's eps schedule has steps that reveal nothing, and, like the reference, a slot whose
    #: token is the mask id stays masked.
    daedal_capabilities: ClassVar[frozenset[str]] = frozenset({IDLE_STEPS, KEEPS_MASK_PROPOSALS})

    steps: int = attrs.field(default=512, validator=int_at_least(1))
    alg: str = attrs.field(default="origin", validator=one_of(*ALGORITHMS))
    alg_temp: float | None = attrs.field(default=None, validator=optional(non_negative))
    temperature: float = attrs.field(default=0.0, validator=non_negative)
    top_p: float | None = attrs.field(default=None, validator=optional(non_negative))
    top_k: int | None = attrs.field(default=None, validator=optional(int_at_least(1)))
    eps: float = attrs.field(default=1e-3, validator=non_negative)
    streams: str = attrs.field(default="batch", validator=one_of("batch", "rows"))

    def __attrs_post_init__(self) -> None:
        if not 0 < self.eps < 1:
            raise ConfigError(f"`eps` must be in (0, 1), got {self.eps!r}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ConfigError(f"`top_p` must be in (0, 1], got {self.top_p!r}")

    @hookimpl
    def should_stop(self, state: State) -> bool:
        return state.step >= self.steps

    @hookimpl
    def select_unmask(self, state: State, prediction: Prediction) -> Unmask:
        canvas, window = state.canvas, state.window
        assert canvas is not None and window is not None
        masked = canvas.masked & window.mask(canvas.width)
        i = state.step
        levels = torch.linspace(1, self.eps, self.steps + 1, device=canvas.device)
        t, s = levels[i], levels[i + 1]
        last = i == self.steps - 1
        batch = self.streams == "batch"
        confidence, token = sample_tokens(
            prediction.logits,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            state=state,
            alg=self.alg,
            batch=batch,
        )
        if self.alg == "origin":
            p_reveal = 1.0 if last else 1 - s / t
            u = state.uniform(masked.shape, batch=batch)
            where = masked & (u < p_reveal) & (token != canvas.mask_id)
            return Unmask(where=where, tokens=token)
        average = masked.sum() / masked.shape[0]
        k = torch.floor(average if last else average * (1 - s / t)).long()
        score = confidence
        if self.alg_temp:
            # Gumbel-top-k: k draws without replacement from softmax(confidence / alg_temp).
            u = state.uniform(masked.shape, batch=batch)
            score = confidence / self.alg_temp - torch.log(-torch.log(u))
        return top_k_unmask(score, masked, k.expand(masked.shape[0]), token, canvas.mask_id)


@attrs.frozen(kw_only=True)
class DreamDecoding:
    """Dream's ``diffusion_generate(max_new_tokens, steps, alg, alg_temp, temperature, top_p, top_k, eps)``.

    Mask and EOS ids come from the adapter. A bundle of the core's ``FixedLength`` and
    :class:`DreamUnmask`; rows are right-padded and independent (Dream's left padding with
    an attention mask and shifted position ids is equivalent).

    Attributes:
        max_new_tokens: Generation slots per row.
        steps: Denoising steps.
        alg: ``"origin"``, ``"maskgit_plus"``, ``"topk_margin"`` or ``"entropy"``.
        alg_temp: Temperature of the slot choice (None or 0: the top ``k``).
        temperature: Token sampling temperature (0: argmax).
        top_p: Nucleus filter (None: off).
        top_k: Top-k filter (None: off).
        eps: Final noise level of the schedule.
        streams: ``"batch"`` or ``"rows"`` (see :class:`DreamUnmask`).
    """

    # Each field is the part's own (default and validator): see daedal.policies._bundle.
    max_new_tokens: int = from_part(FixedLength, "gen_length", default=512)
    steps: int = from_part(DreamUnmask, "steps")
    alg: str = from_part(DreamUnmask, "alg")
    alg_temp: float | None = from_part(DreamUnmask, "alg_temp")
    temperature: float = from_part(DreamUnmask, "temperature")
    top_p: float | None = from_part(DreamUnmask, "top_p")
    top_k: int | None = from_part(DreamUnmask, "top_k")
    eps: float = from_part(DreamUnmask, "eps")
    streams: str = from_part(DreamUnmask, "streams")

    def __attrs_post_init__(self) -> None:
        self.parts()  # validate the parts now, not at the first run

    def parts(self) -> list[object]:
        """The policies this bundle stands for."""
        return [FixedLength(**part_kwargs(self, FixedLength)), DreamUnmask(**part_kwargs(self, DreamUnmask))]
