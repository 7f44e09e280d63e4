"""Vision Transformer (Dosovitskiy et al., ICLR 2021, "An Image is Worth 16x16 Words").

Paper-faithful and state_dict-compatible with timm's ``vision_transformer`` (class-token
pooling, pre-norm blocks, no layer scale), so timm's weights load with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from archbench_layers import Mlp


class PatchEmbed(nn.Module):
    """Split the image into P×P patches and project each linearly (ViT eq. 1: x_p E).

    A P×P convolution with stride P is exactly the per-patch linear projection.
    """

    def __init__(self, img_size: int, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.img_size = img_size
        self.patch_size = patch_size
        self.grid_size = img_size // patch_size
        self.num_patches = self.grid_size**2
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)  # B, C, H/P, W/P
        return x.flatten(2).transpose(1, 2)  # B, N, C


class Attention(nn.Module):
    """Multi-head self-attention (Vaswani et al. eq. 1 per head; ViT eq. 2, MSA).

    softmax(QKᵀ/√d_k)V runs through ``F.scaled_dot_product_attention``, the fused kernel;
    archbench's FLOP counter has a handler for it.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each B, heads, N, head_dim
        x = F.scaled_dot_product_attention(q, k, v)
        x = x.transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Block(nn.Module):
    """Pre-norm encoder block: z' = MSA(LN(z)) + z; z = MLP(LN(z')) + z' (ViT eqs. 2, 3)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        qkv_bias: bool,
        attn: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        # ``attn``: another token mixer in place of MSA (archbench's --mixer swap).
        self.attn = attn if attn is not None else Attention(dim, num_heads, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """ViT: patch tokens plus a class token, learned position embedding, encoder, MLP head.

    The head reads the class token after the final LayerNorm (ViT eq. 4: y = LN(z_L^0)).
    ``mixer_factory`` (archbench's ``--mixer`` swap) builds each block's token mixer in
    place of MSA; with ``class_token=False`` there is no class token and the head reads the
    average of the patch tokens.
    """

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        mixer_factory: Callable[[], nn.Module] | None = None,
        class_token: bool = True,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.embed_dim = embed_dim
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        self.num_prefix_tokens = 1 if class_token else 0
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if class_token else None
        self.pos_embed = nn.Parameter(
            torch.zeros(1, self.patch_embed.num_patches + self.num_prefix_tokens, embed_dim)
        )
        self.blocks = nn.Sequential(
            *[
                Block(
                    embed_dim,
                    num_heads,
                    mlp_ratio,
                    qkv_bias,
                    attn=mixer_factory() if mixer_factory is not None else None,
                )
                for _ in range(depth)
            ]
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @property
    def num_tokens(self) -> int:
        """Tokens the encoder sees: the patches plus the class token."""
        return self.patch_embed.num_patches + self.num_prefix_tokens

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        if self.cls_token is not None:
            cls = self.cls_token.expand(x.shape[0], -1, -1)
            x = torch.cat((cls, x), dim=1)
        x = self.blocks(x + self.pos_embed)
        return self.norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)
        return self.head(x[:, 0] if self.cls_token is not None else x.mean(dim=1))
