"""The window: the span of each row a step may decide on."""

from __future__ import annotations

import attrs
import torch


@attrs.frozen(eq=False, repr=False)
class Window:
    """Per-row half-open spans ``[start, end)`` of canvas columns.

    Policies restrict their unmask and expand decisions to the window. A row whose
    ``start == end`` takes no decision this step.

    Attributes:
        start: ``[B]`` first column of each row's window.
        end: ``[B]`` one past the last column.
    """

    start: torch.Tensor
    end: torch.Tensor

    def __repr__(self) -> str:
        if self.start.numel() <= 8:
            return f"Window(start={self.start.tolist()}, end={self.end.tolist()})"
        return f"Window(batch={self.start.numel()})"

    def mask(self, width: int) -> torch.Tensor:
        """``[B, width]`` boolean mask of the columns inside each row's window."""
        cols = torch.arange(width, device=self.start.device)
        return (cols >= self.start[:, None]) & (cols < self.end[:, None])

    @classmethod
    def whole(cls, prompt_len: torch.Tensor, length: torch.Tensor) -> Window:
        """The whole generation region of every row."""
        return cls(start=prompt_len.clone(), end=length.clone())
