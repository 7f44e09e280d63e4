"""The errors the core tells apart, and how a failure reads in a row."""

from __future__ import annotations

#: Attribute the plugin manager sets on an exception raised inside a hook implementation:
#: ``(plugin name, hook name)``, so a row's error can say who raised.
ORIGIN_ATTRIBUTE = "_archbench_origin"


class UsageError(Exception):
    """Bad input from the user: the CLI prints the message on one line and exits with code 2.

    Plugins raise it from ``archbench_validate`` (before any model is built) for a
    configuration that cannot work, e.g. an image size the patch size does not divide.
    """


class PluginConflict(Exception):
    """Two plugins answered for the same column or FLOP handler."""


class RowSkipped(Exception):
    """A row deliberately not run (e.g. a size over the memory budget): ``status=skipped``,
    with the ``columns`` known without running it."""

    def __init__(self, reason: str, columns: dict | None = None) -> None:
        super().__init__(reason)
        self.columns = dict(columns or {})


class WorkerDied(RuntimeError):
    """The process (or node) running a task died before the task finished: its unfinished
    rows fail with this message, whatever the executor."""


def error_text(exc: BaseException) -> str:
    """One line for the row's ``error`` column: the plugin and hook that raised (where one
    did), the exception, and where the traceback is."""
    text = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
    if isinstance(exc, (RowSkipped, WorkerDied)):
        return str(exc).splitlines()[0][:500]
    origin = getattr(exc, ORIGIN_ATTRIBUTE, None)
    if origin is not None:
        text = f"plugin {origin[0]!r}, {origin[1]}: {text}"
    return f"{text} (--debug shows the traceback)"
