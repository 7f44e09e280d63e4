"""The Swin plugin: timm-compatible weights, the paper's Table 1 params and GMACs, eqs. (1)-(2)
against fvcore's count of the WindowAttention modules, and the config schema's errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import archbench_swin
from archbench import ModelSpec, UsageError
from archbench.core.schema import check_spec
from archbench.measure.counting import CORE_HANDLERS, AnalysisContext, count_flops
from archbench_swin import SWIN


def make_spec(variant: str = "tiny", img_size: int | None = None, **overrides) -> ModelSpec:
    base = SWIN.variants[variant]
    return ModelSpec(
        arch=SWIN,
        variant=variant,
        config={**base.config, **overrides},
        img_size=img_size or base.img_size,
        overrides=overrides,
    )


def handlers(spec: ModelSpec) -> dict:
    return {**CORE_HANDLERS, **(archbench_swin.archbench_flop_handlers(spec) or {})}


def context(spec: ModelSpec) -> AnalysisContext:
    """What the core builds for ``archbench_analyze``: model, batch-1 inputs, handlers."""
    torch.manual_seed(0)
    check_spec(spec)
    model = archbench_swin.archbench_build_model(spec, None).eval()
    inputs = (torch.randn(1, 3, spec.img_size, spec.img_size),)
    return AnalysisContext(spec, model, inputs, handlers(spec))


@pytest.fixture(scope="module")
def tiny_ctx() -> AnalysisContext:
    return context(make_spec("tiny"))


# -- registration -------------------------------------------------------------------------


def test_registration_is_light_and_complete():
    code = (
        "import sys, archbench_swin; "
        "assert 'torch' not in sys.modules, 'archbench_swin imports torch'; "
        "print(sorted(archbench_swin.SWIN.variants))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert archbench_swin.archbench_architectures() == [SWIN]
    assert set(SWIN.variants) == {"tiny", "small", "base", "large", "base_384", "large_384"}
    assert SWIN.default_variant == "tiny"
    assert SWIN.token_mixer_types == ("WindowAttention",)
    assert SWIN.variants["base_384"].config["window_size"] == 12
    assert SWIN.variants["base_384"].img_size == 384


def test_hooks_ignore_other_architectures():
    import dataclasses

    other = make_spec().replace(arch=dataclasses.replace(SWIN, name="not-swin"))
    assert archbench_swin.archbench_build_model(other, None) is None
    assert archbench_swin.archbench_flop_handlers(other) is None


# -- timm compatibility -------------------------------------------------------------------


def _assert_matches_timm(reference: torch.nn.Module, ours: torch.nn.Module, img: int) -> None:
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, img, img)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), atol=1e-4, rtol=1e-4)


def test_timm_swin_tiny_weights_load_strict_and_logits_agree():
    import timm

    torch.manual_seed(0)
    reference = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False).eval()
    ours = archbench_swin.archbench_build_model(make_spec("tiny"), None).eval()
    _assert_matches_timm(reference, ours, 224)


@pytest.mark.parametrize(
    ("img", "window", "dims"),
    [
        (384, 12, dict(embed_dim=128, num_heads=(4, 8, 16, 32))),  # Swin-B/384 widths
        (56, 7, dict(embed_dim=32, num_heads=(1, 2, 4, 8))),  # 14->7->4: odd merge, shrunk windows
    ],
)
def test_timm_reduced_depth_configs_agree(img, window, dims):
    """Same timm class, reduced depth (the full Swin-B/384 is slow on 2 cores)."""
    from timm.models.swin_transformer import SwinTransformer as TimmSwin

    from archbench_swin.model import SwinTransformer

    kwargs = dict(img_size=img, window_size=window, depths=(2, 2, 2, 2), **dims)
    torch.manual_seed(0)
    reference = TimmSwin(**kwargs).eval()
    ours = SwinTransformer(**kwargs).eval()
    _assert_matches_timm(reference, ours, img)


# -- the paper's Table 1 ------------------------------------------------------------------


def test_swin_t_params_and_gmacs(tiny_ctx):
    params = sum(p.numel() for p in tiny_ctx.model.parameters())
    assert params == 28_288_354
    assert tiny_ctx.flops.total / 1e9 == pytest.approx(4.51, abs=0.005)  # published 4.5G
    assert not set(tiny_ctx.flops.unsupported) - {"aten::add", "aten::gelu", "aten::mean"}


@pytest.mark.slow
def test_swin_b_384_gmacs():
    spec = make_spec("base_384")
    model = archbench_swin.archbench_build_model(spec, None).eval()
    inputs = (torch.randn(1, 3, 384, 384),)
    gmacs = count_flops(model, inputs, handlers(spec)).total / 1e9
    assert 47.1 <= gmacs <= 47.2  # published 47.0G
    assert sum(p.numel() for p in model.parameters()) == 87_903_584  # published 88M


# -- eqs. (1) and (2) ---------------------------------------------------------------------


def test_analyze_columns_and_eq2_matches_counted_window_attention(tiny_ctx):
    columns = archbench_swin.archbench_analyze(tiny_ctx)
    assert columns["mixer"] == "w-msa"
    counted = tiny_ctx.flops.macs_of_types(SWIN.token_mixer_types) / 1e9
    assert columns["mixer_gmacs_formula"] == pytest.approx(counted, rel=0.01)
    assert columns["mixer_gmacs_as_wmsa"] == columns["mixer_gmacs_formula"]
    assert columns["mixer_msa_saving"] == pytest.approx(
        columns["mixer_gmacs_as_msa"] / columns["mixer_gmacs_formula"]
    )
    assert columns["mixer_msa_saving"] > 1
    formula = columns["mixer_formula"]
    assert [s["resolution"] for s in formula["stages"]] == [56, 28, 14, 7]
    assert [s["window"] for s in formula["stages"]] == [7, 7, 7, 7]
    assert [s["shift"] for s in formula["stages"]] == [3, 3, 3, 0]
    last = formula["stages"][-1]  # a 7x7 map is one window: W-MSA equals MSA there
    assert last["wmsa_macs"] == last["msa_macs"]
    assert any("mask" in note for note in formula["notes"])


@pytest.mark.parametrize(
    ("img", "overrides"),
    [
        (256, dict(embed_dim=32, num_heads=(1, 2, 4, 8))),  # 64 -> padded to 70 for window 7
        (100, dict(embed_dim=32, num_heads=(1, 2, 4, 8))),  # 25, 13, 7, 4: odd merges + padding
        (224, dict(embed_dim=32, num_heads=(1, 2, 4, 8), window_size=12)),  # 56->60, 28->36
    ],
)
def test_eq2_counts_padding_and_matches_fvcore(img, overrides):
    ctx = context(make_spec("tiny", img_size=img, depths=(2, 2, 2, 2), **overrides))
    columns = archbench_swin.archbench_analyze(ctx)
    counted = ctx.flops.macs_of_types(["WindowAttention"]) / 1e9
    assert columns["mixer_gmacs_formula"] == pytest.approx(counted, rel=0.01)
    assert not set(ctx.flops.unsupported) - {"aten::add", "aten::gelu", "aten::mean"}
    stages = columns["mixer_formula"]["stages"]
    assert any(s["padded_resolution"] > s["resolution"] for s in stages)


# -- the model's structure ----------------------------------------------------------------


def test_blocks_alternate_wmsa_and_swmsa(tiny_ctx):
    from archbench_swin.model import SwinTransformerBlock

    blocks = [m for m in tiny_ctx.model.modules() if isinstance(m, SwinTransformerBlock)]
    assert [b.shift_size for b in blocks] == [0, 3] * 5 + [0, 0]  # stage 4: 7x7, no shift
    assert all((b.attn_mask is None) == (b.shift_size == 0) for b in blocks)
    persistent = tiny_ctx.model.state_dict()
    assert not any("attn_mask" in k or "relative_position_index" in k for k in persistent)


def test_builds_on_meta_device_and_runs_other_sizes():
    spec = make_spec("tiny", depths=(2, 2, 2, 2))
    with torch.device("meta"):
        model = archbench_swin.archbench_build_model(spec, None)
        out = model(torch.empty(1, 3, 224, 224))
    assert out.shape == (1, 1000) and out.is_meta
    model = archbench_swin.archbench_build_model(spec, None).eval()
    with torch.no_grad():  # built for 224, fed 160 and 256 (masks built on the fly)
        for size in (160, 256):
            assert model(torch.randn(1, 3, size, size)).shape == (1, 1000)


# -- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("img", "overrides", "message"),
    [
        (224, dict(window_size=0), "window_size must be at least 1, got 0"),
        (224, dict(window_size=-7), "window_size must be at least 1, got -7"),
        (16, {}, "too small for 4 stages"),
        (28, {}, "too small for 4 stages"),
        (226, {}, "image size 226 is not divisible by patch_size 4"),
        (224, dict(num_heads=(5, 6, 12, 24)), "not divisible by num_heads[0] = 5"),
        (224, dict(num_heads=(3, 6, 12, 25)), "stage 4 width 768"),
        (224, dict(depths=(2, 2, 6)), "one per stage"),
        (224, dict(depths=(2, 0, 6, 2)), "depths[1] must be at least 1, got 0"),
        (224, dict(embed_dim=0), "embed_dim must be at least 1, got 0"),
        (224, dict(patch_size=0), "patch_size must be at least 1, got 0"),
        (224, dict(num_heads=(0,)), "num_heads[0] must be at least 1, got 0"),
        (224, dict(mlp_ratio=float("nan")), "mlp_ratio must be a finite number, got nan"),
        (224, dict(embed_dim=3072, depths=(2, 2, 60, 2)), "billion parameters"),
    ],
)
def test_validate_rejects_bad_configs(img, overrides, message):
    spec = make_spec("tiny", img_size=img, **overrides)
    with pytest.raises(UsageError, match="swin:tiny") as info:
        check_spec(spec)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("variant", sorted(SWIN.variants))
def test_validate_accepts_every_variant(variant):
    check_spec(make_spec(variant))


def test_smallest_valid_input_runs():
    spec = make_spec("tiny", img_size=32, depths=(1, 1, 1, 1), embed_dim=24)
    check_spec(spec)
    model = archbench_swin.archbench_build_model(spec, None).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 1000)


def test_through_the_core_pipeline(analyze):
    """The core's own columns (fvcore mixer breakdown, meta-device FlopCounterMode check)."""
    columns, details = analyze("swin:tiny")
    assert round(columns["params_m"] * 1e6) == 28_288_354
    assert columns["gmacs"] == pytest.approx(4.51, abs=0.005)
    assert columns["mixer_gmacs"] == pytest.approx(columns["mixer_gmacs_formula"], rel=0.01)
    assert columns["gmacs_crosscheck_diff"] == pytest.approx(0.0, abs=1e-3)
    assert "stages" in details["mixer_formula"]
