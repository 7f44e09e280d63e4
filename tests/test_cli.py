"""The CLI as a user meets it: listing, comparing, reports, bad input and failing models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import read_report

FAST = ("--warmup", "0", "--min-time", "0")


def test_list_answers_without_importing_torch():
    code = (
        "import sys\n"
        "from archbench.cli import main\n"
        "try:\n"
        "    main(['list'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('TORCH', 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "vit:small *" in out.stdout
    assert "TORCH False" in out.stdout


def test_list_pattern_and_json(run_cli):
    result = run_cli("list", "vit:base*", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert {r["name"] for r in rows} == {"vit:base", "vit:base_patch32", "vit:base_384"}
    base = next(r for r in rows if r["name"] == "vit:base")
    assert base["input_kind"] == "image" and base["plugin"] == "vit"
    assert base["config"]["embed_dim"] == 768


def test_list_unknown_pattern_is_an_error(run_cli):
    result = run_cli("list", "nothing*")
    assert result.exit_code == 2


def test_plugins_json_shows_core_and_architecture_plugins(run_cli):
    result = run_cli("plugins", "--json")
    assert result.exit_code == 0
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert {"inputs", "counting", "latency", "writers", "vit"} <= set(plugins)
    assert plugins["counting"]["kind"] == "core"
    assert plugins["vit"]["kind"] == "entry point"
    assert plugins["vit"]["distribution"] == "archbench"
    assert "archbench_build_model" in plugins["vit"]["hooks"]


def test_version_and_help_examples(run_cli):
    assert run_cli("--version").stdout.startswith("archbench, version")
    for command in ("list", "plugins", "compare"):
        assert "Example" in run_cli(command, "--help").stdout


def test_compare_writes_three_reports(run_cli):
    result = run_cli("compare", "vit:tiny", "toy", "--batch-size", "1,2", *FAST)
    assert result.exit_code == 0, result.output
    files = {p.name for p in result.run_dir.iterdir()}
    assert {"report.csv", "report.json", "report.md"} <= files
    assert not {f for f in files if f.startswith(".")}  # no temporary files left
    frame = pd.read_csv(result.run_dir / "report.csv")
    assert list(frame["model"]) == ["vit:tiny", "vit:tiny", "toy:tiny", "toy:tiny"]
    assert list(frame["batch_size"]) == [1, 2, 1, 2]
    assert (frame["status"] == "ok").all()
    assert (frame["latency_ms_median"] > 0).all()
    assert frame["latency_ms_p10"].le(frame["latency_ms_p90"]).all()
    report = read_report(result.run_dir)
    assert report["report_version"] == 1
    env = report["environment"]
    assert {"torch", "timm", "fvcore", "cpu", "threads", "date"} <= set(env)
    assert report["rows"][0]["details"]["latency_samples_ms"]
    md = (result.run_dir / "report.md").read_text()
    assert "| vit:tiny" in md and "GMACs" in md
    assert "vit:tiny" in result.stdout  # the table is printed


def test_compare_formats_and_no_latency(run_cli):
    result = run_cli("compare", "vit:tiny", "--no-latency", "--format", "json")
    assert result.exit_code == 0, result.output
    assert [p.name for p in result.run_dir.iterdir()] == ["report.json"]
    row = read_report(result.run_dir)["rows"][0]
    assert row["latency_ms_median"] is None if "latency_ms_median" in row else True
    assert row["gmacs"] == pytest.approx(1.26, abs=0.01)


def test_set_overrides_a_config_field(run_cli):
    result = run_cli("compare", "vit:tiny", "--no-latency", "--set", "depth=2")
    assert result.exit_code == 0, result.output
    row = read_report(result.run_dir)["rows"][0]
    assert row["model"] == "vit:tiny[depth=2]"
    assert row["details"]["config"]["depth"] == 2
    assert row["params_m"] < 1.5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("vitt",), "did you mean 'vit'"),
        (("vit:gigantic",), "unknown variant of 'vit'"),
        (("vit", "--img-size", "225"), "image size 225 is not divisible by patch_size 16"),
        (("vit", "--batch-size", "0"), "--batch-size must be at least 1"),
        (("vit", "--set", "vit.depthh=3"), "has no config field 'depthh'"),
        (("vit", "--set", "vit.depth=three"), "expected a value of type int"),
        (("vit", "--format", "xlsx"), "--format 'xlsx'"),
        (("vit", "--seq-len", "64"), "--seq-len applies to token models"),
        (("vit", "--device", "tpu"), "expected auto, cpu, cuda"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_building(run_cli, args, message):
    import archbench_testplugin

    result = run_cli("compare", "toy", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert archbench_testplugin.BUILDS == []
    assert result.run_dir is None


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="checks the error on a machine without CUDA"
)
def test_cuda_without_cuda_is_an_error(run_cli):
    result = run_cli("compare", "toy", "--device", "cuda")
    assert result.exit_code == 2
    assert "CUDA is not available" in result.stderr


def test_unwritable_out_is_an_error(run_cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run_cli("compare", "toy", "--out", str(blocker / "results"))
    assert result.exit_code == 2
    assert "cannot write there" in result.stderr


def test_a_failing_model_costs_its_row_only(run_cli):
    result = run_cli("compare", "toy:broken", "toy:oom", "toy:tiny", *FAST)
    assert result.exit_code == 1
    rows = {r["model"]: r for r in read_report(result.run_dir)["rows"]}
    assert rows["toy:broken"]["status"] == "error"
    assert "refuses to build" in rows["toy:broken"]["error"]
    assert rows["toy:oom"]["status"] == "oom"
    assert rows["toy:oom"]["params_m"] > 0  # the analysis before the failure is kept
    assert rows["toy:tiny"]["status"] == "ok"
    assert "toy:broken" in (result.run_dir / "report.md").read_text()


@pytest.mark.parametrize("extra", [("--no-latency",), FAST])
def test_interrupt_keeps_finished_rows(run_cli, extra):
    result = run_cli("compare", "toy:tiny", "toy:interrupt", "toy:tiny", *extra)
    assert result.exit_code == 130
    frame = pd.read_csv(result.run_dir / "report.csv")
    # without latency a row is finished once counted; with latency, when its last
    # (interleaved) trial ends, which the interrupt came before
    expected = ["toy:tiny"] if "--no-latency" in extra else []
    assert list(frame["model"]) == expected
    assert read_report(result.run_dir)["rows"] == [] if not expected else True
    assert not list(result.run_dir.glob(".*.tmp"))


def test_plugin_that_fails_to_import_is_reported_not_fatal(monkeypatch, run_cli):
    monkeypatch.setenv("ARCHBENCH_PLUGINS", "archbench_testplugin,archbench_no_such_module")
    result = run_cli("plugins", "--json")
    assert result.exit_code == 0
    assert "failed to load" in result.stderr
    broken = [p for p in json.loads(result.stdout) if p["name"] == "archbench_no_such_module"]
    assert broken and "ModuleNotFoundError" in broken[0]["error"]
    assert run_cli("list", "vit").exit_code == 0


def test_misspelled_hook_fails_loudly(monkeypatch, run_cli, tmp_path):
    (tmp_path / "archbench_typo.py").write_text(
        "from archbench import hookimpl\n\n@hookimpl\ndef archbench_architecture():\n    return []\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("ARCHBENCH_PLUGINS", "archbench_typo")
    result = run_cli("list")
    assert result.exit_code == 2
    assert "archbench_architecture" in result.stderr


def test_disable_autoload_keeps_builtin_plugins(monkeypatch):
    from archbench.plugins import DISABLE_AUTOLOAD_ENV, get_plugin_manager

    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    pm = get_plugin_manager()
    assert pm.has_plugin("vit") and pm.has_plugin("counting")
    assert all(i.distribution == "archbench" for i in pm.infos.values() if i.kind != "env")


def test_cli_entry_point_runs_as_a_program(tmp_path):
    env = {**os.environ, "ARCHBENCH_DISABLE_PLUGIN_AUTOLOAD": "1"}
    program = Path(sys.executable).with_name("archbench")
    out = subprocess.run([str(program), "compare", "nope"], capture_output=True, text=True,
                         env=env, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith("archbench: error: unknown architecture 'nope'")


def test_plugins_filters_by_name_and_hook(run_cli):
    result = run_cli("plugins", "vit", "--json")
    assert [p["name"] for p in json.loads(result.stdout)] == ["vit"]
    result = run_cli("plugins", "--hook", "evaluate", "--json")
    names = {p["name"] for p in json.loads(result.stdout)}
    assert "latency" in names and "vit" not in names
    assert run_cli("plugins", "nope").exit_code == 2
    bad_hook = run_cli("plugins", "--hook", "archbench_nope")
    assert bad_hook.exit_code == 2 and "not an archbench hook" in bad_hook.stderr


def test_report_merges_runs_and_flags_mixed_devices(run_cli, tmp_path):
    first = run_cli("compare", "toy", *FAST, out=tmp_path / "a").run_dir
    second = run_cli("compare", "toy", "vit:tiny", "--no-latency", out=tmp_path / "b").run_dir
    report = json.loads((second / "report.json").read_text())
    report["environment"]["device_name"] = "Another GPU"
    (second / "report.json").write_text(json.dumps(report))
    result = run_cli("report", str(first), str(second), "--out", str(tmp_path / "merged"))
    assert result.exit_code == 0, result.output
    merged_dir = next((tmp_path / "merged").iterdir())
    frame = pd.read_csv(merged_dir / "report.csv")
    assert list(frame["model"]) == ["toy:tiny", "toy:tiny", "vit:tiny"]
    assert list(frame["run"]) == [first.name, second.name, second.name]
    assert frame["device_name"].iloc[-1] == "Another GPU"
    assert "different devices" in (merged_dir / "report.md").read_text()
    assert len(json.loads((merged_dir / "report.json").read_text())["environment"]["runs"]) == 2


def test_report_rejects_bad_folders(run_cli, tmp_path):
    result = run_cli("report", str(tmp_path), "--out", str(tmp_path / "m"))
    assert result.exit_code == 2 and "not an archbench run folder" in result.stderr
    old = tmp_path / "old"
    old.mkdir()
    (old / "report.json").write_text(json.dumps({"report_version": 0, "rows": []}))
    result = run_cli("report", str(old), "--out", str(tmp_path / "m"))
    assert result.exit_code == 2 and "report version 0" in result.stderr


def test_train_mode_times_a_training_step_and_counts_backward(run_cli):
    result = run_cli("compare", "vit:tiny", "--set", "vit.depth=2", "--mode", "train",
                     "--repeat", "2", *FAST)
    assert result.exit_code == 0, result.output
    row = read_report(result.run_dir)["rows"][0]
    assert row["mode"] == "train"
    # backward costs about twice the forward: a training step is ~3x the forward MACs
    assert 2.5 < row["train_gmacs"] / row["gmacs"] < 3.5
    assert row["achieved_gmacs_per_s"] > 0 and row["peak_fraction"] > 0


def test_rows_have_trials_intervals_and_efficiency(run_cli):
    result = run_cli("compare", "toy", "vit:tiny", "--set", "vit.depth=1", "--repeat", "5",
                     "--warmup", "1", "--min-time", "0.1")
    assert result.exit_code == 0, result.output
    report = read_report(result.run_dir)
    assert report["environment"]["matmul_peak_gmacs_per_s"] > 0
    assert report["environment"]["tf32_matmul"] is False
    toy, vit = report["rows"]
    assert len(vit["details"]["latency_samples_ms"]) == 5  # one list per trial
    assert vit["latency_ms_ci95_low"] <= vit["latency_ms_median"] <= vit["latency_ms_ci95_high"]
    assert vit["attention_backend"] in {"flash", "math", "efficient"}
    assert toy["attention_backend"] is None
    ratios = next(iter(report["tables"].values()))
    assert ratios[0]["model"] == "vit:tiny[depth=1]" and ratios[0]["against"] == "toy:tiny"
    assert "Latency ratios" in (result.run_dir / "report.md").read_text()


def test_channels_last_and_tf32_are_applied_and_recorded(run_cli):
    result = run_cli("compare", "toy", "--channels-last", "--dtype", "tf32", *FAST)
    assert result.exit_code == 0, result.output
    report = read_report(result.run_dir)
    assert report["settings"]["channels_last"] is True
    assert report["rows"][0]["dtype"] == "tf32"
    assert report["environment"]["tf32_matmul"] is True


def test_max_batch_finds_the_largest_batch_that_fits(run_cli):
    result = run_cli("compare", "toy:limited", "--max-batch", *FAST)
    assert result.exit_code == 0, result.output
    row = read_report(result.run_dir)["rows"][0]
    assert row["batch_size"] == 6 and row["max_batch"] == 6
    probes = row["details"]["max_batch_probes"]
    assert [p[0] for p in probes if p[1]] == [1, 2, 4, 6]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--cuda-graphs", "--device", "cpu"), "--cuda-graphs needs a CUDA device"),
        (("--max-batch", "--batch-size", "4"), "--max-batch finds the batch size itself"),
        (("--compile", "turbo"), "--compile 'turbo'"),
    ],
)
def test_bad_mode_combinations_exit_2(run_cli, args, message):
    result = run_cli("compare", "toy", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_train_mode_needs_trainable_parameters(run_cli):
    result = run_cli("compare", "toy:frozen", "--mode", "train")
    assert result.exit_code == 2
    assert "no parameters that require grad" in result.stderr


def test_compile_needs_torch_compile(run_cli, monkeypatch):
    import torch

    monkeypatch.delattr(torch, "compile")
    result = run_cli("compare", "toy", "--compile")
    assert result.exit_code == 2
    assert "--compile needs torch.compile" in result.stderr


def test_compile_reports_compile_time_outside_the_timed_loop(run_cli):
    """Two compiled models interleaved: one compiling between the other's trials is not a
    recompile of the other."""
    result = run_cli("compare", "toy", "toy[width=4]", "--compile", "--device", "cpu",
                     "--repeat", "2", *FAST)
    assert result.exit_code == 0, result.output
    for row in read_report(result.run_dir)["rows"]:
        assert row["status"] == "ok", row["error"]
        assert row["compile_s"] > 0
        assert row["latency_ms_median"] < row["compile_s"] * 1e3


def test_sweep_fits_slopes_against_tokens(run_cli):
    result = run_cli("sweep", "vit:tiny", "--img-sizes", "112,224,448", "--no-latency")
    assert result.exit_code == 0, result.output
    report = read_report(result.run_dir)
    assert [r["input"] for r in report["rows"]] == ["112x112", "224x224", "448x448"]
    (slopes,) = report["tables"]["Scaling: log-log slopes against tokens"]
    # ViT's MACs: linear terms plus the quadratic attention term, so between 1 and 2,
    # nearer 1 at these sizes (N < 2C for most of the range)
    assert 1.0 < slopes["slope_gmacs"] < 1.5
    assert (result.run_dir / "sweep_gmacs.png").read_bytes().startswith(b"\x89PNG")
    assert "![sweep_gmacs](sweep_gmacs.png)" in (result.run_dir / "report.md").read_text()


def test_sweep_needs_sizes(run_cli):
    result = run_cli("sweep", "vit")
    assert result.exit_code == 2
    assert "--img-sizes" in result.stderr
