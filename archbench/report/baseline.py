"""A run against a baseline run (``--baseline RUN``): which rows match, how every numeric
column changed, the latency ratio with its bootstrap interval from both runs' raw samples,
and the regression gate (``--fail-on latency:5%``, ``gmacs:0``, ``params:0``).

Matching: a row matches the baseline row with the same model, input, batch size, dtype and
mode measured on the same device model (``device_name``). A model whose config changed
(``vit:tiny[depth=2]`` against ``vit:tiny[depth=1]``, or a plugin's variant edited) still
matches its one counterpart of the same name without the ``[...]`` overrides, and the
changed config is named. Counts (parameters, MACs, the mixers' formulas) do not depend on
the device (they are made on the CPU in fp32), so they are compared whatever device the
baseline ran on; latency, throughput and memory only on the same device model, unless
``--baseline-any-device``. No module here imports torch, numpy (until a ratio is
computed), pandas or the store.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from archbench.core.errors import UsageError
from archbench.report.cells import is_number

#: The table's title (a section of report.md, a key of report.json's ``tables``).
BASELINE_TITLE = ("Against baseline (latency ratio = this run / baseline, 95% bootstrap CI "
                  "from both runs' samples; significant where it excludes 1)")
#: A relative change below this is float noise, not a change (``--fail-on gmacs:0``).
NOISE = 1e-9
#: ``--fail-on`` metrics and the column each checks.
GATE_COLUMNS = {"latency": "latency_ms_median", "gmacs": "gmacs", "params": "params_m"}
#: Columns that are the same on every device (counted on the CPU in fp32): compared even
#: against a baseline measured elsewhere.
COUNT_COLUMNS = frozenset({
    "params_m", "trainable_params_m", "gmacs", "gflops", "train_gmacs", "mixer_gmacs",
    "mixer_params_m", "mlp_gmacs", "mlp_params_m", "other_gmacs", "mixer_share",
    "gmacs_flopcounter", "gmacs_crosscheck_diff", "mixer_gmacs_formula", "mixer_gmacs_as_msa",
    "mixer_gmacs_as_wmsa", "mixer_msa_saving", "macs_formula", "macs_counted", "macs_diff",
    "params", "tokens", "dim", "heads", "window", "order", "attention_mb_estimate"})
#: Numeric columns that say what a row is, not what was measured.
NOT_COMPARED = frozenset({"batch_size", "img_size", "seq_len"})


@dataclass(frozen=True)
class Gate:
    """One ``--fail-on METRIC:THRESHOLD``."""

    metric: str
    threshold_pct: float
    spec: str


@dataclass
class Baseline:
    """What ``--baseline`` resolved to, loaded before anything ran."""

    #: What the user gave: a folder, a run id, or ``latest``.
    source: str
    #: The run's name: its store id or its folder's name.
    run: str
    #: Its report document (report.json's content).
    document: dict[str, Any]
    any_device: bool = False
    gates: tuple[Gate, ...] = ()
    #: Per row of this run (in report order), its comparison; filled when the run ends.
    entries: list[dict[str, Any]] = field(default_factory=list)


def parse_gates(specs: Sequence[str], baseline: str | None, latency: bool = True
                ) -> tuple[Gate, ...]:
    """``--fail-on`` values (repeatable, or comma-separated) → gates; UsageError for a bad
    spec, for gates without ``--baseline``, and for a latency gate without timing."""
    gates = []
    for part in (p.strip() for s in specs for p in s.split(",")):
        if not part:
            continue
        metric, _, threshold = part.partition(":")
        if metric not in GATE_COLUMNS or not threshold:
            raise UsageError(f"--fail-on {part!r}: expected METRIC:THRESHOLD with METRIC one "
                             f"of {', '.join(GATE_COLUMNS)}, e.g. latency:5% or gmacs:0")
        text = threshold[:-1] if threshold.endswith("%") else threshold
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0 or (text == threshold and value != 0):
            raise UsageError(f"--fail-on {part!r}: the threshold is a percentage of the "
                             "baseline (5%), or 0 for any change")
        gates.append(Gate(metric, value, part))
    if gates and not baseline:
        raise UsageError("--fail-on needs --baseline RUN (a run folder, a stored run id, or "
                         "latest) to compare against")
    if not latency and any(g.metric == "latency" for g in gates):
        raise UsageError("--fail-on latency needs timed rows; drop --no-latency")
    return tuple(dict.fromkeys(gates))


def base_model(model: str) -> str:
    """A row's model without its ``[KEY=VALUE,...]`` overrides."""
    return str(model).split("[", 1)[0]


def device_name_of(row: dict[str, Any], environment: dict[str, Any]) -> str | None:
    """Where a row of a report document was measured: its own ``device_name`` (a merged
    report's rows), its ``details.where.device_name``, else its run's environment's."""
    where = (row.get("details") or {}).get("where") or {}
    return row.get("device_name") or where.get("device_name") or environment.get("device_name")


def _key(row: dict[str, Any], model: str, batch: bool) -> tuple:
    return (model, row.get("input"), row.get("batch_size") if batch else None,
            row.get("dtype"), row.get("mode"))


#: The ways a row matches a baseline row, most specific first: (how, the model's name as
#: compared, on the same device model, batch size compared). A count-only row (no batch
#: size) matches any batch size of the other run, for its counts.
LEVELS = [(how + suffix, naming, same_device, batch)
          for batch, suffix in ((True, ""), (False, ", count-only"))
          for how, naming, same_device in (("same device", str, True),
                                           ("same device, config changed", base_model, True),
                                           ("other device", str, False),
                                           ("other device, config changed", base_model, False))]


def _pairs(new: list[dict[str, Any]], old: list[dict[str, Any]]
           ) -> dict[int, tuple[int, str]]:
    """New row index → (baseline row index, how it matched), by :data:`LEVELS`: a name
    without its overrides only where one row on each side has it."""
    pairs: dict[int, tuple[int, str]] = {}
    used: set[int] = set()
    for how, naming, same_device, batch in LEVELS:
        mine: dict[tuple, list[int]] = {}
        for i, row in enumerate(new):
            if i not in pairs:
                mine.setdefault(_key(row, naming(row.get("model")), batch), []).append(i)
        theirs: dict[tuple, list[int]] = {}
        for j, row in enumerate(old):
            theirs.setdefault(_key(row, naming(row.get("model")), batch), []).append(j)
        for key, indices in mine.items():
            for i in indices:
                found = [j for j in theirs.get(key, []) if j not in used
                         and (new[i]["device_name"] == old[j]["device_name"]) == same_device
                         and (batch or None in (new[i].get("batch_size"),
                                                old[j].get("batch_size")))]
                if found and (naming is str or (len(indices) == 1 and len(found) == 1)):
                    pairs[i] = (found[0], how)
                    if batch or old[found[0]].get("batch_size") is not None:
                        used.add(found[0])
    return pairs


def _deltas(row: dict[str, Any], base: dict[str, Any], device_ok: bool) -> dict[str, Any]:
    deltas = {}
    for column, value in row.items():
        old = base.get(column)
        if (column in NOT_COMPARED or not is_number(value) or not is_number(old)
                or not (device_ok or column in COUNT_COLUMNS)):
            continue
        deltas[column] = {"baseline": old, "new": value, "change": value - old,
                          "relative": (value - old) / abs(old) if old else None}
    return deltas


def _config_change(new: dict[str, Any], old: dict[str, Any]) -> str | None:
    """The config keys whose values differ, as JSON holds them (a tuple in this run's
    config and the list its baseline's JSON holds are the same value)."""
    from archbench.report.report import jsonable

    mine = jsonable((new.get("details") or {}).get("config") or {})
    theirs = jsonable((old.get("details") or {}).get("config") or {})
    changed = [f"{k} {theirs.get(k, '-')} -> {mine.get(k, '-')}"
               for k in dict.fromkeys([*theirs, *mine]) if theirs.get(k) != mine.get(k)]
    return ", ".join(changed) if changed else None


def _latency(row: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """The latency ratio with its interval, or why there is none."""
    from archbench.core.stats import ratio_ci

    trials = (row.get("details") or {}).get("latency_samples_ms")
    reference = (base.get("details") or {}).get("latency_samples_ms")
    if not trials or not row.get("latency_ms_median"):
        return {"why": None}
    if not reference or not base.get("latency_ms_median"):
        return {"why": "baseline not timed"}
    low, high = ratio_ci(trials, reference)
    return {"latency_ratio": row["latency_ms_median"] / base["latency_ms_median"],
            "ci95_low": low, "ci95_high": high, "significant": not (low <= 1.0 <= high)}


#: What a latency depends on besides the model, its input and the device: run settings,
#: and what the environment records of the run (threads used, torch version).
TIMING_SETTINGS = ("compile", "channels_last", "cuda_graphs")
TIMING_ENVIRONMENT = ("threads", "torch")


def timing_change(settings: dict[str, Any], environment: dict[str, Any],
                  document: dict[str, Any]) -> str | None:
    """How this run was timed differently from the baseline's run (``--threads``,
    ``--compile``, ``--channels-last``, ``--cuda-graphs``, the torch version), or None:
    latencies timed differently are not compared, counts still are."""
    theirs = (document.get("settings") or {}, document.get("environment") or {})
    mine = (settings, environment)
    changed = [f"{key} {old.get(key) or '-'} -> {new.get(key) or '-'}"
               for keys, old, new in zip((TIMING_SETTINGS, TIMING_ENVIRONMENT), theirs, mine)
               for key in keys if (old.get(key) or None) != (new.get(key) or None)]
    return ", ".join(changed) or None


def compare(rows: list[dict[str, Any]], baseline: Baseline, timing: str | None = None
            ) -> list[dict[str, Any]]:
    """Per row of this run (each with its ``details`` and ``device_name``), its comparison
    with the baseline: how it matched (or why not), the baseline row's run and model, the
    change of every numeric column, and the latency ratio with its interval (not where the
    device model differs, unless ``--baseline-any-device``, nor where ``timing`` says the
    runs were timed differently: then counts only)."""
    document = baseline.document
    environment = document.get("environment") or {}
    old = [{**r, "device_name": device_name_of(r, environment)} for r in document["rows"]]
    pairs = _pairs(rows, old)
    entries = []
    for i, row in enumerate(rows):
        entry: dict[str, Any] = {"baseline_run": baseline.run}
        if i not in pairs:
            entry["match"] = "none"
            entry["note"] = "no baseline row with this model, input, batch, dtype and mode"
            entries.append(entry)
            continue
        j, how = pairs[i]
        base = old[j]
        device_ok = (how.startswith("same") or baseline.any_device) and not timing
        entry.update(match=how, baseline_model=base.get("model"),
                     baseline_device_name=base["device_name"])
        notes = []
        if row.get("status") != "ok" or base.get("status") != "ok":
            side = "this row" if row.get("status") != "ok" else "the baseline row"
            entry["note"] = f"{side} did not finish ({row.get('status')}/{base.get('status')})"
            entries.append(entry)
            continue
        config = _config_change(row, base)
        if config:
            entry["config_change"] = config
            notes.append(f"config {config}")
        entry["deltas"] = _deltas({k: v for k, v in row.items() if k != "details"},
                                  {k: v for k, v in base.items() if k != "details"},
                                  device_ok)
        if device_ok:
            latency = _latency(row, base)
            if "why" in latency:
                notes += [latency["why"]] if latency["why"] else []
            else:
                entry["latency"] = latency
            if not how.startswith("same"):
                notes.append(f"latency across devices (baseline on {base['device_name']})")
        elif timing:
            notes.append(f"timed differently ({timing}): counts only")
        else:
            notes.append(f"baseline on {base['device_name']}: counts only")
        if notes:
            entry["note"] = "; ".join(notes)
        entries.append(entry)
    return entries


def table(rows: list[dict[str, Any]], entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The compact table: parameters, GMACs and median latency, changed, and the latency
    ratio with its interval (every column's change is in each row's JSON details)."""
    out = []
    for row, entry in zip(rows, entries):
        deltas = entry.get("deltas", {})
        latency = entry.get("latency", {})
        median = deltas.get("latency_ms_median", {})
        out.append({
            "model": row.get("model"), "input": row.get("input"),
            "batch_size": row.get("batch_size"), "match": entry["match"],
            "params_m_change": deltas.get("params_m", {}).get("change"),
            "gmacs_change": deltas.get("gmacs", {}).get("change"),
            "latency_ms_baseline": median.get("baseline"), "latency_ms": median.get("new"),
            "latency_ratio": latency.get("latency_ratio"),
            "ci95_low": latency.get("ci95_low"), "ci95_high": latency.get("ci95_high"),
            "significant": latency.get("significant"), "note": entry.get("note"),
        })
    shown = [c for c in (out[0] if out else {}) if c in ("model", "input", "match")
             or any(r[c] is not None for r in out)]
    return [{c: r[c] for c in shown} for r in out]


def regressions(rows: list[dict[str, Any]], entries: list[dict[str, Any]],
                gates: Sequence[Gate]) -> tuple[list[str], list[str]]:
    """(a line per row and gate that trips, a line per gate that had nothing to check)."""
    tripped, unchecked = [], []
    for gate in gates:
        checked = 0
        for row, entry in zip(rows, entries):
            batch = row.get("batch_size")
            name = f"{row.get('model')} ({row.get('input')}" + (
                f", batch {batch})" if batch is not None else ")")
            if gate.metric == "latency":
                latency = entry.get("latency")
                if latency is None:
                    continue
                checked += 1
                # a significant slow-down (the interval above 1) by more than the threshold
                if (latency["ci95_low"] > 1
                        and latency["latency_ratio"] > 1 + gate.threshold_pct / 100):
                    tripped.append(
                        f"{name}: latency {latency['latency_ratio']:.3f}x the baseline (95% CI "
                        f"{latency['ci95_low']:.3f}-{latency['ci95_high']:.3f}) > "
                        f"{gate.spec}")
                continue
            delta = entry.get("deltas", {}).get(GATE_COLUMNS[gate.metric])
            if delta is None:
                continue
            checked += 1
            old, change = delta["baseline"], delta["change"]
            relative = change / abs(old) if old else change
            # gmacs:0 / params:0: any change; a threshold above 0: growth beyond it
            if (abs(relative) if gate.threshold_pct == 0 else relative) > max(
                    gate.threshold_pct / 100, NOISE):
                tripped.append(f"{name}: {GATE_COLUMNS[gate.metric]} {old:.6g} -> "
                               f"{delta['new']:.6g} ({change / old if old else math.inf:+.3%})"
                               f" > {gate.spec}")
        if not checked:
            unchecked.append(f"--fail-on {gate.spec}: no row had a baseline value to check "
                             "against, so nothing was checked")
    return tripped, unchecked


def against_baseline(report: Any, baseline: Baseline) -> list[str]:
    """Compare a finished (or interrupted) run's rows with the baseline: each row's
    comparison in its details (``baseline``), the table in the report's tables, a note on
    what was compared, and the gates checked; returns the regressions, one line each."""
    rows = [{**row, "details": details,
             "device_name": device_name_of({"details": details}, report.environment)}
            for row, details in zip(report.rows, report.details)]
    baseline.entries = compare(rows, baseline, timing_change(
        report.settings, report.environment, baseline.document))
    for details, entry in zip(report.details, baseline.entries):
        details["baseline"] = entry
    report.tables[BASELINE_TITLE] = table(rows, baseline.entries)
    tripped, unchecked = regressions(rows, baseline.entries, baseline.gates)
    document = baseline.document
    matched = sum(e["match"] != "none" for e in baseline.entries)
    notes = [f"Against baseline {baseline.run} ({document.get('created')}; "
             f"{document.get('command')}): {matched} of {len(rows)} row(s) matched."]
    if baseline.any_device:
        notes.append("--baseline-any-device: latencies were compared across device models "
                     "where the baseline ran elsewhere; such ratios measure the machines as "
                     "much as the models.")
    report.notes += [n for n in notes + unchecked if n not in report.notes]
    report.settings = {**report.settings, "baseline": {
        "run": baseline.run, "source": baseline.source, "created": document.get("created"),
        "any_device": baseline.any_device, "fail_on": [g.spec for g in baseline.gates]}}
    return tripped
