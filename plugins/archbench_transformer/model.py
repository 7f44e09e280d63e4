"""The Transformer (Vaswani et al., NeurIPS 2017, "Attention Is All You Need").

Our own implementation in the paper's terms: an encoder-decoder of N post-norm layers,
``LayerNorm(x + Sublayer(x))`` (section 3.1), multi-head scaled dot-product attention
(section 3.2), position-wise feed-forward networks (section 3.3), shared source/target
embeddings tied to the pre-softmax projection (section 3.4) and sinusoidal positional
encodings (section 3.5).  ``TransformerEncoderClassifier`` is the encoder stack alone with
a mean-pooled linear classification head, for encoder-only comparisons.

Attention parameters are stored packed like ``torch.nn.MultiheadAttention``
(``in_proj_weight`` = [W^Q; W^K; W^V], ``out_proj`` = W^O), so the state dict of
:class:`MultiHeadAttention` loads into ``nn.MultiheadAttention`` and back unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: Longest sequence the sinusoidal table is built for (the encoding itself has no limit).
DEFAULT_MAX_LEN = 8192


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 attn_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Attention(Q, K, V) = softmax(QKᵀ / √d_k) V, written out (eq. 1).

    ``q``: (..., L, d_k), ``k``: (..., S, d_k), ``v``: (..., S, d_v); ``attn_mask`` is an
    additive float mask broadcastable to (..., L, S) (a large negative value where a key is
    hidden), as ``F.scaled_dot_product_attention`` takes it.
    """
    scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    if attn_mask is not None:
        scores = scores + attn_mask
    return torch.matmul(scores.softmax(dim=-1), v)


class ScaledDotProductAttention(nn.Module):
    """Eq. (1) as a module: the written-out form, or PyTorch's fused kernel when ``fused``."""

    def __init__(self, fused: bool = True) -> None:
        super().__init__()
        self.fused = fused

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.fused:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return scaled_dot_product_attention(q, k, v, attn_mask)


class MultiHeadAttention(nn.Module):
    """MultiHead(Q, K, V) = Concat(head_1..head_h) W^O, head_i = Attention(QW^Q_i, KW^K_i, VW^V_i)
    (section 3.2.2), with d_k = d_v = d_model / h.

    Self-attention (``key`` and ``value`` are ``query``) projects Q, K and V with one packed
    matmul; encoder-decoder attention projects Q from the decoder and K, V (packed) from the
    encoder output.  Biases are kept (as in ``nn.MultiheadAttention``).
    """

    def __init__(self, d_model: int, num_heads: int, fused_attention: bool = True) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} is not divisible by num_heads {num_heads}")
        self.d_model = d_model
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads
        # [W^Q; W^K; W^V] for all heads, (3 d_model, d_model), as nn.MultiheadAttention.
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * d_model))
        self.out_proj = nn.Linear(d_model, d_model)  # W^O
        self.attention = ScaledDotProductAttention(fused=fused_attention)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.in_proj_bias)
        nn.init.xavier_uniform_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, N, _ = x.shape
        return x.view(B, N, self.num_heads, self.head_dim).transpose(1, 2)  # B, h, N, d_k

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``query``: (B, L, d_model); ``key``/``value``: (B, S, d_model), default ``query``;
        ``attn_mask``: additive float mask broadcastable to (B, h, L, S)."""
        key = query if key is None else key
        value = key if value is None else value
        B, L, _ = query.shape
        d = self.d_model
        if key is query and value is query:  # self-attention: one packed projection
            qkv = F.linear(query, self.in_proj_weight, self.in_proj_bias)
            qkv = qkv.view(B, L, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)
        else:
            w, b = self.in_proj_weight, self.in_proj_bias
            q = self._split_heads(F.linear(query, w[:d], b[:d]))
            if key is value:  # encoder-decoder attention: K and V from the same memory
                S = key.shape[1]
                kv = F.linear(key, w[d:], b[d:])
                kv = kv.view(B, S, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
                k, v = kv.unbind(0)
            else:
                k = self._split_heads(F.linear(key, w[d : 2 * d], b[d : 2 * d]))
                v = self._split_heads(F.linear(value, w[2 * d :], b[2 * d :]))
        x = self.attention(q, k, v, attn_mask)  # B, h, L, d_v
        x = x.transpose(1, 2).reshape(B, L, d)  # Concat(head_1, ..., head_h)
        return self.out_proj(x)


class PositionwiseFeedForward(nn.Module):
    """FFN(x) = max(0, xW_1 + b_1)W_2 + b_2 (eq. 2), d_model -> d_ff -> d_model."""

    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.w_1 = nn.Linear(d_model, d_ff)
        self.w_2 = nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(F.relu(self.w_1(x), inplace=True))  # on a fresh tensor: no copy


class PositionalEncoding(nn.Module):
    """Sinusoidal positional encoding (section 3.5), added to the embeddings, then dropout:

    PE(pos, 2i) = sin(pos / 10000^(2i/d_model)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d_model)).

    The table is a non-persistent buffer for ``max_len`` positions (no parameters); any
    input up to that length uses its first rows.
    """

    def __init__(self, d_model: int, dropout: float = 0.1, max_len: int = DEFAULT_MAX_LEN) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
        div_term = torch.exp(
            torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model)
        )
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term[: d_model // 2])
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(x + self.pe[: x.shape[1]])


class EncoderLayer(nn.Module):
    """Encoder layer (section 3.1): self-attention and FFN sub-layers, each
    LayerNorm(x + Dropout(Sublayer(x))) (post-norm, residual dropout of section 5.4)."""

    def __init__(
        self, d_model: int, num_heads: int, d_ff: int, dropout: float, fused_attention: bool = True
    ) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads, fused_attention)
        self.norm1 = nn.LayerNorm(d_model)
        self.ffn = PositionwiseFeedForward(d_model, d_ff)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.norm1(x + self.dropout(self.self_attn(x, attn_mask=mask)))
        return self.norm2(x + self.dropout(self.ffn(x)))


class DecoderLayer(nn.Module):
    """Decoder layer (section 3.1): masked self-attention, encoder-decoder attention over the
    encoder output, and FFN; each sub-layer LayerNorm(x + Dropout(Sublayer(x)))."""

    def __init__(
        self, d_model: int, num_heads: int, d_ff: int, dropout: float, fused_attention: bool = True
    ) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads, fused_attention)
        self.norm1 = nn.LayerNorm(d_model)
        self.cross_attn = MultiHeadAttention(d_model, num_heads, fused_attention)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = PositionwiseFeedForward(d_model, d_ff)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        self_mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = self.norm1(x + self.dropout(self.self_attn(x, attn_mask=self_mask)))
        x = self.norm2(x + self.dropout(self.cross_attn(x, memory, memory, attn_mask=memory_mask)))
        return self.norm3(x + self.dropout(self.ffn(x)))


class Encoder(nn.Module):
    """A stack of N identical encoder layers."""

    def __init__(
        self,
        num_layers: int,
        d_model: int,
        num_heads: int,
        d_ff: int,
        dropout: float,
        fused_attention: bool = True,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [
                EncoderLayer(d_model, num_heads, d_ff, dropout, fused_attention)
                for _ in range(num_layers)
            ]
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, mask)
        return x


class Decoder(nn.Module):
    """A stack of N identical decoder layers."""

    def __init__(
        self,
        num_layers: int,
        d_model: int,
        num_heads: int,
        d_ff: int,
        dropout: float,
        fused_attention: bool = True,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [
                DecoderLayer(d_model, num_heads, d_ff, dropout, fused_attention)
                for _ in range(num_layers)
            ]
        )

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        self_mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, memory, self_mask, memory_mask)
        return x


def padding_mask(ids: torch.Tensor, pad_id: int, dtype: torch.dtype) -> torch.Tensor:
    """Additive key mask (B, 1, 1, S): 0 for real tokens, the dtype's minimum for ``pad_id``.

    A finite minimum rather than -inf keeps an all-padding row finite (uniform attention
    instead of NaN) and is identical for the written-out and the fused attention paths.
    """
    mask = torch.zeros(ids.shape, dtype=dtype, device=ids.device)
    mask = mask.masked_fill(ids == pad_id, torch.finfo(dtype).min)
    return mask[:, None, None, :]


def causal_mask(length: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Additive (L, L) mask hiding later positions from the decoder (section 3.2.3)."""
    hidden = torch.ones(length, length, dtype=torch.bool, device=device).triu(1)
    return torch.zeros(length, length, dtype=dtype, device=device).masked_fill(
        hidden, torch.finfo(dtype).min
    )


class Transformer(nn.Module):
    """The encoder-decoder Transformer (Figure 1): ``forward(src_ids, tgt_ids)`` returns the
    pre-softmax logits (B, T, vocab_size) for every target position.

    One embedding matrix is shared by the source and target embeddings and the pre-softmax
    linear transformation (no bias), and embeddings are multiplied by √d_model (section 3.4).
    Token ``pad_id`` is masked as a key in every attention.
    """

    def __init__(
        self,
        vocab_size: int = 37000,
        d_model: int = 512,
        d_ff: int = 2048,
        num_heads: int = 8,
        num_layers: int = 6,
        dropout: float = 0.1,
        pad_id: int = 0,
        fused_attention: bool = True,
        max_len: int = DEFAULT_MAX_LEN,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos_encoding = PositionalEncoding(d_model, dropout, max_len)
        self.encoder = Encoder(num_layers, d_model, num_heads, d_ff, dropout, fused_attention)
        self.decoder = Decoder(num_layers, d_model, num_heads, d_ff, dropout, fused_attention)
        nn.init.normal_(self.embed.weight, std=d_model**-0.5)

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        # Embeddings scaled by √d_model, plus the positional encoding (sections 3.4, 3.5).
        return self.pos_encoding(self.embed(ids) * math.sqrt(self.d_model))

    def encode(self, src_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder output (B, S, d_model) and the source padding mask."""
        x = self.embed_tokens(src_ids)
        src_mask = padding_mask(src_ids, self.pad_id, x.dtype)
        return self.encoder(x, src_mask), src_mask

    def decode(
        self, tgt_ids: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor
    ) -> torch.Tensor:
        """Logits (B, T, vocab_size) given the encoder output."""
        y = self.embed_tokens(tgt_ids)
        T = tgt_ids.shape[1]
        self_mask = causal_mask(T, y.dtype, y.device) + padding_mask(tgt_ids, self.pad_id, y.dtype)
        y = self.decoder(y, memory, self_mask, src_mask)
        return F.linear(y, self.embed.weight)  # pre-softmax projection, tied (section 3.4)

    def forward(self, src_ids: torch.Tensor, tgt_ids: torch.Tensor) -> torch.Tensor:
        memory, src_mask = self.encode(src_ids)
        return self.decode(tgt_ids, memory, src_mask)


class TransformerEncoderClassifier(nn.Module):
    """The Transformer's encoder stack as a sequence classifier: token embedding (×√d_model)
    + sinusoidal PE, N encoder layers, mean over the non-padding positions, linear head.

    ``forward(ids)`` takes (B, N) token ids and returns (B, num_classes) logits.
    """

    def __init__(
        self,
        vocab_size: int = 37000,
        d_model: int = 512,
        d_ff: int = 2048,
        num_heads: int = 8,
        num_layers: int = 6,
        dropout: float = 0.1,
        pad_id: int = 0,
        fused_attention: bool = True,
        num_classes: int = 1000,
        max_len: int = DEFAULT_MAX_LEN,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos_encoding = PositionalEncoding(d_model, dropout, max_len)
        self.encoder = Encoder(num_layers, d_model, num_heads, d_ff, dropout, fused_attention)
        self.head = nn.Linear(d_model, num_classes)
        nn.init.normal_(self.embed.weight, std=d_model**-0.5)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.pos_encoding(self.embed(ids) * math.sqrt(self.d_model))
        x = self.encoder(x, padding_mask(ids, self.pad_id, x.dtype))
        # Mean pool over real tokens (an all-padding row pools to zeros).
        keep = (ids != self.pad_id).unsqueeze(-1).to(x.dtype)
        pooled = (x * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)
        return self.head(pooled)


#: Our sub-module names -> ``nn.TransformerEncoderLayer`` / ``nn.TransformerDecoderLayer``'s.
_TORCH_LAYER_NAMES = {
    "ffn.w_1.": "linear1.",
    "ffn.w_2.": "linear2.",
    "cross_attn.": "multihead_attn.",
}


def torch_layer_state_dict(layer: EncoderLayer | DecoderLayer) -> dict[str, torch.Tensor]:
    """``layer``'s weights under the names of the equivalent ``nn.TransformerEncoderLayer``
    (or ``nn.TransformerDecoderLayer``) with ``norm_first=False``, ``activation="relu"``, so
    ``torch_layer.load_state_dict(torch_layer_state_dict(ours))`` makes the two compute the
    same function (used by the tests and the speed benchmark)."""
    out = {}
    for name, tensor in layer.state_dict().items():
        for ours, theirs in _TORCH_LAYER_NAMES.items():
            if name.startswith(ours):
                name = theirs + name[len(ours) :]
        out[name] = tensor
    return out
