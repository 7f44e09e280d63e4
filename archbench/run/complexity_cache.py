"""The on-disk complexity cache. A model's analysis (what ``TaskRun.analyze`` returns:
parameters, fvcore MACs, the token-mixer breakdown and formulas, the ``FlopCounterMode``
cross-check, ``train_gmacs``) is a pure function of its spec, its input, ``--mode`` and the
code that builds and counts it, so a repeated count is read from a file instead of
building and tracing the model again.

One JSON file per entry, ``<root>/complexity/<sha256 of the key>.json``, written to a
temporary file and renamed over the entry (``os.replace``), so concurrent runs and the Ray
workers of one machine share the folder safely. The key (:func:`entry_key`) holds
archbench's version and the source of its counting code; every plugin that can change an
analysis (those implementing ``archbench_build_model``, ``archbench_example_inputs``,
``archbench_flop_handlers``, ``archbench_analyze`` or ``archbench_token_mixers``) by
distribution, version and a hash of its package's ``.py`` files, so an editable plugin
being edited never gets a stale answer; the architecture, variant, full config (overrides
included), input size, mixer and mode; and the torch, timm and fvcore versions.

An entry that cannot be read or does not hold its own key is a miss, never an error; a
folder that cannot be written costs one warning, and the run goes on without writing. No
torch here.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import os
import re
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archbench import __version__
from archbench.core.settings import RunSettings
from archbench.core.spec import ModelSpec
from archbench.report.report import write_atomic

#: Overrides the cache's root folder (default ``$XDG_CACHE_HOME/archbench``, else
#: ``~/.cache/archbench``).
CACHE_DIR_ENV = "ARCHBENCH_CACHE_DIR"
#: The column that says where a row's analysis came from: hit, miss or off.
CACHE_COLUMN = "complexity_cache"
#: Bumped when what an entry holds, or what the key must cover, changes.
SCHEMA = 1
#: Hooks whose implementations decide what an analysis is.
ANALYSIS_HOOKS = ("archbench_build_model", "archbench_example_inputs",
                  "archbench_flop_handlers", "archbench_analyze", "archbench_token_mixers")
#: archbench's own code that builds inputs and counts (relative to the package folder).
#: run/worker.py is left out (most of it is timing code, which changes often): a change to
#: how ``TaskRun.analyze`` calls the hooks must bump :data:`SCHEMA`.
COUNTING_SOURCES = ("builtin/counting.py", "builtin/inputs.py", "builtin/swaps.py",
                    "builtin/mixers.py", "mixers", "measure/counting.py", "formulas.py",
                    "core/mixers.py", "core/columns.py", "run/complexity_cache.py",
                    "builtin/accuracy.py", "core/accuracy.py")
LIBRARIES = ("torch", "timm", "fvcore")
ENTRY_NAME = re.compile(r"[0-9a-f]{64}\.json")
_IMPORT = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", re.MULTILINE)

#: Folders this process failed to write to (warned once, then not written again).
_unwritable: set[Path] = set()


def cache_root() -> Path:
    """``$ARCHBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/archbench``, else
    ``~/.cache/archbench``."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "archbench"


def entries_dir(root: Path | None = None) -> Path:
    return (root or cache_root()) / "complexity"


# -- what the key is made of --------------------------------------------------------------


def _python_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)


def _digest_files(files: list[Path], base: Path) -> str:
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(base) if file != base else file.name).encode())
        digest.update(b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


@functools.cache
def archbench_source() -> str:
    """A hash of archbench's own counting code (once per process)."""
    package = Path(__file__).resolve().parent.parent
    files = [f for rel in COUNTING_SOURCES for f in _python_files(package / rel)]
    return _digest_files(files, package)


def _sibling_imports(root: Path, files: list[Path]) -> list[Path]:
    """Top-level packages or modules that ``files`` import and that sit beside ``root``
    outside site-packages (a plugin's shared layers in a development checkout); installed
    ones are covered by their distribution's version."""
    parent = root.parent
    if parent.name in ("site-packages", "dist-packages"):
        return []
    names = {m for f in files for m in _IMPORT.findall(f.read_text(errors="replace"))}
    found = []
    for name in sorted(names - {root.stem}):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        location = (next(iter(spec.submodule_search_locations or ()), None) if spec else None)
        location = location or (spec.origin if spec else None)
        if location and Path(location).resolve().parent == parent:
            found.append(Path(location).resolve())
    return found


@functools.cache
def source_digest(path: str) -> str:
    """A hash of the ``.py`` files of a package folder (or of one module file), and of the
    sibling packages they import in a development checkout; once per process."""
    root = Path(path).resolve()
    files = _python_files(root)
    digest = _digest_files(files, root)
    for sibling in _sibling_imports(root, files):
        digest += ":" + _digest_files(_python_files(sibling), sibling)
    return hashlib.sha256(digest.encode()).hexdigest()


def plugin_source(plugin: object) -> str | None:
    """The source hash of the package (or module) a plugin lives in; None if it has no file."""
    module = (plugin if isinstance(plugin, types.ModuleType)
              else sys.modules.get(type(plugin).__module__))
    if module is None:
        return None
    top = sys.modules.get(module.__name__.partition(".")[0], module)
    path = next(iter(getattr(top, "__path__", None) or ()), None) or getattr(top, "__file__", None)
    if not path or not os.path.exists(path):
        return None
    try:
        return source_digest(str(path))
    except OSError:
        return None


def plugins_fingerprint(pm: Any) -> dict[str, list[str]] | None:
    """Every plugin that can change an analysis: distribution, version and source hash
    (archbench's own plugins are covered by :func:`archbench_source`). None when one of
    them has no source file to hash: then nothing is cached."""
    infos = getattr(pm, "infos", {})
    found: dict[str, list[str]] = {}
    for hook in ANALYSIS_HOOKS:
        caller = getattr(pm.hook, hook, None)
        for impl in caller.get_hookimpls() if caller is not None else ():
            name = impl.plugin_name
            info = infos.get(name)
            if name in found:
                continue
            if info is not None and info.kind == "core":
                found[name] = ["archbench"]
                continue
            source = plugin_source(impl.plugin)
            if source is None:
                return None
            found[name] = [info.distribution if info else "?", info.version if info else "?",
                           source]
    return found


@functools.cache
def library_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def entry_key(spec: ModelSpec, settings: RunSettings, plugins: dict[str, list[str]]
              ) -> dict[str, Any]:
    """What an analysis depends on, as plain JSON data. Of the settings, only ``mode``
    (``train`` adds ``train_gmacs``): counting always runs on the CPU in fp32 at batch 1."""
    arch = spec.arch
    return json.loads(json.dumps({
        "schema": SCHEMA, "archbench": __version__, "archbench_source": archbench_source(),
        "plugins": plugins, "libraries": library_versions(),
        "arch": arch.name, "arch_plugin": arch.plugin, "input_kind": arch.input_kind,
        "token_mixer_types": list(arch.token_mixer_types), "mlp_types": list(arch.mlp_types),
        "variant": spec.variant, "label": spec.label,
        # repr, not JSON: (2, 2) and [2, 2] are different configs to a constructor
        "config": repr(sorted(spec.config.items())),
        "img_size": spec.img_size, "seq_len": spec.seq_len, "mixer": spec.mixer,
        "mode": settings.mode,
    }, sort_keys=True))


# -- entries ------------------------------------------------------------------------------


Analysis = tuple[dict[str, Any], dict[str, Any]]


@dataclass
class CacheEntry:
    """One model's place in the cache; ``path`` None: caching is off for it."""

    path: Path | None
    key: dict[str, Any]
    progress: Callable[[str], None]

    def read(self) -> Analysis | None:
        """The cached (columns, details), marked ``hit``; None on a miss or when off."""
        if self.path is None:
            return None
        try:
            entry = json.loads(self.path.read_text())
            if entry.get("key") != self.key:
                return None
            columns, details = entry["columns"], entry["details"]
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return None  # absent, half-written by a crash, corrupt: count afresh
        if not isinstance(columns, dict) or not isinstance(details, dict):
            return None
        return {**columns, CACHE_COLUMN: "hit"}, details

    def write(self, columns: dict[str, Any], details: dict[str, Any]) -> Analysis:
        """Store a fresh analysis (where it survives JSON unchanged, so that a hit is the
        same row); returns it marked ``miss``, or ``off``."""
        if self.path is None:
            return {**columns, CACHE_COLUMN: "off"}, details
        entry = {"key": self.key, "columns": columns, "details": details}
        try:
            text = json.dumps(entry)
            same = json.loads(text) == entry
        except (TypeError, ValueError):
            same = False
        # a part of the analysis that failed this time (the cross-check's meta pass running
        # out of memory) is not a fact about the model: counted afresh next time
        failed = any(isinstance(v, dict) and "error" in v
                     for v in (*columns.values(), *details.values()))
        if same and not failed and self.path.parent not in _unwritable:
            self._write(text)
        return {**columns, CACHE_COLUMN: "miss"}, details

    def _write(self, text: str) -> None:
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, text)
        except OSError as exc:
            _unwritable.add(folder)
            self.progress(f"archbench: warning: cannot write the complexity cache "
                          f"{folder} ({exc.strerror or exc}): this run's counts are not kept")


def cache_entry(pm: Any, settings: RunSettings, spec: ModelSpec,
                progress: Callable[[str], None]) -> CacheEntry:
    """The cache entry of ``spec`` under ``settings`` (off with ``--no-cache``, or when a
    plugin's source cannot be hashed)."""
    plugins = plugins_fingerprint(pm) if settings.cache and pm is not None else None
    if plugins is None:
        return CacheEntry(None, {}, progress)
    key = entry_key(spec, settings, plugins)
    name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return CacheEntry(entries_dir() / f"{name}.json", key, progress)


# -- archbench cache info | clear ----------------------------------------------------------


def entry_files(root: Path | None = None) -> list[Path]:
    folder = entries_dir(root)
    try:
        return sorted(p for p in folder.iterdir() if ENTRY_NAME.fullmatch(p.name))
    except OSError:
        return []


def cache_info(root: Path | None = None) -> dict[str, Any]:
    """The folder, its number of entries and their size in bytes."""
    files = entry_files(root)
    size = 0
    for file in files:
        with contextlib.suppress(OSError):  # deleted meanwhile
            size += file.stat().st_size
    return {"dir": str(entries_dir(root)), "entries": len(files), "bytes": size}


def clear_cache(root: Path | None = None) -> dict[str, Any]:
    """Delete every entry (and temporary files left by killed writers); nothing else in
    the folder is touched. Returns what was there (:func:`cache_info`)."""
    info = cache_info(root)
    folder = entries_dir(root)
    leftovers = list(folder.glob(".*.tmp")) if folder.is_dir() else []
    for file in [*entry_files(root), *leftovers]:
        file.unlink(missing_ok=True)
    return info
