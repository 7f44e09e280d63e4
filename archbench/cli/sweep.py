"""``archbench sweep``: whole models across input sizes, with fitted log-log slopes."""

from __future__ import annotations

import click

from archbench.cli.options import (
    fail,
    measurement_options,
    model_options,
    run_plan,
    setup,
    usage_errors,
)
from archbench.core.settings import int_list
from archbench.run.request import Measurement, ModelRequest, Output


@click.command("sweep")
@click.argument("targets", nargs=-1, required=True, metavar="TARGET...")
@click.option("--img-sizes", help="Image sizes for image models, e.g. 224,384,512,768.")
@click.option("--seq-lens", help="Sequence lengths for token models, e.g. 128,512,2048.")
@model_options
@measurement_options()
def sweep(targets: tuple[str, ...], img_sizes: str | None, seq_lens: str | None,
          overrides: tuple[str, ...], mixer: str | None, measurement: Measurement,
          output: Output) -> None:
    """Cost against input size for whole models, with fitted log-log slopes.

    Every TARGET (as in compare) runs at every size, one interleaved group per size; the
    report adds, per model, the slope of log(GMACs), log(latency) and log(memory) against
    log(tokens) (≈2 where global attention dominates, ≈1 for windowed attention and
    convolutions).

    \b
    Examples:
      archbench sweep vit swin hornet --img-sizes 224,384,512,768 --no-latency
      archbench sweep swin:tiny swin:tiny+msa --img-sizes 224,448 --no-latency
      archbench sweep transformer --seq-lens 128,512,2048
    """
    from archbench.run.plan import plan_models

    if img_sizes is None and seq_lens is None:
        fail("give --img-sizes (image models) and/or --seq-lens (token models)")
    with usage_errors():
        images = int_list(img_sizes, "--img-sizes") if img_sizes else (None,)
        lengths = int_list(seq_lens, "--seq-lens") if seq_lens else (None,)
    pm, registry = setup()
    request = ModelRequest("sweep", targets, measurement, images, lengths, overrides, mixer)
    run_plan(pm, lambda machine: plan_models(pm, registry, request, machine), output)
