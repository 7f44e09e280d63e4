"""The session: the only writer of a run. It owns the run folder, the report and its
environment, writes every file atomically after every finished row, adds the derived tables
when the run ends, turns Ctrl-C and SIGTERM into a clean stop (every finished row on disk),
and decides the exit code, the same way for every command."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from archbench.core.errors import UsageError
from archbench.report.report import Report, ReportWriter, plain_row, write_files
from archbench.run.executor import Executor
from archbench.run.plan import Plan
from archbench.run.task import RowResult

EXIT_OK = 0
#: Some row's status is ``error`` or ``oom``.
EXIT_FAILED_ROWS = 1
#: Bad input, reported in one line before any model is built (raised as UsageError, which
#: the command prints).
EXIT_USAGE = 2
#: ``--fail-on``: a gate tripped against ``--baseline`` (the run wrote everything). Failed
#: rows take precedence: a run with failed rows exits 1 even where a gate also tripped.
EXIT_REGRESSION = 3
#: Ctrl-C or SIGTERM; every finished row is in the files.
EXIT_INTERRUPTED = 130
#: Statuses that make a run fail (``skipped`` rows were not run on purpose).
FAILED = ("error", "oom")
#: What the worker reports about where it measured that the report's environment keeps.
WORKER_ENVIRONMENT = ("threads", "tf32_matmul", "tf32_cudnn", "cudnn_benchmark",
                      "float32_matmul_precision", "matmul_peak_gmacs_per_s")


def report_writers(pm: Any) -> dict[str, ReportWriter]:
    """Format name → writer; a later plugin's writer replaces an earlier one's."""
    return {w.format: w for ws in reversed(pm.hook.archbench_report_writers()) for w in ws}


def choose_writers(pm: Any, formats: Sequence[str]) -> list[ReportWriter]:
    writers = report_writers(pm)
    unknown = [f for f in formats if f not in writers]
    if unknown:
        raise UsageError(f"--format {unknown[0]!r}: choose from {', '.join(sorted(writers))}")
    chosen = formats or [f for f, w in writers.items() if getattr(w, "default", True)]
    return [writers[f] for f in dict.fromkeys(chosen)]


def folder_name(kind: str, names: Sequence[str], limit: int = 60) -> str:
    """``<date>-<time>-<kind>-<what was asked>``, made safe for a file name and a shell
    glob (``swin:tiny[window_size=14]`` → ``swin-tiny-window_size-14``), and shortened with
    a hash of the whole when long."""
    asked = "_".join(dict.fromkeys(names))
    safe = "_".join(re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9_.+@-]", "-", name)).strip("-")
                    for name in dict.fromkeys(names))
    if len(safe) > limit:
        safe = safe[:limit - 7].rstrip("-_") + "-" + hashlib.sha1(asked.encode()).hexdigest()[:6]
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{kind}-{safe}" if safe else f"{stamp}-{kind}"


def make_run_dir(out: Path, kind: str, names: Sequence[str]) -> Path:
    """A fresh folder under ``out``; UsageError if it cannot be written."""
    base = folder_name(kind, names)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for n in range(1000):
            run_dir = out / (base if n == 0 else f"{base}-{n}")
            try:
                run_dir.mkdir()
                break
            except FileExistsError:
                continue
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None
    return run_dir


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM stops the run like Ctrl-C does (in the main thread, where signals arrive)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class ReportFiles:
    """The report files of a run folder, rewritten together (:func:`write_files`). A writer
    that raises costs its own files only: one warning, its files are removed rather than
    left behind the others, and it is not asked again; the other files are written all the
    same, and the exit code does not change."""

    def __init__(self, writers: Sequence[ReportWriter], folder: Path) -> None:
        self.writers = list(writers)
        self.folder = Path(folder)
        #: Format → why its writer failed.
        self.failed: dict[str, str] = {}
        #: Format → the files its writer wrote.
        self.names: dict[str, set[str]] = {}

    def write(self, report: Report) -> None:
        files: dict[str, str | bytes] = {}
        for writer in self.writers:
            if writer.format in self.failed:
                continue
            try:
                rendered = writer.files(report)
            except Exception as exc:
                self.fail(writer, exc)
                continue
            self.names.setdefault(writer.format, set()).update(rendered)
            files.update(rendered)
        write_files(self.folder, files)

    def fail(self, writer: ReportWriter, exc: Exception) -> None:
        self.failed[writer.format] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        others = set().union(*(n for f, n in self.names.items() if f != writer.format))
        mine = sorted((self.names.pop(writer.format, set()) | {writer.filename}) - others)
        for name in mine:
            (self.folder / name).unlink(missing_ok=True)
        by = f" (plugin {writer.plugin!r})" if writer.plugin else ""
        print(f"archbench: warning: report writer {writer.format!r}{by} failed: "
              f"{self.failed[writer.format]}; {', '.join(mine)} not written, the other "
              "reports are", file=sys.stderr)


class Session:
    """One run of a plan: ``Session(plan, writers, out, ...)`` makes the run folder
    (UsageError if it cannot be written); ``run(executor)`` runs the plan and returns the
    exit code, leaving ``report`` and ``run_dir`` for the command to print."""

    def __init__(self, plan: Plan, writers: Sequence[ReportWriter], out: Path, command: str,
                 progress: Callable[[str], None] = lambda _: None, *,
                 figure_format: str = "png", columns: Sequence[str] = (),
                 store: Path | None = None, baseline: Any = None) -> None:
        self.plan = plan
        self.progress = progress
        self.writers = list(writers)
        self.run_dir = make_run_dir(out, plan.kind, plan.names)
        self.files = ReportFiles(self.writers, self.run_dir)
        #: Columns whose values had to be stored as text (warned about once each).
        self.texts: set[str] = set()
        self.report = Report(kind=plan.kind, command=command,
                             created=dt.datetime.now(dt.timezone.utc).isoformat(
                                 timespec="seconds"),
                             environment={}, settings=plan.settings,
                             figure_format=figure_format, columns=list(columns))
        self.interrupted = False
        #: Each worker host's environment, as its rows arrive.
        self.environments: dict[str, dict[str, Any]] = {}
        #: The results store the run is recorded in when it ends (None: ``--no-store``),
        #: under this id; the baseline (:class:`archbench.report.baseline.Baseline`) its
        #: rows are compared with, and the gates' regressions, one line each.
        self.store = store
        self.run_id: str | None = None
        self.baseline = baseline
        self.regressions: list[str] = []

    def run(self, executor: Executor) -> int:
        """Run every task; Ctrl-C or SIGTERM at any point (even while the tables and figures
        are drawn) stops the run with every finished row on disk."""
        with sigterm_interrupts():
            try:
                self.execute(executor)
            except KeyboardInterrupt:
                self.interrupted = True
                with contextlib.suppress(KeyboardInterrupt):
                    executor.cancel()
            finally:
                with contextlib.suppress(KeyboardInterrupt):
                    executor.close()
            if self.interrupted:  # the finished rows, their tables, no figures
                self.report.complete = False
                with contextlib.suppress(KeyboardInterrupt):
                    self.conclude()
                with contextlib.suppress(KeyboardInterrupt):
                    self.record()
                self.write()
                return EXIT_INTERRUPTED
        if any(row["status"] in FAILED for row in self.report.rows):
            return EXIT_FAILED_ROWS
        return EXIT_REGRESSION if self.regressions else EXIT_OK

    def execute(self, executor: Executor) -> None:
        self.report.complete = False
        self.write()  # whole (empty) files from the start
        executor.submit(self.plan.tasks)
        for result in executor.results():
            self.add(result)
        self.finish()

    def add(self, result: RowResult) -> None:
        where = dict(result.where)
        self.note_environment(where.pop("environment", None), where)
        details = {**result.details, "group": result.task, "where": where}
        row, notes = plain_row(result.row)
        if notes:
            details["value_notes"] = list(notes.values())
            for column in notes.keys() - self.texts:
                self.texts.add(column)
                print(f"archbench: warning: {row.get('model')}: {notes[column]}",
                      file=sys.stderr)
        self.report.add_row(row, details, result.key)
        self.write()

    def note_environment(self, environment: dict[str, Any] | None, where: dict[str, Any]
                         ) -> None:
        """The report's environment is the first worker's; every host's is kept under
        ``nodes`` once there are several, and rows from different device models are
        flagged, as in ``archbench report``."""
        if environment is not None:
            # what the worker set (--threads, precision flags) over what it found at start
            environment = {**environment,
                           **{key: where[key] for key in WORKER_ENVIRONMENT if key in where}}
            host = str(where.get("host"))
            self.environments.setdefault(host, environment)
            if not self.report.environment:
                self.report.environment.update(environment)
            if len(self.environments) > 1:
                self.report.environment["nodes"] = self.environments
        names = {str(e.get("device_name")) for e in self.environments.values()}
        if len(names) > 1:
            self.report.notes[:] = [
                "Rows were measured on different devices (" + "; ".join(sorted(names)) +
                "): latency, throughput and memory compare only between rows of the same "
                "device_name (details.where.device_name in report.json)."]

    def finish(self) -> None:
        """The derived tables, the notes and the figures, then the last write."""
        self.conclude()
        self.report.complete = True
        self.record()
        self.write()

    def conclude(self) -> None:
        """What the finished rows say together: the derived tables, and the notes on rows
        that cannot be trusted (timed on a busy machine, short of ``--target-ci``)."""
        from archbench.report.trust import trust_notes

        self.report.tables = self.derived_tables()
        if self.baseline is not None:
            from archbench.report.baseline import against_baseline

            self.regressions = against_baseline(self.report, self.baseline)
        self.report.notes += [n for n in trust_notes(self.report.rows, self.report.settings)
                              if n not in self.report.notes]

    def derived_tables(self) -> dict[str, list[dict[str, Any]]]:
        from archbench.report.tables import DERIVED

        tables: dict[str, list[dict[str, Any]]] = {}
        for name in self.plan.tables:
            tables.update(DERIVED[name](self.report))
        return tables

    def record(self) -> None:
        """Record the run in the results store (once it ends: finished, with failed rows,
        or interrupted, then ``complete`` false), in one transaction; a store that cannot
        be written costs one warning, never the run."""
        if self.store is None:
            return
        import sqlite3

        from archbench.store import new_run_id, record_report

        run_id = self.run_id or new_run_id(self.report.created)
        try:
            record_report(self.store, self.report, run_id, self.run_dir)
        except (UsageError, sqlite3.Error, OSError) as exc:
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(f"archbench: warning: the run was not recorded in the results store "
                  f"{self.store} ({why}); its reports are in {self.run_dir}", file=sys.stderr)
            return
        self.run_id = run_id  # only once the transaction is committed

    def write(self) -> None:
        self.files.write(self.report)


def write_merged(pm: Any, run_dirs: Sequence[Path], out: Path, command: str,
                 documents: Sequence[tuple[str, dict[str, Any]]] = ()
                 ) -> tuple[Report, Path]:
    """``archbench report``: several run folders (or stored runs' documents, by name)
    merged into a fresh one under ``out``."""
    from archbench.report.merge import merge_runs

    merged = merge_runs(list(run_dirs), command,
                        dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                        documents=documents)
    run_dir = make_run_dir(out, "report", sorted({r["arch"] for r in merged.rows}))
    ReportFiles(choose_writers(pm, ()), run_dir).write(merged)
    return merged, run_dir
