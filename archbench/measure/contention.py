"""Was the machine busy while a row was timed? On the CPU: how much of its threads' time the
timing process got, and how many cores other processes kept busy meanwhile (the system's
busy time, from ``/proc/stat`` via psutil, minus this process's own); on CUDA: whether other
processes held the GPU. A row is ``contended`` when others competed for the cores (or the
GPU) it ran on; its latency then says more about the neighbours than about the model."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: Other processes may keep this many cores busy beyond the spare ones (cores minus
#: ``--threads``) before a row counts as contended: a shell, a sampler, the kernel.
TOLERANCE_CORES = 0.3
#: ... or, when the timed threads got less than this share of their time, half as many: on
#: two cores with one timed thread, others cannot keep much more than 1.3 cores busy while
#: that thread still runs, yet it gets only two thirds of its core (tried: 0.65).
LOST_SHARE = 0.8
#: The system's busy time is counted in clock ticks per core (10 ms on Linux); a short
#: window's reading can be off by a tick per core at each end.
TICK_S = 0.01


@dataclass(frozen=True)
class CpuWindow:
    """CPU accounting of one trial's timed iterations (seconds)."""

    wall_s: float
    process_cpu_s: float
    #: Busy time of the cores this process may run on (user, system, interrupts, steal),
    #: this process included.
    system_busy_s: float


@dataclass(frozen=True)
class GpuWindow:
    """Processes other than this one seen on the GPU around one trial (None: unknown)."""

    others: tuple[int, ...] | None


def _busy_s(t: Any) -> float:
    idle = t.idle + getattr(t, "iowait", 0.0)
    guests = getattr(t, "guest", 0.0) + getattr(t, "guest_nice", 0.0)  # already in user
    return sum(t) - idle - guests


def _system_busy_s() -> float:
    """Busy seconds of the cores in this process's affinity mask: work on cores it may not
    use (another job's, on a node shared through CPU sets or ``taskset``) competes with
    nothing it times."""
    import psutil

    try:
        allowed = os.sched_getaffinity(0)
    except AttributeError:
        return _busy_s(psutil.cpu_times())
    per_core = psutil.cpu_times(percpu=True)
    if len(allowed) >= len(per_core):
        return _busy_s(psutil.cpu_times())
    return sum(_busy_s(t) for i, t in enumerate(per_core) if i in allowed)


class CpuMeter:
    """``start()`` before the timed iterations, ``stop()`` after: a :class:`CpuWindow`."""

    def start(self) -> None:
        self._wall, self._cpu, self._busy = (time.perf_counter(), time.process_time(),
                                             _system_busy_s())

    def stop(self) -> CpuWindow:
        return CpuWindow(time.perf_counter() - self._wall, time.process_time() - self._cpu,
                         _system_busy_s() - self._busy)


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def timing_threads(default: int) -> int:
    """CPU threads for timing when ``--threads`` is not given: torch's ``default``, but
    leaving one usable core to everything else (the OS, this harness, a shell). With every
    core in torch's pool, any other work stalls one thread and each parallel region waits
    for it; on the 2-vCPU development machine that made medians and ratio intervals
    about three times less repeatable (``benchmarks/bench_stability.py``)."""
    cores = usable_cores()
    return max(1, min(default, cores - 1)) if cores > 1 else default


def load_per_core() -> float | None:
    """The 1-minute load average over the usable cores, where the OS has one."""
    try:
        return os.getloadavg()[0] / usable_cores()
    except (AttributeError, OSError):
        return None


def cpu_columns(windows: Iterable[CpuWindow], threads: int) -> dict[str, Any]:
    """A row's contention columns from its trials' windows, run with ``threads`` threads."""
    windows = list(windows)
    wall = sum(w.wall_s for w in windows)
    if not windows or wall <= 0:
        return {}
    own = sum(w.process_cpu_s for w in windows)
    others = max(0.0, sum(w.system_busy_s for w in windows) - own) / wall
    cores = usable_cores()
    spare = max(cores - threads, 0)
    resolution = 2 * len(windows) * cores * TICK_S / wall
    share = own / (wall * threads)
    allowed = TOLERANCE_CORES / (2 if share < LOST_SHARE else 1)
    contended = others > spare + allowed + resolution
    columns = {"cpu_share": share, "cpu_others_cores": others, "contended": contended}
    if contended:
        columns["contention"] = (f"other processes kept {others:.1f} of {cores} cores busy "
                                 f"while {threads} thread(s) were timed (they got "
                                 f"{share:.0%} of their time)")
    return columns


def gpu_columns(windows: Iterable[GpuWindow]) -> dict[str, Any]:
    """Contention columns of a CUDA row: other processes on its GPU during any trial."""
    seen = [w.others for w in windows]
    if not seen or any(s is None for s in seen):
        return {"contended": None}
    others = sorted({pid for s in seen for pid in s})
    columns: dict[str, Any] = {"gpu_other_processes": len(others), "contended": bool(others)}
    if others:
        columns["contention"] = (f"{len(others)} other process(es) used the GPU while it was "
                                 f"timed (pids {', '.join(map(str, others[:5]))})")
    return columns


def gpu_other_processes(device: Any) -> tuple[int, ...] | None:
    """PIDs of other compute processes on ``device``'s GPU, from NVML (``pynvml``) or
    ``nvidia-smi``; None where neither can tell (another vendor, no driver tools, a
    container whose process ids differ from the driver's)."""
    import torch

    index = torch.device(device).index
    index = torch.cuda.current_device() if index is None else index
    pids = _nvml_pids(index)
    if pids is None:
        pids = _nvidia_smi_pids(torch.cuda.get_device_properties(index).uuid)
    # In a container the driver reports the host's process ids (or hides other processes):
    # a list without this process, which holds a CUDA context now, cannot be read.
    if pids is None or os.getpid() not in pids:
        return None
    return tuple(p for p in pids if p != os.getpid())


def _nvml_pids(index: int) -> list[int] | None:
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        return [p.pid for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)]
    except Exception:  # pynvml raises its own NVMLError classes
        return None


def _nvidia_smi_pids(uuid: Any) -> list[int] | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-compute-apps=gpu_uuid,pid", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_compute_apps(out, str(uuid))


def parse_compute_apps(text: str, uuid: str) -> list[int]:
    """PIDs on the GPU ``uuid`` in ``nvidia-smi --query-compute-apps=gpu_uuid,pid`` output
    (torch prints uuids without nvidia-smi's ``GPU-`` prefix)."""
    pids = []
    for line in text.splitlines():
        gpu, _, pid = (part.strip() for part in line.partition(","))
        if gpu.removeprefix("GPU-") == uuid.removeprefix("GPU-") and pid.isdigit():
            pids.append(int(pid))
    return pids
