"""Failures that must neither crash a command nor mislead (issue 14): broken plugins at
start-up, a report writer or a row value that cannot be written, the CPU allocator's
out-of-memory, the thread count the environment records, and an interrupt while the report
files are replaced. ``archbench report`` given foreign or repeated reports: in
test_failures_report.py."""

from __future__ import annotations

import importlib
import json
import os
import re
import signal
import sys
import textwrap

import pandas as pd
import pytest
from conftest import read_report

FAST = ("--warmup", "0", "--min-time", "0", "--repeat", "2")


@pytest.fixture
def plugin(monkeypatch, tmp_path, request):
    """``plugin(source)`` writes a plugin module to ``tmp_path`` and loads it beside the
    test plugin through ARCHBENCH_PLUGINS; returns the module's name."""
    names: list[str] = []
    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))

    def load(source: str) -> str:
        name = f"archbench_{re.sub(r'[^0-9A-Za-z]+', '_', request.node.name)}_{len(names)}"
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        names.append(name)
        monkeypatch.setenv("ARCHBENCH_PLUGINS", ",".join(["archbench_testplugin", *names]))
        return name

    yield load
    for name in names:
        sys.modules.pop(name, None)


def warnings_about(result, text: str) -> list[str]:
    return [line for line in result.stderr.splitlines()
            if line.startswith("archbench: warning:") and text in line]


# -- 1. a broken plugin costs a warning, never a command ----------------------------------

BROKEN = {
    "raises": "raise RuntimeError('cannot read my config')",
    "wrong type": "return {'name': 'not a list'}",
    "wrong items": "return ['a string']",
}
#: An item of the right class whose fields would break a command later.
HOLLOW = {
    "archbench_architectures": "Architecture(name='hollow', family='-', paper='-', "
    "input_kind='image', default_variant='a', variants=['a'])",
    "archbench_token_mixers": "TokenMixer(name='hollow', description='-', paper='-', "
    "build='not a function', macs=len)",
    "archbench_report_writers": "ReportWriter('hollow', 'report.hollow', render=None)",
}


@pytest.mark.parametrize("hook", ["archbench_architectures", "archbench_token_mixers",
                                  "archbench_report_writers"])
@pytest.mark.parametrize("fault", [*BROKEN, "hollow item"])
def test_a_broken_collected_hook_costs_one_warning(run_cli, plugin, hook, fault):
    name = plugin(f"""
        from archbench import Architecture, hookimpl
        from archbench.mixers import TokenMixer
        from archbench.report.report import ReportWriter

        @hookimpl
        def {hook}():
            {BROKEN.get(fault) or f"return [{HOLLOW[hook]}]"}
    """)
    listed = run_cli("list")
    assert listed.exit_code == 0, listed.output
    assert "toy:tiny *" in listed.stdout and "vit:small *" in listed.stdout
    shown = run_cli("plugins", "--json")
    assert shown.exit_code == 0, shown.output
    (info,) = [p for p in json.loads(shown.stdout) if p["name"] == name]
    assert info["error"] is None and len(info["problems"]) == 1
    assert info["problems"][0].startswith(f"{hook}: ")
    assert f"PROBLEM: {hook}: " in run_cli("plugins", name).stdout
    # a measuring command that asks every collected hook, several times over
    compared = run_cli("compare", "toy", "toy+toy-mixer", "--no-latency")
    assert compared.exit_code == 0, compared.output
    (warning,) = warnings_about(compared, f"plugin {name!r}")
    assert hook in warning and "ignored" in warning
    assert [r["status"] for r in read_report(compared.run_dir)["rows"]] == ["ok", "ok"]
    assert len(pd.read_csv(compared.run_dir / "report.csv")) == 2
    assert (compared.run_dir / "report.md").is_file()


IMPOSTOR = """
    from archbench import Architecture, Variant, hookimpl
    from archbench.mixers import TokenMixer

    @hookimpl
    def archbench_architectures():
        return [Architecture(name="vit", family="Impostor", paper="-", input_kind="image",
                             default_variant="tiny",
                             variants={"tiny": Variant(config={}, img_size=32)})]

    @hookimpl
    def archbench_token_mixers():
        return [TokenMixer(name="msa", description="impostor", paper="-",
                           build=lambda cfg: None, macs=lambda cfg: 0)]
"""


def test_a_name_taken_twice_keeps_the_builtin_and_warns_naming_both(run_cli, plugin):
    name = plugin(IMPOSTOR)
    listed = run_cli("list", "vit")
    assert listed.exit_code == 0, listed.output
    assert "vit:small *" in listed.stdout and "Impostor" not in listed.stdout
    (warning,) = warnings_about(listed, f"plugin {name!r}")
    assert "architecture 'vit' is already registered by plugin 'vit'" in warning
    mixers = run_cli("mixers", "msa", "--sizes", "7", "--no-latency")
    assert mixers.exit_code == 0, mixers.output
    (row,) = read_report(mixers.run_dir)["rows"]
    assert row["arch"] == "vit" and row["macs_formula"] > 0  # vit's MSA, not the impostor
    assert warnings_about(mixers, "token mixer 'msa' is already registered by plugin 'vit'")
    problems = {p["name"]: p["problems"] for p in json.loads(run_cli("plugins", "--json").stdout)}
    assert len(problems[name]) == 2 and problems["vit"] == []


@pytest.mark.parametrize("impostor_first", [True, False])
def test_the_builtin_keeps_its_name_whichever_registers_first(plugin, capsys, impostor_first):
    """pluggy calls the last registered first; the built-in wins in either order."""
    from archbench import __version__
    from archbench.core.mixers import collect_mixers
    from archbench.core.registry import Registry
    from archbench.plugins import PluginInfo, PluginManager, get_plugin_manager

    name = plugin(IMPOSTOR)
    impostor = importlib.import_module(name)
    vit = get_plugin_manager().get_plugin("vit")
    entries = [(impostor, PluginInfo("aaa", name, "archbench-aaa", "1.0", "entry point")),
               (vit, PluginInfo("vit", "archbench_vit", "archbench", __version__, "entry point"))]
    pm = PluginManager()
    for module, info in entries if impostor_first else entries[::-1]:
        pm.register_plugin(module, info)
    assert Registry.from_plugins(pm).get("vit").family == "ViT"
    assert collect_mixers(pm)["msa"].plugin == "vit"
    assert pm.infos["aaa"].problems and not pm.infos["vit"].problems
    err = capsys.readouterr().err
    assert "plugin 'aaa' (archbench-aaa 1.0)" in err and "by plugin 'vit'" in err


# -- 2. a writer or a value that cannot be written costs that writer or that value --------


def test_a_failing_writer_costs_its_own_file_only(run_cli, plugin):
    name = plugin("""
        from archbench import hookimpl
        from archbench.report.report import ReportWriter

        def render(report):
            if len(report.rows) >= 2:
                raise RuntimeError("cannot render two rows")
            return f"{len(report.rows)} rows"

        @hookimpl
        def archbench_report_writers():
            return [ReportWriter("rows", "report.rows", render)]
    """)
    result = run_cli("compare", "toy", "toy[width=4]", "--no-latency")
    assert result.exit_code == 0, result.output
    (warning,) = warnings_about(result, "report writer 'rows'")
    assert f"plugin {name!r}" in warning and "cannot render two rows" in warning
    files = set(os.listdir(result.run_dir))
    assert "report.rows" not in files  # written for the first row, then removed
    assert not [f for f in files if f.endswith(".tmp")]
    assert len(pd.read_csv(result.run_dir / "report.csv")) == 2
    assert len(read_report(result.run_dir)["rows"]) == 2
    assert r"toy:tiny\[width=4\]" in (result.run_dir / "report.md").read_text()


def test_values_that_are_not_one_value_are_written_as_text_with_a_note(run_cli, plugin):
    plugin("""
        from archbench import hookimpl

        class Opaque:
            def __str__(self):
                return "opaque|value"

        @hookimpl
        def archbench_analyze(ctx):
            if ctx.spec.arch.name != "toy":
                return None
            import torch

            return {"odd_set": {2, 1}, "odd_object": Opaque(), "odd_tensor": torch.ones(3),
                    "one_tensor": torch.tensor(2.5),
                    "odd_details": {"kinds": {"b", "a"}, "weights": torch.zeros(2),
                                    "object": Opaque()}}
    """)
    result = run_cli("compare", "toy", "toy[width=4]", "--no-latency")
    assert result.exit_code == 0, result.output
    rows = read_report(result.run_dir)["rows"]
    assert len(rows) == 2 and len(pd.read_csv(result.run_dir / "report.csv")) == 2
    row = rows[0]
    assert row["one_tensor"] == 2.5
    assert (row["odd_set"], row["odd_object"]) == ("{1, 2}", "opaque|value")
    assert row["odd_tensor"] == "tensor([1., 1., 1.])"
    assert row["details"]["odd_details"] == {"kinds": ["a", "b"], "weights": [0.0, 0.0],
                                             "object": "opaque|value"}
    assert len(row["details"]["value_notes"]) == 3
    assert "column 'odd_set': a set is not one value" in row["details"]["value_notes"][0]
    assert len(warnings_about(result, "is not one value")) == 3  # once per column


def test_jsonable_turns_anything_into_json():
    import math

    import numpy as np
    import torch

    from archbench.report.report import jsonable

    value = {"set": {3, 1}, "mixed": {1, "a"}, "array": np.arange(3), "nan": math.nan,
             "scalar": np.float32(1.5), "tensor": torch.eye(2), "object": object,
             ("tuple", "key"): (1, np.int64(2))}
    plain = jsonable(value)
    json.dumps(plain)
    assert plain["set"] == [1, 3] and plain["array"] == [0, 1, 2] and plain["nan"] is None
    assert plain["scalar"] == 1.5 and plain["tensor"] == [[1.0, 0.0], [0.0, 1.0]]
    assert plain["object"] == "<class 'object'>" and plain["('tuple', 'key')"] == [1, 2]
    assert sorted(map(str, plain["mixed"])) == ["1", "a"]


# -- 3 and 4. the CPU allocator's out-of-memory is oom, and fails every command -----------

HOG = """
    from archbench import Architecture, Variant, hookimpl
    from archbench.mixers import TokenMixer

    #: 1 EiB: more than any address space, so the CPU allocator refuses at once
    HUGE = 2 ** 60

    def _hog(dim):
        import torch
        from torch import nn

        class Hog(nn.Linear):
            def forward(self, x):
                torch.empty(HUGE, dtype=torch.uint8)
                return super().forward(x)

        return Hog(dim, dim)

    @hookimpl
    def archbench_architectures():
        return [Architecture(name="hog", family="Hog", paper="-", input_kind="image",
                             default_variant="build",
                             variants={"build": Variant(config={"where": "build"}, img_size=8),
                                       "forward": Variant(config={"where": "forward"},
                                                          img_size=8)})]

    @hookimpl
    def archbench_build_model(spec, swap):
        if spec.arch.name != "hog":
            return None
        import torch

        if spec.config["where"] == "build":
            torch.empty(HUGE, dtype=torch.uint8)
        return _hog(8)

    @hookimpl
    def archbench_token_mixers():
        return [TokenMixer(name="hog-mixer", description="allocates 1 EiB", paper="-",
                           build=lambda cfg: _hog(cfg.dim), macs=lambda cfg: 0)]
"""


def test_the_cpu_allocators_failure_is_oom():
    import torch

    from archbench.measure.device import is_oom

    with pytest.raises(RuntimeError) as failed:
        torch.empty(2**60, dtype=torch.uint8)
    assert "DefaultCPUAllocator: can't allocate memory" in str(failed.value)
    assert is_oom(failed.value)
    assert not is_oom(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


def test_a_real_cpu_allocation_failure_is_an_oom_row_in_compare_and_mixers(run_cli, plugin):
    plugin(HOG)
    result = run_cli("compare", "hog:build", "hog:forward", "toy", *FAST)
    assert result.exit_code == 1, result.output
    rows = {r["model"]: r for r in read_report(result.run_dir)["rows"]}
    assert {m: r["status"] for m, r in rows.items()} == {
        "hog:build": "oom", "hog:forward": "oom", "toy:tiny": "ok"}
    assert "can't allocate memory" in rows["hog:forward"]["error"]
    mixers = run_cli("mixers", "hog-mixer", "--sizes", "7", *FAST)
    assert mixers.exit_code == 1, mixers.output
    assert [r["status"] for r in read_report(mixers.run_dir)["rows"]] == ["oom"]


# -- 6. the environment records the threads the run used -----------------------------------


def test_the_environment_records_the_threads_the_run_used(run_cli):
    import torch

    default = torch.get_num_threads()
    for threads, extra in ((default + 1, FAST), (1, ("--no-latency",)), (default + 1, FAST)):
        result = run_cli("compare", "toy", "--threads", str(threads), *extra)
        assert result.exit_code == 0, result.output
        report = read_report(result.run_dir)
        assert report["environment"]["threads"] == threads
        assert report["rows"][0]["details"]["where"]["threads"] == threads
    assert torch.get_num_threads() == default  # put back after the run


# -- 7. an interrupt while the files are replaced ------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_between_two_renames_waits_for_the_last(tmp_path, monkeypatch, signum):
    from archbench.report import report as report_module
    from archbench.run.session import sigterm_interrupts

    for name in ("report.csv", "report.json"):
        (tmp_path / name).write_text("old")
    replace = os.replace
    renamed = []

    def replace_and_signal(src, dst):
        if not renamed:
            signal.raise_signal(signum)  # arrives between the first and the second rename
        replace(src, dst)
        renamed.append(os.path.basename(dst))

    monkeypatch.setattr(report_module.os, "replace", replace_and_signal)
    with sigterm_interrupts(), pytest.raises(KeyboardInterrupt):
        report_module.write_files(tmp_path, {"report.csv": "new", "report.json": "new"})
    assert renamed == ["report.csv", "report.json"]
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        "report.csv": "new", "report.json": "new"}


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_a_signal_while_writers_run_leaves_every_file_with_every_finished_row(
        run_cli, plugin, signum):
    plugin(f"""
        import os
        import signal

        from archbench import hookimpl
        from archbench.report.report import ReportWriter

        SENT = []

        def render(report):
            if len(report.rows) == 2 and not SENT:  # once, as a user would
                SENT.append(signal.{signum})
                os.kill(os.getpid(), signal.{signum})
            return f"{{len(report.rows)}} rows"

        @hookimpl
        def archbench_report_writers():
            return [ReportWriter("rows", "report.rows", render)]
    """)
    result = run_cli("compare", "toy", "toy[width=4]", "toy[width=2]", "--no-latency")
    assert result.exit_code == 130, result.output
    csv = pd.read_csv(result.run_dir / "report.csv")["model"].tolist()
    json_rows = [r["model"] for r in read_report(result.run_dir)["rows"]]
    assert csv == json_rows == ["toy:tiny", "toy:tiny[width=4]"]
    assert (result.run_dir / "report.rows").read_text() == "2 rows"
    assert not list(result.run_dir.glob(".*.tmp"))
