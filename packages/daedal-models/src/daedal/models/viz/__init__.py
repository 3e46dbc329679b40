"""Showing a denoising run: the live terminal view and the HTML trace replay.

Both draw the legend of the DAEDAL paper's figure: masks, tokens committed in the current
step, tokens committed earlier (shaded by the confidence they were committed with),
masks inserted by an expansion, and end-of-text tokens. :mod:`.frames` turns trace
events into per-cell descriptions, :mod:`.live` draws them with rich while the engine
runs, :mod:`.html` writes a self-contained replay page.
"""
