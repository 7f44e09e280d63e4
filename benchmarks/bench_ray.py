"""Count-only fan-out: the same sweep with the local executor and with Ray, in one session.

    python benchmarks/bench_ray.py [--cpus 2]

Runs ``archbench sweep vit:tiny swin:tiny hornet:tiny --img-sizes 224,256,288,320
--no-latency`` (12 count-only tasks, one model each) twice in fresh processes: with the
local executor, then with ``--executor ray`` (which starts a local Ray instance with every
CPU of this machine). Then times Ray alone: starting an instance with ``--cpus`` CPUs, and
12 empty tasks on it. Prints both wall times, the speed-up, Ray's start-up and the
per-task overhead: what the Ray run took beyond start-up and an ideal split of the local
run's work over the CPUs, per task. Not a test.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

TARGETS = ["vit:tiny", "swin:tiny", "hornet:tiny"]
SIZES = "224,256,288,320"


def sweep_wall(*extra: str) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "archbench", "sweep", *TARGETS, "--img-sizes",
                        SIZES, "--no-latency", "--out", out, *extra],
                       check=True, capture_output=True)
        return time.perf_counter() - start


def ray_alone(cpus: int, tasks: int) -> tuple[float, float]:
    """Seconds to start a local instance, and per empty task once it runs."""
    import ray

    start = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    started = time.perf_counter() - start

    @ray.remote
    def empty() -> None:
        return None

    ray.get([empty.remote() for _ in range(cpus)])  # workers up
    start = time.perf_counter()
    ray.get([empty.remote() for _ in range(tasks)])
    per_task = (time.perf_counter() - start) / tasks
    ray.shutdown()
    return started, per_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()
    tasks = len(TARGETS) * len(SIZES.split(","))
    local = sweep_wall()
    remote = sweep_wall("--executor", "ray")
    started, empty = ray_alone(args.cpus, tasks)
    overhead = (remote - started - local / args.cpus) / tasks
    print(f"{tasks} count-only tasks ({' '.join(TARGETS)} at {SIZES})")
    print(f"local executor: {local:.1f} s; Ray executor ({args.cpus} CPUs): {remote:.1f} s; "
          f"speed-up {local / remote:.2f}x")
    print(f"Ray start-up: {started:.1f} s; an empty Ray task: {empty * 1e3:.1f} ms")
    print(f"Ray overhead per task beyond start-up and an ideal {args.cpus}-way split of the "
          f"local work: {overhead:.2f} s")


if __name__ == "__main__":
    main()
