"""Building blocks shared by the archbench model files (like ``timm.layers``).

Torch only, nothing from archbench: a model file that imports from here still stands alone.
Attribute names follow timm, so state_dicts stay identical to timm's.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Mlp"]


class Mlp(nn.Module):
    """The Transformer's position-wise MLP: two linear layers with a GELU between,
    fc1 (C -> hidden) -> GELU -> fc2 (hidden -> C). ViT eq. 3 (MLP in the encoder block) and
    Swin Sec. 3.1 (2-layer MLP with GELU, hidden width ``mlp_ratio`` × C)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))
