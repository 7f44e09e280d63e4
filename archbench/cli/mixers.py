"""``archbench mixers``: each token mixer alone across feature-map sizes."""

from __future__ import annotations

import click

from archbench.cli.options import measurement_options, run_plan, setup, usage_errors
from archbench.core.mixers import MixerConfig
from archbench.core.settings import int_list
from archbench.run.request import Measurement, MixerRequest, Output


@click.command("mixers")
@click.argument("names", nargs=-1, metavar="[MIXER...]")
@click.option("--dim", type=int, default=96, show_default=True, help="Channels C.")
@click.option("--heads", type=int, default=3, show_default=True, help="Attention heads.")
@click.option("--window", type=int, default=7, show_default=True,
              help="Window M of w-msa / sw-msa.")
@click.option("--order", type=int, default=3, show_default=True, help="gnConv order (1..5).")
@click.option("--sizes", default="7,14,28,56,112", show_default=True, metavar="S[,S...]",
              help="Feature-map sides h = w.")
@measurement_options(warmup=1, min_time=0.3, repeat=3)
def mixers(names: tuple[str, ...], dim: int, heads: int, window: int, order: int, sizes: str,
           measurement: Measurement, output: Output) -> None:
    """Each token mixer alone, against the feature-map size: analytic and counted MACs,
    latency, memory, fitted log-log slopes and the W-MSA / MSA latency crossover.

    Global MSA (ViT) is quadratic in the tokens N = h·w; W-MSA / SW-MSA (Swin) and gnConv
    (HorNet) are linear. Default MIXER list: every registered one. Sizes whose attention
    matrix cannot fit the memory budget (--max-memory) are skipped, not run.

    \b
    Examples:
      archbench mixers
      archbench mixers msa w-msa --sizes 14,28,56 --dim 128 --heads 4
      archbench mixers --device cuda --dtype bf16 --batch-size 8 --max-memory 4000
    """
    from archbench.run.plan import plan_mixers

    with usage_errors():
        size_list = int_list(sizes, "--sizes")
    pm, _ = setup()
    request = MixerRequest(names, MixerConfig(dim=dim, heads=heads, window=window, order=order,
                                              size=size_list[0]), size_list, measurement)
    run_plan(pm, lambda machine: plan_mixers(pm, request, machine), output)
