"""The architectures the plugins registered, and turning ``ARCH[:VARIANT]`` into model specs.

No torch here: ``archbench list`` and all argument checking run before torch is imported.
"""

from __future__ import annotations

import ast
import difflib
import fnmatch
from collections.abc import Iterable, Mapping
from typing import Any

import pluggy

from archbench.core.errors import UsageError
from archbench.core.spec import Architecture, ModelSpec, Variant
from archbench.core.targets import Target


class Registry:
    """Every registered architecture by name, with the plugin that registered it."""

    def __init__(self, architectures: Iterable[Architecture]) -> None:
        self.architectures: dict[str, Architecture] = {}
        for arch in architectures:
            if arch.name in self.architectures:
                other = self.architectures[arch.name]
                raise UsageError(
                    f"architecture {arch.name!r} is registered twice: by plugin "
                    f"{other.plugin!r} and by plugin {arch.plugin!r}"
                )
            self.architectures[arch.name] = arch

    @classmethod
    def from_plugins(cls, pm: pluggy.PluginManager) -> Registry:
        """The architectures of every plugin (each marked with its plugin by the manager).
        A plugin whose hook fails, or that registers a name already taken, costs a warning
        (see :meth:`archbench.plugins.PluginManager.collect`), not the registry."""
        return cls(pm.collect("archbench_architectures"))

    def names(self) -> list[str]:
        return sorted(self.architectures)

    def match(self, pattern: str = "*") -> list[tuple[Architecture, str, Variant]]:
        """``(architecture, variant name, variant)`` whose ``arch:variant`` matches a pattern.

        A pattern without ``:`` matches architecture names (all their variants). An
        architecture with ``find_variants`` is asked only when the pattern names it exactly.
        """
        if ":" not in pattern:
            pattern += ":*"
        arch_pattern, _, variant_pattern = pattern.partition(":")
        found = []
        for name, arch in sorted(self.architectures.items()):
            variants = arch.variants
            if arch.find_variants is not None and arch_pattern == name:
                variants = arch.find_variants(variant_pattern)
            found += [(arch, variant, spec) for variant, spec in variants.items()
                      if fnmatch.fnmatchcase(f"{name}:{variant}", pattern)]
        return found

    def get(self, name: str) -> Architecture:
        try:
            return self.architectures[name]
        except KeyError:
            raise UsageError(_unknown("architecture", name, self.names())) from None

    def resolve(
        self,
        target: str | Target,
        *,
        img_size: int | None = None,
        seq_len: int | None = None,
        overrides: Mapping[str, str] | None = None,
        mixer: str | None = None,
    ) -> ModelSpec:
        """A target (see :mod:`archbench.core.targets`) → a spec. The run-level input size,
        ``--set`` overrides and ``--mixer`` are defaults; the target's own win. Each
        override is parsed to its key's type; the values are checked against the
        architecture's schema later, with every other check (``run/plan.py:validate``)."""
        if isinstance(target, str):
            target = Target.parse(target)
        arch = self.get(target.arch)
        variant_name = target.variant or arch.default_variant
        if any(c in variant_name for c in "*?"):
            raise UsageError(f"{target.text}: wildcards select names in archbench list "
                             f"'{target.text}'; compare needs exact names")
        variants = arch.variants
        if variant_name not in variants and arch.find_variants is not None:
            variants = arch.find_variants(variant_name)
        if variant_name not in variants:
            raise UsageError(
                _unknown(f"variant of {arch.name!r}", variant_name, list(arch.variants))
            )
        variant = variants[variant_name]
        config = dict(variant.config)
        applied: dict[str, Any] = {}
        runwide = {key: (f"--set {key}", raw) for key, raw in (overrides or {}).items()
                   if "." not in key}  # then ARCH.KEY, more specific, then the target's own
        scoped = {key.rpartition(".")[2]: (f"--set {key}", raw)
                  for key, raw in (overrides or {}).items()
                  if key.rpartition(".")[0] == arch.name}
        own = {key: (target.text, raw) for key, raw in target.overrides.items()}
        declared = arch.schema.fields if arch.schema is not None else {}
        for field_name, (where, raw) in {**runwide, **scoped, **own}.items():
            if field_name not in config:
                raise UsageError(
                    f"{where}: {arch.name}:{variant_name} has no config field "
                    f"{field_name!r}; its fields are: {', '.join(sorted(config))}"
                )
            kind = declared[field_name].kind if field_name in declared else None
            config[field_name] = applied[field_name] = parse_value(
                raw, config[field_name], field_name, where, kind)
        mixer = target.mixer or mixer
        if arch.input_kind == "tokens":
            return ModelSpec(arch, variant_name, config, overrides=applied, mixer=mixer,
                             seq_len=target.size or seq_len or variant.seq_len)
        return ModelSpec(arch, variant_name, config, overrides=applied, mixer=mixer,
                         img_size=target.size or img_size or variant.img_size)


def parse_value(raw: str, default: Any, field: str = "value", where: str = "--set",
                kind: type | None = None) -> Any:
    """Parse an override of config field ``field`` to ``kind`` (the schema's type), or else
    to the type of its default; ``where`` names the option or target it came from, for the
    error. Ranges are the schema's business (:func:`archbench.core.schema.check_spec`)."""
    if kind in (None, object):
        kind = None if default is None else type(default)
    try:
        return _parse(raw, kind)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        name = kind.__name__ if kind is not None else "Python literal"
        raise UsageError(f"{where}: {field}={raw}: expected a value of type {name}") from None


def _parse(raw: str, kind: type | None) -> Any:
    if kind is None:
        return ast.literal_eval(raw)
    if issubclass(kind, bool):
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(raw)
    if issubclass(kind, int):
        return int(raw)
    if issubclass(kind, float):
        return float(raw)
    if issubclass(kind, (tuple, list)):
        value = ast.literal_eval(raw)
        return kind(value if isinstance(value, (tuple, list)) else (value,))
    return raw


def _unknown(what: str, name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    return f"unknown {what} {name!r}{hint} (choices: {', '.join(sorted(choices))})"
