"""The executor protocol: where tasks run. ``submit`` tasks, iterate ``results()`` for rows
as they finish, ``cancel()`` what is outstanding, ``close()`` when done. The local executor
runs tasks in this process; the Ray executor runs :func:`archbench.run.worker.run_task` in
its workers and sends the rows back.

An executor also answers the plan's questions about the machines it runs on (which device
``auto`` means, whether bf16 is there for ``--amp``, the memory budget), since those are
the workers' facts, not the driver's."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from archbench.core.errors import UsageError
from archbench.core.settings import RunSettings
from archbench.run.task import RowResult, Task


class Executor(Protocol):
    def resolve_device(self, device: str) -> str:
        """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` → the device the tasks will run on;
        UsageError where there is none."""

    def amp_dtype(self, device: str) -> str:
        """``--amp``'s dtype on ``device``: bf16, or fp16 on GPUs without bf16."""

    def memory_budget_mb(self, settings: RunSettings) -> float:
        """``--max-memory``, or 90% of a worker device's free memory, in MB."""

    def submit(self, tasks: Sequence[Task]) -> None:
        """Queue tasks; nothing need run before ``results()`` is iterated."""

    def results(self) -> Iterator[RowResult]:
        """Rows of the submitted tasks, each as soon as it is finished."""

    def cancel(self) -> None:
        """Drop every task not yet finished (called on Ctrl-C or SIGTERM)."""

    def close(self) -> None:
        """Release what the executor holds (processes, clusters it started)."""


#: Executor name → ``module:Class``, imported only when chosen (a distributed executor's
#: library stays out of start-up). The class is called with the plugin manager, a progress
#: callback and the executor options (``address``, ``retries``).
EXECUTORS: dict[str, str] = {
    "local": "archbench.run.local:LocalExecutor",
    "ray": "archbench.run.ray_executor:RayExecutor",
}


def make_executor(name: str, pm: Any, progress: Callable[[str], None], **options: Any
                  ) -> Executor:
    """The executor registered as ``name``, made with ``options``; UsageError for an
    unknown one, or one that cannot start (a missing library, an unreachable cluster)."""
    import importlib

    if name not in EXECUTORS:
        raise UsageError(f"--executor {name!r}: choose from {', '.join(sorted(EXECUTORS))}")
    module, _, cls = EXECUTORS[name].partition(":")
    return getattr(importlib.import_module(module), cls)(pm, progress, **options)
