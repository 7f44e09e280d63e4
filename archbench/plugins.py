"""Setting up the plugin manager: the core's own plugins, then every ``archbench`` entry point.

One manager per process: the CLI makes it once and passes it down; every hook is called
through ``pm.hook``, so plugins' wrappers run. Each hook implementation is registered with
a thin attribution layer: what it returns is marked with the plugin's name (architectures,
token mixers, column dicts), and an exception it raises remembers the plugin and the hook,
so conflicts and failed rows can name who answered.

The hooks whose answers are collected from every plugin when a command starts
(:data:`COLLECTED`: architectures, token mixers, report writers) are guarded: an
implementation that raises or answers something other than a list of what the hook asks
for costs its plugin one warning and its answer, never the command; two plugins registering
one name keep the first registered (archbench's own first) with a warning naming both.

Cheap to import: no torch, no pandas. Architecture plugins are imported here, so they must
keep torch out of their top level (see ``archbench_architectures``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from archbench import __version__, hookspecs
from archbench.core.columns import Answer
from archbench.core.errors import ORIGIN_ATTRIBUTE

#: Set to any non-empty value to load only the built-in plugins (archbench's own
#: distribution), not third-party ``archbench`` entry points, as PYTEST_DISABLE_PLUGIN_AUTOLOAD.
DISABLE_AUTOLOAD_ENV = "ARCHBENCH_DISABLE_PLUGIN_AUTOLOAD"
#: Comma-separated module names to register as plugins in addition to the entry points.
EXTRA_PLUGINS_ENV = "ARCHBENCH_PLUGINS"

ENTRY_POINT_GROUP = "archbench"

#: Hooks answered by every plugin when a command starts, with the class each answer's
#: items must be, the field that names an item, and what such a name is called.
COLLECTED: dict[str, tuple[str, str, str]] = {
    "archbench_architectures": ("Architecture", "name", "architecture"),
    "archbench_token_mixers": ("TokenMixer", "name", "token mixer"),
    "archbench_report_writers": ("ReportWriter", "format", "report format"),
}

#: The core's behaviours, registered as plugins on the same manager (tryfirst/trylast
#: markers on their hooks decide where they run among third-party ones).
CORE_PLUGINS = (
    "archbench.builtin.inputs",
    "archbench.builtin.counting",
    "archbench.builtin.latency",
    "archbench.builtin.breakdown",
    "archbench.builtin.writers",
    "archbench.builtin.swaps",
    "archbench.builtin.accuracy",
)


@dataclass
class PluginInfo:
    """What ``archbench plugins`` shows about one plugin."""

    name: str
    module: str
    distribution: str
    version: str
    kind: str  # "core", "entry point" or "env"
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    #: What went wrong in a hook it loaded with (an answer ignored), one line each.
    problems: list[str] = field(default_factory=list)


class PluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers where each plugin came from and what failed,
    and attributes every hook implementation's answers and exceptions to its plugin."""

    def __init__(self) -> None:
        super().__init__("archbench")
        self.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.problems_seen: set[tuple[str, str]] = set()

    def register(self, plugin: object, name: str | None = None) -> str | None:
        name = super().register(plugin, name)
        for caller in self.get_hookcallers(plugin) or []:
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and not (impl.wrapper or impl.hookwrapper):
                    impl.function = _attributed(impl.function, impl.plugin_name, caller.name,
                                                self.hook_failed)
        return name

    def register_plugin(self, plugin: object, info: PluginInfo) -> None:
        self.register(plugin, name=info.name)
        info.hooks = sorted(caller.name for caller in self.get_hookcallers(plugin) or [])
        self.infos[info.name] = info

    def record_failure(self, info: PluginInfo, exc: BaseException) -> None:
        info.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        self.infos[info.name] = info
        print(
            f"archbench: warning: plugin {info.name!r} ({info.distribution} {info.version}) "
            f"failed to load and is skipped: {info.error}",
            file=sys.stderr,
        )

    def hook_failed(self, plugin: str, hook: str, problem: str) -> None:
        """A plugin's answer to a collected hook is ignored: one warning per problem, kept
        in its :class:`PluginInfo` for ``archbench plugins``."""
        line = f"{hook}: {problem}"
        if (plugin, line) in self.problems_seen:
            return
        self.problems_seen.add((plugin, line))
        info = self.infos.get(plugin)
        origin = ""
        if info is not None:
            info.problems.append(line)
            origin = (f" (from {EXTRA_PLUGINS_ENV})" if info.kind == "env"
                      else f" ({info.distribution} {info.version})")
        print(f"archbench: warning: plugin {plugin!r}{origin}: {line}", file=sys.stderr)

    def collect(self, hook: str) -> list[Any]:
        """Every plugin's items for a collected hook (see :data:`COLLECTED`), in the order
        pluggy calls the plugins, one per name: where two plugins register one name, the
        one registered first (archbench's own before any other) keeps it and the other
        costs a warning naming both."""
        items = [item for answer in getattr(self.hook, hook)() for item in answer or []]
        order = {name: (info.distribution != "archbench", n)
                 for n, (name, info) in enumerate(self.infos.items())}

        def rank(item: Any) -> tuple[bool, int]:
            return order.get(item.plugin, (True, len(order)))

        _, key, what = COLLECTED[hook]
        kept: dict[str, Any] = {}
        for item in items:
            name = getattr(item, key)
            if name not in kept or rank(item) < rank(kept[name]):
                kept[name] = item
        for item in items:
            winner = kept[getattr(item, key)]
            if winner is not item:
                self.hook_failed(item.plugin, hook, f"{what} {getattr(item, key)!r} is "
                                 f"already registered by plugin {winner.plugin!r}; ignored")
        return [item for item in items if kept[getattr(item, key)] is item]

    def check_collected(self) -> None:
        """Ask every collected hook once, so that ``archbench plugins`` shows their problems."""
        for hook in COLLECTED:
            self.collect(hook)


def _malformed(result: Any, hook: str) -> str | None:
    """Why an answer to a collected hook cannot be used, or None: it must be None or a
    list (or tuple) of the hook's class, each named by a non-empty string."""
    from archbench.core.mixers import TokenMixer
    from archbench.core.spec import Architecture
    from archbench.report.report import ReportWriter

    classes = {"Architecture": Architecture, "TokenMixer": TokenMixer,
               "ReportWriter": ReportWriter}
    wanted, key, _ = COLLECTED[hook]
    if result is None:
        return None
    if not isinstance(result, (list, tuple)):
        return f"returned {type(result).__name__}, not a list of {wanted}; ignored"
    for item in result:
        if not isinstance(item, classes[wanted]):
            return f"returned a list holding {type(item).__name__}, not {wanted}; ignored"
        if not isinstance(getattr(item, key), str) or not getattr(item, key):
            return f"returned a {wanted} whose {key} is {getattr(item, key)!r}; ignored"
        problem = _field_problem(item)
        if problem:
            return f"returned {wanted} {getattr(item, key)!r}, whose {problem}; ignored"
    return None


def _field_problem(item: Any) -> str | None:
    """What in a registered item would break a command later, or None."""
    from collections.abc import Mapping

    from archbench.core.spec import Architecture, Variant

    if isinstance(item, Architecture):
        variants = item.variants
        if not isinstance(variants, Mapping) or not all(
                isinstance(k, str) and isinstance(v, Variant) for k, v in variants.items()):
            return "variants are not a mapping of names to Variant"
        return None
    needed = ("render",) if hasattr(item, "render") else ("build", "macs")
    missing = [name for name in needed if not callable(getattr(item, name))]
    return f"{missing[0]} is not callable" if missing else None


def _mark(result: Any, plugin: str) -> Any:
    """Column and handler dicts become :class:`Answer`; registered architectures and token
    mixers get their ``plugin`` field. Anything else is returned as it is."""
    from archbench.core.mixers import TokenMixer
    from archbench.core.spec import Architecture
    from archbench.report.report import ReportWriter

    if type(result) is dict:
        return Answer(result, plugin=plugin)
    if isinstance(result, list):
        return [dataclasses.replace(item, plugin=plugin)
                if isinstance(item, (Architecture, TokenMixer, ReportWriter)) else item
                for item in result]
    return result


def _attributed(function: Callable[..., Any], plugin: str, hook: str,
                failed: Callable[[str, str, str], None]) -> Callable[..., Any]:
    """``function`` with its answers marked and its exceptions attributed to ``plugin``; for
    a collected hook, an exception or a malformed answer goes to ``failed`` and the plugin
    answers nothing."""
    collected = hook in COLLECTED

    @functools.wraps(function)
    def call(*args: Any) -> Any:
        try:
            result = function(*args)
        except Exception as exc:
            if collected:
                text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                failed(plugin, hook, f"raised {text.splitlines()[0]}; ignored")
                return None
            _attribute(exc, plugin, hook)
            raise
        except BaseException as exc:
            _attribute(exc, plugin, hook)
            raise
        if collected:
            problem = _malformed(result, hook)
            if problem:
                failed(plugin, hook, problem)
                return None
            result = list(result or [])
        return _mark(result, plugin)

    return call


def _attribute(exc: BaseException, plugin: str, hook: str) -> None:
    if not hasattr(exc, ORIGIN_ATTRIBUTE):
        with contextlib.suppress(AttributeError):
            setattr(exc, ORIGIN_ATTRIBUTE, (plugin, hook))


def _entry_point_info(ep: EntryPoint) -> PluginInfo:
    dist = ep.dist
    return PluginInfo(
        name=ep.name,
        module=ep.value,
        distribution=dist.metadata["Name"] if dist is not None else "?",
        version=dist.version if dist is not None else "?",
        kind="entry point",
    )


def get_plugin_manager(autoload: bool | None = None) -> PluginManager:
    """The manager with core plugins, entry points (unless disabled) and ``ARCHBENCH_PLUGINS``.

    A plugin that fails to import costs a one-line warning and shows in
    ``archbench plugins``; a hook implementation whose name matches no hook fails loudly
    (``check_pending``).
    """
    if autoload is None:
        autoload = not os.environ.get(DISABLE_AUTOLOAD_ENV)
    pm = PluginManager()
    for module_name in CORE_PLUGINS:
        module = importlib.import_module(module_name)
        pm.register_plugin(
            module,
            PluginInfo(
                name=module_name.rsplit(".", 1)[-1],
                module=module_name,
                distribution="archbench",
                version=__version__,
                kind="core",
            ),
        )
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        info = _entry_point_info(ep)
        if not autoload and info.distribution != "archbench":
            continue
        if pm.has_plugin(ep.name):
            continue  # the same distribution seen twice on sys.path
        try:
            pm.register_plugin(ep.load(), info)
        except Exception as exc:
            pm.record_failure(info, exc)
    for module_name in filter(None, os.environ.get(EXTRA_PLUGINS_ENV, "").split(",")):
        info = PluginInfo(module_name, module_name, "-", "-", "env")
        try:
            pm.register_plugin(importlib.import_module(module_name.strip()), info)
        except Exception as exc:
            pm.record_failure(info, exc)
    from archbench.builtin.mixers import MixersAlone

    pm.register_plugin(MixersAlone(pm), PluginInfo("mixers", "archbench.builtin.mixers",
                                                    "archbench", __version__, "core"))
    pm.check_pending()
    return pm
