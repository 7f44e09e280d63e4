"""Count-only runs build models with their initialisation skipped and their parameters zero
(archbench.measure.shapes_only): the counts, parameters and buffers are those of the model
built the ordinary way."""

from __future__ import annotations

import threading

import pytest
from conftest import read_report

TARGETS = ["vit:small", "swin:tiny", "hornet:tiny", "hornet:tiny_gf", "transformer:base",
           "vit:small+w-msa", "timm:convnext_atto", "timm:vit_tiny_patch16_224"]


def _built(plugin_manager, target: str, latency: bool):
    from archbench import RunSettings
    from archbench.core.registry import Registry
    from archbench.run.task import Task
    from archbench.run.worker import TaskRun

    spec = Registry.from_plugins(plugin_manager).resolve(target)
    worker = TaskRun(plugin_manager, Task(0, (), RunSettings(latency=latency)), lambda _: None)
    swap = worker.swap(spec)
    model = worker.build(spec, swap)
    return model, worker.analyze(spec, model, swap)


@pytest.mark.parametrize("target", TARGETS)
def test_a_count_only_build_counts_what_the_ordinary_build_counts(plugin_manager, target):
    import torch

    ordinary, (columns, details) = _built(plugin_manager, target, latency=True)
    zeroed, (fast_columns, fast_details) = _built(plugin_manager, target, latency=False)
    assert fast_columns == columns
    assert fast_details == details
    assert all(p.count_nonzero() == 0 for p in zeroed.parameters())
    assert any(p.count_nonzero() for p in ordinary.parameters())  # the test can fail
    assert [(n, p.shape, p.requires_grad) for n, p in zeroed.named_parameters()] == \
        [(n, p.shape, p.requires_grad) for n, p in ordinary.named_parameters()]
    buffers = dict(ordinary.named_buffers())  # Swin's index and masks: made as usual
    for name, buffer in zeroed.named_buffers():
        assert torch.equal(buffer, buffers[name]), name


def test_frozen_tied_and_truncated_parameters_keep_what_the_constructor_made():
    """requires_grad_ runs; a parameter shared by two modules stays one parameter;
    trunc_normal_ (which draws again what lies outside its bounds) is skipped like the rest."""
    import torch
    from torch import nn

    from archbench.measure.shapes_only import build_for_counting

    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(100, 16)
            self.head = nn.Linear(16, 100)
            self.head.weight = self.embed.weight
            self.pos = nn.Parameter(torch.ones(1, 8, 16))
            self.pos.requires_grad_(False)
            nn.init.trunc_normal_(self.head.weight, std=0.02)
            self.register_buffer("index", torch.arange(8))

    model = build_for_counting(Tied)
    assert model.head.weight is model.embed.weight
    assert sum(p.numel() for p in model.parameters()) == 100 * 16 + 100 + 8 * 16
    assert not model.pos.requires_grad and model.pos.count_nonzero() == 0
    assert torch.equal(model.index, torch.arange(8))


def test_another_thread_builds_as_usual_meanwhile():
    from torch import nn

    from archbench.measure.shapes_only import build_for_counting

    other = {}

    def build() -> nn.Module:
        thread = threading.Thread(target=lambda: other.update(model=nn.Linear(64, 64)))
        thread.start()
        thread.join()
        return nn.Linear(64, 64)

    assert build_for_counting(build).weight.count_nonzero() == 0
    assert other["model"].weight.count_nonzero() > 0


@pytest.mark.parametrize("variant", ["init-reads", "forward-reads"])
def test_a_model_that_needs_drawn_values_is_counted_from_the_ordinary_build(run_cli,
                                                                            variant):
    """A constructor that reads what it drew, or a forward pass that cannot run on zeros,
    costs one more build, never the row."""
    result = run_cli("compare", f"toy:{variant}", "toy", "--no-latency", "--no-cache")
    assert result.exit_code == 0, result.output
    needs, plain = read_report(result.run_dir)["rows"]
    assert (needs["model"], needs["status"]) == (f"toy:{variant}", "ok")
    assert needs["gmacs"] == plain["gmacs"] > 0
