"""An ``lm-eval`` (0.4.x) model type that generates through a daedal engine.

lm-eval 0.4 finds models only in its own registry (``lm_eval.api.registry``); it does
not scan entry points for external ones. Importing this module registers the model
type ``daedal``; the module is also a command that registers it and then runs lm-eval's
own command line, so stock lm-eval tasks run through the engine::

    python -m daedal.eval.lm_eval_bridge --model daedal \\
        --model_args model=GSAI-ML/LLaDA-8B-Instruct,policy=daedal,dtype=bfloat16 \\
        --tasks gsm8k --apply_chat_template --batch_size 8

(also installed as the ``daedal-lm-eval`` script). From Python::

    import daedal.eval.lm_eval_bridge  # registers "daedal"
    lm_eval.simple_evaluate(model="daedal", model_args="model=...,policy=daedal", tasks=[...])

``loglikelihood`` (multiple-choice tasks: ARC, HellaSwag, MMLU...) scores each
continuation by the ELBO of :func:`daedal.eval.likelihood.log_likelihoods` (LLaDA's
Monte-Carlo estimator, or its exact value), with LLaDA's greedy check for ``is_greedy``;
``loglikelihood_rolling`` (perplexity tasks) sums the ELBO over windows
(:func:`daedal.eval.likelihood.rolling_log_likelihoods`)::

    daedal-lm-eval --model daedal --tasks arc_easy \
        --model_args model=GSAI-ML/LLaDA-8B-Base,dtype=bfloat16,mc_num=128,cfg_scale=0.5

``model_args`` (commas separate arguments, so a policy's own parameters are separated
by ``;`` and several policies by ``+``):

* ``model`` — checkpoint directory, hub id, ``bundled`` or ``fake``;
* ``policy`` — e.g. ``daedal`` or ``llada-decoding:gen_length=256;block_length=32`` (default ``daedal``);
* ``adapter``, ``dtype``, ``device``, ``seed``, ``batch_size``;
* ``assistant_prefix`` — text appended after the chat template (``<reasoning>`` reproduces
  the paper's prompts);
* ``keep_special_tokens`` — keep EOS/padding in the returned text (default True, as in
  the paper's harness);
* ``adapter_<name>`` — passed to the adapter as ``<name>``;
* likelihood requests: ``mc_num`` (default 128), ``mc_batch_size`` (rows per stratified
  mini-batch and forward pass, default ``min(32, mc_num)``), ``exact`` (enumerate every mask
  subset; answers of at most 12 tokens), ``cfg_scale`` (or LLaDA's ``cfg``; default 0),
  ``check_greedy`` (compute ``is_greedy``, default True), ``rows_per_forward`` (rows per
  forward call, default ``max(8, mc_batch_size)``), ``window`` and ``context``
  (tokens per window and of context before it for ``loglikelihood_rolling``; default half
  of the model's maximum length each).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from typing import Any

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from daedal.core.errors import ConfigError

__all__ = ["DaedalLM", "main", "tasks_dir"]

NAME = "daedal"


def _policy_specs(policy: str) -> list[str]:
    # "a:x=1;y=2+b" -> ["a:x=1,y=2", "b"]
    return [p.replace(";", ",") for p in str(policy).split("+") if p.strip()]


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _likelihood_settings(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Pop the likelihood model args from ``kwargs``, typed and checked."""
    from daedal.eval.likelihood.estimator import check_settings

    def integer(name: str, default: int | None) -> int | None:
        value = kwargs.pop(name, default)
        if value is None or value == "None":
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"model arg `{name}` must be an int, got {value!r}") from None

    mc_num = integer("mc_num", 128)
    cfg = kwargs.pop("cfg_scale", kwargs.pop("cfg", 0.0))
    try:
        cfg_scale = float(cfg)
    except (TypeError, ValueError):
        raise ConfigError(f"model arg `cfg_scale` must be a number >= 0, got {cfg!r}") from None
    batch = integer("mc_batch_size", None)
    settings = {
        "mc_num": mc_num,
        "mc_batch_size": batch if batch is not None else min(32, mc_num or 1),
        "cfg_scale": cfg_scale,
        "exact": _truthy(kwargs.pop("exact", False)),
        "check_greedy": _truthy(kwargs.pop("check_greedy", kwargs.pop("is_check_greedy", True))),
        "rows_per_forward": integer("rows_per_forward", None),
        "window": integer("window", None),
        "context": integer("context", None),
    }
    if mc_num is not None and settings["mc_batch_size"] and mc_num % settings["mc_batch_size"]:
        raise ConfigError(
            f"model arg `mc_num` ({mc_num}) must be a multiple of `mc_batch_size` ({settings['mc_batch_size']}): "
            "set mc_batch_size to a divisor of mc_num"
        )
    check_settings(settings["mc_num"], settings["mc_batch_size"], settings["cfg_scale"], 0)
    if settings["rows_per_forward"] is None:
        # At least 8 rows, so that the choices of a single-token question (mc_num=1) share one call.
        settings["rows_per_forward"] = max(8, settings["mc_batch_size"])
    return settings


class DaedalLM(LM):
    """lm-eval model whose ``generate_until`` runs a daedal :class:`~daedal.core.Engine`.

    Args:
        model: Model spec (see :func:`daedal.eval.build.build_adapter`).
        policy: Policy specs, ``+``-separated, parameters ``;``-separated.
        adapter: Adapter name (default: from the checkpoint's config).
        dtype: Model dtype.
        device: Device (default: the adapter's).
        seed: Engine seed.
        batch_size: Prompts per ``generate`` call.
        assistant_prefix: Appended to chat-templated contexts.
        keep_special_tokens: Keep special tokens in returned texts.
        engine: An already built engine (Python use); ``model`` and ``policy`` are then ignored.
        **kwargs: ``adapter_<name>`` adapter arguments; lm-eval's extra settings
            (``max_batch_size``...) are accepted and ignored.
    """

    def __init__(
        self,
        model: str | None = None,
        policy: str = "daedal",
        adapter: str | None = None,
        dtype: str | None = None,
        device: str | None = None,
        seed: int = 0,
        batch_size: int | str = 1,
        assistant_prefix: str = "",
        keep_special_tokens: bool | str = True,
        engine: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        from daedal.core import Engine, EngineConfig
        from daedal.eval.build import build_adapter, build_policies, model_daedal_defaults

        self.likelihood = _likelihood_settings(kwargs)
        adapter_params = {k[len("adapter_") :]: v for k, v in kwargs.items() if k.startswith("adapter_")}
        if device is not None and str(device).startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                # lm-eval passes device="cuda" unless told otherwise; without CUDA use the adapter's default.
                warnings.warn(f"device={device!r} requested but CUDA is not available; using the CPU", stacklevel=2)
                device = None
        if engine is None:
            if model is None:
                raise ConfigError("`model` is required in model_args, e.g. model=GSAI-ML/LLaDA-8B-Instruct")
            built = build_adapter(str(model), adapter=adapter, dtype=dtype, device=device, params=adapter_params)
            policies = build_policies(_policy_specs(policy), daedal_defaults=model_daedal_defaults(str(model)))
            engine = Engine(built, policies, config=EngineConfig(seed=int(seed)))
        self.engine = engine
        self.seed = int(seed)
        if str(batch_size).startswith("auto"):
            batch_size = 1
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ConfigError(f"`batch_size` must be a positive int, got {batch_size!r}")
        self.assistant_prefix = assistant_prefix
        self.keep_special_tokens = _truthy(keep_special_tokens)
        self.model_name = str(model) if model is not None else type(engine.adapter).__name__

    # -- lm-eval protocol ------------------------------------------------------------------

    @property
    def tokenizer_name(self) -> str:
        return self.model_name.replace("/", "__")

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        return "daedal-native" if callable(getattr(self.engine.adapter, "render_chat", None)) else None

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """Render a conversation with the adapter's template, then the assistant prefix."""
        render = getattr(self.engine.adapter, "render_chat", None)
        if not callable(render):
            raise ConfigError(
                f"adapter {type(self.engine.adapter).__name__} cannot render a chat template as text: "
                "run lm-eval without --apply_chat_template"
            )
        return render([dict(m) for m in chat_history]) + self.assistant_prefix

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        """ELBO of each ``(context, continuation)`` request and whether greedy unmasking yields it."""
        from daedal.eval.likelihood import greedy_matches, log_likelihoods

        if not requests:
            return []
        adapter = self.engine.adapter
        settings = self.likelihood
        pairs = [self._encode_pair(req.args[0], req.args[1]) for req in requests]
        values = log_likelihoods(
            adapter,
            pairs,
            mc_num=settings["mc_num"],
            batch_size=settings["mc_batch_size"],
            cfg_scale=settings["cfg_scale"],
            seed=self.seed,
            exact=settings["exact"],
            rows_per_forward=settings["rows_per_forward"],
            progress=False if disable_tqdm else None,
        )
        if settings["check_greedy"]:
            greedy = greedy_matches(
                adapter, pairs, cfg_scale=settings["cfg_scale"], batch_size=settings["mc_batch_size"]
            )
        else:
            greedy = [False] * len(pairs)
        return [(float(v), bool(g)) for v, g in zip(values, greedy, strict=True)]

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        """ELBO of each whole text, summed over windows (perplexity tasks)."""
        from daedal.eval.likelihood import rolling_log_likelihoods

        if not requests:
            return []
        adapter = self.engine.adapter
        settings = self.likelihood
        ids = adapter.encode([req.args[0] for req in requests], chat_template=False)
        scored = [i for i, row in enumerate(ids) if row]
        values = rolling_log_likelihoods(
            adapter,
            [ids[i] for i in scored],
            window=settings["window"],
            context=settings["context"],
            mc_num=settings["mc_num"],
            batch_size=settings["mc_batch_size"],
            cfg_scale=settings["cfg_scale"],
            seed=self.seed,
            exact=settings["exact"],
            progress=False if disable_tqdm else None,
        )
        out = [0.0] * len(ids)  # an empty text has log-likelihood 0
        for i, value in zip(scored, values, strict=True):
            out[i] = float(value)
        return out

    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Token ids of a request: the continuation is what encoding the whole adds to the context.

        Trailing whitespace of the context moves to the continuation (as lm-eval's own
        models do), and a context too long for the model is cut from the left.
        """
        adapter = self.engine.adapter
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces:
            context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
        whole, ctx = adapter.encode([context + continuation, context], chat_template=False)
        whole, ctx = list(whole), (list(ctx) if context else [])
        cont = whole[len(ctx) :]
        keep = int(adapter.max_length) - len(cont)
        if len(ctx) > keep >= 0:
            warnings.warn(f"a context of {len(ctx)} tokens is cut to its last {keep} to fit max_length", stacklevel=3)
            ctx = ctx[len(ctx) - keep :]
        return ctx, cont

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        """Generate each request's continuation and cut it at the first stop string."""
        adapter = self.engine.adapter
        outputs: list[str] = []
        for start in range(0, len(requests), self.batch_size):
            batch = requests[start : start + self.batch_size]
            contexts = [req.args[0] for req in batch]
            stops = [self._stops(req.args[1] if len(req.args) > 1 else {}) for req in batch]
            ids = [list(row) for row in adapter.encode(contexts, chat_template=False)]
            result = self.engine.generate(ids, seed=self.seed + start)
            texts = result.texts
            if not self.keep_special_tokens or texts is None:
                texts = self._decode_plain(result.tokens)
            for text, until in zip(texts, stops, strict=True):
                outputs.append(self._cut(text, until))
        return outputs

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _stops(gen_kwargs: Any) -> list[str]:
        until = (gen_kwargs or {}).get("until") if isinstance(gen_kwargs, dict) else None
        if until is None:
            return []
        return [until] if isinstance(until, str) else [u for u in until if u]

    @staticmethod
    def _cut(text: str, until: Sequence[str]) -> str:
        cut = len(text)
        for stop in until:
            at = text.find(stop)
            if at >= 0:
                cut = min(cut, at)
        return text[:cut]

    def _decode_plain(self, tokens: Sequence[Sequence[int]]) -> list[str]:
        adapter = self.engine.adapter
        tokenizer = getattr(adapter, "tokenizer", None)
        if tokenizer is not None:
            return [tokenizer.decode(list(row), skip_special_tokens=True) for row in tokens]
        special = set(getattr(adapter, "eos_ids", ())) | {
            getattr(adapter, "pad_id", None),
            getattr(adapter, "mask_id", None),
        }
        return adapter.decode([[t for t in row if t not in special] for row in tokens])


if __name__ != "__main__":
    # Run as a script, this file is __main__; the import in the block below registers the
    # class once, under its importable name.
    register_model(NAME)(DaedalLM)


def tasks_dir() -> str:
    """The directory of the ``daedal_gsm8k``, ``daedal_math500``, ``daedal_humaneval`` and
    ``daedal_mbpp`` task YAMLs: the paper's prompts, scored by the suites' paper protocol."""
    from pathlib import Path

    return str(Path(__file__).parent / "lm_eval_tasks")


def main(argv: Sequence[str] | None = None) -> None:
    """Register the ``daedal`` model type, then run lm-eval's command line.

    The ``daedal_*`` tasks of :func:`tasks_dir` are added with ``--include_path`` unless
    the command line passes its own.
    """
    from lm_eval.__main__ import cli_evaluate

    args = list(sys.argv[1:] if argv is None else argv)
    if not any(a == "--include_path" or a.startswith("--include_path=") for a in args):
        args += ["--include_path", tasks_dir()]
    sys.argv = [sys.argv[0], *args]
    cli_evaluate()


if __name__ == "__main__":  # pragma: no cover
    from daedal.eval.lm_eval_bridge import main as _main

    _main()
