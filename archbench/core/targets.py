"""The target syntax: one argument per model, read like the row names the tool prints.

``ARCH[:VARIANT][+MIXER][[KEY=VALUE,...]][@SIZE]``, e.g. ``swin:tiny``, ``swin:tiny+msa``,
``'swin:tiny[window_size=14]'``, ``vit:small@384`` (image side, or sequence length for a
token model), or all at once: ``'swin:tiny+gnconv[depths=(2,2,2,2)]@256'``. Each target's
own mixer, overrides and size win over the run-level ``--mixer``, ``--set`` and
``--img-size``/``--seq-len``, so a baseline and its ablations run, interleaved, in one run.

Parsing is strict: an empty part (``vit:``, ``vit+``, ``vit@``, ``vit[]``), a stray
separator (``vit::tiny``, ``vit@@224``, ``vit]``) or a space outside the brackets is a
:class:`UsageError` saying which, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from archbench.core.errors import UsageError

SYNTAX = "ARCH[:VARIANT][+MIXER][[KEY=VALUE,...]][@SIZE]"
_NAME = r"[^:+\[\]@\s,=]+"
_HEAD = re.compile(rf"(?P<arch>{_NAME})(?::(?P<variant>{_NAME}))?(?:\+(?P<mixer>{_NAME}))?")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CLOSING = {"(": ")", "[": "]", "{": "}"}


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
        head, body, tail = _split(text)
        if re.search(r"\s", head + tail):
            raise UsageError(f"{text!r}: spaces are not allowed outside [...]")
        if tail and not tail.startswith("@"):
            raise UsageError(f"{text!r}: unexpected {tail!r} after ']'; expected {SYNTAX}")
        match = _HEAD.fullmatch(head)
        if match is None:
            raise UsageError(f"{text!r}: {_head_problem(head)}; expected {SYNTAX}, "
                             "e.g. swin:tiny+msa or vit:small@384")
        size = None
        if tail:
            if not re.fullmatch(r"@[0-9]+", tail) or int(tail[1:]) < 1:
                raise UsageError(f"{text!r}: the size after @ must be a positive integer, "
                                 f"got {tail[1:]!r}")
            size = int(tail[1:])
        overrides = _overrides(text, body) if body is not None else {}
        return cls(text=text, arch=match["arch"], variant=match["variant"] or "",
                   mixer=match["mixer"], overrides=overrides, size=size)


def _split(text: str) -> tuple[str, str | None, str]:
    """``head[body]tail`` → (head, body or None, tail), the brackets paired up."""
    if "[" not in text:
        if "]" in text:
            raise UsageError(f"{text!r}: ']' without '['")
        head, at, size = text.partition("@")
        return head, None, at + size
    head, _, rest = text.partition("[")
    end = _closing_bracket(text, rest)
    body, tail = rest[:end], rest[end + 1:]
    if "@" in head:
        raise UsageError(f"{text!r}: @SIZE goes last, after [KEY=VALUE,...]")
    return head, body, tail


def _closing_bracket(text: str, rest: str) -> int:
    """The index in ``rest`` of the ``]`` closing the target's ``[``; UsageError for
    brackets that do not pair up."""
    stack = ["["]
    for i, char in enumerate(rest):
        if char in _CLOSING:
            stack.append(char)
        elif char in ")]}":
            if _CLOSING[stack.pop()] != char:
                raise UsageError(f"{text!r}: unbalanced brackets inside [...]")
            if not stack:
                return i
    raise UsageError(f"{text!r}: '[' is never closed with ']'")


def _head_problem(head: str) -> str:
    """Why ``ARCH[:VARIANT][+MIXER]`` did not parse, in words."""
    if not head or head[0] in ":+":
        return "the architecture name is missing"
    if "," in head:
        return "give each target as its own argument ('vit swin', not 'vit,swin')"
    if "=" in head:
        return "KEY=VALUE overrides go inside [...]"
    if head.endswith(":") or ":+" in head:
        return "nothing after ':' (name a variant, or drop the ':')"
    if head.endswith("+"):
        return "nothing after '+' (name a token mixer, or drop the '+')"
    if head.count(":") > 1:
        return "more than one ':'"
    if head.count("+") > 1:
        return "one +MIXER per target"
    if "+" in head and ":" in head and head.find("+") < head.find(":"):
        return ":VARIANT comes before +MIXER"
    return "cannot read it"


def _overrides(text: str, body: str) -> dict[str, str]:
    if not body.strip():
        raise UsageError(f"{text!r}: empty [ ]: give KEY=VALUE pairs or drop the brackets")
    items = split_top_level(body)
    if "" in (item.strip() for item in items):
        raise UsageError(f"{text!r}: an empty item between commas in [...]")
    return assignments(items, lambda item: f"{text!r}: [{item}]",
                       "swin:tiny[window_size=14]")


def assignments(items: Iterable[str], name: Callable[[str], str], example: str,
                key: re.Pattern[str] = _KEY) -> dict[str, str]:
    """``KEY=VALUE`` items (a target's ``[...]``, ``--set``) → {KEY: VALUE}, in order; a
    UsageError naming the item (``name(item)``) when one is not KEY=VALUE, has no value
    or repeats a key."""
    found: dict[str, str] = {}
    for item in items:
        k, eq, value = (part.strip() for part in item.partition("="))
        if not eq or not key.fullmatch(k):
            raise UsageError(f"{name(item)} is not KEY=VALUE (e.g. {example})")
        if not value:
            raise UsageError(f"{name(item)} has no value after '='")
        if k in found:
            raise UsageError(f"{name(item)}: {k} is given twice ({found[k]} and {value})")
        found[k] = value
    return found


def split_top_level(text: str, separator: str = ",") -> list[str]:
    """Split at separators outside brackets: ``a=1,b=(2,3)`` → ``["a=1", "b=(2,3)"]``;
    each part stripped, empty parts kept (``"a=1,"`` → ``["a=1", ""]``)."""
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
    return [p.strip() for p in parts]
