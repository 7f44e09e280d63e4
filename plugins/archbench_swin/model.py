"""Swin Transformer (Liu et al., ICCV 2021, "Swin Transformer: Hierarchical Vision Transformer
using Shifted Windows", arXiv:2103.14030).

Paper-faithful and state_dict-compatible with timm's ``swin_transformer`` (timm >= 0.9 layout:
``layers.{i}.downsample`` sits at the *start* of stage ``i``, the classifier is ``head.fc``,
``relative_position_index`` and ``attn_mask`` are non-persistent buffers), so timm's weights
load with ``strict=True``.

Window attention runs through ``F.scaled_dot_product_attention`` with the relative position
bias (plus the shifted-window mask) as ``attn_mask``, so archbench's FLOP counter sees QKᵀ and
AV through the same sdpa handler as every other model.

Any input resolution the plugin accepts works: feature maps are zero-padded to a multiple of
the window (and to an even size before patch merging), as the official code does; where a
stage's resolution is <= the window, the window shrinks to that resolution and the shift is 0
(official code and timm).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from archbench_layers import Mlp
from archbench_swin.geometry import effective_window, padded_side, stage_resolutions
from archbench_swin.windows import (
    add_shift_mask,
    relative_position_index,
    shifted_window_mask,
    window_partition,
    window_reverse,
)


class PatchEmbed(nn.Module):
    """Patch partition into 4×4 patches + linear embedding (Sec. 3.1), then LayerNorm.

    A P×P convolution with stride P is exactly the per-patch linear layer. Output is NHWC.
    """

    def __init__(self, patch_size: int = 4, in_chans: int = 3, embed_dim: int = 96) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x).permute(0, 2, 3, 1)  # B, H/P, W/P, C
        return self.norm(x)


class WindowAttention(nn.Module):
    """W-MSA / SW-MSA: multi-head self-attention inside M×M windows with relative position
    bias, Attention(Q, K, V) = SoftMax(QKᵀ/√d + B)V (Sec. 3.2, Eq. 4).

    Cost per layer on hw tokens, Eq. (2): 4hwC² (qkv and output projections, ``qkv`` and
    ``proj``) + 2M²hwC (QKᵀ and AV inside the windows, counted through sdpa).
    """

    def __init__(self, dim: int, num_heads: int, window_size: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.window_size = window_size
        self.window_area = window_size * window_size
        # B is taken from a (2M-1)² × heads table (Sec. 3.2).
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1) ** 2, num_heads)
        )
        self.register_buffer(
            "relative_position_index", relative_position_index(window_size), persistent=False
        )
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def relative_position_bias(self) -> torch.Tensor:
        """(heads, M², M²) bias B gathered from the table."""
        n = self.window_area
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, -1).permute(2, 0, 1)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, batch: int = 1
    ) -> torch.Tensor:
        """``x``: (batch * nW, M², C) windows; ``mask``: (nW, M², M²) shift mask or None."""
        B_, N, C = x.shape
        qkv = self.qkv(x).view(B_, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each B_, heads, N, head_dim
        attn_mask = self.relative_position_bias().unsqueeze(0)  # 1, heads, N, N
        if mask is not None:  # SW-MSA: bias + region mask, (batch * nW, heads, N, N)
            attn_mask = add_shift_mask(attn_mask, mask, batch)
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask.to(q.dtype))
        x = x.transpose(1, 2).reshape(B_, N, C)
        return self.proj(x)


def shifted_window_attention(
    x: torch.Tensor,
    attn: WindowAttention,
    window_size: int,
    shift_size: int,
    attn_mask: torch.Tensor | None,
    mask_resolution: int,
) -> torch.Tensor:
    """W-MSA (``shift_size`` 0) or SW-MSA on a (B, H, W, C) map (Sec. 3.2): zero-pad to a
    multiple of the window (official code), cyclic shift, window partition, window attention
    with the shift mask, window reverse, shift back, crop. ``attn_mask`` is the mask
    precomputed for a padded ``mask_resolution``-sided map; other sizes get their own."""
    B, H, W, C = x.shape
    # Plain ints, so that tracing (fvcore) records no size arithmetic ops.
    B, H, W = int(B), int(H), int(W)
    M, s = window_size, shift_size
    Hp, Wp = padded_side(H, M), padded_side(W, M)
    if (Hp, Wp) != (H, W):
        x = F.pad(x, (0, 0, 0, Wp - W, 0, Hp - H))
    mask = None
    if s:
        x = torch.roll(x, shifts=(-s, -s), dims=(1, 2))
        if (Hp, Wp) == (mask_resolution,) * 2 and attn_mask is not None:
            mask = attn_mask  # precomputed for the built resolution
        else:
            mask = shifted_window_mask(Hp, Wp, M, s).to(x.device)
    windows = attn(window_partition(x, M), mask=mask, batch=B)
    x = window_reverse(windows, M, Hp, Wp)
    if s:
        x = torch.roll(x, shifts=(s, s), dims=(1, 2))
    if (Hp, Wp) != (H, W):
        x = x[:, :H, :W, :]
    return x


class WindowMSA(nn.Module):
    """The whole W-MSA / SW-MSA layer on a (B, H, W, C) map: window partition, window
    attention (:class:`WindowAttention`, Eq. 4), window reverse; with ``shift_size`` > 0 the
    cyclic shift and its mask (SW-MSA). What a Swin block calls its (S)W-MSA, alone, for
    ``archbench mixers`` and ``--mixer`` swaps."""

    def __init__(
        self, dim: int, num_heads: int, window_size: int, shift_size: int, resolution: int
    ) -> None:
        super().__init__()
        self.window_size, self.shift_size = effective_window(resolution, window_size, shift_size)
        self.attn = WindowAttention(dim, num_heads, self.window_size)
        self.padded_resolution = padded_side(resolution, self.window_size)
        mask = (
            shifted_window_mask(
                self.padded_resolution, self.padded_resolution, self.window_size, self.shift_size
            )
            if self.shift_size
            else None
        )
        self.register_buffer("attn_mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return shifted_window_attention(
            x, self.attn, self.window_size, self.shift_size, self.attn_mask, self.padded_resolution
        )


class SwinTransformerBlock(nn.Module):
    """One Swin block, Eq. (3): ẑ = (S)W-MSA(LN(z)) + z; z = MLP(LN(ẑ)) + ẑ.

    ``shift_size`` 0 gives W-MSA; floor(M/2) gives SW-MSA via a cyclic shift
    (``torch.roll``) and the precomputed mask (Sec. 3.2, "efficient batch computation").
    """

    def __init__(
        self,
        dim: int,
        input_resolution: int,
        num_heads: int,
        window_size: int = 7,
        shift_size: int = 0,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        mixer: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.input_resolution = input_resolution
        self.window_size, self.shift_size = effective_window(
            input_resolution, window_size, shift_size
        )
        self.norm1 = nn.LayerNorm(dim)
        # ``mixer`` (archbench's --mixer swap): a token mixer on the (B, H, W, C) map that
        # replaces the whole (S)W-MSA layer.
        self.swapped = mixer is not None
        self.attn = (
            mixer
            if mixer is not None
            else WindowAttention(dim, num_heads, self.window_size, qkv_bias)
        )
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.padded_resolution = self.padded(input_resolution)
        padded = self.padded_resolution
        mask = (
            shifted_window_mask(padded, padded, self.window_size, self.shift_size)
            if self.shift_size and not self.swapped
            else None
        )
        self.register_buffer("attn_mask", mask, persistent=False)

    def padded(self, size: int) -> int:
        """``size`` rounded up to a multiple of the window."""
        return padded_side(size, self.window_size)

    def _attn(self, x: torch.Tensor) -> torch.Tensor:
        if self.swapped:
            return self.attn(x)
        return shifted_window_attention(
            x, self.attn, self.window_size, self.shift_size, self.attn_mask, self.padded_resolution
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (B, H, W, C)."""
        x = x + self._attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """Concatenate each 2×2 group of neighbouring patches (4C), LayerNorm, linear 4C -> 2C
    without bias (Sec. 3.1). Odd sizes are zero-padded to even first (official code, timm)."""

    def __init__(self, dim: int, out_dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim
        self.out_dim = out_dim or 2 * dim
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, self.out_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        if H % 2 or W % 2:
            x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))
            H, W = H + H % 2, W + W % 2
        # Channel order x[0::2,0::2], x[1::2,0::2], x[0::2,1::2], x[1::2,1::2] (official code).
        x = x.reshape(B, H // 2, 2, W // 2, 2, C).permute(0, 1, 3, 4, 2, 5).flatten(3)
        return self.reduction(self.norm(x))


class SwinTransformerStage(nn.Module):
    """One stage: optional patch merging (at the start, timm's layout), then ``depth`` blocks
    alternating W-MSA and SW-MSA (shift floor(M/2)) (Sec. 3.1-3.2, Fig. 3)."""

    def __init__(
        self,
        dim: int,
        out_dim: int,
        input_resolution: int,
        depth: int,
        num_heads: int,
        window_size: int = 7,
        downsample: bool = True,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        mixer_factory: Callable[[], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.input_resolution = input_resolution
        self.output_resolution = (input_resolution + 1) // 2 if downsample else input_resolution
        self.downsample = PatchMerging(dim, out_dim) if downsample else nn.Identity()
        self.blocks = nn.Sequential(
            *[
                SwinTransformerBlock(
                    out_dim,
                    self.output_resolution,
                    num_heads,
                    window_size,
                    shift_size=0 if i % 2 == 0 else window_size // 2,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias,
                    mixer=mixer_factory() if mixer_factory is not None else None,
                )
                for i in range(depth)
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


#: The paper's name for a stage (Fig. 3, official code).
BasicLayer = SwinTransformerStage


class ClassifierHead(nn.Module):
    """Global average pool over H, W, then a linear classifier (``head.fc``, timm's key)."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean(dim=(1, 2)))


class SwinTransformer(nn.Module):
    """Swin Transformer: patch embedding, four stages of Swin blocks with patch merging
    between them (C, 2C, 4C, 8C at strides 4, 8, 16, 32), final LayerNorm, average pool,
    linear head (Sec. 3.1, Fig. 3a; Table 1 / Sec. 3.3 for the variants).

    ``mixer_factory(stage, dim, heads, resolution)`` (archbench's ``--mixer`` swap) builds
    each block's token mixer on the (B, H, W, C) map in place of (S)W-MSA."""

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 4,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        mixer_factory: Callable[[int, int, int, int], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError(
                f"depths {tuple(depths)} and num_heads {tuple(num_heads)} differ in length"
            )
        self.num_classes = num_classes
        self.num_layers = len(depths)
        self.embed_dim = embed_dim
        self.num_features = embed_dim * 2 ** (self.num_layers - 1)
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        grid = img_size // patch_size
        self.resolutions = stage_resolutions(grid, self.num_layers)
        stages = []
        for i in range(self.num_layers):
            in_dim = embed_dim * 2 ** max(i - 1, 0)
            stages.append(
                SwinTransformerStage(
                    dim=in_dim,
                    out_dim=embed_dim * 2**i,
                    input_resolution=self.resolutions[max(i - 1, 0)],
                    depth=depths[i],
                    num_heads=num_heads[i],
                    window_size=window_size,
                    downsample=i > 0,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias,
                    mixer_factory=None
                    if mixer_factory is None
                    else (
                        lambda i=i: mixer_factory(
                            i, embed_dim * 2**i, num_heads[i], self.resolutions[i]
                        )
                    ),
                )
            )
        self.layers = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(self.num_features)
        self.head = ClassifierHead(self.num_features, num_classes)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = self.layers(x)
        return self.norm(x)  # B, H/32, W/32, 8C

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))
