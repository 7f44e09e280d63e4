"""Counting cold and warm against the fvcore script a user would write by hand, in one run.

    python benchmarks/bench_counting.py [--rounds 3] [--breakdown] [--baseline DIR]

Each measurement is a fresh process, so importing torch is part of every number:

- ``hand fvcore``: a script that imports torch and fvcore, builds DeiT-S, Swin-T and HorNet-T
  from archbench's plugins' ``model.py`` (the same classes and configs), and prints
  ``FlopCountAnalysis(model, x).total()`` and the parameter count of each: no handlers (so
  it under-counts attention), no cross-check, no report;
- ``archbench cold``: ``archbench compare vit swin hornet --no-latency --no-cache`` (fvcore
  with the handlers, the token-mixer breakdown and formulas, the FlopCounterMode
  cross-check, report.csv/md/json);
- ``archbench warm``: the same command answered from the complexity cache (primed once,
  in a cache folder of its own, before the first round).

The three alternate within each round (A B C A B C ...), so the machine's drift hits all
alike; the script prints each one's median and range over the rounds and the ratios of the
medians against the hand-written script (goal for cold: <= 1.0). ``--breakdown`` then
profiles one cold run (``python -X importtime``, and a timer around each phase) and prints
where its time goes. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = ("vit", "swin", "hornet")

HAND_SCRIPT = """
import json, sys
import torch
from fvcore.nn import FlopCountAnalysis
from archbench_hornet.model import HorNet
from archbench_swin.model import SwinTransformer
from archbench_vit.model import VisionTransformer

classes = {"vit": VisionTransformer, "swin": SwinTransformer, "hornet": HorNet}
for name, arch, kwargs, size in json.loads(sys.argv[1]):
    model = classes[arch](**kwargs).eval()
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        macs = FlopCountAnalysis(model, x).total()
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"model": name, "gmacs": macs / 1e9, "params_m": params / 1e6}))
"""


def models() -> list[tuple[str, str, dict, int]]:
    """(name, arch, constructor kwargs, image side) of each target's default variant, as
    the plugins build them (their configs from the registry; no torch here)."""
    from archbench.core.registry import Registry
    from archbench.plugins import get_plugin_manager

    registry = Registry.from_plugins(get_plugin_manager())
    found = []
    for target in TARGETS:
        spec = registry.resolve(target)
        kwargs = dict(spec.config)
        if spec.arch.name != "hornet":  # HorNet's constructor takes no img_size
            kwargs["img_size"] = spec.img_size
        found.append((spec.name, spec.arch.name, kwargs, spec.img_size))
    return found


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system, all threads) and stdout of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # from a neutral folder: with `python -m`, the working folder comes first on sys.path
    done = subprocess.run(command, env=env, capture_output=True, text=True,
                          cwd=tempfile.gettempdir())
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command[:4])}... failed:\n{done.stderr[-2000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu, done.stdout


def archbench_command(out: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "archbench", "compare", *TARGETS, "--no-latency", "--out",
            out, *extra]


def counts(out: str) -> dict[str, tuple[float, float]]:
    """(params_m, gmacs) per model of the newest run folder right under ``out``."""
    report = max(Path(out).glob("*/report.json"), key=lambda p: p.stat().st_mtime)
    rows = json.loads(report.read_text())["rows"]
    return {r["model"]: (r["params_m"], r["gmacs"]) for r in rows}


def measure(rounds: int, baseline: Path | None) -> None:
    specs = models()
    with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "ARCHBENCH_CACHE_DIR": cache}
        # as installed: bytecode cached (pip compiles on install; the priming run below
        # writes it for an editable install even where this shell says not to)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        commands = {
            "hand fvcore": [sys.executable, "-c", HAND_SCRIPT, json.dumps(specs)],
            "archbench cold": archbench_command(out, "--no-cache"),
            "archbench warm": archbench_command(out),
        }
        envs = {label: env for label in commands}
        if baseline is not None:  # another source tree (an earlier version), cold
            commands["baseline cold"] = archbench_command(tempfile.mkdtemp(dir=out), "--no-cache")
            path = os.pathsep.join([str(baseline), str(baseline / "plugins")])
            envs["baseline cold"] = {**env, "PYTHONPATH": path}
        timed(commands["archbench warm"], env)  # primes the cache (a cold count itself)
        walls: dict[str, list[float]] = {label: [] for label in commands}
        cpus: dict[str, list[float]] = {label: [] for label in commands}
        outputs: dict[str, str] = {}
        for _ in range(rounds):
            for label, command in commands.items():
                wall, cpu, outputs[label] = timed(command, envs[label])
                walls[label].append(wall)
                cpus[label].append(cpu)
        ours = counts(out)
    hand = {row["model"]: (row["params_m"], row["gmacs"])
            for row in map(json.loads, outputs["hand fvcore"].splitlines())}
    print(f"{'model':<14}{'params M (hand / ours)':>26}{'GMACs (hand / ours)':>24}")
    for name, (params, gmacs) in hand.items():
        print(f"{name:<14}{params:>13.2f} / {ours[name][0]:<10.2f}"
              f"{gmacs:>11.3f} / {ours[name][1]:<10.3f}")
    print("(plain fvcore skips scaled_dot_product_attention: ViT's and Swin's attention "
          "matmuls are missing from the hand-written count)\n")
    reference = statistics.median(walls["hand fvcore"])
    cpu_reference = statistics.median(cpus["hand fvcore"])
    print(f"{rounds} rounds, fresh processes, alternating; seconds")
    print(f"{'':<16}{'wall median':>12}{'min':>7}{'max':>7}{'ratio':>7}   "
          f"{'CPU median':>10}{'ratio':>7}")
    for label in commands:
        wall, cpu = statistics.median(walls[label]), statistics.median(cpus[label])
        print(f"{label:<16}{wall:12.2f}{min(walls[label]):7.2f}{max(walls[label]):7.2f}"
              f"{wall / reference:7.2f}   {cpu:10.2f}{cpu / cpu_reference:7.2f}")
    cold = statistics.median(walls["archbench cold"]) / reference
    print(f"archbench cold / hand fvcore = {cold:.2f} in wall time "
          f"({'meets' if cold <= 1.0 else 'misses'} goal <= 1.0)")


#: Wrapped with a timer in the profiled cold run: (label, module, attribute path).
PHASES = (
    ("build the models (plugins' constructors)", "archbench.run.worker", "TaskRun.build"),
    ("fvcore count (jit trace, handlers)", "archbench.measure.counting", "count_flops"),
    ("FlopCounterMode cross-check", "archbench.builtin.counting", "flopcounter_macs"),
    ("release memory between models (gc)", "archbench.run.worker", "release_memory"),
    ("figures for report.md", "archbench.report.plots", "figures"),
    ("report files written (with figures)", "archbench.run.session", "Session.write"),
    ("plan (targets, validation, device)", "archbench.run.plan", "plan_models"),
)
IMPORTS = ("torch", "torch._dynamo", "fvcore.nn", "timm", "sympy", "pandas", "matplotlib",
           "matplotlib.pyplot", "archbench.cli")

PROFILED = """
import functools, importlib, json, sys, time
start = time.perf_counter()
spent = {}
for label, module, path in json.loads(sys.argv[1]):
    owner = importlib.import_module(module)
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    def wrap(fn, label=label):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - t
        return timed
    setattr(owner, name, wrap(getattr(owner, name)))
from archbench.cli import main
try:
    main(sys.argv[2:])
except SystemExit:
    pass
spent["total (in process)"] = time.perf_counter() - start
print(json.dumps(spent))
"""


def breakdown() -> None:
    """Where one cold run of each spends its time: imports, then phases."""
    with tempfile.TemporaryDirectory() as out:
        command = archbench_command(out, "--no-cache")
        done = subprocess.run([sys.executable, "-X", "importtime", *command[1:]],
                              capture_output=True, text=True, check=True)
        imports = {}
        for line in done.stderr.splitlines():
            if line.startswith("import time:") and "|" in line:
                _, cumulative, name = (part.strip() for part in line[12:].split("|"))
                if name in IMPORTS:  # each module's one line: where it was first imported
                    imports[name] = int(cumulative) / 1e6
        done = subprocess.run([sys.executable, "-c", PROFILED, json.dumps(PHASES),
                               *command[3:]], capture_output=True, text=True, check=True)
        spent = json.loads(done.stdout.strip().splitlines()[-1])
    print("\narchbench cold, imports (python -X importtime; a module is counted where it is "
          "first imported):")
    for name in IMPORTS:
        print(f"  {name:<58}{imports.get(name, 0.0):7.2f} s"
              + ("" if name in imports else "  (not imported)"))
    print("archbench cold, phases (wall, timers around each; the first of each also pays "
          "for imports):")
    for label, _, _ in PHASES:
        print(f"  {label:<58}{spent.get(label, 0.0):7.2f} s")
    print(f"  {'total (in process)':<58}{spent['total (in process)']:7.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--breakdown", action="store_true",
                        help="Also profile one cold run: imports and phases.")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="Also time, cold, the archbench of another source tree (e.g. an "
                        "export of the previous commit), with its own plugins.")
    args = parser.parse_args()
    measure(args.rounds, args.baseline)
    if args.breakdown:
        breakdown()


if __name__ == "__main__":
    main()
