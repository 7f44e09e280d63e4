"""The Ray executor: every task runs :func:`archbench.run.worker.run_task` in a Ray worker,
and its rows come back to the driver, which writes them.

- A task that only counts asks for one CPU, so counting fans out over the cluster.
- A timed comparison group asks for one GPU (CUDA), or a whole node's CPUs (CPU), so no
  two timings share a device; different groups run at once on different devices.
- A worker whose process or node dies costs its task's rows (``worker died: ...``), after
  at most ``--retries`` reruns; Ctrl-C cancels what is outstanding.
- A worker that lacks a plugin the task needs says which and how to ship it.

Ray is imported only here, and only when ``--executor ray`` is chosen.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import socket
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from archbench.core.errors import UsageError, WorkerDied
from archbench.core.settings import RunSettings
from archbench.run.task import RowResult, Task

INSTALL = "pip install 'archbench[ray]'"
#: Seconds to wait for a cluster's address to answer before giving up.
CONNECT_TIMEOUT_S = 3.0
#: Variables that decide which plugins a process loads: the workers get the driver's.
PLUGIN_VARIABLES = ("ARCHBENCH_PLUGINS", "ARCHBENCH_DISABLE_PLUGIN_AUTOLOAD")


class MissingPlugin(RuntimeError):
    """A worker lacks a plugin the task needs."""


def check_reachable(address: str, source: str = "--ray-address") -> None:
    """UsageError within a few seconds if nothing answers at ``host:port``."""
    if address in ("auto", "local"):
        return
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    default = 10001 if address.startswith("ray://") else 6379
    host, port = (host or target), (int(port) if port.isdigit() else default)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise UsageError(f"{source} {address}: no Ray cluster answers at {host}:{port} "
                         f"({exc.strerror or exc}); start one with 'ray start --head' or "
                         "leave the address out to start a local instance") from None


class RayExecutor:
    """Runs tasks on a Ray cluster: the one at ``address`` (or ``RAY_ADDRESS``), else a
    local instance started for the run and shut down after."""

    def __init__(self, pm: Any, progress: Callable[[str], None] = lambda _: None,
                 address: str | None = None, retries: int = 0) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UsageError(f"--executor ray needs Ray, which is not installed: "
                             f"{INSTALL}") from None
        self.pm = pm
        self.progress = progress
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        #: How the user gave the address, for messages.
        self.source = "--ray-address" if address else "RAY_ADDRESS"
        self.retries = retries
        if self.address:
            check_reachable(self.address, self.source)
        #: Ray task → (its Task, the index of the timed group it counts for, or None).
        self.pending: dict[Any, tuple[Task, int | None]] = {}
        #: Timed groups waiting for their counting: index → (the group, count-only rows).
        self.counting: dict[int, tuple[Task, dict[int, RowResult]]] = {}
        self.total = self.done = 0
        self._probed: dict[str, Any] = {}
        self._mixers: dict[str, Any] | None = None

    # -- the cluster ----------------------------------------------------------------------

    def connect(self) -> None:
        import ray

        if ray.is_initialized():
            return
        env = {k: os.environ[k] for k in PLUGIN_VARIABLES if os.environ.get(k)}
        options: dict[str, Any] = {"log_to_driver": False, "logging_level": "ERROR"}
        if self.address:
            self.progress(f"joining the Ray cluster at {self.address}")
            if env:  # otherwise a Ray Job's own runtime_env applies untouched
                options["runtime_env"] = {"env_vars": env}
            try:
                ray.init(address=self.address, **options)
            except ConnectionError as exc:
                raise UsageError(self.join_error(exc)) from None
        else:  # a new local instance (never one a `ray start` left running); its workers
            # see this process's import path too
            env["PYTHONPATH"] = os.pathsep.join(p for p in _import_path() if p)
            self.progress("starting a local Ray instance for this run")
            ray.init(address="local", runtime_env={"env_vars": env}, include_dashboard=False,
                     **options)
        resources = ray.cluster_resources()
        self.progress(f"Ray: {len(ray.nodes())} node(s), {resources.get('CPU', 0):g} CPUs, "
                      f"{resources.get('GPU', 0):g} GPUs")

    def join_error(self, exc: BaseException) -> str:
        import ray.exceptions

        text = f"{self.source} {self.address}: cannot join the Ray cluster " \
               f"({str(exc).splitlines()[0]})"
        if isinstance(exc.__cause__, ray.exceptions.AuthenticationError):
            text += ("; it uses token authentication: set RAY_AUTH_MODE=token and its token "
                     "(`ray get-auth-token` on the head; docs/cluster.md)")
        return text

    def node_cpus(self) -> int:
        """CPUs of the largest node: what a CPU timing group holds alone."""
        import ray

        return int(max(n["Resources"].get("CPU", 1) for n in ray.nodes() if n["Alive"]))

    def gpu_facts(self) -> dict[str, Any]:
        """One GPU worker's device name, bf16 support and free memory (asked once)."""
        import ray

        if "gpu" not in self._probed:
            self._probed["gpu"] = ray.get(ray.remote(num_gpus=1)(_gpu_facts).remote())
        return self._probed["gpu"]

    # -- what the plan asks ---------------------------------------------------------------

    def resolve_device(self, device: str) -> str:
        import ray

        from archbench.core.settings import check_device_name

        check_device_name(device)
        if device == "cpu":
            return device
        self.connect()
        gpus = ray.cluster_resources().get("GPU", 0)
        if device == "auto":
            return "cuda" if gpus else "cpu"
        if not gpus:
            raise UsageError(f"--device {device}: the Ray cluster has no GPUs; use --device cpu")
        if device not in ("cuda", "cuda:0"):
            raise UsageError(f"--device {device}: Ray gives each task its own GPU; use "
                             "--device cuda")
        return "cuda"

    def amp_dtype(self, device: str) -> str:
        if device.startswith("cuda"):
            return "bf16" if self.gpu_facts()["bf16"] else "fp16"
        return "bf16"

    def memory_budget_mb(self, settings: RunSettings) -> float:
        if settings.max_memory_mb:
            return settings.max_memory_mb
        if settings.device.startswith("cuda"):
            return 0.9 * self.gpu_facts()["free_mb"]
        import ray

        self.connect()
        return 0.9 * min(n["Resources"].get("memory", 0) for n in ray.nodes()
                         if n["Alive"]) / 2**20

    # -- the protocol ---------------------------------------------------------------------

    def resources(self, task: Task) -> dict[str, Any]:
        """One CPU to count; a GPU, or a whole node's CPUs, to time a group alone."""
        if not task.settings.latency:
            return {"num_cpus": 1}
        if task.settings.device.startswith("cuda"):
            return {"num_cpus": 1, "num_gpus": 1}
        return {"num_cpus": self.node_cpus()}

    def submit(self, tasks: Sequence[Task]) -> None:
        """Count-only tasks go out as they are. A timed group first goes out as one
        count-only task per model (CPUs, in parallel); the group itself follows when they
        are done, carrying their analyses, so it holds its device only to time."""
        self.connect()
        for task in tasks:
            if task.settings.latency and not task.analysis:
                self.counting[task.index] = (task, {})
                for count in task.counting():
                    self.send(count, parent=task.index)
            else:
                self.send(task)
        self.total += len(tasks)

    def send(self, task: Task, parent: int | None = None) -> None:
        import ray

        from archbench.core.mixers import collect_mixers

        if self._mixers is None:
            self._mixers = collect_mixers(self.pm)
        options = {**self.resources(task), "max_retries": self.retries,
                   "retry_exceptions": False}
        ref = ray.remote(run_on_worker).options(**options).remote(
            pickle.dumps(task), needed_plugins(task, self._mixers))
        self.pending[ref] = (task, parent)

    def results(self) -> Iterator[RowResult]:
        import ray

        while self.pending:
            (ref,), _ = ray.wait(list(self.pending), num_returns=1)
            task, parent = self.pending.pop(ref)
            rows = self.collect(ref, task)
            if parent is not None:
                yield from self.counted(parent, task, rows)
                continue
            self.done += 1
            where = rows[0].where if rows else {}
            self.progress(f"[task {self.done}/{self.total}] {task.label}: done on "
                          f"{where.get('host', '?')}")
            yield from rows

    def collect(self, ref: Any, task: Task) -> list[RowResult]:
        """A finished Ray task's rows; if it failed as a whole, its rows as errors."""
        import ray

        from archbench.run.worker import lost_rows

        try:
            return ray.get(ref)
        except Exception as exc:  # the run goes on
            return list(lost_rows(task, failure(exc)))

    def counted(self, parent: int, task: Task, rows: list[RowResult]) -> Iterator[RowResult]:
        """One model of a timed group is counted; once all are, the group goes out."""
        from archbench.run.worker import timing_task

        group, counted = self.counting[parent]
        counted[task.positions[0]] = rows[0]
        self.progress(f"  counted {task.label} on {rows[0].where.get('host', '?')}")
        if len(counted) < len(group.specs):
            return
        del self.counting[parent]
        timed, failed = timing_task(group, counted)
        if timed is not None:
            self.send(timed)
        else:
            self.done += 1
        yield from failed

    def cancel(self) -> None:
        import ray

        for ref in self.pending:
            ray.cancel(ref, force=True)
        self.pending.clear()
        self.counting.clear()

    def close(self) -> None:
        """Disconnect; a local instance this executor started stops with it."""
        import ray

        self.pending.clear()
        if ray.is_initialized():
            ray.shutdown()


def failure(exc: BaseException) -> BaseException:
    """What a failed Ray task means for its rows: the worker's own exception where it
    raised one (a missing plugin), else ``worker died: ...``."""
    import ray.exceptions as rex

    if isinstance(exc, rex.RayTaskError) and isinstance(exc.cause, Exception):
        return exc.cause
    if isinstance(exc, rex.OutOfMemoryError):
        return WorkerDied("worker died: killed by Ray's memory monitor (the node ran out of "
                          "memory)")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return WorkerDied(f"worker died: {type(exc).__name__}: {first}")


def needed_plugins(task: Task, mixers: dict[str, Any]) -> list[str]:
    """The plugins a task's models come from, as the driver has them: each architecture's,
    and each token mixer's (a swap, or a mixer measured alone)."""
    names = {spec.arch.plugin for spec in task.specs}
    for spec in task.specs:
        mixer = spec.mixer or spec.config.get("mixer")
        if isinstance(mixer, str) and mixer in mixers:
            names.add(mixers[mixer].plugin)
    return sorted(name for name in names if name)


def _import_path() -> list[str]:
    import sys

    return [p for p in sys.path if p and os.path.isdir(p)]


# -- on the worker ------------------------------------------------------------------------

_PLUGIN_MANAGER: Any = None


def run_on_worker(payload: bytes, needed: list[str]) -> list[RowResult]:
    """One task on a Ray worker, with this worker process's own plugin manager. The plugins
    are checked before the task is unpickled (its specs refer to the plugins' modules)."""
    global _PLUGIN_MANAGER
    import ray

    from archbench.run.worker import run_task

    if _PLUGIN_MANAGER is None:
        from archbench.plugins import get_plugin_manager

        _PLUGIN_MANAGER = get_plugin_manager()
    pm = _PLUGIN_MANAGER
    context = ray.get_runtime_context()
    host = socket.gethostname()
    missing = [name for name in needed if name not in pm.infos or pm.infos[name].error]
    if missing:
        raise MissingPlugin(
            f"plugin {missing[0]!r} is not installed on the Ray worker on {host} "
            f"(node {context.get_node_id()[:8]}): install its package on every node, or ship "
            "it with Ray's runtime_env (e.g. ray.init(runtime_env={'pip': [...]}) or "
            "'py_modules'); see docs/cluster.md")
    task: Task = pickle.loads(payload)
    if task.settings.threads is None:  # the CPUs Ray gave the task, not the node's count
        cpus = int(context.get_assigned_resources().get("CPU", 1)) or 1
        if task.settings.latency and not task.settings.device.startswith("cuda"):
            from archbench.measure.contention import timing_threads

            cpus = timing_threads(cpus)  # one core left to the node, as locally
        task = dataclasses.replace(task, settings=dataclasses.replace(task.settings,
                                                                      threads=cpus))
    node = {"node": context.get_node_id(), "node_ip": ray.util.get_node_ip_address()}
    rows = list(run_task(pm, task, lambda _: None))
    for row in rows:
        row.where.update(node)
    return rows


def _gpu_facts() -> dict[str, Any]:
    import torch

    free, _ = torch.cuda.mem_get_info()
    return {"name": torch.cuda.get_device_name(), "bf16": torch.cuda.is_bf16_supported(),
            "free_mb": free / 2**20}
