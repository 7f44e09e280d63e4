"""What the numbers were measured on: versions, device, CPU, threads, date."""

from __future__ import annotations

import datetime as dt
import os
import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any

PACKAGES = ("archbench", "torch", "timm", "fvcore", "pandas", "pluggy")


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's marketing name, from /proc/cpuinfo where there is one."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _nvidia_smi(query: str) -> str | None:
    """One ``nvidia-smi --query-gpu`` field of the first GPU, or None where unavailable."""
    import subprocess

    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None


def collect(device: str) -> dict[str, Any]:
    """The environment of a run on ``device`` (imports torch)."""
    import torch

    env: dict[str, Any] = {pkg: _version(pkg) for pkg in PACKAGES}
    env.update(
        python=platform.python_version(),
        os=platform.platform(),
        cpu=cpu_model(),
        cpu_count=os.cpu_count(),
        threads=torch.get_num_threads(),
        date=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        device=device,
        device_name=cpu_model(),
        cuda=torch.version.cuda if device.startswith("cuda") else None,
        cudnn=None,
        sdp_backends_enabled={
            "flash": torch.backends.cuda.flash_sdp_enabled(),
            "efficient": torch.backends.cuda.mem_efficient_sdp_enabled(),
            "cudnn": torch.backends.cuda.cudnn_sdp_enabled(),
            "math": torch.backends.cuda.math_sdp_enabled(),
        },
    )
    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        env.update(
            device_name=props.name,
            gpu_memory_gb=round(props.total_memory / 2**30, 1),
            gpu_capability=f"{props.major}.{props.minor}",
            cudnn=torch.backends.cudnn.version(),
            gpu_multiprocessors=props.multi_processor_count,
            driver=_nvidia_smi("driver_version"),
            gpu_clocks_mhz=_nvidia_smi("clocks.sm,clocks.max.sm"),
        )
    return env
