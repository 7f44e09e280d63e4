"""How a report's values print, on the terminal, in report.md and in report.tex.

Numbers are rounded for reading: 4 significant figures, parameters in millions with 2
decimals, integers as integers, 10,000 and above with thousands separators; booleans as
yes/no; an interval as ``[low, high]``. A missing value (None, NaN, infinity) prints as a
dash, never as ``nan``. Tables take plain row dicts (not a pandas frame, which would turn a
missing integer into a float NaN). The settings a reader needs go in a caption
(:func:`settings_caption`).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Sequence
from typing import Any

#: What a missing value prints as, per output.
MISSING = {"text": "-", "md": "\u2014", "latex": "--"}
#: Columns printed with a fixed number of decimals from 1 up (parameters in millions;
#: below 1, 4 significant figures as any number).
DECIMALS = {"params_m": 2, "trainable_params_m": 2, "mixer_params_m": 2, "mlp_params_m": 2}


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool, not None, not NaN): a value a table can compare
    or a figure can plot."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _missing(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral) and (
        not math.isfinite(float(value)))


def number(value: float) -> str:
    """4 significant figures; 10,000 and above as a whole number with separators."""
    value = float(value)
    if value == 0:
        return "0"
    if abs(value) >= 1e4:
        return f"{value:,.0f}"
    return f"{value:.4g}" if abs(value) >= 1e-4 else f"{value:.3e}"


def cell(column: str, value: Any, missing: str = MISSING["text"]) -> str:
    """One value as printed."""
    if isinstance(value, tuple):
        if any(_missing(v) for v in value):
            return missing
        return "[" + ", ".join(cell(column, v, missing) for v in value) + "]"
    if _missing(value):
        return missing
    if type(value).__name__ in ("bool", "bool_"):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value if value.strip() else missing
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}" if abs(int(value)) >= 1e4 else str(int(value))
    if isinstance(value, numbers.Real):
        if column in DECIMALS and abs(value) >= 1:
            return f"{float(value):.{DECIMALS[column]}f}"
        return number(value)
    return str(value)


def _numeric(values: Sequence[Any]) -> bool:
    present = [v for v in values if not _missing(v) and not isinstance(v, tuple)]
    return bool(present) and all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                                 for v in present)


def columns_of(records: Sequence[dict[str, Any]]) -> list[str]:
    """Every key of the records, in first-seen order."""
    return list(dict.fromkeys(k for r in records for k in r))


def cells(records: Sequence[dict[str, Any]], columns: Sequence[str] | None = None,
          missing: str = MISSING["text"]) -> tuple[list[str], list[list[str]], list[bool]]:
    """(headers, printed rows, which columns are numeric) for a table."""
    columns = list(columns) if columns is not None else columns_of(records)
    rows = [[cell(c, r.get(c), missing) for c in columns] for r in records]
    numeric = [_numeric([r.get(c) for r in records]) for c in columns]
    return columns, rows, numeric


def text_table(records: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A table for the terminal: right-aligned numbers, left-aligned text."""
    headers, rows, numeric = cells(records, columns, MISSING["text"])
    if not headers:
        return "(no rows)"
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if n else v.ljust(w)
                         for v, w, n in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


#: Characters that markdown reads as markup anywhere in a line (``_`` only at a word's
#: edge, see :func:`markdown_text`).
MARKDOWN_SPECIAL = frozenset("\\`*[]<>|~#&$!")


def markdown_text(text: str) -> str:
    """``text`` shown as itself on one line of markdown (a table cell, a list item): line
    breaks become spaces, and what markdown would read as markup (a ``|`` ending a cell,
    backticks, asterisks, brackets of a link, HTML) is backslash-escaped. An ``_`` inside a
    word, which is not emphasis, stays as it is (``window_size``)."""
    text = " ".join(str(text).splitlines())
    out = []
    for i, ch in enumerate(text):
        inside = 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()
        out.append("\\" + ch if ch in MARKDOWN_SPECIAL or (ch == "_" and not inside) else ch)
    return "".join(out)


def markdown_code(text: str) -> str:
    """``text`` as inline code on one line, fenced with more backticks than it holds."""
    text = " ".join(str(text).splitlines())
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{'`' * (longest + 1)}{pad}{text}{pad}{'`' * (longest + 1)}"


def markdown_table(records: Sequence[dict[str, Any]], columns: Sequence[str] | None = None
                   ) -> str:
    """A GitHub-flavoured markdown table, every header and cell :func:`markdown_text`."""
    headers, rows, numeric = cells(records, columns, MISSING["md"])
    if not headers:
        return "(no rows)"

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(markdown_text(v) for v in values) + " |"

    rule = "|" + "|".join("---:" if n else ":---" for n in numeric) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def latex_escape(text: str) -> str:
    """Text safe inside LaTeX (a caption)."""
    special = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
               "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
               "^": r"\textasciicircum{}"}
    return "".join(special.get(ch, ch) for ch in text)


def latex_table(records: Sequence[dict[str, Any]], caption: str, label: str,
                columns: Sequence[str] | None = None) -> str:
    """A booktabs ``table`` with its caption (pandas' Styler, which needs jinja2)."""
    import pandas as pd

    headers, rows, numeric = cells(records, columns, MISSING["latex"])
    styler = pd.DataFrame(rows, columns=headers).style.hide(axis="index")
    styler = styler.format(escape="latex").format_index(escape="latex", axis=1)
    return styler.to_latex(caption=latex_escape(caption), label=label, hrules=True,
                           position="htbp", position_float="centering",
                           column_format="".join("r" if n else "l" for n in numeric))


def _batch(settings: dict[str, Any]) -> str:
    if settings.get("max_batch"):
        return "the largest batch that fits"
    sizes = settings.get("batch_sizes") or [1]
    return ("batch " if len(sizes) == 1 else "batch sizes ") + ", ".join(map(str, sizes))


def _timing(settings: dict[str, Any]) -> str:
    if not settings.get("latency", True):
        return "complexity only, latency not measured"
    text = (f"latency: median of {settings.get('repeat')} interleaved trials, "
            f"{settings.get('min_time')} s of timed iterations per row")
    if settings.get("target_ci"):
        text += f" (more trials until the 95% interval is within {settings['target_ci']}%)"
    return text + ", 95% two-level bootstrap intervals"


def settings_caption(report: Any) -> str:
    """Device, dtype, batch, threads, mode and timing of a run in one ASCII sentence; for a
    merged report, its runs."""
    env, settings = report.environment, report.settings
    runs = env.get("runs")
    if runs:
        return (f"Rows merged from {len(runs)} run(s): " + "; ".join(
            f"{r['run']} ({r['environment'].get('device_name')}, torch "
            f"{r['environment'].get('torch')})" for r in runs) +
            ". Rows of different runs were not timed together.")
    threads = settings.get("threads") or env.get("threads")
    device = env.get("device_name") or settings.get("device")
    timed = settings.get("latency", True)
    parts = [
        f"{device} ({settings.get('device', env.get('device'))})",
        str(settings.get("dtype", "")),
        _batch(settings) if timed else "",
        f"{threads} CPU thread{'s' if threads != 1 else ''}" if threads and timed else "",
        "training step" if settings.get("mode") == "train" else "inference",
        _timing(settings),
        f"torch {env['torch']}" if env.get("torch") else "",
    ]
    if "dim" in settings:
        parts.append(f"C={settings['dim']}, {settings.get('heads')} heads, window "
                     f"{settings.get('window')}, gnConv order {settings.get('order')}")
    parts.append("GMACs: fvcore multiply-accumulates per sample")
    return "; ".join(p for p in parts if p) + "."
