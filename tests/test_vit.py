"""The ViT plugin: timm-compatible weights, the published params and GMACs, eq. (1)."""

from __future__ import annotations

import pytest
import torch

from archbench.measure.counting import CORE_HANDLERS, count_flops


@pytest.mark.parametrize(
    ("config", "timm_name"),
    [
        (dict(embed_dim=192, depth=12, num_heads=3), "vit_tiny_patch16_224"),
        (dict(embed_dim=384, depth=12, num_heads=6), "vit_small_patch16_224"),
        (dict(patch_size=32, embed_dim=768, depth=2, num_heads=12), "vit_base_patch32_224"),
    ],
)
def test_timm_weights_load_strict_and_logits_agree(config, timm_name):
    import timm

    from archbench_vit.model import VisionTransformer

    kwargs = {"depth": config["depth"]}
    reference = timm.create_model(timm_name, pretrained=False, **kwargs).eval()
    ours = VisionTransformer(**config).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("target", "params", "gmacs"),
    [
        ("vit:base", 86_567_656, 17.58),  # ViT-B/16 = DeiT-B: 86.6 M, 17.5-17.6 G
        ("vit:small", 22_050_664, 4.61),  # DeiT-S: 22.1 M, 4.6 G
    ],
)
def test_published_params_and_gmacs(analyze, target, params, gmacs):
    columns, _ = analyze(target)
    assert round(columns["params_m"] * 1e6) == params
    assert columns["gmacs"] == pytest.approx(gmacs, abs=0.01)
    assert columns["gflops"] == pytest.approx(2 * columns["gmacs"])


def test_fused_attention_handler_matters():
    """Plain fvcore skips sdpa: ViT-B/16 counts 16.87 instead of 17.58 GMACs."""
    from archbench_vit.model import VisionTransformer

    model = VisionTransformer().eval()
    x = torch.randn(1, 3, 224, 224)
    assert count_flops(model, (x,), {}).total / 1e9 == pytest.approx(16.87, abs=0.01)
    assert count_flops(model, (x,), CORE_HANDLERS).total / 1e9 == pytest.approx(17.58, abs=0.01)


@pytest.mark.parametrize(("target", "img_size"), [("vit:small", 224), ("vit:tiny", 384)])
def test_eq1_matches_counted_attention(analyze, target, img_size):
    columns, details = analyze(target, img_size=img_size)
    assert columns["mixer"] == "msa"
    assert columns["mixer_gmacs_formula"] == pytest.approx(columns["mixer_gmacs"], rel=1e-3)
    formula = details["mixer_formula"]
    assert formula["tokens"] == (img_size // 16) ** 2 + 1


def test_attention_share_and_breakdown_add_up(analyze):
    columns, _ = analyze("vit:small")
    parts = columns["mixer_gmacs"] + columns["mlp_gmacs"] + columns["other_gmacs"]
    assert parts == pytest.approx(columns["gmacs"])
    assert 0.3 < columns["mixer_share"] < 0.45
