"""Setting up the plugin manager: the core's own plugins, then every ``archbench`` entry point.

One manager per process: the CLI makes it once and passes it down; every hook is called
through ``pm.hook``, so plugins' wrappers run. Each hook implementation is registered with
a thin attribution layer: what it returns is marked with the plugin's name (architectures,
token mixers, column dicts), and an exception it raises remembers the plugin and the hook,
so conflicts and failed rows can name who answered.

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

#: The core's behaviours, registered as plugins on the same manager (tryfirst/trylast
#: markers on their hooks decide where they run among third-party ones).
CORE_PLUGINS = (
    "archbench.builtin.inputs",
    "archbench.builtin.counting",
    "archbench.builtin.latency",
    "archbench.builtin.writers",
    "archbench.builtin.swaps",
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


class PluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers where each plugin came from and what failed,
    and attributes every hook implementation's answers and exceptions to its plugin."""

    def __init__(self) -> None:
        super().__init__("archbench")
        self.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}

    def register(self, plugin: object, name: str | None = None) -> str | None:
        name = super().register(plugin, name)
        for caller in self.get_hookcallers(plugin) or []:
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and not (impl.wrapper or impl.hookwrapper):
                    impl.function = _attributed(impl.function, impl.plugin_name, caller.name)
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


def _mark(result: Any, plugin: str) -> Any:
    """Column and handler dicts become :class:`Answer`; registered architectures and token
    mixers get their ``plugin`` field. Anything else is returned as it is."""
    from archbench.core.mixers import TokenMixer
    from archbench.core.spec import Architecture

    if type(result) is dict:
        return Answer(result, plugin=plugin)
    if isinstance(result, list):
        return [dataclasses.replace(item, plugin=plugin)
                if isinstance(item, (Architecture, TokenMixer)) else item
                for item in result]
    return result


def _attributed(function: Callable[..., Any], plugin: str, hook: str) -> Callable[..., Any]:
    @functools.wraps(function)
    def call(*args: Any) -> Any:
        try:
            result = function(*args)
        except BaseException as exc:
            if not hasattr(exc, ORIGIN_ATTRIBUTE):
                with contextlib.suppress(AttributeError):
                    setattr(exc, ORIGIN_ATTRIBUTE, (plugin, hook))
            raise
        return _mark(result, plugin)

    return call


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
