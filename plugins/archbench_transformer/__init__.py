"""archbench plugin: the Transformer (Vaswani et al. 2017), registered under the ``archbench``
entry point.

The first token-sequence architecture: the encoder-decoder variants (``base``, ``big``, as in
the paper's Table 3) take ``(src_ids, tgt_ids)``, the encoder-only variants (``encoder_base``,
``encoder_big``, the default, so that ``archbench compare transformer vit`` sets an encoder
beside an image encoder) take ``ids`` and classify.

This module stays light (no torch import) so that ``archbench list`` answers fast; the
model lives in :mod:`archbench_transformer.model` and is imported when a model is built.
"""

from __future__ import annotations

from typing import Any

from archbench import Architecture, Field, ModelSpec, Schema, Variant, hookimpl
from archbench.core.schema import MAX_CLASSES, MAX_DEPTH, MAX_WIDTH
from archbench.formulas import msa_crossover_tokens, msa_macs

NAME = "transformer"
#: Longest sequence accepted; the sinusoidal table (section 3.5) is built this long.
MAX_SEQ_LEN = 8192
#: The paper's shared English-German BPE vocabulary ("about 37000 tokens", section 5.1).
VOCAB_SIZE = 37000


def _config(
    n: int, d_model: int, d_ff: int, heads: int, dropout: float, classes: int | None
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "vocab_size": VOCAB_SIZE,
        "d_model": d_model,
        "d_ff": d_ff,
        "num_heads": heads,
        "num_layers": n,
        "dropout": dropout,
        "pad_id": 0,
        "fused_attention": True,
    }
    if classes is not None:  # encoder-only: TransformerEncoderClassifier
        config["num_classes"] = classes
    return config


# --------------------------------------------------------------------------- config schema


def even_d_model(spec: ModelSpec) -> str | None:
    """The sinusoidal encoding (section 3.5) pairs sines and cosines: d_model must be even."""
    if spec.config["d_model"] % 2:
        return (f"d_model must be even for the sinusoidal positional encoding, got "
                f"{spec.config['d_model']}")
    return None


def pad_id_is_a_token(spec: ModelSpec) -> str | None:
    cfg = spec.config
    if cfg["pad_id"] >= cfg["vocab_size"]:
        return (f"pad_id {cfg['pad_id']} is not a token id below vocab_size "
                f"{cfg['vocab_size']}")
    return None


def param_estimate(spec: ModelSpec) -> float:
    """Parameters without building: the shared embedding, then per layer 4d² + 2·d·d_ff
    in the encoder and 8d² + 2·d·d_ff in the decoder, and the classifier's head."""
    cfg = spec.config
    d, ff, layers = cfg["d_model"], cfg["d_ff"], cfg["num_layers"]
    encoder = layers * (4 * d * d + 2 * d * ff)
    if _is_encoder_only(cfg):
        return cfg["vocab_size"] * d + encoder + d * cfg["num_classes"]
    return cfg["vocab_size"] * d + encoder + layers * (8 * d * d + 2 * d * ff)


SCHEMA = Schema(
    fields={  # seq_len: 1..max_seq_len, from the Architecture
        "vocab_size": Field(int, minimum=2, maximum=1 << 24),
        "d_model": Field(int, minimum=1, maximum=MAX_WIDTH, multiple_of="num_heads"),
        "d_ff": Field(int, minimum=1, maximum=1 << 20),
        "num_heads": Field(int, minimum=1, maximum=MAX_WIDTH),
        "num_layers": Field(int, minimum=1, maximum=MAX_DEPTH),
        "dropout": Field(float, minimum=0, below=1),
        "pad_id": Field(int, minimum=0),
        "fused_attention": Field(bool),
        "num_classes": Field(int, minimum=1, maximum=MAX_CLASSES),  # encoder-only variants
    },
    rules=(even_d_model, pad_id_is_a_token),
    params=param_estimate,
)

TRANSFORMER = Architecture(
    name=NAME,
    family="Transformer",
    paper="Vaswani et al. 2017, Attention Is All You Need (NeurIPS)",
    input_kind="tokens",
    default_variant="encoder_base",
    description="Encoder-decoder of post-norm MSA + FFN layers, sinusoidal PE, tied embeddings",
    variants={
        "base": Variant(
            _config(6, 512, 2048, 8, 0.1, None),
            seq_len=128,
            description="Transformer (base), Table 3: N=6, d=512, d_ff=2048, h=8 (enc-dec)",
        ),
        "big": Variant(
            _config(6, 1024, 4096, 16, 0.3, None),
            seq_len=128,
            description="Transformer (big), Table 3: N=6, d=1024, d_ff=4096, h=16 (enc-dec)",
        ),
        "encoder_base": Variant(
            _config(6, 512, 2048, 8, 0.1, 1000),
            seq_len=128,
            description="base encoder stack + mean pool + linear head",
        ),
        "encoder_big": Variant(
            _config(6, 1024, 4096, 16, 0.3, 1000),
            seq_len=128,
            description="big encoder stack + mean pool + linear head",
        ),
    },
    token_mixer_types=("MultiHeadAttention",),
    mlp_types=("PositionwiseFeedForward",),
    stage_modules=("encoder", "decoder"),  # --breakdown's stages (encoder-only: one)
    max_seq_len=MAX_SEQ_LEN,
    schema=SCHEMA,
)


def _is_encoder_only(config: Any) -> bool:
    return "num_classes" in config


@hookimpl
def archbench_architectures() -> list[Architecture]:
    return [TRANSFORMER]


@hookimpl
def archbench_build_model(spec: ModelSpec):
    if spec.arch.name != NAME:
        return None
    from archbench_transformer.model import Transformer, TransformerEncoderClassifier

    cls = TransformerEncoderClassifier if _is_encoder_only(spec.config) else Transformer
    return cls(**spec.config, max_len=spec.arch.max_seq_len or MAX_SEQ_LEN)


@hookimpl
def archbench_example_inputs(spec: ModelSpec, model: Any, batch_size: int):
    """Encoder-decoder variants: ``(src_ids, tgt_ids)``, both (B, seq_len) (target as long as
    the source). Encoder-only variants are left to the core's default ``(ids,)``."""
    if spec.arch.name != NAME or _is_encoder_only(spec.config):
        return None
    import torch

    gen = torch.Generator().manual_seed(0)
    shape = (batch_size, spec.seq_len)
    src = torch.randint(0, spec.config["vocab_size"], shape, generator=gen)
    tgt = torch.randint(0, spec.config["vocab_size"], shape, generator=gen)
    return src, tgt


def cross_attention_macs(n_q: int, n_kv: int, dim: int) -> int:
    """Encoder-decoder attention: 2·n_q·d² (W^Q on the n_q decoder positions and W^O)
    + 2·n_kv·d² (W^K, W^V on the n_kv encoder positions) + 2·n_q·n_kv·d (QKᵀ and AV).

    With n_q = n_kv = n it equals ``msa_macs(n, d)`` = 4nd² + 2n²d (Swin eq. 1).
    """
    return 2 * n_q * dim * dim + 2 * n_kv * dim * dim + 2 * n_q * n_kv * dim


def _attention_modules(model: Any) -> dict[str, list[str]]:
    """Names of the attention modules of each kind, in layer order."""
    kinds: dict[str, list[str]] = {"encoder_self": [], "decoder_self": [], "cross": []}
    for name, _ in model.named_modules():
        if name.startswith("encoder.layers.") and name.endswith(".self_attn"):
            kinds["encoder_self"].append(name)
        elif name.startswith("decoder.layers.") and name.endswith(".self_attn"):
            kinds["decoder_self"].append(name)
        elif name.startswith("decoder.layers.") and name.endswith(".cross_attn"):
            kinds["cross"].append(name)
    return kinds


#: The per-layer formula of each kind of attention, as the analysis details spell it.
_EQUATIONS = {
    "encoder_self": "4nd^2 + 2n^2d, n = source length (Swin eq. 1 / archbench msa_macs)",
    "decoder_self": "4nd^2 + 2n^2d, n = target length (the causal mask is an add; all n^2 "
    "scores are computed)",
    "cross": "2*n_q*d^2 (W^Q, W^O) + 2*n_kv*d^2 (W^K, W^V) + 2*n_q*n_kv*d (QK^T, AV), "
    "n_q = target length, n_kv = source length",
}


def _attention_layers(
    model: Any, by_module: Any, formula: dict[str, int]
) -> tuple[list[dict[str, Any]], dict[str, int], dict[str, int]]:
    """One row per attention module (formula beside fvcore's count), and per kind the formula
    total and the counted total."""
    layers: list[dict[str, Any]] = []
    sums: dict[str, int] = {}
    counted_sums: dict[str, int] = {}
    for kind, names in _attention_modules(model).items():
        sums[kind] = formula[kind] * len(names)
        counted_sums[kind] = sum(int(by_module.get(m, 0)) for m in names)
        for m in names:
            counted = int(by_module.get(m, 0))
            layers.append(
                {
                    "module": m,
                    "kind": kind,
                    "macs_formula": formula[kind],
                    "macs_counted": counted,
                    "ratio_counted_to_formula": counted / formula[kind] if formula[kind] else None,
                }
            )
    return layers, sums, counted_sums


@hookimpl
def archbench_analyze(ctx) -> dict[str, Any] | None:
    """Per-layer attention cost (Table 1: O(n²·d) self-attention) beside fvcore's count."""
    if ctx.spec.arch.name != NAME:
        return None
    cfg = ctx.spec.config
    d = cfg["d_model"]
    # Actual input lengths (batch 1): source, and target for the encoder-decoder.
    n_src = int(ctx.inputs[0].shape[-1])
    n_tgt = int(ctx.inputs[1].shape[-1]) if len(ctx.inputs) > 1 else None
    formula = {
        "encoder_self": msa_macs(n_src, d),
        "decoder_self": msa_macs(n_tgt, d) if n_tgt else 0,
        "cross": cross_attention_macs(n_tgt, n_src, d) if n_tgt else 0,
    }
    layers, sums, counted_sums = _attention_layers(ctx.model, ctx.flops.by_module, formula)
    total = sum(sums.values())
    counted_total = int(ctx.flops.macs_of_types(["MultiHeadAttention"]))
    n_quadratic = 2 * n_src * n_src * d  # the n^2 term of one encoder self-attention layer
    result: dict[str, Any] = {
        "mixer": "msa",
        "mixer_gmacs_formula": total / 1e9,
        "mixer_gmacs_as_msa": total / 1e9,
        "mixer_msa_saving": 1.0,  # it is global MSA
        "attn_gmacs_encoder_self": sums["encoder_self"] / 1e9,
        "attn_quadratic_share": n_quadratic / formula["encoder_self"],
    }
    if n_tgt:
        result["attn_gmacs_decoder_self"] = sums["decoder_self"] / 1e9
        result["attn_gmacs_cross"] = sums["cross"] / 1e9
    result["mixer_formula"] = {
        "equations": dict(_EQUATIONS),
        "d_model": d,
        "source_length": n_src,
        "target_length": n_tgt,
        "macs_per_layer": {k: v for k, v in formula.items() if v},
        "macs_total": {k: v for k, v in sums.items() if v},
        "macs_counted_total": {k: v for k, v in counted_sums.items() if v},
        "macs_counted_all_attention": counted_total,
        "crossover_tokens": msa_crossover_tokens(d),
        "crossover_note": (
            f"per layer, the 2n^2d score/value matmuls exceed the 4nd^2 projections when "
            f"n > 2d = {msa_crossover_tokens(d)} tokens (Table 1: self-attention is O(n^2 d))"
        ),
        "layers": layers,
        "notes": [
            "bias adds of the four projections are not in the formula (fvcore does not count "
            "them either)",
            "the 1/sqrt(d_k) scaling, the additive padding / causal mask and the softmax are "
            "outside the formula (the core's sdpa handler and fvcore's matmul count omit them)",
            "the causal mask hides half of the decoder self-attention scores, but all n^2 are "
            "computed, so the formula counts them all",
            "pad tokens are not removed: sequences are computed at full length",
        ],
    }
    return result
