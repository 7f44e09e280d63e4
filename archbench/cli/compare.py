"""``archbench compare``: build, count and time targets side by side."""

from __future__ import annotations

import click

from archbench.cli.options import (
    accuracy_options,
    measurement_options,
    model_options,
    run_plan,
    setup,
)
from archbench.run.request import Measurement, ModelRequest, Output


@click.command("compare")
@click.argument("targets", nargs=-1, required=True, metavar="TARGET...")
@click.option("--img-size", type=int, help="Input resolution for image models "
              "(default: each variant's own; a target's own @SIZE wins).")
@click.option("--seq-len", type=int, help="Sequence length for token models "
              "(default: each variant's own; a target's own @SIZE wins).")
@model_options
@accuracy_options
@measurement_options()
def compare(targets: tuple[str, ...], img_size: int | None, seq_len: int | None,
            overrides: tuple[str, ...], mixer: str | None, measurement: Measurement,
            output: Output) -> None:
    """Build, count and time each TARGET; print one table and write the reports.

    A TARGET is ARCH[:VARIANT][+MIXER][[KEY=VALUE,...]][@SIZE], as rows are named:
    swin:tiny+msa (global attention in every block), 'swin:tiny[window_size=14]',
    vit:small@384. Targets of one run are timed interleaved, so a baseline and its
    ablations compare fairly. Each architecture's default variant is in the papers'
    ~4.5 GMACs class (DeiT-S, Swin-T, HorNet-T). See 'archbench list' for names.

    \b
    Examples:
      archbench compare vit swin hornet
      archbench compare swin:tiny swin:tiny+msa swin:tiny+gnconv 'swin:tiny[window_size=14]'
      archbench compare vit:small vit:base --batch-size 1,8 --threads 2
      archbench compare vit:base@384 --no-latency --set depth=6
      archbench compare vit swin hornet --device cuda --dtype bf16 --batch-size 1,64
      archbench compare vit swin --data ~/imagenet/val --weights timm --limit 1000
    """
    from archbench.run.plan import plan_models

    pm, registry = setup()
    request = ModelRequest("compare", targets, measurement, (img_size,), (seq_len,),
                           overrides, mixer)
    run_plan(pm, lambda machine: plan_models(pm, registry, request, machine), output)
