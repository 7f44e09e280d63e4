"""``archbench history``: what the results store holds: one line per stored row, newest run
first (no torch, no pandas)."""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
from pathlib import Path
from typing import Any

import click

from archbench.cli.options import usage_errors
from archbench.core.errors import UsageError

#: The columns of a row shown beside its identity.
SHOWN = ("params_m", "gmacs", "latency_ms_median")


def since_utc(text: str) -> str:
    """``--since`` (an ISO date or date-time, local time unless it has an offset) as the
    UTC ISO text runs are stored with; UsageError otherwise."""
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--since {text!r}: expected a date (2026-11-30) or a date and "
                         "time (2026-11-30T14:00)") from None
    if when.tzinfo is None:
        when = when.astimezone()  # local time
    return when.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


def _wanted(entry: dict[str, Any], patterns: tuple[str, ...], device: str | None) -> bool:
    model = str(entry.get("model"))
    if patterns and not any(p == entry.get("arch") or fnmatch.fnmatchcase(model, p)
                            or fnmatch.fnmatchcase(model.split("[", 1)[0], p)
                            for p in patterns):
        return False
    return device is None or device == entry.get("device") or (
        device.lower() in str(entry.get("device_name") or "").lower())


def _line(entry: dict[str, Any]) -> dict[str, Any]:
    created = dt.datetime.fromisoformat(entry["created"]).astimezone()
    revision = entry.get("git_revision")
    git = None if not revision else revision[:10] + ("+dirty" if entry.get("git_dirty")
                                                     else "")
    return {"run": entry["run"] + ("" if entry["complete"] else " (incomplete)"),
            "created": f"{created:%Y-%m-%d %H:%M}", "model": entry["model"],
            "input": entry["input"], "batch_size": entry["batch_size"],
            "device_name": entry["device_name"], "dtype": entry["dtype"],
            "mode": entry["mode"] if entry["mode"] != "infer" else None,
            **{c: entry["columns"].get(c) for c in SHOWN}, "status": entry["status"],
            "git": git}


@click.command("history")
@click.argument("patterns", nargs=-1, metavar="[ARCH...]")
@click.option("--device", metavar="NAME", help="Only rows measured on this device: cpu, "
              "cuda, cuda:N, or part of the device model's name (case-insensitive).")
@click.option("--since", metavar="DATE", help="Only runs started at or after DATE (ISO date "
              "or date-time, local time).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="At most this many rows (the newest).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output: every stored "
              "column of each row, and its run's command and git revision.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("results"),
              show_default=True, help="The folder the runs were written to (their --out): "
              "its archbench.sqlite is the store.")
@click.option("--store", metavar="PATH", type=click.Path(path_type=Path, dir_okay=False),
              envvar="ARCHBENCH_STORE", help="The results store, wherever it is "
              "(ARCHBENCH_STORE) [default: <--out>/archbench.sqlite].")
def history(patterns: tuple[str, ...], device: str | None, since: str | None, limit: int,
            as_json: bool, out: Path, store: Path | None) -> None:
    """What was measured, when and where: one line per stored row, newest run first.

    ARCH filters by architecture (vit) or model (fnmatch: 'swin:*', 'vit:tiny[depth=1]').
    A run id in the first column is what --baseline and 'archbench report --from-store'
    take.

    \b
    Examples:
      archbench history
      archbench history swin hornet --device cpu --since 2026-11-01
      archbench history --json --store ci/archbench.sqlite
    """
    from archbench.report.cells import text_table
    from archbench.store import Store, store_location

    store = store_location(out, store)
    with usage_errors():
        cutoff = since_utc(since) if since else None
        with Store(store, create=False) as opened:
            entries = [e for e in opened.history(cutoff) if _wanted(e, patterns, device)]
    if as_json:
        click.echo(json.dumps(entries[:limit], indent=2))
        return
    if not entries:
        what = "no stored row matches" if patterns or device or since else "no run stored"
        click.echo(f"({what} in {store})")
        return
    lines = [_line(e) for e in entries[:limit]]
    shown = [c for c in lines[0] if any(line[c] is not None for line in lines)]
    click.echo(text_table(lines, shown))
    if len(entries) > limit:
        click.echo(f"({len(entries) - limit} older row(s) not shown; --limit N)")
