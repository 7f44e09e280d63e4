"""Core plugin: the csv, md and json report writers (written by default), and latex
(report.tex, with ``--format latex``)."""

from __future__ import annotations

import json

from archbench import hookimpl
from archbench.report.cells import (
    MISSING,
    cell,
    latex_table,
    markdown_code,
    markdown_table,
    markdown_text,
)
from archbench.report.report import COLUMN_NOTES, Report, ReportWriter


def render_csv(report: Report) -> str:
    return report.frame().to_csv(index=False)


def render_json(report: Report) -> str:
    return json.dumps(report.document(), indent=2) + "\n"


def _environment_lines(env: dict) -> list[str]:
    keys = [
        ("device_name", "device"), ("cpu", "CPU"), ("threads", "threads"),
        ("torch", "torch"), ("timm", "timm"), ("fvcore", "fvcore"), ("cuda", "CUDA"),
        ("cudnn", "cuDNN"), ("os", "OS"), ("python", "Python"),
    ]
    return [f"- {label}: {env[key]}" for key, label in keys if env.get(key) not in (None, "")]


def _runs_lines(runs: list[dict]) -> list[str]:
    return [f"- run {markdown_code(r['run'])}: {markdown_code(r['command'])} on "
            f"{markdown_text(r['environment'].get('device_name'))} "
            f"(torch {r['environment'].get('torch')}, {r['created']})" for r in runs]


def _failed_lines(report: Report) -> list[str]:
    failed = [r for r in report.rows if r.get("status") not in ("ok", None)]
    if not failed:
        return []
    return ["", "## Failed rows", "", *(
        f"- {markdown_text(r['model'])} ({markdown_text(r.get('input'))}, batch "
        f"{cell('batch_size', r.get('batch_size'))}): {markdown_text(r['status'])}: "
        f"{markdown_text(r.get('error') or MISSING['md'])}" for r in failed)]


def _uncounted_lines(report: Report) -> list[str]:
    shown: dict[str, str] = {}
    for row in report.rows:
        if row.get("unsupported_ops"):
            shown.setdefault(row["model"], row["unsupported_ops"])
    if not shown:
        return []
    return ["", "## Operators not counted", "",
            "fvcore saw these operators and no handler counted them (element-wise work such "
            "as adds, activations and softmax; counts per model in report.json):", "",
            *(f"- {markdown_text(model)}: {markdown_text(ops)}" for model, ops in shown.items())]


def _figure_lines(report: Report) -> tuple[list[str], dict[str, bytes]]:
    """The figures section and the figure files; drawn once, when the run is done."""
    from archbench.report.plots import figures, unavailable

    if not report.complete:
        return [], {}
    missing = unavailable()
    if missing:
        return ["", "## Figures", "", f"> **Note:** no figures: {missing}; reinstall "
                "archbench (matplotlib is one of its dependencies)."], {}
    drawn = figures(report)
    lines = ["", "## Figures"] if drawn else []
    files: dict[str, bytes] = {}
    for figure in drawn:
        png = f"{figure.stem}.png"
        others = [name for name in figure.files if name != png]
        links = "".join(f" [{name.rsplit('.', 1)[1].upper()}]({name})" for name in others)
        lines += ["", f"![{figure.stem}]({png})", "",
                  f"*{figure.description} {report.caption()}*{links}"]
        files.update(figure.files)
    return lines, files


def render_markdown(report: Report) -> str | dict[str, str | bytes]:
    summary = report.summary_columns()
    names = set(report.frame().columns) | set(summary)
    lines = [
        f"# archbench {report.kind}",
        "",
        f"`{report.command}` — {report.created}",
        "",
        *[f"> **Note:** {note}" for note in report.notes],
        *_environment_lines(report.environment),
        *_runs_lines(report.environment.get("runs", [])),
        "",
        markdown_table(report.summary_records(), summary)
        if report.rows else "(no rows)",
        "",
        f"*{report.caption()}*",
        "",
        "## Columns",
        "",
        *[f"- `{c}`: {note}" for c, note in COLUMN_NOTES.items() if c in names],
        "- Every column is in report.csv and report.json; report.json also keeps per-row "
        "details (per-layer formulas, FLOPs by operator, raw latency samples).",
    ]
    for title, rows in report.tables.items():
        if rows:
            lines += ["", f"## {title}", "", markdown_table(rows)]
    lines += _failed_lines(report) + _uncounted_lines(report)
    figure_lines, files = _figure_lines(report)
    text = "\n".join(lines + figure_lines) + "\n"
    return {"report.md": text, **files} if files else text


def render_latex(report: Report) -> str:
    """report.tex: the summary table (captioned with the run's settings) and the derived
    tables, as booktabs tables to \\input into a paper."""
    parts = [f"% archbench {report.kind}: {report.command}",
             "% needs \\usepackage{booktabs}; wide tables may need \\small or landscape",
             ""]
    if not report.rows:
        return "\n".join(parts + ["% no rows"]) + "\n"
    parts.append(latex_table(report.summary_records(),
                             f"archbench {report.kind}: {report.caption()}",
                             f"tab:archbench-{report.kind}", report.summary_columns()))
    for i, (title, rows) in enumerate(report.tables.items(), start=1):
        if rows:
            parts.append(latex_table(rows, title, f"tab:archbench-{report.kind}-{i}"))
    return "\n".join(parts)


@hookimpl
def archbench_report_writers() -> list[ReportWriter]:
    return [
        ReportWriter("csv", "report.csv", render_csv),
        ReportWriter("md", "report.md", render_markdown),
        ReportWriter("json", "report.json", render_json),
        ReportWriter("latex", "report.tex", render_latex, default=False),
    ]
