"""A plugin of hook wrappers for the tests (ARCHBENCH_PLUGINS=...,archbench_wrapper): a
new-style wrapper on archbench_analyze and an old-style hookwrapper on archbench_evaluate,
each adding a column to what the other plugins answered."""

from __future__ import annotations

from archbench import hookimpl


@hookimpl(wrapper=True)
def archbench_analyze(ctx):
    answers = yield
    gmacs = next(a["gmacs"] for a in answers if "gmacs" in a)
    return [*answers, {"wrapped_gflops": 2 * gmacs}]


@hookimpl(hookwrapper=True)
def archbench_evaluate(batch_size):
    outcome = yield
    outcome.force_result([*outcome.get_result(), {"wrapped_batch": batch_size}])
