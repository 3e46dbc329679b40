"""Helpers shared by the daedal-eval tests (imported by name; not a conftest)."""

from __future__ import annotations


def boxed_response(answer: str, *, pad: int = 3) -> str:
    """A well-formed generation in the paper's format, with trailing padding."""
    return (
        "<reasoning>\nWork it out step by step.\n</reasoning>\n<answer>\n\\boxed{"
        + answer
        + "}\n</answer>"
        + "<|eot_id|>"
        + "<|endoftext|>" * pad
    )


def code_response(code: str) -> str:
    return (
        "<reasoning>\nStraightforward.\n</reasoning>\n<answer>\n```python\n"
        + code
        + "```\n</answer><|eot_id|><|endoftext|>"
    )
