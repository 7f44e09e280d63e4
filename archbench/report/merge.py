"""Merging run folders (several machines or days) into one report."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from archbench.core.errors import UsageError
from archbench.report.report import REPORT_VERSION, Report


def load_run(run_dir: Path) -> dict[str, Any]:
    """A run folder's report.json, checked; raises ``UsageError`` for anything else."""
    path = Path(run_dir) / "report.json"
    if not path.is_file():
        raise UsageError(f"{run_dir}: not an archbench run folder (no report.json)")
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot be read as JSON ({exc})") from None
    if not isinstance(document, dict) or "report_version" not in document:
        raise UsageError(f"{path}: not an archbench report (JSON without report_version)")
    version = document["report_version"]
    if version != REPORT_VERSION:
        raise UsageError(f"{path}: report version {version!r}; this archbench reads "
                         f"version {REPORT_VERSION}")
    problem = _malformed(document)
    if problem:
        raise UsageError(f"{path}: not an archbench report ({problem})")
    return document


#: What every row of an archbench report holds, as text.
ROW_KEYS = ("model", "arch", "input", "status")


def _malformed(document: dict[str, Any]) -> str | None:
    """What a report.json of this version lacks that merging needs, or None."""
    rows, environment = document.get("rows"), document.get("environment", {})
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        return "'rows' is not a list of rows"
    if not isinstance(environment, dict):
        return "'environment' is not an object"
    runs = environment.get("runs", [])
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        return "'environment.runs' is not a list of runs"
    names = {r.get("run") for r in runs}
    for n, row in enumerate(rows):
        lacking = [k for k in ROW_KEYS if not isinstance(row.get(k), str)]
        if lacking or not isinstance(row.get("details", {}), dict):
            return f"row {n + 1} has no {(lacking or ['details'])[0]!r}"
        if document.get("kind") == "report" and row.get("run") not in names:
            return f"row {n + 1}'s run {row.get('run')!r} is not in 'environment.runs'"
    return None


def _sources(name: str, document: dict[str, Any]
             ) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """The runs a report.json holds, each with its rows (each with its own ``run``,
    ``device_name`` and ``torch_version``): one for a run folder, each of its runs for a
    merged report (whose rows keep the run and device they were measured in). Each run
    carries a ``fingerprint`` of its report and its ``row_count``, which a merged report
    keeps, so that a run is known again wherever it is given."""
    env = document.get("environment", {})
    rows = [dict(r) for r in document["rows"]]
    if document.get("kind") == "report":
        runs = env.get("runs", [])
        counts = [r.get("row_count") for r in runs]
        if all(isinstance(c, int) for c in counts) and sum(counts) == len(rows):
            starts = [sum(counts[:n]) for n in range(len(runs))]
            yield from ((run, rows[s:s + c]) for run, s, c in zip(runs, starts, counts))
        else:  # merged before runs were counted: by name
            yield from ((run, [r for r in rows if r.get("run") == run.get("run")])
                        for run in runs)
        return
    digest = hashlib.sha256(json.dumps(
        [document.get(k) for k in ("created", "command", "environment", "rows")],
        sort_keys=True, default=str).encode()).hexdigest()[:16]
    run = {"run": name, "kind": document.get("kind"),
           "command": document.get("command"), "created": document.get("created"),
           "environment": env, "fingerprint": digest, "row_count": len(rows)}
    yield run, [{**row, "run": name, "device_name": env.get("device_name"),
                 "torch_version": env.get("torch")} for row in rows]


def _renamed(run: dict[str, Any], rows: list[dict[str, Any]], taken: set[Any]
             ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run and its rows under a name no earlier run of the merge has: two runs whose
    folders have the same name (the same command started in the same second, in two
    ``--out`` folders or on two machines) stay two runs, ``name (2)`` the second."""
    name, n = run.get("run"), 1
    while name in taken:
        n += 1
        name = f"{run.get('run')} ({n})"
    if name == run.get("run"):
        return run, rows
    return {**run, "run": name}, [{**row, "run": name} for row in rows]


def _warn(message: str) -> None:
    print(f"archbench: warning: {message}", file=sys.stderr)


def merge_runs(run_dirs: list[Path], command: str, created: str,
               warn: Callable[[str], None] = _warn,
               documents: Sequence[tuple[str, dict[str, Any]]] = ()) -> Report:
    """One report from several runs (run folders, or merged reports: their runs; and
    report documents already read, by name: runs from the results store); each row keeps
    its run, device and environment. A run given twice (the same folder, or a merged
    report and one of its runs) is warned about and its rows counted once."""
    sources = [(Path(d).name, str(d), load_run(d)) for d in run_dirs]
    sources += [(name, f"the results store's run {name}", doc) for name, doc in documents]
    runs = []
    seen: dict[tuple, str] = {}
    merged = Report(kind="report", command=command, created=created, environment={},
                    settings={})
    for name, run_dir, document in sources:
        for run, rows in _sources(name, document):
            identity = run.get("fingerprint") or (run.get("run"), run.get("created"),
                                                  run.get("command"))
            if identity in seen:
                warn(f"run {run.get('run')!r} is in {seen[identity]} and again in {run_dir}; "
                     "its rows are counted once")
                continue
            seen[identity] = run_dir
            run, rows = _renamed(run, rows, {r.get("run") for r in runs})
            runs.append(run)
            for row in rows:
                details = row.pop("details", {})
                merged.add_row(row, details)
    merged.environment = {"runs": runs}
    devices = sorted({str(r.get("device_name")) for r in merged.rows})
    if len(devices) > 1:
        merged.notes.append(
            "Rows were measured on different devices (" + "; ".join(devices) + "): latency, "
            "throughput and memory compare only between rows of the same device_name."
        )
    timed = {r["run"] for r in merged.rows if r.get("latency_ms_median") is not None}
    if len(timed) > 1:
        merged.notes.append(
            "Latencies of different runs were not measured together: only rows of one run "
            "had their trials interleaved, so a ratio of latencies across runs also holds "
            "whatever drifted between the sessions (load, clocks, temperature); no ratio "
            "table is made across runs.")
    from archbench.report.frontier import frontier_tables

    merged.tables.update(frontier_tables(merged))  # one accuracy frontier per device
    return merged
