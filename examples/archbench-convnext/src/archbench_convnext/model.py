"""ConvNeXt (Liu et al., CVPR 2022, "A ConvNet for the 2020s").

Structure and parameter names follow the official release (facebookresearch/ConvNeXt,
``models/convnext.py``: ``downsample_layers``, ``stages``, ``norm``, ``head``; per block
``dwconv``, ``norm``, ``pwconv1``, ``pwconv2``, ``gamma``), so a release ``state_dict``
loads with ``strict=True``. Stochastic depth is left out: archbench only runs inference.

This module imports nothing from archbench: ``mixer_factory`` is any callable that
returns a module taking and returning ``(B, C, H, W)``; archbench passes its ``--mixer``
swap there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a ``(B, C, H, W)`` tensor (the release's
    ``LayerNorm(data_format="channels_first")``), run as ``F.layer_norm`` on a channels-last
    view: same maths and parameters, and fvcore counts it like the other LayerNorms."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class DepthwiseConv2d(nn.Conv2d):
    """The block's k×k depth-wise convolution (Sec. 2.4: 7×7, one filter per channel), the
    ConvNeXt token mixer. A subclass only so the core can sum its MACs by class name
    (``Architecture.token_mixer_types``); the parameter names stay ``dwconv.weight/bias``."""

    def __init__(self, dim: int, kernel_size: int = 7) -> None:
        super().__init__(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)


class PointwiseLinear(nn.Linear):
    """A 1×1 convolution run as ``nn.Linear`` on channels-last input (the inverted
    bottleneck's ``pwconv1``/``pwconv2``); a subclass only so the core sums MLP MACs."""


class Block(nn.Module):
    """ConvNeXt block (Fig. 4): dwconv k×k → LN → Linear C→rC → GELU → Linear rC→C → layer
    scale γ, plus the residual: x + γ·MLP(LN(dwconv(x))). ``mixer`` replaces the depth-wise
    convolution (any module taking and returning ``(B, C, H, W)``); it keeps the name
    ``dwconv``."""

    def __init__(
        self,
        dim: int,
        kernel_size: int = 7,
        mlp_ratio: int = 4,
        layer_scale_init_value: float = 1e-6,
        mixer: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.dwconv = DepthwiseConv2d(dim, kernel_size) if mixer is None else mixer
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = PointwiseLinear(dim, mlp_ratio * dim)
        self.act = nn.GELU()
        self.pwconv2 = PointwiseLinear(mlp_ratio * dim, dim)
        # Layer scale (Touvron et al. 2021, CaiT), initialised to 1e-6 in the paper.
        self.gamma = (
            nn.Parameter(torch.full((dim,), layer_scale_init_value))
            if layer_scale_init_value > 0
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.dwconv(x).permute(0, 2, 3, 1)  # B, H, W, C
        x = self.pwconv2(self.act(self.pwconv1(self.norm(x))))
        if self.gamma is not None:
            x = self.gamma * x
        return shortcut + x.permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    """ConvNeXt: a 4×4/4 "patchify" stem with LN (Sec. 2.2), stages of blocks separated by
    LN + 2×2/2 convolutions (Sec. 2.6), global average pooling, LN and a linear head.

    ``mixer_factory(stage)``, if given, is called once per block and returns that block's
    token mixer in place of the depth-wise convolution (archbench's ``--mixer`` swap), on
    ``(B, C, H, W)`` with the stage's width C.
    """

    def __init__(
        self,
        depths: Sequence[int] = (3, 3, 9, 3),
        dims: Sequence[int] = (96, 192, 384, 768),
        kernel_size: int = 7,
        mlp_ratio: int = 4,
        layer_scale_init_value: float = 1e-6,
        in_chans: int = 3,
        num_classes: int = 1000,
        mixer_factory: Callable[[int], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        if len(depths) != len(dims):
            raise ValueError(f"depths {tuple(depths)} and dims {tuple(dims)} differ in length")
        stem = nn.Sequential(
            nn.Conv2d(in_chans, dims[0], kernel_size=4, stride=4), LayerNorm2d(dims[0], eps=1e-6)
        )
        self.downsample_layers = nn.ModuleList([stem])
        for i in range(len(dims) - 1):
            self.downsample_layers.append(
                nn.Sequential(
                    LayerNorm2d(dims[i], eps=1e-6),
                    nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2),
                )
            )
        self.stages = nn.ModuleList(
            nn.Sequential(
                *(
                    Block(
                        dim,
                        kernel_size,
                        mlp_ratio,
                        layer_scale_init_value,
                        mixer=None if mixer_factory is None else mixer_factory(i),
                    )
                    for _ in range(depth)
                )
            )
            for i, (depth, dim) in enumerate(zip(depths, dims))
        )
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], num_classes)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:  # a swapped-in mixer may have bias-free layers
                nn.init.zeros_(module.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for downsample, stage in zip(self.downsample_layers, self.stages):
            x = stage(downsample(x))
        # global average pooling (aten::mean, counted by the plugin's handler), then LN
        return self.norm(x.mean((-2, -1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))
