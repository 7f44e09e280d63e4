"""The engine: plain tasks and rows, the local executor, the session's rules for every
command, pluggy wrappers and conflicts, per-target overrides, swaps the core verifies."""

from __future__ import annotations

import pickle

import pandas as pd
import pytest
from conftest import read_report

FAST = ("--warmup", "0", "--min-time", "0", "--repeat", "2")


@pytest.fixture
def toy_pm(monkeypatch):
    import archbench_testplugin  # noqa: F401  (tests/ is on sys.path)

    from archbench.plugins import get_plugin_manager

    monkeypatch.setenv("ARCHBENCH_PLUGINS", "archbench_testplugin")
    return get_plugin_manager()


def test_a_hand_built_task_is_plain_data_and_runs_through_the_local_executor(toy_pm):
    from archbench import RunSettings
    from archbench.core.registry import Registry
    from archbench.run.local import LocalExecutor
    from archbench.run.task import Task

    registry = Registry.from_plugins(toy_pm)
    specs = (registry.resolve("toy"), registry.resolve("toy[width=4]"))
    task = Task(0, specs, RunSettings(batch_sizes=(1, 2), warmup=0, min_time=0, repeat=2))
    assert pickle.loads(pickle.dumps(task)) == task
    executor = LocalExecutor(toy_pm)
    executor.submit([task])
    rows = list(executor.results())
    assert [(r.columns["model"], r.columns["batch_size"]) for r in rows] == [
        ("toy:tiny", 1), ("toy:tiny", 2), ("toy:tiny[width=4]", 1), ("toy:tiny[width=4]", 2)]
    assert all(r.status == "ok" and r.where["pid"] for r in rows)
    assert pickle.loads(pickle.dumps(rows[0])).columns == rows[0].columns
    assert len(rows[0].details["latency_samples_ms"]) == 2  # one list per trial


def test_every_registered_architecture_and_mixer_spec_pickles(plugin_manager):
    """Tasks travel to other processes: every spec of every architecture must pickle (a
    lambda in ``mixer_swap`` or ``find_variants`` would not)."""
    from archbench.core.mixers import MixerConfig, collect_mixers
    from archbench.core.registry import Registry
    from archbench.mixers.alone import mixer_spec

    registry = Registry.from_plugins(plugin_manager)
    for arch in registry.architectures.values():
        assert pickle.loads(pickle.dumps(arch)).name == arch.name
    for mixer in collect_mixers(plugin_manager).values():
        spec = mixer_spec(mixer, MixerConfig(size=14), 1e6, "fp32", 1)
        assert pickle.loads(pickle.dumps(spec)).name == mixer.name


def test_cancel_drops_outstanding_tasks(toy_pm):
    from archbench import RunSettings
    from archbench.core.registry import Registry
    from archbench.run.local import LocalExecutor
    from archbench.run.task import Task

    spec = Registry.from_plugins(toy_pm).resolve("toy")
    executor = LocalExecutor(toy_pm)
    executor.submit([Task(i, (spec,), RunSettings(latency=False)) for i in range(3)])
    results = executor.results()
    first = next(results)
    executor.cancel()
    assert first.task == 0 and list(results) == []


def test_ablations_run_in_one_group_with_their_own_overrides(run_cli):
    result = run_cli("compare", "toy", "toy+toy-mixer", "toy[width=4]", "toy@64", *FAST)
    assert result.exit_code == 0, result.output
    report = read_report(result.run_dir)
    rows = {r["model"] + " " + r["input"]: r for r in report["rows"]}
    assert list(rows) == ["toy:tiny 32x32", "toy:tiny+toy-mixer 32x32",
                          "toy:tiny[width=4] 32x32", "toy:tiny 64x64"]
    assert {r["details"]["group"] for r in report["rows"]} == {0}  # interleaved together
    assert rows["toy:tiny[width=4] 32x32"]["details"]["config"]["width"] == 4
    assert rows["toy:tiny+toy-mixer 32x32"]["mixer"] == "toy-mixer"
    ratios = next(iter(report["tables"].values()))
    assert [r["model"] for r in ratios] == ["toy:tiny+toy-mixer", "toy:tiny[width=4]",
                                            "toy:tiny"]
    assert result.run_dir.name.endswith(
        "-compare-toy-tiny_toy-tiny+toy-mixer_toy-tiny-width-4_toy-tiny@64")


def test_target_overrides_win_over_run_level_defaults(run_cli):
    result = run_cli("compare", "toy[width=4]", "toy", "--set", "width=2", "--no-latency")
    assert result.exit_code == 0, result.output
    configs = {r["model"]: r["details"]["config"]["width"]
               for r in read_report(result.run_dir)["rows"]}
    assert configs == {"toy:tiny[width=4]": 4, "toy:tiny[width=2]": 2}


@pytest.mark.parametrize(
    ("target", "message"),
    [("toy[width]", "is not KEY=VALUE"), ("toy@x", "positive integer"),
     ("toy[depth=2]", "has no config field 'depth'"), ("toy[width=two]", "type int"),
     ("toy:tiny:x", "more than one ':'")],
)
def test_bad_targets_exit_2_before_building(run_cli, target, message):
    import archbench_testplugin

    result = run_cli("compare", target, "--no-latency")
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert archbench_testplugin.BUILDS == [] and result.run_dir is None


def test_a_swap_the_model_does_not_hold_fails_its_row(run_cli):
    result = run_cli("compare", "toy+toy-mixer", "toy:ignores-swap+toy-mixer", "--no-latency")
    assert result.exit_code == 1, result.output
    rows = {r["model"]: r for r in read_report(result.run_dir)["rows"]}
    assert rows["toy:tiny+toy-mixer"]["status"] == "ok"
    assert rows["toy:tiny+toy-mixer"]["mixer_gmacs"] == pytest.approx(
        rows["toy:tiny+toy-mixer"]["mixer_gmacs_formula"])
    failed = rows["toy:ignores-swap+toy-mixer"]
    assert failed["status"] == "error" and "0 swapped layer(s)" in failed["error"]


def test_hook_wrappers_run_and_their_columns_reach_the_report(run_cli, monkeypatch):
    monkeypatch.setenv("ARCHBENCH_PLUGINS", "archbench_testplugin,archbench_wrapper")
    result = run_cli("compare", "toy", *FAST)
    assert result.exit_code == 0, result.output
    (row,) = read_report(result.run_dir)["rows"]
    assert row["wrapped_gflops"] == pytest.approx(2 * row["gmacs"])
    assert row["wrapped_batch"] == 1
    assert "wrapped_gflops" in (result.run_dir / "report.csv").read_text()


def load_beside_the_toy(monkeypatch, folder, name: str, hook: str, body: str) -> None:
    """A one-hook plugin module ``name`` written to ``folder`` and loaded with the toy one."""
    (folder / f"{name}.py").write_text(
        f"from archbench import hookimpl\n\n@hookimpl\ndef {hook}:\n    {body}\n")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("ARCHBENCH_PLUGINS", f"archbench_testplugin,{name}")


def test_conflicting_columns_name_both_plugins(run_cli, monkeypatch, tmp_path):
    load_beside_the_toy(monkeypatch, tmp_path, "archbench_clash", "archbench_analyze(ctx)",
                        "return {'gmacs': 0.0}")
    result = run_cli("compare", "toy", "--no-latency")
    assert result.exit_code == 1
    (row,) = read_report(result.run_dir)["rows"]
    assert "'gmacs'" in row["error"] and "'counting'" in row["error"]
    assert "'archbench_clash'" in row["error"]


def test_a_row_error_names_the_plugin_and_hook_and_the_debug_flag(run_cli):
    result = run_cli("compare", "toy:broken", "--no-latency")
    (row,) = read_report(result.run_dir)["rows"]
    assert "plugin 'archbench_testplugin', archbench_build_model" in row["error"]
    assert "--debug" in row["error"]
    debug = run_cli("compare", "toy:broken", "--no-latency", "--debug")
    assert "Traceback" in debug.stderr


@pytest.mark.parametrize("command", [("compare", "toy:oom", "toy"),
                                     ("sweep", "toy:oom", "--img-sizes", "32,64")])
def test_an_oom_row_means_exit_1_in_every_command(run_cli, command):
    result = run_cli(*command, *FAST)
    assert result.exit_code == 1, result.output
    statuses = pd.read_csv(result.run_dir / "report.csv")["status"]
    assert "oom" in set(statuses)


def test_sweep_groups_are_one_per_size_and_ratios_stay_inside_them(run_cli):
    result = run_cli("sweep", "toy", "toy[width=4]", "--img-sizes", "32,64", *FAST)
    assert result.exit_code == 0, result.output
    report = read_report(result.run_dir)
    groups = [(r["input"], r["details"]["group"]) for r in report["rows"]]
    assert groups == [("32x32", 0), ("32x32", 0), ("64x64", 1), ("64x64", 1)]
    ratios = next(t for k, t in report["tables"].items() if "ratios" in k)
    assert [(r["model"], r["input"], r["against"]) for r in ratios] == [
        ("toy:tiny[width=4]", "32x32", "toy:tiny"), ("toy:tiny[width=4]", "64x64", "toy:tiny")]


def test_mixers_keep_finished_rows_on_ctrl_c(run_cli):
    result = run_cli("mixers", "toy-mixer", "--sizes", "7,21,28", *FAST)
    assert result.exit_code == 130
    frame = pd.read_csv(result.run_dir / "report.csv")
    assert frame["input"].tolist() == ["7x7"] and frame["status"].tolist() == ["ok"]
    assert not list(result.run_dir.glob(".*.tmp"))
    assert "Token mixers: cost against size" in read_report(result.run_dir)["tables"]


def test_sigterm_stops_like_ctrl_c_with_finished_rows_on_disk(run_cli):
    result = run_cli("compare", "toy", "toy:sigterm", "--no-latency")
    assert result.exit_code == 130
    assert pd.read_csv(result.run_dir / "report.csv")["model"].tolist() == ["toy:tiny"]


def test_unknown_executor_is_a_usage_error(run_cli):
    result = run_cli("compare", "toy", "--executor", "nowhere")
    assert result.exit_code == 2 and "'nowhere' is not one of 'local', 'ray'" in result.stderr
    assert result.run_dir is None


def test_a_plugin_failing_while_the_plan_is_checked_is_one_line_exit_2(run_cli, monkeypatch,
                                                                        tmp_path):
    load_beside_the_toy(monkeypatch, tmp_path, "archbench_badcheck", "archbench_validate(spec)",
                        "raise ValueError('cannot read the config')")
    result = run_cli("compare", "toy", "--no-latency")
    assert result.exit_code == 2, result.output
    assert "plugin 'archbench_badcheck', archbench_validate" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.run_dir is None


@pytest.mark.parametrize("args", [("--img-size", "0"), ("--batch-size", "1,0")])
def test_zero_sizes_are_usage_errors(run_cli, args):
    result = run_cli("compare", "toy", *args, "--no-latency")
    assert result.exit_code == 2 and "must be at least 1" in result.stderr


def test_train_mode_leaves_a_model_that_fails_to_build_to_its_row(run_cli):
    result = run_cli("compare", "toy", "toy:broken", "--mode", "train", *FAST)
    assert result.exit_code == 1, result.output
    statuses = {r["model"]: r["status"] for r in read_report(result.run_dir)["rows"]}
    assert statuses == {"toy:tiny": "ok", "toy:broken": "error"}


def test_sweep_slopes_keep_ablations_apart(run_cli):
    result = run_cli("sweep", "toy", "toy[width=4]", "--img-sizes", "32,64", "--no-latency")
    assert result.exit_code == 0, result.output
    slopes = next(t for k, t in read_report(result.run_dir)["tables"].items() if "slopes" in k)
    assert [s["model"] for s in slopes] == ["toy:tiny", "toy:tiny[width=4]"]
    assert run_cli("sweep", "toy@64", "--img-sizes", "32").exit_code == 2
