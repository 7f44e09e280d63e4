"""The results store: one SQLite file (standard library only) that holds every recorded run
and its rows, so that later runs can be compared with earlier ones.

- ``runs``: one row per recorded run: its id, when it started (UTC), kind, command,
  archbench version, device name(s), the git revision of the working tree it ran in (and
  whether that tree had uncommitted changes), its environment, settings, notes and derived
  tables as JSON, whether it finished (``complete``), its run folder, and its row count.
- ``rows``: one row per measured row: its run and position, the identity columns (model,
  arch, variant, input, batch size, device, device name, dtype, mode), its status, every
  column as JSON, its JSON details and its raw latency samples (a list of trials, each a
  list of ms), so a stored run is the run folder's ``report.json`` again (:meth:`document`).

The journal is SQLite's write-ahead log, every connection waits up to
:data:`BUSY_TIMEOUT_S` for another writer, and a run is recorded in one transaction: two
runs recording at once both land, and a crash, a kill or Ctrl-C leaves either the whole
run or none of it. ``PRAGMA user_version`` holds the schema's version.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from archbench.core.errors import UsageError
from archbench.report.baseline import device_name_of

#: The schema's version, in ``PRAGMA user_version``.
SCHEMA_VERSION = 1
#: Seconds a connection waits for another process's write to finish.
BUSY_TIMEOUT_S = 60.0
#: The identity columns of a stored row, as in the report (``device_name``: see
#: :func:`archbench.report.baseline.device_name_of`).
IDENTITY = ("model", "arch", "variant", "input", "batch_size", "device", "device_name",
            "dtype", "mode")
#: The document's fields kept with the run as JSON.
RUN_JSON = ("environment", "settings", "notes", "tables", "columns")

SCHEMA = (
    """CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        created TEXT NOT NULL,
        kind TEXT NOT NULL,
        command TEXT,
        archbench_version TEXT,
        report_version INTEGER,
        device_names TEXT,
        git_revision TEXT,
        git_dirty INTEGER,
        environment TEXT NOT NULL,
        settings TEXT NOT NULL,
        notes TEXT NOT NULL,
        tables TEXT NOT NULL,
        columns TEXT NOT NULL,
        complete INTEGER NOT NULL,
        run_dir TEXT,
        row_count INTEGER NOT NULL)""",
    """CREATE TABLE rows (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        model TEXT, arch TEXT, variant TEXT, input TEXT, batch_size INTEGER, device TEXT,
        device_name TEXT, dtype TEXT, mode TEXT,
        status TEXT,
        columns TEXT NOT NULL,
        details TEXT NOT NULL,
        latency_samples_ms TEXT,
        PRIMARY KEY (run_id, position))""",
    "CREATE INDEX runs_by_created ON runs(created)",
    "CREATE INDEX rows_by_identity ON rows(device_name, model, input)",
)


class Store:
    """An open results store: ``Store(path)`` to record (the file and its folder are made
    where missing), ``Store(path, create=False)`` to read one that must exist. Any problem
    opening it is a ``UsageError`` naming the file."""

    def __init__(self, path: Path, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise UsageError(f"no results store at {self.path} (runs are recorded there as "
                             "they end, unless --no-store; --store PATH or ARCHBENCH_STORE "
                             "for another)")
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S,
                                              isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"results store {self.path}: cannot open it ({exc})") from None
        try:
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA foreign_keys=ON")
            self._schema(create)
        except sqlite3.DatabaseError as exc:
            self.close()
            raise UsageError(f"results store {self.path}: not an archbench results store "
                             f"({exc})") from None
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _schema(self, create: bool) -> None:
        version = self.connection.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise UsageError(f"results store {self.path}: schema version {version}, written "
                             f"by a newer archbench (this one reads version {SCHEMA_VERSION})")
        if version == SCHEMA_VERSION:
            return
        if not create:
            raise UsageError(f"results store {self.path}: not an archbench results store "
                             "(no schema version)")
        with self.transaction():  # a second process creating it at once waits, then sees it
            if self.connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
                return
            tables = self.connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
            if tables:
                raise UsageError(f"results store {self.path}: an SQLite file with other "
                                 "tables, not an archbench results store")
            for statement in SCHEMA:
                self.connection.execute(statement)
            self.connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def transaction(self) -> _Transaction:
        return _Transaction(self.connection)

    # -- writing --------------------------------------------------------------------

    def record(self, run_id: str, document: dict[str, Any], *, complete: bool,
               run_dir: str | None = None, git: tuple[str | None, bool | None] = (None, None)
               ) -> None:
        """Record a report document (the run folder's report.json) under ``run_id``, in one
        transaction; a run of that id recorded before is replaced."""
        environment = document.get("environment") or {}
        rows = list(document.get("rows") or [])
        names = {str(n) for n in (device_name_of(r, environment) for r in rows) if n}
        if not names and environment.get("device_name"):
            names = {str(environment["device_name"])}
        run = (run_id, document.get("created") or "", document.get("kind") or "",
               document.get("command"), document.get("archbench_version"),
               document.get("report_version"), "; ".join(sorted(names)) or None, git[0],
               None if git[1] is None else int(git[1]),
               *(_dumps(document.get(k) or ([] if k in ("notes", "columns") else {}))
                 for k in RUN_JSON),
               int(complete), run_dir, len(rows))
        with self.transaction():
            self.connection.execute("DELETE FROM rows WHERE run_id = ?", (run_id,))
            self.connection.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            self.connection.execute(
                f"INSERT INTO runs VALUES ({', '.join('?' * len(run))})", run)
            self.connection.executemany(
                "INSERT INTO rows VALUES (" + ", ".join("?" * (6 + len(IDENTITY))) + ")",
                (_row_values(run_id, n, row, environment) for n, row in enumerate(rows)))

    # -- reading --------------------------------------------------------------------

    def run(self, run_id: str) -> dict[str, Any]:
        """A stored run's own fields (no rows); UsageError for an id not stored."""
        found = self._runs("WHERE id = ?", (run_id,))
        if not found:
            raise UsageError(f"no run {run_id!r} in the results store {self.path} "
                             "('archbench history' lists them)")
        return found[0]

    def runs(self) -> list[dict[str, Any]]:
        """Stored runs, newest first."""
        return self._runs("", ())

    def _runs(self, where: str, args: Sequence[Any]) -> list[dict[str, Any]]:
        cursor = self.connection.execute(
            f"SELECT * FROM runs {where} ORDER BY created DESC, rowid DESC", tuple(args))
        names = [d[0] for d in cursor.description]
        runs = []
        for values in cursor.fetchall():
            run = dict(zip(names, values))
            for key in RUN_JSON:
                run[key] = json.loads(run[key])
            run["complete"] = bool(run["complete"])
            run["git_dirty"] = None if run["git_dirty"] is None else bool(run["git_dirty"])
            runs.append(run)
        return runs

    def rows(self, run_id: str) -> Iterator[dict[str, Any]]:
        """A stored run's rows as its report.json holds them (each with its ``details``,
        raw latency samples included), in order."""
        cursor = self.connection.execute(
            "SELECT columns, details, latency_samples_ms FROM rows WHERE run_id = ? "
            "ORDER BY position", (run_id,))
        for columns, details, samples in cursor:
            details = json.loads(details)
            if samples is not None:
                details["latency_samples_ms"] = json.loads(samples)
            yield {**json.loads(columns), "details": details}

    def document(self, run_id: str) -> dict[str, Any]:
        """The stored run as the document its run folder's report.json holds."""
        run = self.run(run_id)
        return {"report_version": run["report_version"], "kind": run["kind"],
                "archbench_version": run["archbench_version"], "created": run["created"],
                "command": run["command"], "environment": run["environment"],
                "settings": run["settings"], "notes": run["notes"], "tables": run["tables"],
                "columns": run["columns"], "rows": list(self.rows(run_id))}

    def identities(self, device_name: str | None = None) -> list[dict[str, Any]]:
        """Every stored row's identity, status and run (with the run's ``created`` and
        ``complete``), newest run first; only rows of ``device_name`` where given."""
        where, args = ("WHERE w.device_name = ?", (device_name,)) if device_name else ("", ())
        cursor = self.connection.execute(
            "SELECT w.run_id, r.created, r.complete, w.position, w.status, "
            + ", ".join(f"w.{c}" for c in IDENTITY)
            + f" FROM rows w JOIN runs r ON r.id = w.run_id {where} "
            "ORDER BY r.created DESC, r.rowid DESC, w.position", args)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, values)) for values in cursor.fetchall()]

    def history(self, since: str | None = None) -> list[dict[str, Any]]:
        """Every stored row with its run's id, date, command, git revision and
        completeness, and its columns; newest run first."""
        cursor = self.connection.execute(
            "SELECT r.id AS run, r.created, r.kind, r.command, r.complete, r.git_revision, "
            "r.git_dirty, w.status, w.columns, "
            + ", ".join(f"w.{c}" for c in IDENTITY)
            + " FROM rows w JOIN runs r ON r.id = w.run_id"
            + (" WHERE r.created >= ?" if since else "")
            + " ORDER BY r.created DESC, r.rowid DESC, w.position", (since,) if since else ())
        names = [d[0] for d in cursor.description]
        out = []
        for values in cursor.fetchall():
            entry = dict(zip(names, values))
            entry["columns"] = json.loads(entry["columns"])
            entry["complete"] = bool(entry["complete"])
            out.append(entry)
        return out

    def check(self) -> list[str]:
        """What is wrong with the file: SQLite's integrity check, and runs whose stored rows
        are not the count recorded with them; ``[]`` when consistent."""
        problems = [r[0] for r in self.connection.execute("PRAGMA integrity_check")
                    if r[0] != "ok"]
        problems += [f"run {run_id}: {count} row(s) stored, {expected} recorded"
                     for run_id, expected, count in self.connection.execute(
                         "SELECT r.id, r.row_count, COUNT(w.run_id) FROM runs r LEFT JOIN "
                         "rows w ON w.run_id = r.id GROUP BY r.id HAVING COUNT(w.run_id) "
                         "!= r.row_count")]
        problems += [f"{n} row(s) without their run" for (n,) in self.connection.execute(
            "SELECT COUNT(*) FROM rows WHERE run_id NOT IN (SELECT id FROM runs)") if n]
        return problems


class _Transaction:
    """``BEGIN IMMEDIATE`` (the write lock taken at once, waiting for another writer up to
    the busy timeout), then ``COMMIT``; anything raised inside, Ctrl-C included, rolls
    back."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> sqlite3.Connection:
        self.connection.execute("BEGIN IMMEDIATE")
        return self.connection

    def __exit__(self, kind: type | None, *exc: object) -> None:
        if kind is None:
            self.connection.execute("COMMIT")
        elif self.connection.in_transaction:
            self.connection.execute("ROLLBACK")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _row_values(run_id: str, position: int, row: dict[str, Any],
                environment: dict[str, Any]) -> tuple:
    details = dict(row.get("details") or {})
    samples = details.pop("latency_samples_ms", None)
    columns = {k: v for k, v in row.items() if k != "details"}
    identity = [columns.get(c) for c in IDENTITY]
    identity[IDENTITY.index("device_name")] = device_name_of(row, environment)
    return (run_id, position, *identity, columns.get("status"), _dumps(columns),
            _dumps(details), None if samples is None else _dumps(samples))
