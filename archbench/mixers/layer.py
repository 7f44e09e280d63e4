"""The wrapper that puts a registered token mixer into a backbone of another layout
(``archbench compare ... --mixer NAME``). Imports torch: import it lazily."""

from __future__ import annotations

import torch
from torch import nn


def _to_channels_last(x: torch.Tensor, layout: str, size: int) -> torch.Tensor:
    if layout == "tokens":  # (B, N, C) with N = size², row-major
        return x.reshape(x.shape[0], size, size, x.shape[-1])
    if layout == "channels_first":
        return x.permute(0, 2, 3, 1)
    return x


def _from_channels_last(x: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "tokens":
        return x.reshape(x.shape[0], -1, x.shape[-1])
    if layout == "channels_first":
        return x.permute(0, 3, 1, 2)
    return x


class TokenMixerLayer(nn.Module):
    """A token mixer (``self.mixer``) taking ``mixer_layout`` inside a block whose tensors
    are in ``host_layout``; ``size`` is the side of the square feature map (tokens: N =
    size², row-major). Only permutes and reshapes are added: no arithmetic."""

    def __init__(
        self, mixer: nn.Module, host_layout: str, mixer_layout: str, size: int, name: str = ""
    ) -> None:
        super().__init__()
        self.mixer = mixer
        self.host_layout = host_layout
        self.mixer_layout = mixer_layout
        self.size = size
        self.name = name

    def extra_repr(self) -> str:
        return f"{self.name!r}, {self.host_layout} -> {self.mixer_layout}, size={self.size}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.host_layout == self.mixer_layout:
            return self.mixer(x)
        y = _from_channels_last(
            _to_channels_last(x, self.host_layout, self.size), self.mixer_layout
        )
        y = self.mixer(y)
        return _from_channels_last(
            _to_channels_last(y, self.mixer_layout, self.size), self.host_layout
        )
