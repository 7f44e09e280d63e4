"""HorNet (Rao et al., NeurIPS 2022, "HorNet: Efficient High-Order Spatial Interactions with
Recursive Gated Convolutions").

Follows the structure and parameter names of the official release (raoyongming/HorNet,
``hornet.py``): ``downsample_layers``, ``stages``, ``norm``, ``head``; per block ``norm1``,
``gnconv``, ``norm2``, ``pwconv1``, ``pwconv2``, ``gamma1``, ``gamma2``; per gnConv
``proj_in``, ``dwconv``, ``proj_out``, ``pws``; per global filter ``dw``, ``complex_weight``,
``pre_norm``, ``post_norm``. A released checkpoint therefore loads with ``strict=True``
(:func:`load_checkpoint`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: The gnConv scale s of the official release (applied to the depth-wise conv output).
DEFAULT_SCALE = 1.0 / 3.0


def gnconv_dims(dim: int, order: int) -> list[int]:
    """Channel widths of the recursive gating, paper eq. (3.3): C_k = C / 2^(n-k-1), k = 0..n-1."""
    return [dim // 2 ** (order - k - 1) for k in range(order)]


def drop_path(x: torch.Tensor, drop_prob: float, training: bool) -> torch.Tensor:
    """Stochastic depth per sample (Huang et al. 2016); the identity in eval mode."""
    if drop_prob == 0.0 or not training:
        return x
    keep = 1.0 - drop_prob
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


class DropPath(nn.Module):
    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.drop_prob, self.training)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) tensor (the official ``channels_first``
    LayerNorm).

    The official release writes it by hand (mean, variance, sqrt, affine); here it runs as
    ``F.layer_norm`` on a channels-last view, the same arithmetic, so fvcore counts it
    (``aten::layer_norm``, 5 per element) where the official FLOP script counts nothing.
    Parameter names (``weight``, ``bias``) are those of the release.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__(num_channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class PointwiseLinear(nn.Linear):
    """A 1x1 convolution written as ``nn.Linear`` on channels-last tensors (the block's MLP,
    ``pwconv1`` / ``pwconv2``, as in ConvNeXt). A separate class only so that archbench can
    sum the MLP's MACs by class name; parameters are plain ``weight`` / ``bias``."""


class GlobalLocalFilter(nn.Module):
    """The GF layer of HorNet-GF (paper sec. 3.3, after GFNet, Rao et al. 2021).

    Replaces gnConv's depth-wise conv in stages 3 and 4: LayerNorm, then half of the
    channels through a 3x3 depth-wise conv (local) and the other half through a learnable
    global filter in the frequency domain, X' = F^-1[W ⊙ F[X]] (GFNet eq. 3), the two halves
    interleaved channel by channel, then LayerNorm.

    ``complex_weight`` has shape (C/2, h, w, 2) (real, imaginary) for an rfft2 spectrum of
    h x w; at another resolution it is resized by bilinear interpolation (official
    behaviour), e.g. 14x8 -> 24x13 when a 224 model runs at 384.
    """

    def __init__(self, dim: int, h: int = 14, w: int = 8) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"GlobalLocalFilter needs an even channel count, got {dim}")
        half = dim // 2
        self.dw = nn.Conv2d(half, half, kernel_size=3, padding=1, bias=False, groups=half)
        self.complex_weight = nn.Parameter(torch.empty(half, h, w, 2, dtype=torch.float32))
        nn.init.trunc_normal_(self.complex_weight, std=0.02)
        self.pre_norm = LayerNorm2d(dim, eps=1e-6)
        self.post_norm = LayerNorm2d(dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre_norm(x)
        x1, x2 = torch.chunk(x, 2, dim=1)
        x1 = self.dw(x1)

        dtype = x2.dtype
        x2 = x2.to(torch.float32)  # the FFT runs in fp32, as in the release
        B, C, a, b = x2.shape
        x2 = torch.fft.rfft2(x2, dim=(2, 3), norm="ortho")
        weight = self.complex_weight
        if weight.shape[1:3] != x2.shape[2:4]:
            weight = F.interpolate(
                weight.permute(3, 0, 1, 2), size=x2.shape[2:4], mode="bilinear", align_corners=True
            ).permute(1, 2, 3, 0)
        weight = torch.view_as_complex(weight.float().contiguous())
        x2 = x2 * weight  # GFNet eq. (3): element-wise complex filter
        x2 = torch.fft.irfft2(x2, s=(a, b), dim=(2, 3), norm="ortho").to(dtype)

        # interleave: channel 2i from the local half, 2i+1 from the global half
        x = torch.stack([x1, x2], dim=2).flatten(1, 2)
        return self.post_norm(x)


class GnConv(nn.Module):
    """Recursive gated convolution g^n Conv (paper sec. 3.1, eqs. 3.3-3.4; official ``gnconv``).

    [p_0, q_0, ..., q_{n-1}] = proj_in(x), with p_0 of C_0 channels and the q_k (after one
    depth-wise conv over all of them, scaled by s) of C_k channels; then
    p_{k+1} = g_k(p_k) * q_k with g_k a 1x1 conv C_k -> C_{k+1} (``pws[k]``; g_0 is the
    identity in the paper's indexing, here p_1 = p_0 * q_0), and y = proj_out(p_n).
    """

    def __init__(
        self,
        dim: int,
        order: int = 5,
        kernel_size: int = 7,
        scale: float = DEFAULT_SCALE,
        gf_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        if not 1 <= order <= 5:
            raise ValueError(f"gnConv order must be in 1..5, got {order}")
        if dim % 2 ** (order - 1):
            raise ValueError(f"gnConv of order {order} needs dim divisible by {2 ** (order - 1)}")
        self.order = order
        self.dims = gnconv_dims(dim, order)
        self.scale = scale
        self.proj_in = nn.Conv2d(dim, 2 * dim, 1)
        if gf_size is None:
            self.dwconv = nn.Conv2d(
                sum(self.dims),
                sum(self.dims),
                kernel_size,
                padding=(kernel_size - 1) // 2,
                groups=sum(self.dims),
            )
        else:
            self.dwconv = GlobalLocalFilter(sum(self.dims), h=gf_size[0], w=gf_size[1])
        self.proj_out = nn.Conv2d(dim, dim, 1)
        self.pws = nn.ModuleList(
            [nn.Conv2d(self.dims[k], self.dims[k + 1], 1) for k in range(order - 1)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fused = self.proj_in(x)
        p, q = torch.split(fused, (self.dims[0], sum(self.dims)), dim=1)
        q = self.dwconv(q) * self.scale
        qs = torch.split(q, self.dims, dim=1)
        p = p * qs[0]  # eq. (3.4), first gate
        for k in range(self.order - 1):
            p = self.pws[k](p) * qs[k + 1]  # eq. (3.4): p_{k+1} = g_k(p_k) * q_k
        return self.proj_out(p)


class HorNetBlock(nn.Module):
    """HorNet block (paper fig. 1, sec. 3.2): x + γ1·gnConv(LN(x)), then x + γ2·MLP(LN(x)).

    The MLP is ConvNeXt's: Linear C->4C, GELU, Linear 4C->C on channels-last tensors.
    """

    def __init__(
        self,
        dim: int,
        order: int,
        drop_path: float = 0.0,
        layer_scale_init: float = 1e-6,
        kernel_size: int = 7,
        scale: float = DEFAULT_SCALE,
        gf_size: tuple[int, int] | None = None,
        mixer: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(dim, eps=1e-6)
        # ``mixer`` (archbench's --mixer swap): another token mixer on (B, C, H, W).
        self.gnconv = (
            mixer
            if mixer is not None
            else GnConv(dim, order, kernel_size=kernel_size, scale=scale, gf_size=gf_size)
        )
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = PointwiseLinear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = PointwiseLinear(4 * dim, dim)
        if layer_scale_init > 0:
            self.gamma1 = nn.Parameter(layer_scale_init * torch.ones(dim))
            self.gamma2 = nn.Parameter(layer_scale_init * torch.ones(dim))
        else:
            self.gamma1 = None
            self.gamma2 = None
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.gnconv(self.norm1(x))
        if self.gamma1 is not None:
            y = self.gamma1.view(-1, 1, 1) * y
        x = x + self.drop_path(y)

        y = self.norm2(x.permute(0, 2, 3, 1))  # (B, C, H, W) -> (B, H, W, C)
        y = self.pwconv2(self.act(self.pwconv1(y)))
        if self.gamma2 is not None:
            y = self.gamma2 * y
        return x + self.drop_path(y.permute(0, 3, 1, 2))


def _make_stage(
    stage: int,
    dim: int,
    order: int,
    rates: Sequence[float],
    gf_size: tuple[int, int] | None,
    mixer_factory: Callable[[int], nn.Module] | None,
    **block_kwargs: Any,
) -> nn.Sequential:
    """Stage ``stage`` of HorNet: one :class:`HorNetBlock` per drop-path rate in ``rates``, each
    with its own mixer from ``mixer_factory(stage)`` when given (else gnConv)."""
    return nn.Sequential(
        *[
            HorNetBlock(
                dim,
                order,
                drop_path=rate,
                gf_size=gf_size,
                mixer=None if mixer_factory is None else mixer_factory(stage),
                **block_kwargs,
            )
            for rate in rates
        ]
    )


class HorNet(nn.Module):
    """HorNet: ConvNeXt-style 4-stage hierarchy with gnConv token mixers (paper sec. 3.2).

    Stem 4x4/4 conv + LN; between stages LN + 2x2/2 conv; stage widths C, 2C, 4C, 8C with
    gnConv orders ``orders`` (2, 3, 4, 5 in the paper); head: global average pool, LN, linear.
    With ``gf=True`` stages 3 and 4 use the global filter with sizes ``gf_sizes``.
    ``mixer_factory(stage)`` (archbench's ``--mixer`` swap) builds each block's token mixer
    on (B, C, H, W) in place of gnConv.
    """

    def __init__(
        self,
        base_dim: int = 64,
        depths: Sequence[int] = (2, 3, 18, 2),
        orders: Sequence[int] = (2, 3, 4, 5),
        kernel_size: int = 7,
        gnconv_scale: float = DEFAULT_SCALE,
        gf: bool = False,
        gf_sizes: Sequence[Sequence[int]] = ((14, 8), (7, 4)),
        layer_scale_init: float = 1e-6,
        drop_path_rate: float = 0.0,
        num_classes: int = 1000,
        in_chans: int = 3,
        mixer_factory: Callable[[int], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        if len(depths) != 4 or len(orders) != 4:
            raise ValueError("depths and orders need one entry per stage (4)")
        if gf and len(gf_sizes) != 2:
            raise ValueError("gf_sizes needs one (h, w) per GF stage (stages 3 and 4)")
        dims = [base_dim * 2**i for i in range(4)]
        self.dims = dims
        self.num_classes = num_classes

        self.downsample_layers = nn.ModuleList()
        self.downsample_layers.append(
            nn.Sequential(nn.Conv2d(in_chans, dims[0], 4, stride=4), LayerNorm2d(dims[0]))
        )
        for i in range(3):
            self.downsample_layers.append(
                nn.Sequential(LayerNorm2d(dims[i]), nn.Conv2d(dims[i], dims[i + 1], 2, stride=2))
            )

        # stochastic depth decay rule, computed without tensors (builds on the meta device)
        total = sum(depths)
        rates = [drop_path_rate * j / (total - 1) if total > 1 else 0.0 for j in range(total)]
        self.stages = nn.ModuleList()
        cur = 0
        for i in range(4):
            gf_size = tuple(gf_sizes[i - 2]) if gf and i >= 2 else None
            self.stages.append(
                _make_stage(
                    i,
                    dims[i],
                    orders[i],
                    rates[cur : cur + depths[i]],
                    gf_size,
                    mixer_factory,
                    layer_scale_init=layer_scale_init,
                    kernel_size=kernel_size,
                    scale=gnconv_scale,
                )
            )
            cur += depths[i]

        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        return self.norm(x.mean((-2, -1)))  # global average pool, (B, C, H, W) -> (B, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def load_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a HorNet checkpoint (official release or our own) into ``model`` with strict keys.

    Accepts a raw state_dict or ``{"model": state_dict}`` (the release's format). Raises
    ``ValueError`` naming every missing and unexpected key, and every shape mismatch.
    """
    obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: not a state_dict (got {type(obj).__name__})")
    own = model.state_dict()
    missing = sorted(set(own) - set(obj))
    unexpected = sorted(set(obj) - set(own))
    shapes = sorted(
        f"{k}: checkpoint {tuple(obj[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(obj)
        if hasattr(obj[k], "shape") and tuple(obj[k].shape) != tuple(own[k].shape)
    )
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected}")
        if shapes:
            parts.append(f"shape mismatches {shapes}")
        raise ValueError(f"{path}: checkpoint does not match the model: " + "; ".join(parts))
    model.load_state_dict(obj, strict=True)
    return model
