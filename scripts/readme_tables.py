"""Regenerate the README's tables of real runs from the committed reference reports.

Each block of README.md between ``<!-- reference:begin NAME -->`` and
``<!-- reference:end -->`` is rendered from ``results/reference/NAME/report.json`` (a real
run, committed with its report.md and report.csv): a line saying what ran where, the table,
and the run's latency ratios. Nothing in those blocks is typed by hand.

    python scripts/readme_tables.py           # rewrite README.md
    python scripts/readme_tables.py --check   # exit 1 if README.md is not what the reports say

tests/test_readme_reference.py runs the check.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "results" / "reference"
BLOCK = re.compile(r"(<!-- reference:begin (?P<name>[\w.+-]+) -->\n)(?P<body>.*?)"
                   r"(<!-- reference:end -->)", re.S)
#: Figures per column: (header, how a row's value prints).
RATIOS_PREFIX = "Latency ratios"


def _wrap(text: str) -> str:
    return textwrap.fill(text, 92, break_long_words=False, break_on_hyphens=False)


def _sig(value: Any, digits: int = 4) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "—"
    return f"{value:,.0f}" if abs(value) >= 10 ** digits else f"{value:.{digits}g}"


def _fixed(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "—"


def _columns(rows: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    batches = {r.get("batch_size") for r in rows}
    columns: list[tuple[str, Any]] = [("model", lambda r: r["model"])]
    if len(batches) > 1:
        columns.append(("batch", lambda r: str(r["batch_size"])))
    columns += [
        ("params (M)", lambda r: f"{r['params_m']:.2f}"),
        ("GMACs", lambda r: f"{r['gmacs']:.3f}"),
        ("mixer", lambda r: r.get("mixer") or "—"),
        ("mixer GMACs", lambda r: _fixed(r.get("mixer_gmacs_formula"))),
        ("as global MSA", lambda r: _fixed(r.get("mixer_gmacs_as_msa"))),
        ("latency ms (median)", lambda r: _sig(r.get("latency_ms_median"))),
        ("95% CI", lambda r: f"{_sig(r.get('latency_ms_ci95_low'))}–"
                             f"{_sig(r.get('latency_ms_ci95_high'))}"),
        ("images/s", lambda r: _sig(r.get("throughput_per_s"), 3)),
        ("of matmul peak", lambda r: f"{r['peak_fraction']:.0%}"
         if isinstance(r.get("peak_fraction"), float) else "—"),
    ]
    if any(r.get("device", "").startswith("cuda") for r in rows):
        columns.append(("memory MB", lambda r: _sig(r.get("memory_mb"))))
    if any(r.get("contended") for r in rows):
        columns.append(("contended", lambda r: "yes" if r.get("contended") else "no"))
    return columns


def _ratios(document: dict[str, Any]) -> str:
    tables = document.get("tables") or {}
    rows = next((t for title, t in tables.items() if title.startswith(RATIOS_PREFIX)), [])
    parts = [f"{r['model']} / {r['against']} = {r['latency_ratio']:.3g} (95% CI "
             f"{r['ci95_low']:.3g}–{r['ci95_high']:.3g}, "
             f"{'significant' if r['significant'] else 'not significant'})"
             for r in rows if isinstance(r.get("latency_ratio"), float)]
    return ("Latency ratios of the same run (trials interleaved): " + "; ".join(parts) + "."
            if parts else "")


def render(name: str, reference: Path = REFERENCE) -> str:
    """The block of one reference run, from its report.json."""
    document = json.loads((reference / name / "report.json").read_text())
    env, settings = document["environment"], document["settings"]
    rows = [r for r in document["rows"] if r.get("status") == "ok"]
    columns = _columns(rows)
    command = re.sub(r" --out \S+", "", document["command"])  # where it wrote: not what ran
    command = re.sub(r" --no-store\b", "", command)
    peak = env.get("matmul_peak_gmacs_per_s")
    threads = env.get("threads")
    lines = [
        _wrap(f"`{command}` on {env.get('device_name')} ({env.get('cpu_count')} logical "
              f"CPUs, {threads} torch thread{'s' if threads != 1 else ''}, torch "
              f"{env.get('torch')}, {settings.get('dtype')}, batch "
              f"{', '.join(map(str, settings.get('batch_sizes')))}), "
              f"{document['created'][:10]}; committed in "
              f"[results/reference/{name}](results/reference/{name}/report.md):"),
        "",
        "| " + " | ".join(h for h, _ in columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(str(f(r)) for _, f in columns) + " |" for r in rows),
        "",
    ]
    ratios = _ratios(document)
    if peak:
        ratios += (" " if ratios else "") + (f"The device's own {settings.get('dtype')} "
                                             f"matmul rate measured in that run: "
                                             f"{_sig(peak, 3)} GMAC/s.")
    if ratios:
        lines += [_wrap(ratios), ""]
    return "\n".join(lines)


def regenerate(text: str, reference: Path = REFERENCE) -> str:
    """README text with every reference block rendered afresh."""
    return BLOCK.sub(lambda m: m.group(1) + render(m.group("name"), reference) + m.group(4),
                     text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if README.md differs from what the reports say")
    args = parser.parse_args(argv)
    readme = ROOT / "README.md"
    text = readme.read_text()
    if not BLOCK.search(text):
        print("README.md has no <!-- reference:begin NAME --> block", file=sys.stderr)
        return 1
    fresh = regenerate(text)
    if args.check:
        if fresh != text:
            print("README.md's reference tables differ from results/reference/; run "
                  "python scripts/readme_tables.py", file=sys.stderr)
            return 1
        return 0
    if fresh != text:
        readme.write_text(fresh)
        print("README.md: reference tables rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
