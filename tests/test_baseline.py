"""``--baseline`` and ``--fail-on``: matching rows, changes of real counts, latency ratios
with bootstrap intervals, the gate's exit code, and bad input refused before anything runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import read_report

from archbench.core.errors import UsageError
from archbench.report.baseline import (
    BASELINE_TITLE,
    Baseline,
    compare,
    parse_gates,
    regressions,
)
from archbench.run.session import EXIT_FAILED_ROWS, EXIT_REGRESSION

COUNT_ONLY = ("--no-latency",)
FAST = ("--min-time", "0.05", "--repeat", "2", "--warmup", "1")


def test_a_changed_model_reports_its_changes_and_trips_the_gmacs_gate(run_cli, tmp_path):
    base = run_cli("compare", "vit:tiny", "--set", "vit.depth=1", *COUNT_ONLY)
    assert base.exit_code == 0, base.output
    changed = run_cli("compare", "vit:tiny", "--set", "vit.depth=2", *COUNT_ONLY,
                      "--baseline", str(base.run_dir), "--fail-on", "gmacs:0")
    assert changed.exit_code == EXIT_REGRESSION == 3, changed.output
    old, new = read_report(base.run_dir)["rows"][0], read_report(changed.run_dir)["rows"][0]
    entry = new["details"]["baseline"]
    assert entry["match"] == "same device, config changed"
    assert entry["baseline_model"] == "vit:tiny[depth=1]"
    assert entry["config_change"] == "depth 1 -> 2"
    for column in ("params_m", "gmacs", "mixer_gmacs", "mlp_gmacs"):
        delta = entry["deltas"][column]
        assert delta["change"] == pytest.approx(new[column] - old[column], rel=1e-12)
        assert delta["change"] > 0
    # one ViT-Ti block: 12 * 192^2 + 13 * 192 weights and biases (attention, MLP, 2 norms)
    assert entry["deltas"]["params_m"]["change"] * 1e6 == pytest.approx(12 * 192**2 + 13 * 192)
    (line,) = read_report(changed.run_dir)["tables"][BASELINE_TITLE]
    assert line["gmacs_change"] == pytest.approx(new["gmacs"] - old["gmacs"])
    block = changed.stdout.split("REGRESSIONS against baseline", 1)[1]
    assert "vit:tiny[depth=2] (224x224): gmacs 0.13171 -> 0.234137 (+77.767%) > gmacs:0" in block
    assert "Against baseline" in (changed.run_dir / "report.md").read_text()
    # the run still wrote and recorded everything
    assert read_report(changed.run_dir)["environment"]["store"]["run_id"]
    # the same model again passes the same gate, and params:0 too
    same = run_cli("compare", "vit:tiny", "--set", "vit.depth=1", *COUNT_ONLY, "--baseline",
                   str(base.run_dir), "--fail-on", "gmacs:0,params:0")
    assert same.exit_code == 0, same.output
    assert "REGRESSIONS" not in same.stdout
    deltas = read_report(same.run_dir)["rows"][0]["details"]["baseline"]["deltas"]
    assert deltas["gmacs"]["change"] == 0 and deltas["params_m"]["change"] == 0


def test_tuple_configs_match_their_json_lists(run_cli):
    """Swin's depths are a tuple in the model's config and a list in the baseline's JSON:
    the same value, so no config change and the gates pass."""
    target = ("swin:tiny", "--set", "swin.depths=1,1,1,1")
    base = run_cli("compare", *target, *COUNT_ONLY)
    again = run_cli("compare", *target, *COUNT_ONLY, "--baseline", str(base.run_dir),
                    "--fail-on", "gmacs:0,params:0")
    assert again.exit_code == 0, again.output
    entry = read_report(again.run_dir)["rows"][0]["details"]["baseline"]
    assert entry["match"] == "same device" and not entry.get("config_change"), entry


def test_failed_rows_take_precedence_over_regressions(run_cli):
    base = run_cli("compare", "toy", *COUNT_ONLY)
    result = run_cli("compare", "toy", "toy:broken", "--set", "toy.width=16", *COUNT_ONLY,
                     "--baseline", str(base.run_dir), "--fail-on", "params:0")
    assert result.exit_code == EXIT_FAILED_ROWS, result.output
    assert "REGRESSIONS" in result.stdout and "toy:tiny[width=16]" in result.stdout
    rows = read_report(result.run_dir)["rows"]
    assert rows[1]["details"]["baseline"]["match"] == "none"
    assert "no baseline row" in rows[1]["details"]["baseline"]["note"]


def test_latest_is_the_newest_complete_run_with_a_matching_row(run_cli, tmp_path):
    first = run_cli("compare", "toy", *COUNT_ONLY)
    run_cli("compare", "toy:tiny", "toy:interrupt", *COUNT_ONLY)  # incomplete: skipped
    run_cli("compare", "vit:tiny", "--set", "vit.depth=1", *COUNT_ONLY)  # no toy row
    result = run_cli("compare", "toy", *COUNT_ONLY, "--baseline", "latest",
                     "--fail-on", "gmacs:0")
    assert result.exit_code == 0, result.output
    settings = read_report(result.run_dir)["settings"]["baseline"]
    assert settings == {"run": read_report(first.run_dir)["environment"]["store"]["run_id"],
                        "source": "latest", "created": read_report(first.run_dir)["created"],
                        "any_device": False, "fail_on": ["gmacs:0"]}


def test_a_timed_run_against_its_baseline_gets_ratios_a_figure_and_a_gate(run_cli):
    run_cli("compare", "vit:tiny", "--set", "vit.depth=1", *FAST)
    result = run_cli("compare", "vit:tiny", "--set", "vit.depth=1", *FAST,
                     "--baseline", "latest", "--fail-on", "latency:5%")
    report = read_report(result.run_dir)
    latency = report["rows"][0]["details"]["baseline"]["latency"]
    assert latency["ci95_low"] <= latency["latency_ratio"] <= latency["ci95_high"]
    assert latency["significant"] == (not latency["ci95_low"] <= 1 <= latency["ci95_high"])
    slower = latency["significant"] and latency["ci95_low"] > 1.05
    assert result.exit_code == (EXIT_REGRESSION if slower else 0), result.output
    assert (result.run_dir / "baseline_ratios.png").stat().st_size > 10_000
    assert "![baseline_ratios](baseline_ratios.png)" in (result.run_dir / "report.md").read_text()


# -- matching and latency ratios on synthetic documents ---------------------------------


def _trials(rng, median: float, trials: int = 5, iterations: int = 40) -> list[list[float]]:
    return [list(median * (1 + 0.02 * rng.standard_normal(iterations))) for _ in range(trials)]


def _row(model: str, trials: list[list[float]] | None, device: str = "AMD EPYC",
         **columns) -> dict:
    median = float(np.median(np.concatenate(trials))) if trials else None
    details = {"where": {"device_name": device}, "config": {"depth": 1}}
    if trials:
        details["latency_samples_ms"] = trials
    return {"model": model, "input": "224x224", "batch_size": 1, "dtype": "fp32",
            "mode": "infer", "status": "ok", "params_m": 5.0, "gmacs": 1.0,
            "latency_ms_median": median, "details": details, "device_name": device,
            **columns}


def _baseline(*rows: dict, any_device: bool = False, gates: str = "") -> Baseline:
    document = {"created": "2026-11-30T00:00:00+00:00", "command": "archbench compare",
                "environment": {}, "rows": [dict(r) for r in rows]}
    return Baseline("x", "base", document, any_device, parse_gates([gates], "x") if gates
                    else ())


def test_a_known_latency_ratio_gets_the_right_interval_and_significance():
    rng = np.random.default_rng(1)
    reference = _trials(rng, 10.0)
    slower = [[1.2 * s for s in trial] for trial in reference]  # exactly 1.2x each sample
    noise = _trials(rng, 10.0)
    new = [_row("vit:small", slower), _row("swin:tiny", noise)]
    baseline = _baseline(_row("vit:small", reference), _row("swin:tiny", reference),
                         gates="latency:5%,latency:25%")
    first, second = compare(new, baseline)
    ratio = first["latency"]
    assert ratio["latency_ratio"] == pytest.approx(1.2, rel=1e-12)
    assert 1.15 < ratio["ci95_low"] < 1.2 < ratio["ci95_high"] < 1.25
    assert ratio["significant"] is True
    same = second["latency"]
    assert same["ci95_low"] < 1 < same["ci95_high"] and same["significant"] is False
    tripped, unchecked = regressions(new, [first, second], baseline.gates)
    assert len(tripped) == 1 and tripped[0].startswith("vit:small (224x224, batch 1): latency "
                                                       "1.200x the baseline")
    assert tripped[0].endswith("> latency:5%") and not unchecked


def test_rows_on_another_device_compare_counts_only_unless_asked():
    rng = np.random.default_rng(2)
    here, there = _trials(rng, 10.0), _trials(rng, 20.0)
    new = [_row("vit:small", here, gmacs=1.5)]
    old = _row("vit:small", there, device="Other CPU")
    (entry,) = compare(new, _baseline(old))
    assert entry["match"] == "other device" and "latency" not in entry
    assert entry["deltas"]["gmacs"]["change"] == pytest.approx(0.5)
    assert "latency_ms_median" not in entry["deltas"]
    assert "baseline on Other CPU: counts only" in entry["note"]
    (loose,) = compare(new, _baseline(old, any_device=True))
    assert loose["latency"]["latency_ratio"] == pytest.approx(0.5, rel=0.05)
    assert "latency across devices" in loose["note"]
    gates = parse_gates(["latency:0", "params:0"], "x")
    tripped, unchecked = regressions(new, [entry], gates)
    assert tripped == [] and unchecked == [
        "--fail-on latency:0: no row had a baseline value to check against, so nothing was "
        "checked"]


def test_matching_prefers_the_exact_name_and_refuses_ambiguous_ones():
    rng = np.random.default_rng(3)
    trials = _trials(rng, 10.0)
    baseline = _baseline(_row("swin:tiny", trials), _row("swin:tiny[window_size=14]", trials),
                         _row("hornet:tiny", None, batch_size=None),
                         _row("vit:small", trials, dtype="bf16"))
    new = [_row("swin:tiny[window_size=7]", trials), _row("swin:tiny", trials),
           _row("hornet:tiny", trials), _row("vit:small", trials)]
    entries = compare(new, baseline)
    assert [e["match"] for e in entries] == [
        "same device, config changed", "same device", "same device, count-only", "none"]
    assert entries[0]["baseline_model"] == "swin:tiny[window_size=14]"
    assert "latency" not in entries[2] and "gmacs" in entries[2]["deltas"]
    two = [_row("swin:tiny[window_size=7]", trials), _row("swin:tiny[window_size=8]", trials)]
    assert [e["match"] for e in compare(two, _baseline(_row("swin:tiny[depth=1]", trials)))] \
        == ["none", "none"]


@pytest.mark.parametrize("specs, message", [
    (["latency"], "expected METRIC:THRESHOLD"),
    (["speed:5%"], "METRIC one of latency, gmacs, params"),
    (["latency:5"], "a percentage of the baseline"),
    (["gmacs:-1%"], "a percentage of the baseline"),
    (["params:x%"], "a percentage of the baseline"),
])
def test_bad_gates_are_refused(specs, message):
    with pytest.raises(UsageError, match=message):
        parse_gates(specs, "latest")


def test_gates_parse_repeated_and_comma_separated():
    gates = parse_gates(["latency:5%,gmacs:0", "params:0", "latency:5%"], "latest")
    assert [(g.metric, g.threshold_pct) for g in gates] == [
        ("latency", 5.0), ("gmacs", 0.0), ("params", 0.0)]


@pytest.mark.parametrize("args, message", [
    (("--fail-on", "latency"), "--fail-on 'latency': expected METRIC:THRESHOLD"),
    (("--fail-on", "gmacs:0"), "--fail-on needs --baseline"),
    (("--baseline", "latest", "--fail-on", "latency:5%", "--no-latency"),
     "--fail-on latency needs timed rows"),
    (("--baseline-any-device",), "--baseline-any-device needs --baseline"),
    (("--baseline", "nowhere"), "--baseline 'nowhere': not a run folder, and no results store"),
    (("--baseline", "latest"), "no results store at"),
])
def test_bad_baseline_and_gates_exit_2_before_anything_runs(run_cli, tmp_path, args, message):
    import archbench_testplugin

    result = run_cli("compare", "toy", *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("archbench: error: ")
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "results").exists() and archbench_testplugin.BUILDS == []


def test_a_baseline_missing_from_an_existing_store_exits_2(run_cli, tmp_path):
    import archbench_testplugin

    run_cli("compare", "toy", *COUNT_ONLY)
    before = sorted((tmp_path / "results").iterdir())
    archbench_testplugin.BUILDS.clear()
    for source, message in (("20000101-000000-abcdef", "neither a run folder nor a run id"),
                            ("latest", "--baseline latest: no complete run")):
        result = run_cli("compare", "vit:tiny", "--baseline", source)
        assert result.exit_code == 2 and message in result.stderr, result.output
    not_a_run = tmp_path / "empty"
    not_a_run.mkdir()
    result = run_cli("compare", "toy", "--baseline", str(not_a_run))
    assert result.exit_code == 2 and "not an archbench run folder" in result.stderr
    assert sorted((tmp_path / "results").iterdir()) == before
    assert archbench_testplugin.BUILDS == []


def test_the_baseline_table_is_in_the_stored_run_too(run_cli, tmp_path):
    base = run_cli("compare", "toy", *COUNT_ONLY)
    result = run_cli("compare", "toy", *COUNT_ONLY, "--baseline", str(base.run_dir))
    store = tmp_path / "results" / "archbench.sqlite"
    from archbench.store import Store

    run_id = read_report(result.run_dir)["environment"]["store"]["run_id"]
    with Store(store, create=False) as opened:
        document = opened.document(run_id)
    assert document["tables"][BASELINE_TITLE] == json.loads(
        (result.run_dir / "report.json").read_text())["tables"][BASELINE_TITLE]


def test_a_four_times_deeper_model_is_a_significant_latency_regression(run_cli):
    """End to end: four blocks against one, timed interleaved in neither run, still far
    beyond any drift: the latency gate trips with exit 3 and names the row."""
    base = run_cli("compare", "vit:tiny", "--set", "vit.depth=1", *FAST)
    assert base.exit_code == 0, base.output
    deeper = run_cli("compare", "vit:tiny", "--set", "vit.depth=4", *FAST,
                     "--baseline", str(base.run_dir), "--fail-on", "latency:5%")
    assert deeper.exit_code == EXIT_REGRESSION, deeper.output
    latency = read_report(deeper.run_dir)["rows"][0]["details"]["baseline"]["latency"]
    assert latency["ci95_low"] > 1.5 and latency["significant"], latency
    assert "vit:tiny[depth=4] (224x224, batch 1): latency" in deeper.stdout


def test_a_latency_gate_needs_a_timed_baseline_and_latest_skips_count_only_runs(run_cli):
    timed = run_cli("compare", "vit:tiny", "--set", "vit.depth=1", *FAST)
    counted = run_cli("compare", "vit:tiny", "--set", "vit.depth=1", *COUNT_ONLY)
    refused = run_cli("compare", "vit:tiny", "--set", "vit.depth=1", *FAST,
                      "--baseline", str(counted.run_dir), "--fail-on", "latency:5%")
    assert refused.exit_code == 2 and refused.run_dir is None, refused.output
    assert "has no timed row" in refused.stderr and len(refused.stderr.splitlines()) == 1
    again = run_cli("compare", "vit:tiny", "--set", "vit.depth=1", *FAST,
                    "--baseline", "latest", "--fail-on", "latency:50%")
    settings = read_report(again.run_dir)["settings"]["baseline"]
    assert settings["run"] == read_report(timed.run_dir)["environment"]["store"]["run_id"]


@pytest.mark.parametrize(("spec", "entry", "trips"), [
    # a significant slow-down (interval above 1) larger than the threshold
    ("latency:5%", {"latency": {"latency_ratio": 1.07, "ci95_low": 1.02, "ci95_high": 1.12,
                                "significant": True}}, True),
    ("latency:5%", {"latency": {"latency_ratio": 1.04, "ci95_low": 1.01, "ci95_high": 1.07,
                                "significant": True}}, False),
    ("latency:5%", {"latency": {"latency_ratio": 1.30, "ci95_low": 0.95, "ci95_high": 1.60,
                                "significant": False}}, False),
    # counts: 0 is any change; a percentage is growth beyond it, never a saving
    ("gmacs:0", {"deltas": {"gmacs": {"baseline": 4.0, "new": 3.6, "change": -0.4}}}, True),
    ("gmacs:5%", {"deltas": {"gmacs": {"baseline": 4.0, "new": 3.6, "change": -0.4}}}, False),
    ("gmacs:5%", {"deltas": {"gmacs": {"baseline": 4.0, "new": 4.4, "change": 0.4}}}, True),
    ("params:0", {"deltas": {"params_m": {"baseline": 22.0, "new": 22.0, "change": 0.0}}},
     False),
])
def test_gates_trip_on_what_their_spec_says(spec, entry, trips):
    row = {"model": "vit:small", "input": "224x224", "batch_size": 1}
    tripped, unchecked = regressions([row], [entry], parse_gates([spec], "base"))
    assert bool(tripped) == trips and not unchecked, (tripped, unchecked)
