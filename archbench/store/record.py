"""Recording a run in the results store: its id, the git revision of the working tree it
ran in, and the report document (what the run folder's report.json holds)."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

from archbench.store.database import Store

#: The store's file name in a run's ``--out`` folder (the default store).
STORE_FILE = "archbench.sqlite"


def store_location(out: Path, store: Path | None = None) -> Path:
    """``--store PATH`` (or ``ARCHBENCH_STORE``) where given, else ``<--out>/archbench.sqlite``."""
    return Path(store) if store else Path(out) / STORE_FILE


def new_run_id(created: str | None = None) -> str:
    """A short id, unique and sortable by time to the second: the run's start in UTC and
    six random hex digits, e.g. ``20261130-041502-3fa9c1``."""
    when = dt.datetime.fromisoformat(created) if created else dt.datetime.now(dt.timezone.utc)
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc)
    return f"{when:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def git_revision(folder: Path | None = None) -> tuple[str | None, bool | None]:
    """The commit checked out in the git working tree around ``folder`` (default: the
    current folder) and whether tracked files differ from it; ``(None, None)`` outside a
    working tree or without git."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True,
                                  timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    revision = git("rev-parse", "HEAD")
    if not revision:
        return None, None
    status = git("status", "--porcelain", "--untracked-files=no")
    return revision.strip(), None if status is None else bool(status.strip())


def record_report(path: Path, report: Any, run_id: str, run_dir: Path | None) -> None:
    """Record a session's report under ``run_id``: the document archbench's JSON writer
    renders (so the stored run is its report.json), with the run id and the store noted in
    the report's environment first. Raises ``UsageError``, ``sqlite3.Error`` or ``OSError``
    where the store cannot be written; the report's environment is then left as it was."""
    previous = report.environment.get("store")
    report.environment["store"] = {"run_id": run_id, "path": os.path.abspath(path)}
    try:
        document = report.document()
        with Store(path) as store:
            store.record(run_id, document, complete=report.complete,
                         run_dir=None if run_dir is None else str(run_dir),
                         git=git_revision())
    except BaseException:
        if previous is None:
            report.environment.pop("store", None)
        else:
            report.environment["store"] = previous
        raise
