"""Finding runs to read: ``--baseline RUN`` (a run folder, a stored run id, or ``latest``)
and ``archbench report --from-store RUN_ID...``. Everything here runs before a measurement
starts; a run that cannot be found is a ``UsageError`` (one line, exit 2)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from archbench.core.errors import UsageError
from archbench.report.baseline import Baseline, Gate, base_model
from archbench.store.database import Store

#: The name that asks for the newest fitting stored run.
LATEST = "latest"


def stored_documents(ids: Sequence[str], store: Path) -> list[tuple[str, dict[str, Any]]]:
    """``(run id, report document)`` of each stored run; ``latest`` is the newest run."""
    with Store(store, create=False) as opened:
        found = []
        for run_id in ids:
            if run_id == LATEST:
                runs = opened.runs()
                if not runs:
                    raise UsageError(f"latest: the results store {store} holds no run")
                run_id = runs[0]["id"]
            found.append((run_id, opened.document(run_id)))
        return found


def local_device_name(device: str) -> str | None:
    """The device model a run on ``device`` (``cpu``, ``cuda``, ``cuda:N``) measures on
    here, as the environment records it."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device).index or 0)
    from archbench.report.environment import cpu_model

    return cpu_model()


def planned(plan: Any) -> tuple[set[tuple[str, str]], set[int] | None]:
    """The (model without overrides, input) pairs and the batch sizes a plan will measure
    (None: any, for count-only rows, or found while running with ``--max-batch``)."""
    keys = {(base_model(spec.name), spec.input_desc) for task in plan.tasks
            for spec in task.specs}
    settings = plan.settings
    timed = settings.get("latency", True) and not settings.get("max_batch")
    return keys, set(settings.get("batch_sizes") or [1]) if timed else None


def latest_run(store: Store, plan: Any) -> str:
    """The newest complete stored run with a finished row of this plan's models, inputs,
    batch sizes, dtype and mode, measured on this machine's device model (for a timed plan,
    a timed row: a count-only run has no latency to compare with)."""
    settings = plan.settings
    device_name = local_device_name(str(settings.get("device")))
    keys, batches = planned(plan)
    for row in store.identities(device_name):
        if (row["complete"] and row["status"] == "ok" and row["dtype"] == settings.get("dtype")
                and row["mode"] == settings.get("mode")
                and (base_model(row["model"]), row["input"]) in keys
                and (batches is None or row["batch_size"] in batches)):
            return row["run_id"]
    raise UsageError(f"--baseline latest: no complete run in the results store {store.path} "
                     f"measured any of these models at this input, batch size, dtype and mode "
                     f"on {device_name}; record one first (every run without --no-store is "
                     "recorded), or name a run folder")


def load_baseline(source: str, store: Path, plan: Any, *, executor: str = "local",
                  any_device: bool = False, gates: Sequence[Gate] = ()) -> Baseline:
    """``--baseline`` resolved and loaded: a run folder (its report.json), a run id in the
    store, or ``latest``; UsageError for anything else, and for a latency gate that the
    baseline cannot serve (see :func:`check_latency_gate`)."""
    baseline = _load(source, store, plan, executor, any_device, gates)
    if any(g.metric == "latency" for g in gates) and executor == "local":
        check_latency_gate(baseline, plan)
    return baseline


def check_latency_gate(baseline: Baseline, plan: Any) -> None:
    """``--fail-on latency:...`` against a baseline with no timed row of this device model
    (without ``--baseline-any-device``) would check nothing and pass: refused instead."""
    from archbench.report.baseline import device_name_of

    environment = baseline.document.get("environment") or {}
    here = local_device_name(str(plan.settings.get("device")))
    timed = [r for r in baseline.document.get("rows", []) if r.get("status") == "ok"
             and (r.get("details") or {}).get("latency_samples_ms")]
    if not any(baseline.any_device or device_name_of(r, environment) == here for r in timed):
        where = "" if baseline.any_device else f" on {here}"
        raise UsageError(f"--fail-on latency: baseline {baseline.run} has no timed row"
                         f"{where} to compare with, so the gate would check nothing; name a "
                         "timed baseline of this device model")


def _load(source: str, store: Path, plan: Any, executor: str, any_device: bool,
          gates: Sequence[Gate]) -> Baseline:
    from archbench.report.merge import load_run

    if source == LATEST:
        if executor != "local":
            raise UsageError("--baseline latest needs the local executor (the device of a "
                             "Ray worker is known only once it runs); name a run id or "
                             "folder")
        with Store(store, create=False) as opened:
            run_id = latest_run(opened, plan)
            return Baseline(source, run_id, opened.document(run_id), any_device, tuple(gates))
    folder = Path(source)
    if folder.is_dir():
        return Baseline(source, folder.name, load_run(folder), any_device, tuple(gates))
    if not Path(store).is_file():
        raise UsageError(f"--baseline {source!r}: not a run folder, and no results store at "
                         f"{store} to find a run id in (--store PATH)")
    with Store(store, create=False) as opened:
        try:
            document = opened.document(source)
        except UsageError:
            raise UsageError(f"--baseline {source!r}: neither a run folder nor a run id in "
                             f"the results store {store} ('archbench history' lists them), "
                             "nor 'latest'") from None
    return Baseline(source, source, document, any_device, tuple(gates))
