"""Core pieces without the CLI: registry, overrides, atomic writes, counting, timing."""

from __future__ import annotations

import pytest

from archbench import Architecture, UsageError, Variant
from archbench.core.registry import Registry, parse_value
from archbench.core.stats import bootstrap_median_ci, percentile, ratio_ci, summarize
from archbench.measure.counting import FlopCount
from archbench.report.report import write_atomic


def _arch(name: str, plugin: str) -> Architecture:
    return Architecture(name=name, family="F", paper="P", input_kind="image",
                        variants={"tiny": Variant(config={"depth": 2}, img_size=32)},
                        default_variant="tiny", plugin=plugin)


def test_two_plugins_registering_one_name_is_an_error_naming_both():
    with pytest.raises(UsageError, match="by plugin 'alpha' and by plugin 'beta'"):
        Registry([_arch("dup", "alpha"), _arch("dup", "beta")])


def test_default_variant_must_exist():
    with pytest.raises(ValueError, match="default variant"):
        Architecture(name="x", family="F", paper="P", input_kind="image",
                     variants={"a": Variant(config={})}, default_variant="b")


def test_scoped_override_only_touches_its_architecture():
    registry = Registry([_arch("one", "p"), _arch("two", "p")])
    one = registry.resolve("one", overrides={"one.depth": "5"})
    two = registry.resolve("two", overrides={"one.depth": "5"})
    assert one.config["depth"] == 5 and one.name == "one:tiny[depth=5]"
    assert two.config["depth"] == 2


@pytest.mark.parametrize(
    ("raw", "default", "expected"),
    [("3", 1, 3), ("0.5", 1.0, 0.5), ("false", True, False), ("(2, 2, 6)", (1,), (2, 2, 6)),
     ("7", (1, 2), (7,)), ("abc", "x", "abc")],
)
def test_parse_value_follows_the_default_type(raw, default, expected):
    assert parse_value(raw, default, "k") == expected


def test_write_atomic_replaces_whole_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "report.csv"
    write_atomic(target, "old\n")
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.csv"]


def test_macs_of_types_counts_outermost_modules_once():
    count = FlopCount(
        total=100,
        by_module={"": 100, "a": 60, "a.inner": 20, "b": 30},
        by_operator={}, unsupported={},
        module_types={"": "Net", "a": "Attention", "a.inner": "Attention", "b": "Attention"},
    )
    assert count.macs_of_types(["Attention"]) == 90


def test_latency_summary_statistics():
    trials = [[float(x) for x in range(1, 6)], [float(x) for x in range(6, 11)]]
    stats = summarize(trials, batch_size=4)
    assert stats["latency_ms_median"] == 5.5
    assert stats["latency_ms_p10"] == pytest.approx(1.9)
    assert stats["latency_ms_p90"] == pytest.approx(9.1)
    assert stats["latency_ms_iqr"] == pytest.approx(4.5)
    assert stats["iterations"] == 10 and stats["trials"] == 2
    assert stats["throughput_per_s"] == pytest.approx(4 / 5.5 * 1e3)
    assert stats["latency_ms_ci95_low"] <= 5.5 <= stats["latency_ms_ci95_high"]
    assert percentile([3.0], 50) == 3.0


def test_bootstrap_intervals_separate_different_and_cover_equal_timings():
    import random

    rng = random.Random(0)
    fast = [[rng.gauss(10, 0.5) for _ in range(20)] for _ in range(5)]
    same = [[rng.gauss(10, 0.5) for _ in range(20)] for _ in range(5)]
    slow = [[rng.gauss(12, 0.5) for _ in range(20)] for _ in range(5)]
    low, high = bootstrap_median_ci(fast)
    assert low < 10 < high and high - low < 1
    low, high = ratio_ci(slow, fast)
    assert 1.1 < low < 1.2 < high < 1.3
    low, high = ratio_ci(same, fast)
    assert low < 1 < high


def test_cpu_timer_runs_warmup_untimed_and_at_least_min_iterations():
    from archbench.measure.timing import MIN_TRIAL_ITERATIONS, time_cpu

    calls = []
    samples = time_cpu(lambda: calls.append(1), warmup=3, min_time=0.0)
    assert len(samples) == MIN_TRIAL_ITERATIONS
    assert len(calls) == 3 + MIN_TRIAL_ITERATIONS


def test_sdpa_is_counted():
    import torch
    import torch.nn.functional as F

    from archbench.measure.counting import CORE_HANDLERS, count_flops

    class Attn(torch.nn.Module):
        def forward(self, q, k, v):
            return F.scaled_dot_product_attention(q, k, v)

    q = torch.randn(2, 3, 10, 8)
    k = torch.randn(2, 3, 12, 8)
    v = torch.randn(2, 3, 12, 4)
    assert count_flops(Attn(), (q, k, v), CORE_HANDLERS).total == 2 * 3 * 10 * 12 * (8 + 4)


def test_every_hook_documents_what_it_receives_returns_and_who_calls_it():
    import inspect

    from archbench import hookspecs

    hooks = [f for name, f in vars(hookspecs).items() if name.startswith("archbench_")]
    assert len(hooks) >= 8
    for hook in hooks:
        doc = inspect.getdoc(hook) or ""
        for word in ("Receives", "Return", "Called"):
            assert word in doc, f"{hook.__name__}: docstring does not say '{word}'"


def test_write_atomic_gives_files_the_umask_permissions(tmp_path):
    import os

    from archbench.report.report import write_atomic

    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "report.md", "x\n")
    finally:
        os.umask(old)
    assert (tmp_path / "report.md").stat().st_mode & 0o777 == 0o644
