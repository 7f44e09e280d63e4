"""Core plugin: the csv, md and json report writers."""

from __future__ import annotations

import json

from archbench import hookimpl
from archbench.report.report import COLUMN_NOTES, REPORT_VERSION, Report, ReportWriter, jsonable


def render_csv(report: Report) -> str:
    return report.frame().to_csv(index=False)


def render_json(report: Report) -> str:
    from archbench import __version__

    frame = report.frame()
    rows = []
    for record, details in zip(frame.to_dict(orient="records"), report.details):
        rows.append({**record, "details": details})
    document = {
        "report_version": REPORT_VERSION,
        "kind": report.kind,
        "archbench_version": __version__,
        "created": report.created,
        "command": report.command,
        "environment": report.environment,
        "settings": report.settings,
        "notes": report.notes,
        "tables": report.tables,
        "columns": list(frame.columns),
        "rows": rows,
    }
    return json.dumps(jsonable(document), indent=2) + "\n"


def _environment_lines(env: dict) -> list[str]:
    keys = [
        ("device_name", "device"), ("cpu", "CPU"), ("threads", "threads"),
        ("torch", "torch"), ("timm", "timm"), ("fvcore", "fvcore"), ("cuda", "CUDA"),
        ("cudnn", "cuDNN"), ("os", "OS"), ("python", "Python"),
    ]
    return [f"- {label}: {env[key]}" for key, label in keys if env.get(key) not in (None, "")]


def _runs_lines(runs: list[dict]) -> list[str]:
    return [f"- run `{r['run']}`: `{r['command']}` on {r['environment'].get('device_name')} "
            f"(torch {r['environment'].get('torch')}, {r['created']})" for r in runs]


def render_markdown(report: Report) -> str | dict[str, str | bytes]:
    import pandas as pd

    frame = report.frame()
    summary = report.summary_frame()
    lines = [
        f"# archbench {report.kind}",
        "",
        f"`{report.command}` — {report.created}",
        "",
        *[f"> **Note:** {note}" for note in report.notes],
        *_environment_lines(report.environment),
        *_runs_lines(report.environment.get("runs", [])),
        "",
        summary.to_markdown(index=False, floatfmt=".4g") if len(summary) else "(no rows)",
        "",
        "## Columns",
        "",
        *[f"- `{c}`: {note}" for c, note in COLUMN_NOTES.items() if c in frame],
        "- Every column is in report.csv and report.json; report.json also keeps per-row "
        "details (per-layer formulas, FLOPs by operator, raw latency samples).",
    ]
    for title, rows in report.tables.items():
        if rows:
            lines += ["", f"## {title}", "",
                      pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4g")]
    failed = frame[frame["status"] != "ok"] if "status" in frame else frame.iloc[0:0]
    if len(failed):
        lines += ["", "## Failed rows", ""]
        lines += [f"- {r.model} ({r.input}, batch {r.batch_size}): {r.status}: {r.error}"
                  for r in failed.itertuples()]
    if "unsupported_ops" in frame:
        shown = frame.drop_duplicates("model")
        shown = shown[shown["unsupported_ops"].fillna("") != ""]
        if len(shown):
            lines += ["", "## Operators not counted", "",
                      "fvcore saw these operators and no handler counted them (element-wise "
                      "work such as adds, activations and softmax; counts per model in "
                      "report.json):", ""]
            lines += [f"- {r.model}: {r.unsupported_ops}" for r in shown.itertuples()]
    from archbench.report.plots import figures

    # {} without matplotlib (the optional ``plot`` extra); drawn once, when the run is done
    pngs = figures(report) if report.complete else {}
    if pngs:
        lines += ["", "## Figures", ""]
        lines += [f"![{name.removesuffix('.png')}]({name})\n" for name in pngs]
        return {"report.md": "\n".join(lines) + "\n", **pngs}
    return "\n".join(lines) + "\n"


@hookimpl
def archbench_report_writers() -> list[ReportWriter]:
    return [
        ReportWriter("csv", "report.csv", render_csv),
        ReportWriter("md", "report.md", render_markdown),
        ReportWriter("json", "report.json", render_json),
    ]
