"""Reports fit for a paper: figures in every format, tables without 'nan', chosen columns,
LaTeX, merged runs' notes, and derived numbers (ratios, crossovers) with their intervals."""

from __future__ import annotations

import json
import math
import re

import pytest
from conftest import read_report

from archbench.report.cells import cell, markdown_table, text_table
from archbench.report.crossover import measured_crossover
from archbench.report.report import Report
from archbench.report.tables import DERIVED

FAST = ("--warmup", "0", "--min-time", "0")
MAGIC = {"png": b"\x89PNG", "pdf": b"%PDF", "svg": b"<svg"}
NAN = re.compile(r"\bnan\b", re.IGNORECASE)


def _starts(path, fmt: str) -> bool:
    data = path.read_bytes()
    return data.startswith(MAGIC[fmt]) if fmt != "svg" else MAGIC["svg"] in data[:2000]


# -- figures -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_compare_draws_cost_next_to_latency_in_the_figure_format(run_cli, fmt):
    result = run_cli("compare", "toy", "toy+msa", "--repeat", "2", "--figure-format", fmt,
                     *FAST)
    assert result.exit_code == 0, result.output
    run = result.run_dir
    for stem in ("compare_bars", "compare_pareto"):
        assert _starts(run / f"{stem}.png", "png")
        assert _starts(run / f"{stem}.{fmt}", fmt)
    markdown = (run / "report.md").read_text()
    assert "![compare_bars](compare_bars.png)" in markdown
    if fmt != "png":
        assert f"[{fmt.upper()}](compare_bars.{fmt})" in markdown
    # the caption says the settings: device, dtype, batch, threads, timing
    caption = next(line for line in markdown.splitlines() if line.startswith("*Cost next"))
    assert "fp32" in caption and "batch 1" in caption and "CPU thread" in caption
    assert "2 interleaved trials" in caption


def test_compare_without_latency_still_has_its_cost_figure(run_cli):
    result = run_cli("compare", "toy", "--no-latency", "--figure-format", "svg")
    assert result.exit_code == 0, result.output
    files = {p.name for p in result.run_dir.iterdir()}
    assert {"compare_bars.png", "compare_bars.svg"} <= files
    assert not any(name.startswith("compare_pareto") for name in files)
    assert "latency not measured" in (result.run_dir / "report.md").read_text()


def test_mixers_and_sweep_draw_their_figures_in_the_figure_format(run_cli):
    mixers = run_cli("mixers", "msa", "w-msa", "--sizes", "7,14", "--repeat", "2",
                     "--figure-format", "svg", *FAST)
    assert mixers.exit_code == 0, mixers.output
    for stem in ("mixers_macs", "mixers_latency", "mixers_memory"):
        assert _starts(mixers.run_dir / f"{stem}.svg", "svg")
        assert _starts(mixers.run_dir / f"{stem}.png", "png")
    sweep = run_cli("sweep", "toy", "toy+msa", "--img-sizes", "16,32", "--repeat", "2",
                    "--figure-format", "pdf", *FAST)
    assert sweep.exit_code == 0, sweep.output
    for stem in ("sweep_gmacs", "sweep_latency"):
        assert _starts(sweep.run_dir / f"{stem}.pdf", "pdf")
        assert f"![{stem}]({stem}.png)" in (sweep.run_dir / "report.md").read_text()


def test_one_colour_per_model_in_every_figure():
    from archbench.report.plots import FIXED_COLOURS, colours

    first = colours(["vit:small", "msa", "swin:tiny", "vit:small", "w-msa"])
    assert first["msa"] == FIXED_COLOURS["msa"] and first["w-msa"] == FIXED_COLOURS["w-msa"]
    assert len(set(first.values())) == 4  # distinct, and never a mixer's fixed colour
    assert colours(["w-msa", "msa"]) == {"w-msa": FIXED_COLOURS["w-msa"],
                                         "msa": FIXED_COLOURS["msa"]}


# -- tables ------------------------------------------------------------------------------


def test_cells_round_and_never_print_nan():
    assert cell("params_m", 22.050664) == "22.05"
    assert cell("params_m", 0.000314) == "0.000314"
    assert cell("gmacs", 4.608338304) == "4.608"
    assert cell("throughput_per_s", 20818.4) == "20,818"
    assert cell("batch_size", 64) == "64"
    assert cell("significant", False) == "no"
    assert cell("latency_ms_ci95", (120.43, 124.41)) == "[120.4, 124.4]"
    for missing in (None, math.nan, math.inf, (1.0, math.nan), ""):
        assert cell("x", missing) == "-"
    rows = [{"a": 1, "b": None}, {"a": math.nan, "b": "x|y"}]
    assert "nan" not in text_table(rows) and "nan" not in markdown_table(rows)
    assert "x\\|y" in markdown_table(rows)


def test_failed_and_untimed_rows_print_dashes_not_nan(run_cli):
    untimed = run_cli("compare", "toy", "toy:broken", "--no-latency", "--format", "md",
                      "--format", "latex")
    timed = run_cli("compare", "toy", "toy:broken", "toy+msa", "--repeat", "2",
                    "--format", "md", "--format", "latex", *FAST)
    for result in (untimed, timed):
        assert result.exit_code == 1, result.output
        markdown = (result.run_dir / "report.md").read_text()
        latex = (result.run_dir / "report.tex").read_text()
        for text in (result.stdout, markdown, latex):
            assert not NAN.search(text), text
        broken = next(line for line in markdown.splitlines() if line.startswith("| toy:broken"))
        assert "\u2014" in broken
        assert "batch nan" not in markdown and "toy:broken (32x32, batch" in markdown
    # the summary shows the interval, the efficiency and the shares
    header = timed.stdout.splitlines()[0].split()
    assert {"latency_ms_median", "latency_ms_ci95", "achieved_gmacs_per_s", "peak_fraction",
            "mixer_share"} <= set(header)


def test_columns_choose_the_summary_and_unknown_ones_are_refused(run_cli, tmp_path):
    result = run_cli("compare", "toy", "--no-latency", "--columns",
                     "model,gmacs,params_m,latency_ms_median")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].split() == ["model", "gmacs", "params_m",
                                                     "latency_ms_median"]
    assert result.stdout.splitlines()[1].split()[-1] == "-"  # asked for, not measured
    markdown = (result.run_dir / "report.md").read_text()
    assert "| model | gmacs | params_m | latency_ms_median |" in markdown
    assert "mixer_share" in json.dumps(read_report(result.run_dir)["columns"])  # all kept

    refused = run_cli("compare", "toy", "--no-latency", "--columns", "model,gmac",
                      out=tmp_path / "refused")
    assert refused.exit_code == 2 and refused.run_dir is None
    assert refused.stderr.startswith("archbench: error: --columns: unknown column 'gmac'")
    assert "did you mean gmacs" in refused.stderr and len(refused.stderr.splitlines()) == 1


def test_latex_is_written_only_when_asked_with_the_settings_as_caption(run_cli):
    default = run_cli("compare", "toy", "--no-latency")
    assert not (default.run_dir / "report.tex").exists()
    result = run_cli("compare", "toy", "toy+msa", "--repeat", "2", "--format", "latex", *FAST)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in result.run_dir.iterdir()) == ["report.tex"]
    latex = (result.run_dir / "report.tex").read_text()
    assert latex.count("\\begin{table}") == 2  # the summary and the ratio table
    assert "\\toprule" in latex and "params\\_m" in latex and "latency\\_ms\\_ci95" in latex
    caption = re.search(r"\\caption\{(.*)\}", latex).group(1)
    assert "fp32" in caption and "batch 1" in caption and "95\\%" in caption


def test_report_of_separate_runs_says_their_latencies_were_not_measured_together(
        run_cli, tmp_path):
    """Also when the two folders have one name (the same command started in the same
    second, with two --out folders): they stay two runs."""
    first = run_cli("compare", "toy", "--repeat", "2", *FAST, out=tmp_path / "a").run_dir
    second = run_cli("compare", "toy", "--repeat", "2", *FAST, out=tmp_path / "b").run_dir
    twin = second.rename(second.parent / first.name)
    result = run_cli("report", str(first), str(twin), "--out", str(tmp_path / "merged"))
    assert result.exit_code == 0, result.output
    merged = next((tmp_path / "merged").iterdir())
    markdown = (merged / "report.md").read_text()
    assert "not measured together" in markdown
    runs = json.loads((merged / "report.json").read_text())["environment"]["runs"]
    assert [r["run"] for r in runs] == [first.name, f"{first.name} (2)"]
    assert (merged / "compare_bars.png").exists()
    assert not NAN.search(markdown)


# -- derived numbers with their uncertainty -----------------------------------------------


def _trials(median: float, spread: float = 0.02, seed: int = 0) -> list[list[float]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    return [list(median * (1 + spread * rng.standard_normal(15))) for _ in range(5)]


def test_crossover_interval_brackets_the_estimate_and_names_the_grid_points():
    sizes = [7, 14, 28, 56]
    ours = [_trials(m, seed=i) for i, m in enumerate((2.0, 1.4, 0.6, 0.3))]
    theirs = [_trials(1.0, seed=10 + i) for i in range(4)]
    entry = measured_crossover(sizes, ours, theirs)
    assert entry["first_faster_size"] == 28
    assert (entry["grid_below"], entry["grid_above"]) == (14, 28)
    assert entry["crossover_ci95_low"] < entry["crossover_size"] < entry["crossover_ci95_high"]
    assert entry["crossover_ci95_low"] > 14 and entry["crossover_ci95_high"] < 28
    assert entry["resamples_crossing"] == 1.0
    # noisy trials: the interval is wider and may leave the grid, which it then says
    noisy = measured_crossover([7, 14], [_trials(1.05, 0.5), _trials(0.95, 0.5, 1)],
                               [_trials(1.0, 0.5, 2), _trials(1.0, 0.5, 3)])
    if noisy["crossover_size"] is not None and noisy["crossover_ci95_low"] is None:
        assert "below the smallest size 7" in noisy["note"]


def _row(model: str, size: int, median: float, group: int, status: str = "ok") -> tuple:
    row = {"model": model, "arch": model, "input": f"{size}x{size}", "img_size": size,
           "batch_size": 1, "device": "cpu", "dtype": "fp32", "mode": "infer",
           "status": status, "latency_ms_median": median if status == "ok" else None}
    return row, ({"latency_samples_ms": _trials(median, seed=size), "group": group}
                 if status == "ok" else {"group": group})


def _sweep_report(rows: list[tuple]) -> Report:
    report = Report(kind="sweep", command="archbench sweep", created="", environment={},
                    settings={})
    for row, details in rows:
        report.add_row(row, details)
    for name in ("ratios", "slopes"):
        report.tables.update(DERIVED[name](report))
    return report


def test_sweep_ratios_are_per_size_against_the_first_architecture():
    """Rows in the order a sweep makes them (size by size); A failed at 64."""
    report = _sweep_report([
        _row("A", 16, 10.0, 0), _row("B", 16, 20.0, 0), _row("C", 16, 5.0, 0),
        _row("A", 32, 40.0, 1), _row("B", 32, 60.0, 1), _row("C", 32, 30.0, 1),
        _row("A", 64, 0, 2, status="error"), _row("B", 64, 90.0, 2),
    ])
    ratios, crossovers = (report.tables[t] for t in report.tables if "first architecture"
                          in t or t.startswith("Crossover"))
    medians = {(r["model"], r["input"]): r["latency_ms_median"] for r in report.rows}
    for entry in ratios:
        assert entry["against"] == "A"
        if entry["input"] == "64x64":  # no baseline at that size: said, not replaced
            assert "latency_ratio" not in entry and "A has no timing" in entry["note"]
        else:
            assert entry["latency_ratio"] == pytest.approx(
                medians[(entry["model"], entry["input"])] / medians[("A", entry["input"])])
    assert sorted((e["model"], e["input"]) for e in ratios) == [
        ("B", "16x16"), ("B", "32x32"), ("B", "64x64"), ("C", "16x16"), ("C", "32x32")]
    # B is 2x then 1.5x A: no crossover; C is faster at 16 and 32: none either
    assert all(e["crossover_size"] is None and e["direction"] is None for e in crossovers)


def test_sweep_finds_the_whole_model_crossover_between_architectures():
    report = _sweep_report([
        _row("A", 16, 10.0, 0), _row("B", 16, 20.0, 0),
        _row("A", 32, 40.0, 1), _row("B", 32, 50.0, 1),
        _row("A", 64, 160.0, 2), _row("B", 64, 100.0, 2),
    ])
    (entry,) = next(t for title, t in report.tables.items() if title.startswith("Crossover"))
    assert entry["model"] == "B" and entry["against"] == "A"
    assert entry["direction"] == "faster from" and entry["first_changed_size"] == 64
    assert (entry["grid_below"], entry["grid_above"]) == (32, 64)
    assert entry["crossover_ci95_low"] <= entry["crossover_size"] <= entry["crossover_ci95_high"]


def test_mixers_crossover_from_a_real_run_has_its_interval_and_grid(run_cli):
    result = run_cli("mixers", "msa", "w-msa", "--sizes", "7,14,28", "--repeat", "3", *FAST)
    assert result.exit_code == 0, result.output
    report = read_report(result.run_dir)
    (entry,) = next(t for title, t in report["tables"].items() if title.startswith("Crossover"))
    assert entry["mixer"] == "w-msa" and entry["against"] == "msa"
    if entry["crossover_size"] is not None:  # where the device puts it varies
        assert [entry["grid_below"], entry["grid_above"]] in ([7, 14], [14, 28])
        assert entry["grid_below"] < entry["crossover_size"] <= entry["grid_above"]
        assert 0 < entry["resamples_crossing"] <= 1
    else:
        assert entry["note"]
    assert not NAN.search((result.run_dir / "report.md").read_text())
