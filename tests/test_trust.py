"""Numbers that know when they are unreliable: contention flags from real CPU hogs, enough
samples per row, --target-ci, the rotation and the collector pause of the timing loop, the
vectorised bootstrap against the plain one, and the CPU allocator's memory peak."""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from archbench.core.stats import bootstrap_median_ci, ci_halfwidth_pct
from archbench.measure import timing
from archbench.measure.contention import (
    TICK_S,
    CpuWindow,
    cpu_columns,
    parse_compute_apps,
    usable_cores,
)
from archbench.report.trust import trust_notes


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def _timed_windows(threads: int, seconds: float = 0.6) -> list[CpuWindow]:
    usage: list = []
    timing.time_cpu(lambda: _spin(0.01), warmup=0, min_time=seconds, usage=usage)
    return usage


def test_cpu_hogs_flag_a_row_as_contended():
    cores = usable_cores()
    hogs = [multiprocessing.Process(target=_spin, args=(8.0,)) for _ in range(cores + 1)]
    for hog in hogs:
        hog.start()
    try:
        time.sleep(0.3)
        columns = cpu_columns(_timed_windows(cores, 1.0), threads=cores)
    finally:
        for hog in hogs:
            hog.terminate()
            hog.join()
    assert columns["contended"] is True, columns
    assert columns["cpu_others_cores"] > 0.5
    assert "other processes kept" in columns["contention"]


def _pinned_probe(core: int, queue: multiprocessing.Queue) -> None:
    """A row timed on ``core`` alone; with it, that core's own busy time not ours (read
    here, independently of the code under test)."""
    import psutil

    os.sched_setaffinity(0, {core})
    before, own = psutil.cpu_times(percpu=True)[core], time.process_time()
    start = time.perf_counter()
    columns = cpu_columns(_timed_windows(1, 1.0), threads=1)
    after, own = psutil.cpu_times(percpu=True)[core], time.process_time() - own
    busy = [sum(t) - t.idle - getattr(t, "iowait", 0.0) for t in (before, after)]
    queue.put((columns, (busy[1] - busy[0] - own) / (time.perf_counter() - start)))


def _pinned_spin(core: int, seconds: float) -> None:
    os.sched_setaffinity(0, {core})
    _spin(seconds)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs CPU affinity and two usable cores")
def test_a_hog_on_a_core_the_timing_may_not_use_is_no_contention():
    """A job pinned to other cores (CPU sets on a shared node, taskset) competes with
    nothing the row times: only the cores in the affinity mask are counted."""
    mine, theirs = sorted(os.sched_getaffinity(0))[:2]
    hog = multiprocessing.Process(target=_pinned_spin, args=(theirs, 8.0))
    queue: multiprocessing.Queue = multiprocessing.Queue()
    probe = multiprocessing.Process(target=_pinned_probe, args=(mine, queue))
    hog.start()
    try:
        time.sleep(0.3)
        probe.start()
        columns, others_on_mine = queue.get(timeout=60)
        probe.join()
    finally:
        hog.terminate()
        hog.join()
    if others_on_mine > 0.2:
        pytest.skip(f"core {mine} was busy with other work ({others_on_mine:.2f} cores)")
    assert columns["cpu_others_cores"] < 0.5 and columns["contended"] is False, columns


@pytest.mark.skipif(usable_cores() < 2, reason="needs a spare core")
def test_a_quiet_single_thread_row_is_not_flagged():
    # one thread on a machine with a spare core: only a busy machine takes more than it
    probe = cpu_columns(_timed_windows(1, 0.3), threads=1)
    if probe["cpu_others_cores"] > 0.5:  # this check needs a machine this suite has alone
        pytest.skip(f"other processes are using {probe['cpu_others_cores']:.1f} cores")
    columns = cpu_columns(_timed_windows(1), threads=1)
    assert columns["contended"] is False, columns
    assert "contention" not in columns
    assert 0.5 < columns["cpu_share"] <= 1.05  # a spinning thread gets its core


def test_contention_arithmetic_and_notes():
    window = CpuWindow(wall_s=2.0, process_cpu_s=2.0, system_busy_s=5.0)  # others: 1.5 cores
    busy = cpu_columns([window], threads=1)
    assert busy["cpu_others_cores"] == pytest.approx(1.5) and busy["cpu_share"] == 1.0
    # two hogs beside one timed thread on two cores (seen): 1.37 cores busy, 65% of its
    # time; beyond the spare cores by less than 0.3, so the share lost decides
    others = usable_cores() - 1 + 0.2 + usable_cores() * TICK_S
    starved, fed = (cpu_columns([CpuWindow(2.0, own, own + 2.0 * others)], threads=1)
                    for own in (1.3, 1.9))
    assert starved["contended"] is True and "65% of their time" in starved["contention"]
    assert fed["contended"] is False
    quiet = cpu_columns([CpuWindow(wall_s=2.0, process_cpu_s=1.3, system_busy_s=1.5)],
                        threads=1)  # a thread that waits (I/O), others 0.1 cores: fine
    assert quiet["contended"] is False
    rows = [{"model": "a", "batch_size": 1, "contended": True},
            {"model": "b", "batch_size": 1, "contended": False, "ci_reached": False}]
    notes = trust_notes(rows, {"device": "cpu", "target_ci": 2})
    assert len(notes) == 2 and "a (batch 1)" in notes[0] and "fewer --threads" in notes[0]
    assert "b (batch 1)" in notes[1]
    assert trust_notes([{"model": "a", "contended": False}], {"device": "cpu"}) == []


def test_nvidia_smi_output_is_matched_to_the_gpu_by_uuid():
    text = "GPU-abc, 11\nGPU-abc, 12\nGPU-def, 13\n"
    assert parse_compute_apps(text, "abc") == [11, 12]
    assert parse_compute_apps("", "abc") == []


def test_every_row_gets_enough_iterations_in_rotating_order_with_the_collector_off():
    collector = []

    def make(name):
        def fn():
            collector.append(gc.isenabled())
        return lambda: fn

    opened = []
    slots = [timing.Slot(name, make(name), before=lambda n=name: opened.append(n))
             for name in "abc"]
    done = [s.key for s, exc in timing.interleave(slots, "cpu", warmup=0, min_time=0.0,
                                                   repeat=5) if exc is None]
    assert sorted(done) == ["a", "b", "c"]
    per_trial = timing.trial_iterations(5)
    for slot in slots:
        assert len(slot.trials) == 5 and all(len(t) >= per_trial for t in slot.trials)
        assert sum(map(len, slot.trials)) >= timing.MIN_ITERATIONS
        assert len(slot.usage) == 5
    assert "".join(opened) == "abc" "bca" "cab" "abc" "bca"  # who opened each trial
    assert not any(collector)
    assert gc.isenabled()


def test_target_ci_adds_interleaved_trials_until_every_row_is_there_or_time_is_out():
    def group(needed, max_time):
        slots = [timing.Slot(name, lambda: lambda: None) for name in needed]
        precision = timing.Precision(
            lambda trials: len(trials) >= needed[next(s.key for s in slots
                                                      if s.trials is trials)], max_time)
        order = [s.key for s, _ in timing.interleave(slots, "cpu", 0, 0.0, 2,
                                                      precision=precision)]
        return order, [len(s.trials) for s in slots]

    # a keeps pace with b (a deadline far off: even a busy machine reaches 4 trials first)
    assert group({"a": 3, "b": 4}, max_time=60) == (["a", "b"], [4, 4])
    start = time.monotonic()
    order, counts = group({"a": 3, "never": 10**9}, max_time=0.5)
    assert order == ["a", "never"] and counts[0] == counts[1] > 4
    assert time.monotonic() - start < 5


def test_vectorised_bootstrap_matches_the_plain_two_level_bootstrap():
    import numpy as np

    rng = np.random.default_rng(3)
    trials = [list(rng.normal(10 + i * 0.3, 1, 20 + i)) for i in range(5)]
    medians = []
    for _ in range(4000):
        pick = rng.integers(0, len(trials), len(trials))
        medians.append(np.median(np.concatenate(
            [np.asarray(trials[j])[rng.integers(0, len(trials[j]), len(trials[j]))]
             for j in pick])))
    low, high = bootstrap_median_ci(trials)
    assert low == pytest.approx(np.percentile(medians, 2.5), rel=0.01)
    assert high == pytest.approx(np.percentile(medians, 97.5), rel=0.01)
    assert bootstrap_median_ci([[5.0] * 10] * 3) == (5.0, 5.0)
    assert ci_halfwidth_pct([[5.0] * 10] * 3) == 0.0
    # a trial of many fast samples costs what one of 1,000 does, and stays right
    big = [list(rng.normal(1.0, 0.1, 20_000)) for _ in range(3)]
    start = time.perf_counter()
    low, high = bootstrap_median_ci(big)
    assert low < 1.0 < high and time.perf_counter() - start < 20


def test_cpu_memory_is_the_allocators_peak_during_the_call():
    torch = pytest.importorskip("torch")
    from archbench.measure.memory import cpu_peak_memory_mb

    def two_buffers():
        a = torch.ones(1 << 20)  # 4 MiB
        b = torch.ones(1 << 21)  # 8 MiB while a is alive
        del a, b
        torch.ones(1 << 20)

    assert cpu_peak_memory_mb(two_buffers) == pytest.approx(12.0, abs=0.1)
    kept = torch.ones(1 << 22)  # allocated before: not part of the peak
    assert cpu_peak_memory_mb(lambda: kept + 1) == pytest.approx(16.0, abs=0.1)


def _run(args: list[str], tmp_path: Path) -> tuple[object, dict]:
    from archbench.cli import main

    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path)])
    report = json.loads(next(tmp_path.glob("*/report.json")).read_text())
    return result, report


def test_compare_rows_say_how_far_they_can_be_trusted(tmp_path):
    result, report = _run(["compare", "vit:tiny", "--min-time", "0.05", "--repeat", "2",
                           "--threads", "1", "--target-ci", "0.0001", "--max-time", "1"],
                          tmp_path)
    assert result.exit_code == 0, result.output
    row = report["rows"][0]
    assert row["iterations"] >= timing.MIN_ITERATIONS and row["trials"] >= 2
    assert row["ci_reached"] is False and row["latency_ms_ci95_halfwidth_pct"] > 0
    for column in ("cpu_share", "cpu_others_cores", "contended", "load_start"):
        assert column in row
    assert 0 < row["memory_mb"] < 100  # ViT-Ti's activations at batch 1: a few MB
    assert "allocator peak" in row["memory_measure"]
    assert any("--target-ci" in note for note in report["notes"])
    assert "did not reach --target-ci" in result.output
    markdown = next(tmp_path.glob("*/report.md")).read_text()
    assert "did not reach --target-ci" in markdown


@pytest.mark.skipif(os.cpu_count() is None, reason="needs a CPU count")
def test_environment_and_rows_record_the_threads_used(tmp_path):
    _, report = _run(["compare", "vit:tiny", "--min-time", "0", "--repeat", "1",
                      "--threads", "1"], tmp_path)
    assert report["rows"][0]["threads"] == 1
    assert report["environment"]["threads"] == 1
