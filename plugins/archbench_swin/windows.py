"""Window partition and reverse, the relative-position index and the shifted-window mask
of Swin (Sec. 3.2): the tensor side of the window geometry, beside the model that uses it
(torch only, nothing from archbench, as the model). Same as the official code and timm."""

from __future__ import annotations

import torch


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * H/M * W/M, M*M, C): non-overlapping M×M windows (Sec. 3.2)."""
    B, H, W, C = x.shape
    M = window_size
    x = x.view(B, H // M, M, W // M, M, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, M * M, C)


def window_reverse(windows: torch.Tensor, window_size: int, H: int, W: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B * nW, M*M, C) -> (B, H, W, C)."""
    M = window_size
    C = windows.shape[-1]
    x = windows.view(-1, H // M, W // M, M, M, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, H, W, C)


def add_shift_mask(bias: torch.Tensor, mask: torch.Tensor, batch: int) -> torch.Tensor:
    """SW-MSA's attention mask: the relative position bias (1, heads, M², M²) plus the
    shifted-window region mask (nW, M², M²), as (batch * nW, heads, M², M²). Kept 4-D
    (repeated over the batch when batch > 1): sdpa's fused CPU kernel takes only 4-D masks.
    A function of its own so that ``--breakdown`` times it as part of the window line."""
    combined = bias + mask.unsqueeze(1)
    if batch > 1:
        combined = combined.expand(batch, -1, -1, -1, -1).flatten(0, 1)
    return combined


def relative_position_index(window_size: int) -> torch.Tensor:
    """(M², M²) index into the (2M-1)² relative position bias table (Sec. 3.2, Eq. 4).

    The relative offset along each axis lies in [-M+1, M-1]; shifted to [0, 2M-2] and
    flattened row-major, exactly as in the official code.
    """
    M = window_size
    coords = torch.stack(torch.meshgrid(torch.arange(M), torch.arange(M), indexing="ij"))
    coords = coords.flatten(1)  # 2, M²
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)  # M², M², 2
    return (rel[..., 0] + M - 1) * (2 * M - 1) + (rel[..., 1] + M - 1)


def shifted_window_mask(height: int, width: int, window_size: int, shift_size: int) -> torch.Tensor:
    """(nW, M², M²) additive mask for SW-MSA after the cyclic shift (Sec. 3.2, Fig. 4).

    The (padded) map is split into 3×3 regions by the roll seams; tokens of a window may only
    attend to tokens of the same region (0), others get -100 (official code's value).
    """
    M, s = window_size, shift_size
    img = torch.zeros(1, height, width, 1)
    cnt = 0
    for hs in (slice(0, -M), slice(-M, -s), slice(-s, None)):
        for ws in (slice(0, -M), slice(-M, -s), slice(-s, None)):
            img[:, hs, ws, :] = cnt
            cnt += 1
    win = window_partition(img, M).squeeze(-1)  # nW, M²
    diff = win.unsqueeze(1) - win.unsqueeze(2)
    return torch.zeros_like(diff).masked_fill(diff != 0, -100.0)
