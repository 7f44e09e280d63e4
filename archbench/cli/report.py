"""``archbench report``: merge run folders into one report."""

from __future__ import annotations

import os
from pathlib import Path

import click

from archbench.cli.options import command_line, print_report, setup, usage_errors


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path),
                metavar="RUN_DIR...")
@click.option("--out", type=click.Path(path_type=Path), default=Path("results"),
              show_default=True, help="Folder that receives the merged run folder.")
def report(run_dirs: tuple[Path, ...], out: Path) -> None:
    """Merge run folders (from several machines or days) into one report.

    Rows keep their run, device and environment; report.md flags a table that mixes
    devices, and notes that latencies of different runs were not measured together
    (their trials were not interleaved, so no ratio is made across runs).

    \b
    Example:
      archbench report results/20261125-101500-compare-vit results/20261126-*-compare-vit
    """
    from archbench.run.session import write_merged

    pm, _ = setup()
    with usage_errors():
        merged, run_dir = write_merged(pm, run_dirs, out, command_line())
    print_report(merged)  # with its notes (mixed devices, runs not timed together)
    click.echo(f"\nreports: {run_dir}{os.sep}", err=True)
