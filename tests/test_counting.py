"""fvcore and PyTorch's FlopCounterMode agree for every built-in model (matrix and conv work)."""

from __future__ import annotations

import pytest

BUILTIN = ("vit", "swin", "hornet", "transformer")


def _builtin_targets():
    from archbench.core.registry import Registry
    from archbench.plugins import get_plugin_manager

    registry = Registry.from_plugins(get_plugin_manager(autoload=False))
    return [f"{a.name}:{v}" for a, v, _ in registry.match("*") if a.name in BUILTIN]


@pytest.mark.parametrize("target", _builtin_targets())
def test_fvcore_and_flopcountermode_agree(analyze, target):
    columns, details = analyze(target)
    assert "gmacs_flopcounter" in columns, details.get("flop_crosscheck")
    assert abs(columns["gmacs_crosscheck_diff"]) < 0.005, details["flop_crosscheck"]
