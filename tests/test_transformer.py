"""Tests of the ``transformer`` plugin (Vaswani et al. 2017)."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import archbench_transformer as plugin
from archbench import ModelSpec, UsageError
from archbench.core.schema import check_spec
from archbench.formulas import msa_crossover_tokens, msa_macs
from archbench.measure.counting import CORE_HANDLERS, AnalysisContext
from archbench_transformer import model as M

ARCH = plugin.TRANSFORMER
TINY = {"d_model": 32, "d_ff": 64, "num_heads": 4, "num_layers": 2, "vocab_size": 101}


def make_spec(variant: str = "base", seq_len: int | None = None, **overrides) -> ModelSpec:
    var = ARCH.variants[variant]
    config = {**var.config, **overrides}
    return ModelSpec(
        arch=ARCH,
        variant=variant,
        config=config,
        seq_len=var.seq_len if seq_len is None else seq_len,
        overrides=overrides,
    )


def tiny(variant: str = "base", fused: bool = True, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    spec = make_spec(variant, **TINY, fused_attention=fused)
    return plugin.archbench_build_model(spec).eval()


# --- registration and the light __init__ -------------------------------------------------


def test_architecture_registered():
    (arch,) = plugin.archbench_architectures()
    assert arch.name == "transformer" and arch.input_kind == "tokens"
    assert arch.default_variant == "encoder_base"
    assert set(arch.variants) == {"base", "big", "encoder_base", "encoder_big"}
    assert arch.max_seq_len == 8192
    for var in arch.variants.values():
        assert var.seq_len == 128 and var.img_size is None
        assert var.config["vocab_size"] == 37000
    for name in (*arch.token_mixer_types, *arch.mlp_types):
        assert hasattr(M, name)


def test_init_does_not_import_torch():
    code = "import sys, archbench_transformer; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_hooks_ignore_other_architectures():
    other = make_spec().replace(arch=plugin.Architecture(**{**ARCH.__dict__, "name": "vit"}))
    assert plugin.archbench_build_model(other) is None
    assert plugin.archbench_example_inputs(other, None, 1) is None


# --- parameters (Table 3) -------------------------------------------------------------


def _params_on_meta(variant: str) -> int:
    with torch.device("meta"):
        model = plugin.archbench_build_model(make_spec(variant))
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("variant", "paper"), [("base", 65e6), ("big", 213e6)])
def test_params_match_table3(variant, paper):
    n = _params_on_meta(variant)
    assert abs(n - paper) / paper < 0.03, n


@pytest.mark.parametrize("variant", ["base", "big", "encoder_base", "encoder_big"])
def test_params_exact_breakdown(variant):
    """Shared embedding V·d (counted once: tied to the pre-softmax projection, no bias),
    N encoder layers (1 MHA + FFN + 2 LN), N decoder layers (2 MHA + FFN + 3 LN)."""
    cfg = ARCH.variants[variant].config
    v, d, f, n = cfg["vocab_size"], cfg["d_model"], cfg["d_ff"], cfg["num_layers"]
    mha = 4 * (d * d + d)
    ffn = d * f + f + f * d + d
    ln = 2 * d
    expected = v * d + n * (mha + ffn + 2 * ln)
    if "num_classes" in cfg:
        expected += d * cfg["num_classes"] + cfg["num_classes"]
    else:
        expected += n * (2 * mha + ffn + 3 * ln)
    assert _params_on_meta(variant) == expected


def test_embeddings_and_projection_share_one_matrix():
    model = tiny("base")
    names = [n for n, _ in model.named_parameters()]
    assert sum("embed" in n for n in names) == 1
    src = torch.randint(1, 101, (2, 5))
    tgt = torch.randint(1, 101, (2, 4))
    with torch.no_grad():
        model.embed.weight[7].zero_()
        logits = model(src, tgt)
    assert torch.all(logits[..., 7] == 0)  # the projection reads the same (zeroed) row


# --- building, meta device, inputs ----------------------------------------------------------


@pytest.mark.parametrize("variant", ["base", "big", "encoder_base", "encoder_big"])
def test_builds_and_runs_on_meta(variant):
    spec = make_spec(variant)
    inputs = plugin.archbench_example_inputs(spec, None, 2) or (
        torch.randint(0, 37000, (2, spec.seq_len)),
    )
    with torch.device("meta"):
        model = plugin.archbench_build_model(spec).eval()
    out = model(*(x.to("meta") for x in inputs))
    assert out.device.type == "meta"
    cfg = spec.config
    expected = (2, cfg["num_classes"]) if "num_classes" in cfg else (2, 128, cfg["vocab_size"])
    assert tuple(out.shape) == expected


def test_flop_counter_mode_on_meta_sees_attention():
    with torch.device("meta"):
        model = M.Transformer(**TINY).eval()
    src = torch.randint(0, 101, (1, 16), device="meta")
    mode = FlopCounterMode(display=False)
    with mode, torch.no_grad():
        model(src, src)
    assert mode.get_total_flops() > 0


def test_example_inputs():
    spec = make_spec("base", seq_len=20)
    src, tgt = plugin.archbench_example_inputs(spec, None, 3)
    assert src.shape == tgt.shape == (3, 20) and src.dtype == torch.long
    assert int(src.max()) < 37000 and int(src.min()) >= 0
    assert plugin.archbench_example_inputs(make_spec("encoder_base"), None, 3) is None


@pytest.mark.parametrize("variant", ["base", "encoder_base"])
def test_forward_shapes_and_finite(variant):
    model = tiny(variant)
    ids = torch.randint(0, 101, (2, 9))
    ids[:, -3:] = 0  # padding
    out = model(ids, ids[:, :7]) if variant == "base" else model(ids)
    assert out.shape == ((2, 7, 101) if variant == "base" else (2, 1000))
    assert torch.isfinite(out).all()


# --- attention -----------------------------------------------------------------------------


def test_attention_paths_agree_function():
    q, k, v = torch.randn(2, 4, 7, 16), torch.randn(2, 4, 9, 16), torch.randn(2, 4, 9, 16)
    mask = M.padding_mask(torch.tensor([[1] * 9, [1] * 6 + [0] * 3]), 0, torch.float32)
    written = M.scaled_dot_product_attention(q, k, v, mask)
    fused = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(written, fused, atol=1e-5, rtol=1e-5)
    # Eq. (1) literally, per head.
    ref = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(16) + mask, dim=-1) @ v
    torch.testing.assert_close(written, ref)


@pytest.mark.parametrize("variant", ["base", "encoder_base"])
def test_attention_paths_agree_whole_model(variant):
    fused, written = tiny(variant, fused=True), tiny(variant, fused=False)
    written.load_state_dict(fused.state_dict())
    ids = torch.randint(1, 101, (2, 12))
    ids[1, 8:] = 0
    args = (ids, ids[:, :10]) if variant == "base" else (ids,)
    with torch.no_grad():
        torch.testing.assert_close(fused(*args), written(*args), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("fused", [True, False])
def test_mha_matches_torch_multihead_attention(fused):
    torch.manual_seed(0)
    ours = M.MultiHeadAttention(32, 4, fused_attention=fused).eval()
    theirs = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    theirs.load_state_dict(ours.state_dict())  # same names: in_proj_weight/bias, out_proj
    x, mem = torch.randn(2, 7, 32), torch.randn(2, 11, 32)
    key_pad = torch.zeros(2, 11, dtype=torch.bool)
    key_pad[1, 8:] = True
    ids = (~key_pad).long()  # pad id 0 where masked
    with torch.no_grad():
        # Self-attention (packed projection).
        torch.testing.assert_close(ours(x), theirs(x, x, x, need_weights=False)[0])
        # Encoder-decoder attention with a key padding mask.
        got = ours(x, mem, mem, attn_mask=M.padding_mask(ids, 0, x.dtype))
        want = theirs(x, mem, mem, key_padding_mask=key_pad, need_weights=False)[0]
        torch.testing.assert_close(got, want)
        # Separate key and value tensors.
        val = torch.randn(2, 11, 32)
        torch.testing.assert_close(ours(x, mem, val), theirs(x, mem, val, need_weights=False)[0])


def test_encoder_layer_matches_torch():
    torch.manual_seed(0)
    ours = M.EncoderLayer(32, 4, 64, 0.1).eval()
    theirs = nn.TransformerEncoderLayer(32, 4, 64, 0.1, batch_first=True).eval()
    theirs.load_state_dict(M.torch_layer_state_dict(ours))
    x = torch.randn(2, 9, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-5)


def test_decoder_layer_matches_torch():
    torch.manual_seed(0)
    ours = M.DecoderLayer(32, 4, 64, 0.1).eval()
    theirs = nn.TransformerDecoderLayer(32, 4, 64, 0.1, batch_first=True).eval()
    theirs.load_state_dict(M.torch_layer_state_dict(ours))
    y, mem = torch.randn(2, 6, 32), torch.randn(2, 9, 32)
    causal = M.causal_mask(6, y.dtype, y.device)
    with torch.no_grad():
        got = ours(y, mem, self_mask=causal)
        want = theirs(y, mem, tgt_mask=nn.Transformer.generate_square_subsequent_mask(6))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fused", [True, False])
def test_decoder_is_causal(fused):
    model = tiny("base", fused=fused)
    src = torch.randint(1, 101, (1, 8))
    tgt = torch.randint(1, 101, (1, 6))
    tgt2 = tgt.clone()
    tgt2[0, 4:] = torch.randint(1, 101, (2,))
    with torch.no_grad():
        a, b = model(src, tgt), model(src, tgt2)
    torch.testing.assert_close(a[:, :4], b[:, :4], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fused", [True, False])
def test_source_padding_is_masked(fused):
    """Appending pad tokens to the source changes nothing: pads are masked as keys."""
    model = tiny("base", fused=fused)
    src = torch.randint(1, 101, (1, 8))
    tgt = torch.randint(1, 101, (1, 5))
    padded = torch.cat([src, torch.zeros(1, 4, dtype=torch.long)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(src, tgt), model(padded, tgt), atol=1e-5, rtol=1e-5)


def test_classifier_ignores_padding():
    model = tiny("encoder_base")
    ids = torch.randint(1, 101, (1, 8))
    padded = torch.cat([ids, torch.zeros(1, 5, dtype=torch.long)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(ids), model(padded), atol=1e-5, rtol=1e-5)


def test_positional_encoding_is_sinusoidal():
    pe = M.PositionalEncoding(16, dropout=0.0, max_len=50).pe
    pos, i = 7, 3
    angle = pos / 10000 ** (2 * i / 16)
    assert pe[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
    assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    assert list(M.PositionalEncoding(16).parameters()) == []


# --- complexity hook ------------------------------------------------------------------------


def _analyze(variant: str, fused: bool, inputs: tuple[torch.Tensor, ...]) -> dict:
    spec = make_spec(variant, **TINY, fused_attention=fused)
    model = plugin.archbench_build_model(spec).eval()
    ctx = AnalysisContext(spec=spec, model=model, inputs=inputs, handlers=CORE_HANDLERS)
    return plugin.archbench_analyze(ctx), ctx


@pytest.mark.parametrize("fused", [True, False])
def test_attention_formula_matches_fvcore_encoder_decoder(fused):
    n_src, n_tgt, d = 40, 24, TINY["d_model"]
    src = torch.randint(1, 101, (1, n_src))
    tgt = torch.randint(1, 101, (1, n_tgt))
    result, ctx = _analyze("base", fused, (src, tgt))
    details = result["mixer_formula"]
    cross = 2 * n_tgt * d * d + 2 * n_src * d * d + 2 * n_tgt * n_src * d  # written out
    assert details["macs_per_layer"] == {
        "encoder_self": msa_macs(n_src, d),
        "decoder_self": msa_macs(n_tgt, d),
        "cross": cross,
    }
    layers = details["layers"]
    assert len(layers) == 3 * TINY["num_layers"]
    for layer in layers:  # per layer, each kind
        assert layer["macs_counted"] == pytest.approx(layer["macs_formula"], rel=0.01)
    by_kind = {"encoder_self": 0, "decoder_self": 0, "cross": 0}
    for layer in layers:
        by_kind[layer["kind"]] += layer["macs_counted"]
    assert by_kind["cross"] == pytest.approx(cross * TINY["num_layers"], rel=0.01)
    total_counted = ctx.flops.macs_of_types(["MultiHeadAttention"])
    assert total_counted == pytest.approx(result["mixer_gmacs_formula"] * 1e9, rel=0.01)
    assert result["mixer_gmacs_as_msa"] == result["mixer_gmacs_formula"]
    assert result["mixer"] == "msa"
    parts = ("attn_gmacs_encoder_self", "attn_gmacs_decoder_self", "attn_gmacs_cross")
    assert sum(result[k] for k in parts) == pytest.approx(result["mixer_gmacs_formula"])
    assert details["crossover_tokens"] == msa_crossover_tokens(d) == 2 * d
    if fused:
        assert ctx.flops.by_operator["scaled_dot_product_attention"] > 0  # core's handler
    else:
        assert ctx.flops.by_operator["matmul"] > 0  # fvcore's own matmul count
        assert "scaled_dot_product_attention" not in ctx.flops.by_operator


@pytest.mark.parametrize("fused", [True, False])
def test_attention_formula_matches_fvcore_encoder_only(fused):
    n = 30
    result, ctx = _analyze("encoder_base", fused, (torch.randint(0, 101, (1, n)),))
    expected = msa_macs(n, TINY["d_model"]) * TINY["num_layers"]
    assert result["mixer_gmacs_formula"] * 1e9 == expected
    assert ctx.flops.macs_of_types(["MultiHeadAttention"]) == pytest.approx(expected, rel=0.01)
    assert "attn_gmacs_cross" not in result


def test_quadratic_term_overtakes_projections_above_2d():
    d = 512
    n = msa_crossover_tokens(d)
    assert 2 * n * n * d == 4 * n * d * d  # equal at n = 2d
    assert 2 * (n + 1) ** 2 * d > 4 * (n + 1) * d * d
    # Quadratic growth: doubling n far above 2d nearly quadruples the cost.
    assert msa_macs(8 * n, d) / msa_macs(4 * n, d) > 3.5


def test_analyze_ignores_other_architectures():
    spec = make_spec().replace(arch=plugin.Architecture(**{**ARCH.__dict__, "name": "vit"}))
    ctx = AnalysisContext(spec=spec, model=nn.Identity(), inputs=(), handlers={})
    assert plugin.archbench_analyze(ctx) is None


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seq_len", "overrides", "message"),
    [
        (0, {}, "sequence length must be at least 1, got 0"),
        (8193, {}, "sequence length must be at most 8192, got 8193"),
        (128, {"vocab_size": 1}, "vocab_size must be at least 2, got 1"),
        (128, {"num_heads": 7}, "d_model 512 is not divisible by num_heads 7"),
        (128, {"num_layers": 0}, "num_layers must be at least 1, got 0"),
        (128, {"dropout": 1.0}, "dropout must be less than 1, got 1.0"),
        (128, {"d_model": 515, "num_heads": 5}, "d_model must be even"),
        (128, {"fused_attention": 1}, "fused_attention must be true or false, got 1"),
        (128, {"num_layers": 500, "d_model": 16384, "num_heads": 16}, "billion parameters"),
        (128, {"pad_id": 37000}, "pad_id 37000 is not a token id below vocab_size 37000"),
    ],
)
def test_validate_rejects(seq_len, overrides, message):
    with pytest.raises(UsageError) as err:
        check_spec(make_spec("base", seq_len=seq_len, **overrides))
    text = str(err.value)
    assert message in text and "\n" not in text
    assert text.startswith("transformer:base")


def test_validate_rejects_bad_num_classes():
    with pytest.raises(UsageError, match="num_classes must be at least 1"):
        check_spec(make_spec("encoder_base", num_classes=0))


@pytest.mark.parametrize("variant", ["base", "big", "encoder_base", "encoder_big"])
@pytest.mark.parametrize("seq_len", [1, 128, 8192])
def test_validate_accepts(variant, seq_len):
    check_spec(make_spec(variant, seq_len=seq_len))


def test_max_seq_len_runs():
    model = tiny("encoder_base")
    with torch.no_grad():
        out = model(torch.randint(1, 101, (1, ARCH.max_seq_len)))
    assert out.shape == (1, 1000)
