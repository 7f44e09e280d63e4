"""The token-mixer study: ``archbench mixers``, its scaling fits and plots, and ``--mixer``
swaps in whole backbones."""

from __future__ import annotations

import dataclasses
import sys

import pandas as pd
import pytest
from conftest import read_report

from archbench.mixers import MixerConfig, collect_mixers
from archbench.report.tables import crossover, fit_slope

FAST = ("--warmup", "0", "--min-time", "0", "--repeat", "1")


@pytest.fixture(scope="module")
def mixers(plugin_manager):
    return collect_mixers(plugin_manager)


def test_every_paper_mixer_is_registered_once(mixers):
    assert {"msa", "w-msa", "sw-msa", "gnconv", "gnconv-gf"} <= set(mixers)
    assert mixers["msa"].plugin == "vit" and mixers["w-msa"].plugin == "swin"
    assert mixers["gnconv"].plugin == "hornet"


def test_duplicate_mixer_names_keep_the_builtin_and_name_both_plugins(mixers, capsys):
    from types import SimpleNamespace

    from archbench import hookimpl
    from archbench.plugins import PluginInfo, get_plugin_manager

    pm = get_plugin_manager()
    for name in ("first", "second"):
        plugin = SimpleNamespace(archbench_token_mixers=hookimpl(lambda: [mixers["msa"]]))
        pm.register_plugin(plugin, PluginInfo(name, name, "-", "-", "test"))
    assert collect_mixers(pm)["msa"].plugin == "vit"
    err = capsys.readouterr().err
    for name in ("first", "second"):
        assert (f"plugin {name!r} (- -): archbench_token_mixers: token mixer 'msa' is already "
                "registered by plugin 'vit'") in err


def test_analytic_slopes(mixers):
    """Fitted on the analytic formulas over sizes 56..448 (N = 3136..200704 tokens), where
    MSA's 2N²C term dominates its 4NC² projections (N >> 2C)."""
    sizes = [56, 112, 224, 448]
    base = MixerConfig(dim=96, heads=3, window=7, order=3)
    tokens = [s * s for s in sizes]

    def slope(name):
        mixer = mixers[name]
        return fit_slope(tokens, [mixer.macs(dataclasses.replace(base, size=s)) for s in sizes])

    assert slope("msa") == pytest.approx(2.0, abs=0.05)
    for name in ("w-msa", "sw-msa", "gnconv"):
        assert slope(name) == pytest.approx(1.0, abs=0.05)


def test_crossover_interpolates_between_sizes():
    result = crossover([7, 14, 28], [2.0, 1.5, 0.5], [1.0, 1.0, 1.0])
    assert result["first_faster_size"] == 28
    assert 14 < result["crossover_size"] < 28
    assert crossover([7, 14], [2.0, 3.0], [1.0, 1.0])["first_faster_size"] is None


def test_sweep_writes_rows_tables_and_plots(run_cli):
    result = run_cli("mixers", "msa", "w-msa", "gnconv", "--sizes", "7,14,28", *FAST)
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(result.run_dir / "report.csv")
    assert len(frame) == 9 and (frame["status"] == "ok").all()
    assert (frame["latency_ms_median"] > 0).all()
    assert frame["tokens"].tolist()[:3] == [49, 196, 784]
    # The counted MACs (fvcore with the plugins' handlers) equal the formulas exactly here.
    assert (frame["macs_counted"] == frame["macs_formula"]).all()
    report = read_report(result.run_dir)
    titles = " ".join(report["tables"])
    assert "slopes" in titles and "Crossover" in titles
    slopes = next(t for k, t in report["tables"].items() if "slopes" in k)
    wmsa = next(r for r in slopes if r["mixer"] == "w-msa")
    assert wmsa["slope_macs_formula"] == pytest.approx(1.0, abs=1e-6)
    md = (result.run_dir / "report.md").read_text()
    for png in ("mixers_macs.png", "mixers_latency.png", "mixers_memory.png"):
        assert f"({png})" in md
        assert (result.run_dir / png).read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("w-msa", "--sizes", "5,14"), "smaller than the window"),
        (("msa", "--heads", "5"), "does not divide"),
        (("gnconv", "--order", "6"), "outside 1..5"),
        (("gnconv", "--order", "3", "--dim", "98"), "not divisible by 2^(order-1)"),
        (("wmsa",), "did you mean 'w-msa'"),
        (("msa", "--sizes", "7,x"), "comma-separated integers"),
    ],
)
def test_bad_input_exits_2_before_any_work(run_cli, args, message):
    result = run_cli("mixers", *args, *FAST)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.run_dir is None


def test_too_large_sizes_are_skipped_not_run(run_cli):
    result = run_cli("mixers", "msa", "w-msa", "--sizes", "7,28", "--max-memory", "1", *FAST)
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(result.run_dir / "report.csv")
    msa = frame[frame["model"] == "msa"].set_index("img_size")
    # msa: 3 heads x 49^2 x 4 bytes = 0.03 MB fits, 3 x 784^2 x 4 = 7 MB does not;
    # w-msa at 28: 3 x 784 x 49 x 4 = 0.4 MB fits.
    assert msa.loc[7, "status"] == "ok" and msa.loc[28, "status"] == "skipped"
    assert "memory budget" in msa.loc[28, "error"]
    assert msa.loc[28, "attention_mb_estimate"] == pytest.approx(3 * 784**2 * 4 / 2**20)
    assert (frame[frame["model"] == "w-msa"]["status"] == "ok").all()


def test_out_of_memory_becomes_a_row_and_the_run_exits_1(run_cli):
    """The test plugin's mixer fails like CUDA does at 14x14; the other sizes run."""
    result = run_cli("mixers", "toy-mixer", "--sizes", "7,14,28", *FAST)
    assert result.exit_code == 1, result.output
    frame = pd.read_csv(result.run_dir / "report.csv")
    assert frame["status"].tolist() == ["ok", "oom", "ok"]
    assert "toy-mixer" in frame["error"][1] and "batch of 196 tokens" in frame["error"][1]


def test_without_matplotlib_tables_are_still_written(run_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = run_cli("mixers", "w-msa", "--sizes", "7,14", *FAST)
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in result.run_dir.iterdir())
    assert files == ["report.csv", "report.json", "report.md"]
    assert ".png" not in (result.run_dir / "report.md").read_text()


# -- swaps in whole backbones -----------------------------------------------------------


def _compare(run_cli, *args):
    result = run_cli("compare", *args, "--no-latency")
    assert result.exit_code == 0, result.output
    return pd.read_csv(result.run_dir / "report.csv").set_index("model")


@pytest.mark.slow
def test_swaps_change_the_mixer_and_its_cost(run_cli):
    original = _compare(run_cli, "swin:tiny", "hornet:tiny", "vit:small")
    with_msa = _compare(run_cli, "swin:tiny", "hornet:tiny", "--mixer", "msa")
    with_gnconv = _compare(run_cli, "swin:tiny", "vit:small", "--mixer", "gnconv")
    with_wmsa = _compare(run_cli, "hornet:tiny", "--mixer", "w-msa")
    swapped = pd.concat([with_msa, with_gnconv, with_wmsa])
    assert set(swapped.index) == {
        "swin:tiny+msa",
        "hornet:tiny+msa",
        "swin:tiny+gnconv",
        "vit:small+gnconv",
        "hornet:tiny+w-msa",
    }
    for name, row in swapped.iterrows():
        base = original.loc[name.partition("+")[0]]
        assert row["mixer"] == name.partition("+")[2]
        assert row["gmacs"] != pytest.approx(base["gmacs"], rel=1e-3), name
        assert row["mixer_gmacs_formula"] != pytest.approx(base["mixer_gmacs_formula"], rel=1e-3)
        # the core's count of the swapped modules agrees with the swapped formula
        assert row["mixer_gmacs"] == pytest.approx(row["mixer_gmacs_formula"], rel=0.01), name
    # Swin-T with global attention: the stage-1 N² term makes it far more expensive.
    assert with_msa.loc["swin:tiny+msa", "gmacs"] > original.loc["swin:tiny", "gmacs"] + 1.0
    assert with_msa.loc["swin:tiny+msa", "mixer_msa_saving"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("transformer", "--mixer", "gnconv"), "does not support token-mixer swaps"),
        (("transformer", "--mixer", "msa"), "does not support token-mixer swaps"),
        (("timm:resnet18", "--mixer", "msa"), "does not support token-mixer swaps"),
        (("swin:tiny+gnconvv",), "did you mean 'gnconv'"),
        (("swin", "--mixer", "gnconvv"), "did you mean 'gnconv'"),
        (
            ("vit:small", "--mixer", "gnconv", "--set", "embed_dim=390", "--set", "num_heads=6"),
            "not divisible by 2^(order-1)",
        ),
    ],
)
def test_swaps_that_make_no_sense_exit_2(run_cli, args, message):
    result = run_cli("compare", *args, "--no-latency")
    assert result.exit_code == 2, result.output
    assert message in result.output
