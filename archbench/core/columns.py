"""Merging hook answers into a row: scalar columns for the table, the rest for the JSON."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from archbench.core.errors import PluginConflict


class Answer(dict):
    """A hook's dict answer (columns, FLOP handlers), marked by the plugin manager with the
    plugin that gave it. A dict in every other way, so hook wrappers read and change it."""

    plugin: str = "a hook wrapper"

    def __init__(self, *args: Any, plugin: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if plugin is not None:
            self.plugin = plugin


def owner(answer: Any) -> str:
    """The plugin that gave a hook answer (dicts a wrapper adds itself are unmarked)."""
    return getattr(answer, "plugin", "a hook wrapper")


def merge_answers(answers: Iterable[Mapping[str, Any] | None], what: str = "column"
                  ) -> dict[str, Any]:
    """One dict from several plugins' answers; a key given twice is a PluginConflict that
    names both plugins."""
    merged: dict[str, Any] = {}
    owners: dict[str, str] = {}
    for answer in answers:
        for key, value in (answer or {}).items():
            if key in owners:
                raise PluginConflict(f"{what} {key!r} is returned by both {owners[key]!r} "
                                     f"and {owner(answer)!r}")
            owners[key] = owner(answer)
            merged[key] = value
    return merged


def split_columns(merged: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Scalars become table columns; dicts, lists and tuples stay in the JSON details."""
    columns: dict[str, Any] = {}
    details: dict[str, Any] = {}
    for key, value in merged.items():
        (details if isinstance(value, (dict, list, tuple)) else columns)[key] = value
    return columns, details
