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


@pytest.mark.parametrize("target", ["vit:small", "swin:tiny", "hornet:tiny_gf", "transformer:base",
                                    "vit:small+msa"])
def test_the_real_and_the_meta_cross_check_count_the_same(plugin_manager, target):
    """Small models are cross-checked on their CPU tensors (attention forced to its math
    form), large ones and training steps on the meta device: one count either way."""
    import torch

    from archbench import RunSettings
    from archbench.builtin.counting import REAL_PASS_MAX_MACS, _meta_pass, _real_pass
    from archbench.core.registry import Registry
    from archbench.measure.counting import AnalysisContext
    from archbench.run.task import Task
    from archbench.run.worker import TaskRun

    spec = Registry.from_plugins(plugin_manager).resolve(target)
    worker = TaskRun(plugin_manager, Task(0, (), RunSettings(latency=False)), lambda _: None)
    swap = worker.swap(spec)
    model = worker.build(spec, swap)
    ctx = AnalysisContext(spec=spec, model=model, inputs=worker.inputs(spec, model, 1),
                          handlers={}, swap=swap)
    assert ctx.flops.total <= REAL_PASS_MAX_MACS  # the real pass is the one these rows get
    real = _real_pass(ctx, train=False)
    assert real > 0 and real == _meta_pass(ctx, train=False)
    assert not any(p.is_meta for p in model.parameters())  # the model is untouched
    assert isinstance(model(*ctx.inputs), torch.Tensor)


@pytest.mark.parametrize("groups, transposed", [(64, False), (1, False), (4, True), (1, True)])
def test_convolution_backward_costs_twice_the_forward_whatever_the_groups(groups, transposed):
    """PyTorch's own formula counts a depth-wise convolution's backward ``groups`` times over;
    archbench's counts the input's and the weight's gradients at the forward's cost each."""
    import torch

    from archbench.builtin.counting import flop_counter

    layer = (torch.nn.ConvTranspose2d if transposed else torch.nn.Conv2d)(
        64, 64, 3, padding=1, groups=groups, stride=2 if transposed else 1)
    x = torch.randn(2, 64, 14, 14, requires_grad=True)
    with flop_counter() as forward:
        layer(x)
    with flop_counter() as step:
        layer(x).sum().backward()
    assert step.get_total_flops() == 3 * forward.get_total_flops()


def test_a_hornet_training_step_counts_about_three_forward_passes(plugin_manager):
    """Forward plus backward: under 3x the forward (the stem's input needs no gradient)."""
    from archbench import RunSettings
    from archbench.core.registry import Registry
    from archbench.run.task import Task
    from archbench.run.worker import TaskRun

    spec = Registry.from_plugins(plugin_manager).resolve("hornet:tiny")
    worker = TaskRun(plugin_manager, Task(0, (), RunSettings(latency=False, mode="train")),
                     lambda _: None)
    columns, _ = worker.analyze(spec, worker.build(spec, None), None)
    assert 2.5 < columns["train_gmacs"] / columns["gmacs_flopcounter"] <= 3.0  # 2.998
