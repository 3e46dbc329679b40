"""Assertions for canvases."""

from __future__ import annotations

import torch

from daedal.core.canvas import Canvas


def assert_canvas_equal(actual: Canvas, expected: Canvas) -> None:
    """Fail with a readable message unless two canvases hold the same rows and metadata."""
    assert actual.mask_id == expected.mask_id and actual.pad_id == expected.pad_id, "mask/pad ids differ"
    assert torch.equal(actual.prompt_len, expected.prompt_len), (actual.prompt_len, expected.prompt_len)
    assert torch.equal(actual.length, expected.length), (actual.length, expected.length)
    assert actual.rows() == expected.rows(), f"rows differ:\n{actual.rows()}\n{expected.rows()}"
