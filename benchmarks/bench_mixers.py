"""Speed of ``archbench mixers``: the default sweep's wall time (goal: under 60 s on a
2-core CPU) and, from the same run, our W-MSA against our global MSA at 56x56, C=96, M=7.

Run:  python benchmarks/bench_mixers.py [--out DIR] [extra archbench mixers options]

Runs ``archbench mixers`` (every registered mixer, sizes 7..112, default timing) in a
subprocess, prints its wall time, then reads report.json: the median latency of w-msa and
msa at 56x56, their ratio, and the crossover table. Not a test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_S = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="keep the run folder here")
    args, extra = parser.parse_known_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_mixers_"))
    command = [sys.executable, "-m", "archbench", "mixers", "--out", str(out), *extra]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    run_dir = sorted(out.glob("*-mixers-*"))[-1]
    report = json.loads((run_dir / "report.json").read_text())
    rows = {(r["model"], r["img_size"]): r for r in report["rows"]}
    print(
        f"archbench mixers {' '.join(extra)}: {wall:.1f} s wall "
        f"({'meets' if wall < GOAL_S else 'MISSES'} the {GOAL_S:.0f} s goal); {run_dir}"
    )
    wmsa, msa = rows.get(("w-msa", 56)), rows.get(("msa", 56))
    if wmsa and msa and wmsa.get("latency_ms_median") and msa.get("latency_ms_median"):
        a, b = wmsa["latency_ms_median"], msa["latency_ms_median"]
        print(
            f"56x56, C={wmsa['dim']}, M={wmsa['window']}: w-msa {a:.3f} ms, msa {b:.3f} ms, "
            f"ratio w-msa / msa = {a / b:.3f} (MACs ratio "
            f"{wmsa['macs_formula'] / msa['macs_formula']:.3f})"
        )
    for title, table in report["tables"].items():
        if title.startswith("Crossover"):
            for r in table:
                print(
                    f"crossover {r['mixer']} vs msa: first faster at {r['first_faster_size']}, "
                    f"interpolated size {r['crossover_size']}"
                )


if __name__ == "__main__":
    main()
