"""The target syntax: one argument per model, read like the row names the tool prints.

``ARCH[:VARIANT][+MIXER][[KEY=VALUE,...]][@SIZE]``, e.g. ``swin:tiny``, ``swin:tiny+msa``,
``'swin:tiny[window_size=14]'``, ``vit:small@384`` (image side, or sequence length for a
token model), or all at once: ``'swin:tiny+gnconv[depths=(2,2,2,2)]@256'``. Each target's
own mixer, overrides and size win over the run-level ``--mixer``, ``--set`` and
``--img-size``/``--seq-len``, so a baseline and its ablations run, interleaved, in one run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from archbench.core.errors import UsageError

_TARGET = re.compile(
    r"(?P<arch>[^:+\[\]@\s]+)(?::(?P<variant>[^+\[\]@\s]*))?(?:\+(?P<mixer>[^\[\]@\s]+))?"
    r"(?:\[(?P<overrides>.*)\])?(?:@(?P<size>\S*))?"
)
SYNTAX = "ARCH[:VARIANT][+MIXER][[KEY=VALUE,...]][@SIZE]"


@dataclass(frozen=True)
class Target:
    """One parsed target: what the user asked for, before it is checked against a registry."""

    text: str
    arch: str
    variant: str = ""
    mixer: str | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    size: int | None = None

    @classmethod
    def parse(cls, text: str) -> Target:
        match = _TARGET.fullmatch(text.strip())
        if match is None:
            raise UsageError(f"{text!r}: expected {SYNTAX}, e.g. swin:tiny+msa or vit:small@384")
        size = match["size"]
        if size is not None and (not size.isdigit() or int(size) < 1):
            raise UsageError(f"{text}: the size after @ must be a positive integer, got {size!r}")
        overrides = {}
        if match["overrides"] is not None:
            for item in split_top_level(match["overrides"]):
                key, eq, value = item.partition("=")
                if not eq or not key.strip():
                    raise UsageError(f"{text}: [{item}] is not KEY=VALUE "
                                     "(e.g. swin:tiny[window_size=14])")
                overrides[key.strip()] = value.strip()
        return cls(text=text, arch=match["arch"], variant=match["variant"] or "",
                   mixer=match["mixer"], overrides=overrides,
                   size=int(size) if size is not None else None)


def split_top_level(text: str, separator: str = ",") -> list[str]:
    """Split at separators outside brackets: ``a=1,b=(2,3)`` → ``["a=1", "b=(2,3)"]``."""
    parts, depth, current = [], 0, []
    for char in text:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == separator and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]
