from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

# The complexity cache of processes the tests start without a test's own folder (a Ray
# head started once per session): a fresh folder, never the user's ~/.cache/archbench.
os.environ["ARCHBENCH_CACHE_DIR"] = tempfile.mkdtemp(prefix="archbench-test-cache-")
atexit.register(shutil.rmtree, os.environ["ARCHBENCH_CACHE_DIR"], True)


@pytest.fixture(autouse=True)
def complexity_cache_dir(monkeypatch, tmp_path) -> Path:
    """Each test starts with an empty complexity cache of its own (a model counted by one
    test is counted again by the next, as a test expects)."""
    folder = tmp_path / "archbench-cache"
    monkeypatch.setenv("ARCHBENCH_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def run_cli(monkeypatch, tmp_path):
    """Invoke the CLI in-process with the test plugin loaded; returns the click Result.

    ``result.run_dir`` is the run folder the command wrote (or None).
    """
    from archbench.cli import main

    monkeypatch.setenv("ARCHBENCH_PLUGINS", "archbench_testplugin")
    import archbench_testplugin

    archbench_testplugin.BUILDS.clear()

    def run(*args: str, out: Path | None = None):
        out = out or tmp_path / "results"
        argv = list(args)
        if args and args[0] in ("compare", "sweep", "mixers") and "--out" not in args:
            argv += ["--out", str(out)]
        before = set(out.glob("*")) if out.is_dir() else set()
        result = CliRunner().invoke(main, argv)
        made = [p for p in out.glob("*") if p.is_dir() and p not in before] if out.is_dir() \
            else []
        result.run_dir = made[0] if len(made) == 1 else None
        return result

    return run


def read_report(run_dir: Path) -> dict:
    return json.loads((run_dir / "report.json").read_text())


@pytest.fixture(scope="session")
def plugin_manager():
    from archbench.plugins import get_plugin_manager

    return get_plugin_manager()


@pytest.fixture(scope="session")
def analyze(plugin_manager):
    """``analyze("vit:base", img_size=384)`` → the complexity columns and JSON details that
    ``archbench compare --no-latency`` would report, through the same plugin calls."""
    from archbench import RunSettings
    from archbench.core.registry import Registry
    from archbench.core.schema import check_spec
    from archbench.run.task import Task
    from archbench.run.worker import TaskRun

    registry = Registry.from_plugins(plugin_manager)
    worker = TaskRun(plugin_manager, Task(0, (), RunSettings(latency=False)), lambda _: None)

    def run(target: str, **kwargs):
        spec = registry.resolve(target, **kwargs)
        check_spec(spec)  # the core's config schema, then the plugins' own checks
        plugin_manager.hook.archbench_validate(spec=spec)
        swap = worker.swap(spec)
        return worker.analyze(spec, worker.build(spec, swap), swap)

    return run
