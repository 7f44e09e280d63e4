"""Tests of the HorNet plugin: model, parameter/FLOP counts, hooks, bad input."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import archbench_hornet
from archbench import ModelSpec, UsageError
from archbench.core.schema import check_spec
from archbench.measure.counting import CORE_HANDLERS, AnalysisContext
from archbench_hornet.model import GlobalLocalFilter, GnConv, HorNet, load_checkpoint


def make_spec(variant: str = "tiny", img_size: int | None = None, **overrides: Any) -> ModelSpec:
    var = archbench_hornet.HORNET.variants[variant]
    return ModelSpec(
        arch=archbench_hornet.HORNET,
        variant=variant,
        config={**var.config, **overrides},
        img_size=img_size or var.img_size,
        overrides=overrides,
    )


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


#: Narrow, shallow configs for the checkpoint tests (same key structure as the real ones).
SMALL_7X7 = {**make_spec("tiny").config, "base_dim": 32, "depths": (1, 1, 2, 1), "num_classes": 10}
SMALL_GF = {**SMALL_7X7, "gf": True}

_ANALYSES: dict[str, tuple[AnalysisContext, dict[str, Any]]] = {}


def analysed(variant: str) -> tuple[AnalysisContext, dict[str, Any]]:
    """Run the hooks the way the core does (cached: fvcore traces take seconds)."""
    if variant not in _ANALYSES:
        spec = make_spec(variant)
        check_spec(spec)
        model = archbench_hornet.archbench_build_model(spec, None).eval()
        inputs = (torch.randn(1, 3, spec.img_size, spec.img_size),)
        handlers = {**CORE_HANDLERS, **archbench_hornet.archbench_flop_handlers(spec)}
        ctx = AnalysisContext(spec, model, inputs, handlers=handlers)
        _ANALYSES[variant] = (ctx, archbench_hornet.archbench_analyze(ctx))
    return _ANALYSES[variant]


# --------------------------------------------------------------------------- registration


def test_registration() -> None:
    (arch,) = archbench_hornet.archbench_architectures()
    assert arch.name == "hornet" and arch.default_variant == "tiny"
    expected = {"tiny", "small", "base", "large", "tiny_gf", "small_gf", "base_gf", "large_gf"}
    assert expected | {"large_gf_384"} == set(arch.variants)
    assert arch.variants["large_gf_384"].img_size == 384
    assert arch.variants["large_gf_384"].config["gf_sizes"] == ((24, 13), (12, 7))
    assert arch.token_mixer_types == ("GnConv",)


def test_init_does_not_import_torch() -> None:
    code = "import sys, archbench_hornet; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_hooks_ignore_other_architectures() -> None:
    other = make_spec().replace(arch=dataclasses.replace(archbench_hornet.HORNET, name="other"))
    assert archbench_hornet.archbench_build_model(other, None) is None
    assert archbench_hornet.archbench_flop_handlers(other) is None
    ctx = AnalysisContext(other, torch.nn.Identity(), (), handlers={})
    assert archbench_hornet.archbench_analyze(ctx) is None


# --------------------------------------------------------------------------- model


def test_param_counts_tiny_exact() -> None:
    with torch.device("meta"):  # shapes only: fast, and no memory
        assert n_params(HorNet(**make_spec("tiny").config)) == 22_409_512
        assert n_params(HorNet(**make_spec("tiny_gf").config)) == 22_991_848


@pytest.mark.parametrize(
    ("variant", "millions"),
    [
        ("small", 50),
        ("small_gf", 50),
        ("base", 87),
        ("base_gf", 88),
        ("large", 195),
        ("large_gf", 196),
        ("large_gf_384", 202),
    ],
)
def test_param_counts_paper(variant: str, millions: int) -> None:
    """Paper table 1, rounded to millions (1000-class head); built on meta, no memory."""
    with torch.device("meta"):
        model = HorNet(**make_spec(variant).config)
    assert round(n_params(model) / 1e6) == millions


def test_release_parameter_names() -> None:
    with torch.device("meta"):
        keys = set(HorNet(**make_spec("tiny_gf").config).state_dict())
    for key in [
        "downsample_layers.0.0.weight",
        "downsample_layers.0.1.weight",
        "downsample_layers.1.0.bias",
        "downsample_layers.1.1.weight",
        "stages.0.0.norm1.weight",
        "stages.0.0.gnconv.proj_in.weight",
        "stages.0.0.gnconv.dwconv.weight",
        "stages.0.0.gnconv.dwconv.bias",
        "stages.0.0.gnconv.proj_out.weight",
        "stages.0.0.gnconv.pws.0.weight",
        "stages.0.0.norm2.weight",
        "stages.0.0.pwconv1.weight",
        "stages.0.0.pwconv2.bias",
        "stages.0.0.gamma1",
        "stages.0.0.gamma2",
        "stages.2.0.gnconv.dwconv.dw.weight",
        "stages.2.0.gnconv.dwconv.complex_weight",
        "stages.2.0.gnconv.dwconv.pre_norm.weight",
        "stages.3.1.gnconv.dwconv.post_norm.bias",
        "stages.3.1.gnconv.pws.3.weight",
        "norm.weight",
        "head.weight",
        "head.bias",
    ]:
        assert key in keys, key
    assert "stages.2.0.gnconv.dwconv.dw.bias" not in keys  # the GF 3x3 conv has no bias


def test_gnconv_structure() -> None:
    g = GnConv(512, order=5)
    assert g.order == 5 and g.dims == [32, 64, 128, 256, 512]
    assert g.scale == pytest.approx(1 / 3)
    assert g.proj_in.out_channels == 1024 and g.dwconv.in_channels == sum(g.dims) == 992
    assert [(p.in_channels, p.out_channels) for p in g.pws] == [
        (32, 64),
        (64, 128),
        (128, 256),
        (256, 512),
    ]
    assert GnConv(64, order=1).dims == [64] and len(GnConv(64, order=1).pws) == 0


def reference_gnconv(g: GnConv, x: torch.Tensor) -> torch.Tensor:
    """Paper eqs. (3.3)-(3.4) spelled out with functional ops."""
    y = F.conv2d(x, g.proj_in.weight, g.proj_in.bias)
    p = y[:, : g.dims[0]]
    q = y[:, g.dims[0] :]
    q = F.conv2d(q, g.dwconv.weight, g.dwconv.bias, padding=3, groups=q.shape[1]) * (1 / 3)
    start = 0
    for k, c in enumerate(g.dims):
        qk = q[:, start : start + c]
        start += c
        if k > 0:
            p = F.conv2d(p, g.pws[k - 1].weight, g.pws[k - 1].bias)
        p = p * qk
    return F.conv2d(p, g.proj_out.weight, g.proj_out.bias)


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_gnconv_matches_equations(order: int) -> None:
    torch.manual_seed(0)
    g = GnConv(32, order=order).eval()
    x = torch.randn(2, 32, 9, 9)
    torch.testing.assert_close(g(x), reference_gnconv(g, x))


def test_global_local_filter_interleaves_and_filters() -> None:
    torch.manual_seed(0)
    gf = GlobalLocalFilter(8, h=6, w=4).eval()
    x = torch.randn(1, 8, 6, 6)
    out = gf(x)
    xn = gf.pre_norm(x)
    local = gf.dw(xn[:, :4])
    spec = torch.fft.rfft2(xn[:, 4:], norm="ortho") * torch.view_as_complex(gf.complex_weight)
    glob = torch.fft.irfft2(spec, s=(6, 6), norm="ortho")
    expected = torch.empty_like(x)
    expected[:, 0::2], expected[:, 1::2] = local, glob
    torch.testing.assert_close(out, gf.post_norm(expected))


def test_forward_shapes_and_gf_resize() -> None:
    model = HorNet(**make_spec("tiny_gf", depths=(1, 1, 1, 1)).config).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 224, 224)).shape == (2, 1000)
        # 14x8 / 7x4 filters resized to 24x13 / 12x7 at 384 (official behaviour)
        assert model(torch.randn(1, 3, 384, 384)).shape == (1, 1000)


@pytest.mark.parametrize("variant", ["tiny", "tiny_gf", "large_gf_384"])
def test_builds_and_runs_on_meta(variant: str) -> None:
    spec = make_spec(variant)
    with torch.device("meta"):
        model = archbench_hornet.archbench_build_model(spec, None)
        out = model(torch.randn(1, 3, spec.img_size, spec.img_size))
    assert out.device.type == "meta" and out.shape == (1, 1000)


# --------------------------------------------------------------------------- checkpoints


def test_load_checkpoint_roundtrip(tmp_path) -> None:
    src = HorNet(**SMALL_GF)
    dst = HorNet(**SMALL_GF)
    raw, wrapped = tmp_path / "raw.pth", tmp_path / "wrapped.pth"
    torch.save(src.state_dict(), raw)
    torch.save({"model": src.state_dict(), "epoch": 3}, wrapped)
    for path in (raw, wrapped):
        load_checkpoint(dst, path)
        for k, v in src.state_dict().items():
            torch.testing.assert_close(dst.state_dict()[k], v)


def test_load_checkpoint_names_bad_keys(tmp_path) -> None:
    cfg = SMALL_7X7
    sd = HorNet(**cfg).state_dict()
    missing = dict(sd)
    del missing["stages.1.0.gnconv.proj_out.weight"]
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(
        ValueError, match=r"missing keys \['stages\.1\.0\.gnconv\.proj_out\.weight'\]"
    ):
        load_checkpoint(HorNet(**cfg), tmp_path / "missing.pth")

    extra = {**sd, "stages.0.0.gnconv.extra": torch.zeros(1)}
    torch.save({"model": extra}, tmp_path / "extra.pth")
    with pytest.raises(ValueError, match=r"unexpected keys \['stages\.0\.0\.gnconv\.extra'\]"):
        load_checkpoint(HorNet(**cfg), tmp_path / "extra.pth")

    # a GF checkpoint into a 7x7 model: both kinds of key are named
    gf_sd = HorNet(**{**cfg, "gf": True}).state_dict()
    torch.save(gf_sd, tmp_path / "gf.pth")
    with pytest.raises(
        ValueError, match="missing keys.*dwconv.bias.*unexpected keys.*complex_weight"
    ):
        load_checkpoint(HorNet(**cfg), tmp_path / "gf.pth")


# --------------------------------------------------------------------------- FLOPs


def test_gmacs_tiny_7x7() -> None:
    ctx, _ = analysed("tiny")
    assert ctx.flops.unsupported == {}
    assert ctx.flops.total / 1e9 == pytest.approx(3.98, rel=0.015)  # published 4.0G
    # what the release's calc_flops.py counts: convs, linears and the channels-last norm2
    ops = ctx.flops.by_operator
    norm2 = 5 * sum(64 * 2**i * (56 // 2**i) ** 2 * d for i, d in enumerate((2, 3, 18, 2)))
    assert (ops["conv"] + ops["linear"] + norm2) / 1e9 == pytest.approx(3.9767, abs=1e-4)


def test_gmacs_tiny_gf() -> None:
    ctx, _ = analysed("tiny_gf")
    assert ctx.flops.unsupported == {}
    assert ctx.flops.total / 1e9 == pytest.approx(3.91, rel=0.015)  # published 3.9G
    # FFT convention: N*C*ceil(log2 N), N = H*W, per transform
    stage3 = 240 * 196 * 8 * 18  # half of sum(C_k) = 480 channels, 14x14, 18 blocks
    stage4 = 496 * 49 * 6 * 2
    assert ctx.flops.by_operator["fft_rfft2"] == stage3 + stage4
    assert ctx.flops.by_operator["fft_irfft2"] == stage3 + stage4


def test_mul_handler_counts_what_it_says() -> None:
    ctx, _ = analysed("tiny")
    hw = [56**2, 28**2, 14**2, 7**2]
    dims = [64, 128, 256, 512]
    depths = (2, 3, 18, 2)
    orders = (2, 3, 4, 5)
    expected = 0
    for i in range(4):
        s = sum(archbench_hornet.gnconv_dims(dims[i], orders[i]))
        # gating products + scale s on sum(C_k) channels; gamma1 + gamma2 on C channels
        expected += depths[i] * hw[i] * (2 * s + 2 * dims[i])
    assert ctx.flops.by_operator["mul"] == expected


@pytest.mark.parametrize("variant", ["tiny", "tiny_gf"])
def test_mixer_formula_matches_count(variant: str) -> None:
    ctx, res = analysed(variant)
    counted = ctx.flops.macs_of_types(["GnConv"])
    assert res["mixer_gmacs_formula"] == pytest.approx(counted / 1e9, rel=0.01)
    for stage in res["mixer_formula"]["stages"]:
        assert stage["gmacs_formula"] == pytest.approx(stage["gmacs_counted"], rel=0.01)


def test_gf_resize_is_in_formula_and_count() -> None:
    """tiny_gf at 384: the 224 filters are interpolated; formula and count still agree."""
    spec = make_spec("tiny_gf", img_size=384, depths=(1, 1, 1, 1))
    check_spec(spec)
    model = archbench_hornet.archbench_build_model(spec, None).eval()
    handlers = {**CORE_HANDLERS, **archbench_hornet.archbench_flop_handlers(spec)}
    ctx = AnalysisContext(spec, model, (torch.randn(1, 3, 384, 384),), handlers=handlers)
    res = archbench_hornet.archbench_analyze(ctx)
    assert ctx.flops.unsupported == {}
    stages = res["mixer_formula"]["stages"]
    assert [s["gf_resized"] for s in stages[2:]] == [True, True]
    assert "gf_resize" in stages[2]["macs_per_layer_terms"]
    for stage in stages:
        assert stage["gmacs_formula"] == pytest.approx(stage["gmacs_counted"], rel=1e-9)


def test_analysis_columns_and_paper_bound() -> None:
    _, res = analysed("tiny")
    assert res["mixer"] == "gnconv"
    for key in (
        "mixer_gmacs_formula",
        "mixer_gmacs_as_msa",
        "mixer_gmacs_as_wmsa",
        "mixer_msa_saving",
    ):
        assert isinstance(res[key], float), key
    assert res["mixer_msa_saving"] == pytest.approx(
        res["mixer_gmacs_as_msa"] / res["mixer_gmacs_formula"]
    )
    assert res["mixer_msa_saving"] > 3  # global MSA at stride 4 is far costlier
    stages = res["mixer_formula"]["stages"]
    assert [s["resolution"] for s in stages] == ["56x56", "28x28", "14x14", "7x7"]
    for s in stages:
        assert s["paper_bound_holds"]
        assert s["paper_construction_per_layer"] < s["paper_bound_per_layer"]
        # the scale term is outside the paper's construction; the bound holds with it too
        assert s["macs_per_layer"] < s["paper_bound_per_layer"]
    # stage 4 is one 7x7 window: W-MSA == MSA there
    assert stages[3]["gmacs_as_wmsa"] == pytest.approx(stages[3]["gmacs_as_msa"])
    assert res["mixer_formula"]["notes"]
    _, gf = analysed("tiny_gf")
    assert gf["mixer"] == "gnconv-gf"
    assert gf["mixer_formula"]["stages"][2]["paper_bound_per_layer"] is None


def test_paper_bound_formula_by_hand() -> None:
    # stage 1 of HorNet-T: H=W=56, C=64, order 2: dims [32, 64]
    terms = archbench_hornet.gnconv_macs(56, 64, 2, 7)
    hw = 56 * 56
    assert terms == {
        "proj_in": hw * 2 * 64 * 64,
        "pws": hw * 32 * 64,
        "proj_out": hw * 64 * 64,
        "gating": hw * 96,
        "scale": hw * 96,
        "dwconv": hw * 49 * 96,
    }
    assert archbench_hornet.paper_bound_macs(56, 64, 7) == pytest.approx(
        hw * 64 * (98 + 11 * 64 / 3 + 2)
    )
    assert math.isclose(
        sum(terms.values()) - terms["scale"], hw * 64 * (2 * 64 + 49 * 1.5 + 64 / 2 + 64 + 1.5)
    )


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("orders", "message"), [
    ((2, 3, 4, 6), r"orders\[3\] must be at most 5, got 6"),
    ((0, 3, 4, 5), r"orders\[0\] must be at least 1, got 0"),
])
def test_order_outside_range(orders: tuple[int, ...], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        check_spec(make_spec(orders=orders))


def test_order_needs_divisible_width() -> None:
    with pytest.raises(
        UsageError, match="stage 1 width 34 is not divisible by 2\\^\\(order-1\\) = 4"
    ):
        check_spec(make_spec(base_dim=34, orders=(3, 3, 4, 5)))


@pytest.mark.parametrize(
    ("sizes", "pattern"),
    [
        (((14, 9), (7, 4)), r"GF filter 14x9 of stage 3 .*w == h//2\+1 \(= 8 for h=14\)"),
        (((14, 8), (7, 7)), r"GF filter 7x7 of stage 4 .*use \(7, 4\)"),
        (((14, 8),), "gf_sizes must have 2 entries"),
    ],
)
def test_gf_size_that_does_not_fit(sizes: Any, pattern: str) -> None:
    with pytest.raises(UsageError, match=pattern):
        check_spec(make_spec("tiny_gf", gf_sizes=sizes))


def test_gf_other_resolution_is_resized_not_rejected() -> None:
    check_spec(make_spec("tiny_gf", img_size=384))
    check_spec(make_spec("large_gf_384"))
    # 7x7 variants ignore gf_sizes
    check_spec(make_spec("tiny", gf_sizes=((3, 3), (1, 1))))


def test_other_bad_config() -> None:
    with pytest.raises(UsageError, match="depths must have 4 entries"):
        check_spec(make_spec(depths=(2, 3, 18)))
    with pytest.raises(UsageError, match="kernel_size must be odd, got 4"):
        check_spec(make_spec(kernel_size=4))
    with pytest.raises(UsageError, match="image size must be at least 32, got 16"):
        check_spec(make_spec(img_size=16))
    with pytest.raises(UsageError, match="drop_path_rate must be less than 1, got 1.0"):
        check_spec(make_spec(drop_path_rate=1.0))
    with pytest.raises(UsageError, match=r"billion parameters"):
        check_spec(make_spec(base_dim=8192))
