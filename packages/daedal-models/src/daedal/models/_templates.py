"""The LLaDA and Dream chat templates, rendered natively.

Rendering in Python (instead of running the checkpoint's Jinja template) gives the
exact strings the released models were tuned on, independent of the tokenizer files
and of the transformers version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from daedal.core.errors import ConfigError

DREAM_DEFAULT_SYSTEM = "You are a helpful assistant."


def normalise_messages(prompt: Any, *, argument: str = "prompts") -> list[dict[str, str]]:
    """A prompt as a list of ``{"role", "content"}`` dicts: a string becomes one user turn.

    Raises:
        ConfigError: When the prompt is neither a string nor a list of role/content mappings.
    """
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, Sequence) and not isinstance(prompt, (bytes, bytearray)):
        out = []
        for i, m in enumerate(prompt):
            if (
                not isinstance(m, Mapping)
                or not isinstance(m.get("role"), str)
                or not isinstance(m.get("content"), str)
            ):
                raise ConfigError(
                    f"{argument}: message {i} is {m!r}; each message must be a mapping with string "
                    "'role' and 'content' keys, e.g. {'role': 'user', 'content': 'Hi'}."
                )
            out.append({"role": m["role"], "content": m["content"]})
        if not out:
            raise ConfigError(f"{argument}: a conversation must hold at least one message, got an empty list.")
        return out
    raise ConfigError(
        f"{argument}: got a prompt of type {type(prompt).__name__} ({prompt!r}); pass a string or a list "
        "of {'role': ..., 'content': ...} messages."
    )


def render_llada(messages: Sequence[Mapping[str, str]]) -> str:
    """LLaDA-8B-Instruct / LLaDA-1.5 template.

    ``<|startoftext|>`` before the first message; each message as
    ``<|start_header_id|>{role}<|end_header_id|>\\n\\n{content.strip()}<|eot_id|>``; the
    assistant header is always appended (the template ignores ``add_generation_prompt``).
    """
    parts = ["<|startoftext|>"]
    for m in messages:
        parts.append(f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content'].strip()}<|eot_id|>")
    parts.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
    return "".join(parts)


def render_dream(messages: Sequence[Mapping[str, str]], *, add_generation_prompt: bool = True) -> str:
    """Dream-v0-Instruct (Qwen2.5) template.

    A default system turn is emitted unless the first message is a system message; each
    message is ``<|im_start|>{role}\\n{content}<|im_end|>\\n``; the generation prompt is
    ``<|im_start|>assistant\\n``.
    """
    parts = []
    if not messages or messages[0]["role"] != "system":
        parts.append(f"<|im_start|>system\n{DREAM_DEFAULT_SYSTEM}<|im_end|>\n")
    for m in messages:
        parts.append(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n")
    if add_generation_prompt:
        parts.append("<|im_start|>assistant\n")
    return "".join(parts)
