"""The on-disk complexity cache: a repeated count is read, not recounted; anything the count
depends on (config, mode, a plugin's source) is a miss; a bad entry or folder never costs
a row. Each test has an empty cache of its own (conftest's ARCHBENCH_CACHE_DIR)."""

from __future__ import annotations

import itertools
import json
import sys

import archbench_testplugin
import pandas as pd
import pytest
from conftest import read_report

from archbench.run import complexity_cache
from archbench.run.worker import TaskRun

FAST = ("--warmup", "0", "--min-time", "0")
SKIP = {"complexity_cache"}


@pytest.fixture
def compare(run_cli, tmp_path):
    """``archbench compare ARGS...``, each call with a results folder of its own (run
    folders are named to the second, and two runs can fall in one)."""
    calls = itertools.count()
    return lambda *args: run_cli("compare", *args, out=tmp_path / f"results-{next(calls)}")


def _rows(result) -> dict[str, dict]:
    assert result.exit_code == 0, result.output
    return {r["model"]: r for r in read_report(result.run_dir)["rows"]}


def _entries(folder) -> list:
    return sorted((folder / "complexity").glob("*.json"))


def _count_analyses(monkeypatch) -> list[str]:
    """A record of every model ``TaskRun.analyze`` counts (the real method still runs)."""
    counted: list[str] = []
    analyze = TaskRun.analyze

    def spy(self, spec, model, swap):
        counted.append(spec.name)
        return analyze(self, spec, model, swap)

    monkeypatch.setattr(TaskRun, "analyze", spy)
    return counted


def test_a_hit_gives_the_same_row_without_building(compare, complexity_cache_dir):
    targets = ("toy", "toy+toy-mixer", "vit:tiny[depth=1]", "--no-latency")
    first = _rows(compare(*targets))
    assert len(_entries(complexity_cache_dir)) == 3
    assert archbench_testplugin.BUILDS == ["toy:tiny", "toy:tiny+toy-mixer"]
    archbench_testplugin.BUILDS.clear()
    second = compare(*targets)
    again = _rows(second)
    assert archbench_testplugin.BUILDS == []  # nothing built, nothing traced
    assert "from the complexity cache" in second.stderr
    for model, row in first.items():
        assert row["complexity_cache"] == "miss" and again[model]["complexity_cache"] == "hit"
        assert {k: v for k, v in row.items() if k not in SKIP} == \
            {k: v for k, v in again[model].items() if k not in SKIP}
    assert again["vit:tiny[depth=1]"]["details"]["flop_crosscheck"]["flopcountermode_macs"] > 0
    # the visible table is unchanged: the column is in the files, not on the terminal
    assert "complexity_cache" not in second.stdout
    assert "complexity_cache" in pd.read_csv(second.run_dir / "report.csv")


def test_a_timed_row_builds_but_does_not_count_again(compare, monkeypatch):
    counted = _count_analyses(monkeypatch)
    compare("toy", "--no-latency")
    archbench_testplugin.BUILDS.clear()
    row = _rows(compare("toy", *FAST))["toy:tiny"]
    assert archbench_testplugin.BUILDS == ["toy:tiny"]  # built to be timed
    assert counted == ["toy:tiny"]  # counted once, by the first run
    assert row["complexity_cache"] == "hit" and row["latency_ms_median"] > 0


def test_no_cache_neither_reads_nor_writes(compare, complexity_cache_dir):
    row = _rows(compare("toy", "--no-latency", "--no-cache"))["toy:tiny"]
    assert row["complexity_cache"] == "off" and _entries(complexity_cache_dir) == []
    compare("toy", "--no-latency")
    (entry,) = _entries(complexity_cache_dir)
    written = entry.read_bytes()
    archbench_testplugin.BUILDS.clear()
    row = _rows(compare("toy", "--no-latency", "--no-cache"))["toy:tiny"]
    assert archbench_testplugin.BUILDS == ["toy:tiny"] and row["complexity_cache"] == "off"
    assert entry.read_bytes() == written


def test_an_override_or_the_mode_is_a_miss(compare, complexity_cache_dir):
    compare("toy", "--no-latency")
    archbench_testplugin.BUILDS.clear()
    wide = _rows(compare("toy", "--no-latency", "--set", "width=16"))
    assert archbench_testplugin.BUILDS == ["toy:tiny[width=16]"]
    assert wide["toy:tiny[width=16]"]["complexity_cache"] == "miss"
    # the same config asked another way is the same entry
    same = _rows(compare("toy[width=16]", "--no-latency"))
    assert same["toy:tiny[width=16]"]["complexity_cache"] == "hit"
    train = _rows(compare("toy", "--no-latency", "--mode", "train"))["toy:tiny"]
    assert train["complexity_cache"] == "miss" and train["train_gmacs"] > 0
    assert len(_entries(complexity_cache_dir)) == 3


PLUGIN = '''
from archbench import Architecture, Variant, hookimpl

BUILDS = []


@hookimpl
def archbench_architectures():
    return [Architecture(name="edited", family="Edited", paper="none",
                         input_kind="image", default_variant="tiny",
                         variants={"tiny": Variant(config={}, img_size=16)})]


@hookimpl
def archbench_build_model(spec):
    if spec.arch.name != "edited":
        return None
    from torch import nn

    BUILDS.append(spec.name)
    return nn.Sequential(nn.Conv2d(3, WIDTH, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(WIDTH, 2))
'''


def test_editing_a_plugins_source_is_a_miss(compare, monkeypatch, tmp_path):
    """A plugin in development (a module on the path, not installed): after its file
    changes, a new process counts its models afresh."""
    source = tmp_path / "plugin_src"
    source.mkdir()
    module = source / "archbench_edited.py"
    module.write_text(PLUGIN.replace("WIDTH", "4"))
    monkeypatch.syspath_prepend(str(source))
    monkeypatch.setenv("ARCHBENCH_PLUGINS", "archbench_testplugin,archbench_edited")

    def run() -> tuple[dict, list]:
        result = compare("edited", "--no-latency")
        return _rows(result)["edited:tiny"], list(sys.modules["archbench_edited"].BUILDS)

    first, builds = run()
    second, builds_after = run()
    assert first["complexity_cache"] == "miss" and second["complexity_cache"] == "hit"
    assert builds == builds_after == ["edited:tiny"]  # the second run built nothing
    # a source of another size: a .pyc written this same second is then not taken for it
    module.write_text(PLUGIN.replace("WIDTH", "16"))
    monkeypatch.delitem(sys.modules, "archbench_edited")  # as a new process would:
    complexity_cache.source_digest.cache_clear()           # the new code, hashed anew
    third, builds = run()
    assert third["complexity_cache"] == "miss" and builds == ["edited:tiny"]
    assert third["params_m"] > first["params_m"]


def test_a_corrupt_entry_is_a_miss_and_is_rewritten(compare, complexity_cache_dir):
    first = _rows(compare("toy", "toy:frozen", "--no-latency"))
    good, other = _entries(complexity_cache_dir)
    good.write_text('{"key": ')  # a half-written file
    entry = json.loads(other.read_text())
    other.write_text(json.dumps({**entry, "key": {**entry["key"], "variant": "x"}}))
    archbench_testplugin.BUILDS.clear()
    again = _rows(compare("toy", "toy:frozen", "--no-latency"))
    assert sorted(archbench_testplugin.BUILDS) == ["toy:frozen", "toy:tiny"]
    for model, row in again.items():
        assert row["status"] == "ok" and row["complexity_cache"] == "miss"
        assert row["params_m"] == first[model]["params_m"]
    third = _rows(compare("toy", "toy:frozen", "--no-latency"))
    assert {row["complexity_cache"] for row in third.values()} == {"hit"}


def test_an_unwritable_cache_folder_warns_once_and_rows_go_on(compare, monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("ARCHBENCH_CACHE_DIR", str(blocker))
    monkeypatch.setattr(complexity_cache, "_unwritable", set())
    result = compare("toy", "toy:frozen", "--no-latency")
    rows = _rows(result)
    assert {r["status"] for r in rows.values()} == {"ok"}
    assert result.stderr.count("cannot write the complexity cache") == 1
    assert blocker.read_text() == "not a folder"


def test_cache_info_and_clear(compare, run_cli, complexity_cache_dir):
    compare("toy", "toy:frozen", "--no-latency")
    stray = complexity_cache_dir / "complexity" / "notes.txt"
    stray.write_text("not ours")
    info = json.loads(run_cli("cache", "info", "--json").stdout)
    assert info["dir"] == str(complexity_cache_dir / "complexity")
    assert info["entries"] == 2 and info["bytes"] > 0
    text = run_cli("cache", "info").stdout
    assert "entries: 2" in text and str(complexity_cache_dir) in text
    cleared = run_cli("cache", "clear")
    assert cleared.exit_code == 0 and "removed 2 entries" in cleared.stdout
    assert json.loads(run_cli("cache", "info", "--json").stdout)["entries"] == 0
    assert stray.read_text() == "not ours"  # only entries are deleted
    archbench_testplugin.BUILDS.clear()
    row = _rows(compare("toy", "--no-latency"))["toy:tiny"]
    assert row["complexity_cache"] == "miss" and archbench_testplugin.BUILDS == ["toy:tiny"]


def test_cache_folder_follows_xdg_and_the_override(monkeypatch, tmp_path):
    monkeypatch.delenv("ARCHBENCH_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert complexity_cache.cache_root() == tmp_path / "xdg" / "archbench"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert complexity_cache.cache_root() == tmp_path / "home" / ".cache" / "archbench"
    monkeypatch.setenv("ARCHBENCH_CACHE_DIR", str(tmp_path / "mine"))
    assert complexity_cache.entries_dir() == tmp_path / "mine" / "complexity"


@pytest.mark.parametrize("hook", complexity_cache.ANALYSIS_HOOKS)
def test_every_plugin_that_can_change_a_count_is_in_the_key(plugin_manager, hook):
    plugins = complexity_cache.plugins_fingerprint(plugin_manager)
    for impl in getattr(plugin_manager.hook, hook).get_hookimpls():
        assert impl.plugin_name in plugins
    # the built-in architectures: their package and the shared layers they import
    assert plugins["vit"][0] == "archbench" and len(plugins["vit"][2]) == 64
    assert plugins["vit"][2] != plugins["swin"][2]
