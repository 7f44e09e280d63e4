"""``archbench cache``: the on-disk complexity cache (where it is, how big, clear it)."""

from __future__ import annotations

import json
import os
import sys

import click


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


@click.group("cache")
def cache_command() -> None:
    """The complexity cache: params and FLOPs of models counted before.

    A model's counts are a function of its config, input, mode and the code that builds
    and counts it; `compare`, `sweep` and `mixers` keep them in
    $ARCHBENCH_CACHE_DIR (default $XDG_CACHE_HOME/archbench, else ~/.cache/archbench)
    and answer a repeated count without building the model. --no-cache counts afresh.

    \b
    Examples:
      archbench cache info
      archbench cache clear
    """


@cache_command.command("info")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(as_json: bool) -> None:
    """Where the cache is, its number of entries and their size."""
    from archbench.run.complexity_cache import CACHE_DIR_ENV, cache_info

    stats = cache_info()
    if as_json:
        click.echo(json.dumps(stats, indent=2))
        return
    click.echo(f"complexity cache: {stats['dir']}"
               + (f" (from {CACHE_DIR_ENV})" if os.environ.get(CACHE_DIR_ENV) else ""))
    click.echo(f"entries: {stats['entries']} ({_size(stats['bytes'])})")


@cache_command.command("clear")
def clear() -> None:
    """Delete every entry (models are counted afresh the next time)."""
    from archbench.run.complexity_cache import clear_cache, entries_dir

    try:
        stats = clear_cache()
    except OSError as exc:
        click.echo(f"archbench: error: cannot clear {entries_dir()}: {exc.strerror or exc}",
                   err=True)
        sys.exit(1)
    click.echo(f"removed {stats['entries']} entries ({_size(stats['bytes'])}) from "
               f"{stats['dir']}")

