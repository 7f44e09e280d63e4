"""The local executor: tasks run one after another in this process, exactly as they would
in a worker, and their rows stream back as they finish."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from archbench.core.errors import UsageError
from archbench.core.settings import RunSettings
from archbench.run.task import RowResult, Task


class LocalExecutor:
    """Runs each submitted task in this process with this process's plugin manager."""

    def __init__(self, pm: Any, progress: Callable[[str], None] = lambda _: None,
                 address: str | None = None, retries: int = 0) -> None:
        if address:
            raise UsageError("--ray-address applies to --executor ray")
        self.pm = pm
        self.progress = progress
        self.queue: deque[Task] = deque()

    def resolve_device(self, device: str) -> str:
        from archbench.measure.device import resolve_device

        return resolve_device(device)

    def amp_dtype(self, device: str) -> str:
        from archbench.measure.device import amp_dtype

        return amp_dtype(device)

    def memory_budget_mb(self, settings: RunSettings) -> float:
        from archbench.measure.device import memory_budget_mb

        return memory_budget_mb(settings)

    def submit(self, tasks: Sequence[Task]) -> None:
        self.queue.extend(tasks)

    def results(self) -> Iterator[RowResult]:
        from archbench.run.worker import run_task

        total = len(self.queue)
        while self.queue:
            task = self.queue.popleft()
            self.progress(f"[task {total - len(self.queue)}/{total}] {task.label}")
            yield from run_task(self.pm, task, self.progress)

    def cancel(self) -> None:
        self.queue.clear()

    def close(self) -> None:
        self.queue.clear()

