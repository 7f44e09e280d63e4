"""``archbench report``: merge run folders into one report."""

from __future__ import annotations

import os
from pathlib import Path

import click

from archbench.cli.options import command_line, print_report, setup, usage_errors


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, metavar="RUN_DIR...")
@click.option("--out", type=click.Path(path_type=Path), default=Path("results"),
              show_default=True, help="Folder that receives the merged run folder.")
@click.option("--from-store", is_flag=True, help="The arguments are run ids in the results "
              "store ('archbench history' lists them; latest: the newest run), not folders.")
@click.option("--store", metavar="PATH", type=click.Path(path_type=Path, dir_okay=False),
              envvar="ARCHBENCH_STORE", help="The results store, with --from-store "
              "(ARCHBENCH_STORE) [default: <--out>/archbench.sqlite, as compare records].")
def report(run_dirs: tuple[str, ...], out: Path, from_store: bool, store: Path | None
           ) -> None:
    """Merge run folders (from several machines or days) into one report.

    Rows keep their run, device and environment; report.md flags a table that mixes
    devices, and notes that latencies of different runs were not measured together
    (their trials were not interleaved, so no ratio is made across runs).

    \b
    Examples:
      archbench report results/20261125-101500-compare-vit results/20261126-*-compare-vit
      archbench report --from-store 20261130-041502-3fa9c1 latest
    """
    from archbench.run.session import write_merged

    pm, _ = setup()
    with usage_errors():
        if from_store:
            from archbench.store import store_location
            from archbench.store.resolve import stored_documents

            merged, run_dir = write_merged(pm, (), out, command_line(), stored_documents(
                run_dirs, store_location(out, store)))
        else:
            merged, run_dir = write_merged(pm, [Path(d) for d in run_dirs], out,
                                           command_line())
    print_report(merged)  # with its notes (mixed devices, runs not timed together)
    click.echo(f"\nreports: {run_dir}{os.sep}", err=True)
