"""The executor protocol: where tasks run. ``submit`` tasks, iterate ``results()`` for rows
as they finish, ``cancel()`` what is outstanding, ``close()`` when done. The local executor
runs tasks in this process; a distributed one runs :func:`archbench.run.worker.run_task` in
its workers and sends the rows back, and needs nothing more than this."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from archbench.core.errors import UsageError
from archbench.run.task import RowResult, Task


class Executor(Protocol):
    def submit(self, tasks: Sequence[Task]) -> None:
        """Queue tasks; nothing need run before ``results()`` is iterated."""

    def results(self) -> Iterator[RowResult]:
        """Rows of the submitted tasks, each as soon as it is finished."""

    def cancel(self) -> None:
        """Drop every task not yet finished (called on Ctrl-C or SIGTERM)."""

    def close(self) -> None:
        """Release what the executor holds (processes, clusters it started)."""


#: Executor name → ``module:Class``, imported only when chosen (a distributed executor's
#: library stays out of start-up). The class is called with the plugin manager and a
#: progress callback.
EXECUTORS: dict[str, str] = {"local": "archbench.run.local:LocalExecutor"}


def make_executor(name: str, pm: Any, progress: Callable[[str], None]) -> Executor:
    """The executor registered as ``name``; UsageError for an unknown one."""
    import importlib

    if name not in EXECUTORS:
        raise UsageError(f"--executor {name!r}: choose from {', '.join(sorted(EXECUTORS))}")
    module, _, cls = EXECUTORS[name].partition(":")
    return getattr(importlib.import_module(module), cls)(pm, progress)
