"""How much the harness itself costs per timed iteration.

    python benchmarks/bench_harness.py [--iterations N]

Times an empty callable with archbench's CPU timing loop and reports the per-iteration
cost over a bare ``perf_counter`` loop doing the same calls (goal < 20 µs). How repeatable
the medians and ratios are from run to run: ``benchmarks/bench_stability.py``.
"""

from __future__ import annotations

import argparse
import statistics
import time

from archbench.measure.timing import time_cpu


def overhead(iterations: int) -> None:
    def empty() -> None:
        return None

    start = time.perf_counter()
    for _ in range(iterations):
        empty()
    bare_us = (time.perf_counter() - start) / iterations * 1e6
    start = time.perf_counter()
    samples = time_cpu(empty, warmup=0, min_time=0.0, min_iterations=iterations)
    loop_us = (time.perf_counter() - start) / len(samples) * 1e6
    inside_us = statistics.median(samples) * 1e3
    print(f"iterations: {len(samples)}")
    print(f"bare loop: {bare_us:.3f} µs/iter; archbench loop: {loop_us:.3f} µs/iter")
    print(f"harness overhead per iteration: {loop_us - bare_us:.3f} µs (goal < 20 µs)")
    print(f"median of what an empty model reads as its latency: {inside_us:.3f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200_000)
    overhead(parser.parse_args().iterations)


if __name__ == "__main__":
    main()
