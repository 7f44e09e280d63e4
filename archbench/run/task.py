"""The unit of work and its result: plain, picklable data. A :class:`Task` says what to
measure; a :class:`RowResult` is one finished row. Neither holds a live model, a plugin
manager or an open file, so a task can be built by hand, sent to another process or
machine, and its rows sent back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archbench.core.settings import RunSettings
from archbench.core.spec import ModelSpec


@dataclass(frozen=True)
class Task:
    """One comparison group at one setting: the models whose timing trials interleave on
    one device (A B C A B C ...), so ratios between them are fair. With
    ``settings.latency`` False a task only counts (compare and sweep then make one task per
    model, so counting can fan out).

    ``positions`` is each spec's place in what the user asked for (the report keeps that
    order whatever finishes first); ``index`` is the task's place in its plan."""

    index: int
    specs: tuple[ModelSpec, ...]
    settings: RunSettings
    positions: tuple[int, ...] = ()
    #: Per spec, its analysis (columns, details) where another task already counted it,
    #: so this one only builds and times it; empty or None: count it here.
    analysis: tuple[tuple[dict[str, Any], dict[str, Any]] | None, ...] = ()

    def __post_init__(self) -> None:
        if not self.positions:
            object.__setattr__(self, "positions", tuple(range(len(self.specs))))

    def counting(self) -> list[Task]:
        """One count-only task per model of this group (the counting half, which needs no
        device of its own and can run anywhere, in parallel)."""
        import dataclasses

        settings = dataclasses.replace(self.settings, latency=False, max_batch=False)
        return [Task(self.index, (spec,), settings, (position,))
                for spec, position in zip(self.specs, self.positions)]

    @property
    def label(self) -> str:
        return ", ".join(f"{spec.name} ({spec.input_desc})" for spec in self.specs)


@dataclass
class RowResult:
    """One row: its ``columns`` (identity, counts, timings), JSON ``details``, ``status``
    (``ok``, ``error``, ``oom`` or ``skipped``), the ``error`` line, and ``where`` it was
    measured (host, process, device, the worker's precision flags and matmul peak).
    ``key`` orders rows as the user asked; ``task`` is the index of the task it came from."""

    task: int
    key: tuple[int, ...]
    columns: dict[str, Any]
    details: dict[str, Any]
    status: str = "ok"
    error: str | None = None
    where: dict[str, Any] = field(default_factory=dict)

    @property
    def row(self) -> dict[str, Any]:
        """The table row: every column, then status and error."""
        return {**self.columns, "status": self.status, "error": self.error}
