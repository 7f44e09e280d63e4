"""Merging run folders (several machines or days) into one report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archbench.core.errors import UsageError
from archbench.report.report import REPORT_VERSION, Report


def load_run(run_dir: Path) -> dict[str, Any]:
    """A run folder's report.json, checked; raises ``UsageError`` for anything else."""
    import json

    path = Path(run_dir) / "report.json"
    if not path.is_file():
        raise UsageError(f"{run_dir}: not an archbench run folder (no report.json)")
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot be read as JSON ({exc})") from None
    version = document.get("report_version") if isinstance(document, dict) else None
    if version != REPORT_VERSION:
        raise UsageError(f"{path}: report version {version!r}; this archbench reads "
                         f"version {REPORT_VERSION}")
    return document


def merge_runs(run_dirs: list[Path], command: str, created: str) -> Report:
    """One report from several runs; each row keeps its run, device and environment."""
    documents = [(Path(d), load_run(d)) for d in run_dirs]
    runs = []
    merged = Report(kind="report", command=command, created=created, environment={},
                    settings={})
    for run_dir, document in documents:
        env = document.get("environment", {})
        runs.append({"run": run_dir.name, "command": document.get("command"),
                     "created": document.get("created"), "environment": env})
        for row in document["rows"]:
            row = dict(row)
            details = row.pop("details", {})
            row.update(run=run_dir.name, device_name=env.get("device_name"),
                       torch_version=env.get("torch"))
            merged.add_row(row, details)
    merged.environment = {"runs": runs}
    devices = sorted({str(r.get("device_name")) for r in merged.rows})
    if len(devices) > 1:
        merged.notes.append(
            "Rows were measured on different devices (" + "; ".join(devices) + "): latency, "
            "throughput and memory compare only between rows of the same device_name."
        )
    return merged
