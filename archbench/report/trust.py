"""Plain sentences about how far a run's numbers can be trusted, for the top of report.md
and the end of the terminal output: rows timed while other processes competed for the
device, and rows whose interval did not narrow to ``--target-ci``. A clean run gets none."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _names(rows: Sequence[dict[str, Any]]) -> str:
    names = list(dict.fromkeys(f"{r['model']} (batch {r.get('batch_size')})" for r in rows))
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def trust_notes(rows: Sequence[dict[str, Any]], settings: dict[str, Any]) -> list[str]:
    """One sentence per kind of doubt, naming the rows and the fix."""
    notes = []
    busy = [r for r in rows if r.get("contended") is True]
    if busy:
        cuda = str(settings.get("device", "")).startswith("cuda")
        where = "the GPU" if cuda else "the CPU"
        fix = ("a GPU no other process uses" if cuda else
               "a quieter machine, or fewer --threads than the machine has cores")
        notes.append(f"{len(busy)} row(s) were timed while other processes used {where} "
                     f"(column `contended`: {_names(busy)}); their latencies are not "
                     f"reliable: measure again on {fix}.")
    short = [r for r in rows if r.get("ci_reached") is False]
    if short:
        notes.append(f"{len(short)} row(s) did not reach --target-ci "
                     f"{settings.get('target_ci')}% within --max-time (column `ci_reached`: "
                     f"{_names(short)}); see latency_ms_ci95_halfwidth_pct for how close "
                     "they came.")
    return notes
