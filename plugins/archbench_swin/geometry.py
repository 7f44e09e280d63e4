"""Swin stage geometry: feature-map sides, effective windows and window padding.

Pure arithmetic (no torch, nothing from archbench), so that the model file stands alone and
the plugin's validator, the analytic formulas and the model agree on resolutions, windows
and padding.
"""

from __future__ import annotations


def stage_resolutions(grid: int, num_stages: int) -> list[int]:
    """Feature-map side of each stage: the patch grid, then ceil(r / 2) per patch merging
    (an odd map is zero-padded to even before merging, as in timm and the official code)."""
    res = [grid]
    for _ in range(num_stages - 1):
        res.append((res[-1] + 1) // 2)
    return res


def effective_window(resolution: int, window: int, shift: int) -> tuple[int, int]:
    """(window, shift) a block actually uses on a ``resolution``-sided map: a map no larger
    than the window is a single window and is not shifted (official code, timm)."""
    if resolution <= window:
        return resolution, 0
    return window, shift


def padded_side(side: int, window: int) -> int:
    """A map side rounded up to a multiple of the window: the zero padding before window
    partition (official Swin code), so hw of eq. (2) is ``padded_side(h, M) ** 2``."""
    return -(-side // window) * window
