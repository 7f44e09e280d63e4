"""The report: one row per (model, input, batch, device, dtype), the run's environment, and
the writers that render it. Files are replaced atomically, so a reader (or an interrupted
run) only ever sees whole files.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archbench.core.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

#: Bumped when the JSON layout changes incompatibly.
REPORT_VERSION = 1

#: Columns that identify a row, in table order.
ID_COLUMNS = ["model", "arch", "variant", "input", "batch_size", "device", "dtype"]
#: The columns shown on the terminal, in report.md and report.tex by default, where some
#: row has a value; the CSV and JSON hold every column. ``mlp_share`` and
#: ``latency_ms_ci95`` are derived for display (:data:`DISPLAY_COLUMNS`).
SUMMARY_COLUMNS = [
    "run", "device_name", "model", "input", "batch_size", "device", "dtype",
    "params_m", "gmacs", "mixer", "mixer_gmacs_formula", "mixer_gmacs_as_msa",
    "mixer_msa_saving", "mixer_share", "mixer_time_share", "mlp_share", "mlp_time_share",
    "latency_ms_median", "latency_ms_ci95", "latency_ms_ci95_halfwidth_pct", "ci_reached",
    "breakdown_vs_median", "throughput_per_s", "achieved_gmacs_per_s", "peak_fraction",
    "memory_mb", "top1", "top5", "eval_images", "top1_published",
    "contended", "status",
]
#: Summary columns shown only where some row has this value: a run that is fine says
#: nothing about contention.
SHOWN_WHEN = {"contended": True, "ci_reached": False}
#: Further columns the core writes, which ``--columns`` may choose. A name in neither list
#: is refused before anything runs (:func:`check_columns`); a column a third-party plugin
#: adds is in report.csv and report.json.
OTHER_COLUMNS = [
    "arch", "variant", "img_size", "seq_len", "mode", "trainable_params_m", "gflops",
    "train_gmacs", "mixer_gmacs", "mixer_params_m", "mlp_gmacs", "mlp_params_m",
    "other_gmacs", "mixer_gmacs_as_wmsa", "unsupported_ops", "gmacs_flopcounter",
    "gmacs_crosscheck_diff", "latency_ms_ci95_low", "latency_ms_ci95_high", "latency_ms_p10",
    "latency_ms_p90", "latency_ms_iqr", "latency_ms_mean", "latency_ms_std", "iterations",
    "trials", "compile_s", "attention_backend", "memory_measure", "threads", "max_batch",
    "complexity_cache", "cpu_share", "cpu_others_cores", "load_start", "contention",
    "gpu_other_processes", "layout", "tokens", "dim", "heads", "window",
    "order", "macs_formula", "macs_counted", "macs_diff", "params", "attention_mb_estimate",
    "torch_version", "error",
    # accuracy (builtin/accuracy.py): published, and measured with --data
    "top1_source", "top1_pretrain", "top5_published", "top1_published_note",
    "eval_skipped", "eval_weights", "eval_preprocess", "eval_labels", "eval_s",
    "eval_images_per_s", "eval_note",
    # --breakdown (builtin/breakdown.py)
    "mixer_ms", "mlp_ms", "norm_ms", "window_ms", "other_ms",
    "mixer_cpu_ms", "mlp_cpu_ms", "norm_cpu_ms", "window_cpu_ms", "other_cpu_ms",
    "breakdown_total_ms", "breakdown_kernel_ms", "breakdown_cpu_ms",
    "launch_share", "breakdown_iterations", "breakdown_note",
]
#: Columns computed from others for display, by name: (the columns they need, the value).
DISPLAY_COLUMNS: dict[str, tuple[tuple[str, ...], Callable[[dict[str, Any]], Any]]] = {
    "mlp_share": (("mlp_gmacs", "gmacs"),
                  lambda r: r["mlp_gmacs"] / r["gmacs"] if r["gmacs"] else None),
    "latency_ms_ci95": (("latency_ms_ci95_low", "latency_ms_ci95_high"),
                        lambda r: (r["latency_ms_ci95_low"], r["latency_ms_ci95_high"])),
}


def check_columns(names: Sequence[str]) -> None:
    """UsageError for a ``--columns`` name the core does not write."""
    known = SUMMARY_COLUMNS + OTHER_COLUMNS
    unknown = [n for n in names if n not in known]
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], known, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UsageError(f"--columns: unknown column {unknown[0]!r}{hint}; known: "
                         f"{', '.join(known)}")


#: One line per column that needs saying what it is.
COLUMN_NOTES = {
    "params_m": "parameters, millions (shared weights counted once)",
    "gmacs": "fvcore count, per sample (batch 1): one fused multiply-add = 1, i.e. GMACs",
    "gflops": "2 x gmacs",
    "mixer_gmacs": "fvcore GMACs inside the token-mixer modules (attention, gnConv)",
    "mixer_gmacs_formula": "the plugin's analytic token-mixer cost as built (e.g. Swin eq. 1 or 2)",
    "mixer_gmacs_as_msa": "the same layers as global MSA, Swin eq. (1): 4NC^2 + 2N^2C",
    "mixer_msa_saving": "mixer_gmacs_as_msa / mixer_gmacs_formula",
    "gmacs_crosscheck_diff": "(FlopCounterMode - fvcore) / fvcore on matrix and conv ops",
    "latency_ms_median": "forward latency at this batch size, median of the timed iterations",
    "throughput_per_s": "batch_size / median latency (samples/s)",
    "mixer_share": "mixer_gmacs / gmacs: the token mixers' share of the model's MACs",
    "mlp_share": "mlp_gmacs / gmacs: the MLPs' share of the model's MACs",
    "latency_ms_ci95": "two-level bootstrap 95% interval of latency_ms_median "
    "[latency_ms_ci95_low, latency_ms_ci95_high]",
    "latency_ms_ci95_halfwidth_pct": "half the width of that interval, % of the median",
    "achieved_gmacs_per_s": "gmacs x batch_size / median latency",
    "peak_fraction": "achieved_gmacs_per_s / the device's dense matmul rate measured in the run",
    "contended": "other processes competed for the cores (or the GPU) while the row was timed",
    "cpu_share": "the timing process's CPU time / (wall time x threads) while timed",
    "memory_mb": "see memory_measure: CUDA max allocated, or the CPU allocator's peak (profiler)",
    "top1": "--data: % of eval_images whose label is the model's highest score, with "
    "eval_weights loaded, each model's own preprocessing (eval_preprocess), in the run's dtype",
    "top5": "--data: % of eval_images whose label is among the model's 5 highest scores",
    "top1_published": "published ImageNet-1k val top-1 %, single crop, of the variant as "
    "registered (top1_source: paper and table; top1_pretrain: ImageNet-22k where pre-trained "
    "on it); empty where none is published for exactly this configuration",
    "eval_weights": "--data: the weights evaluated: timm:TAG (timm's pretrained weights) or a "
    "checkpoint path with the first 12 hex digits of its SHA-256",
    "eval_labels": "--data: how labels became class indices (sorted class folders, ImageNet-1k "
    "WordNet ids, or a labels CSV)",
    "eval_images": "--data: images evaluated (--limit N: N evenly spaced); eval_skipped: "
    "images that could not be read, left out of top1/top5",
    "mixer_time_share": "--breakdown: mixer_ms / the profiled forward pass (CPU), or / its "
    "kernel time (CUDA): the token mixers' share of the time, beside mixer_share of the MACs",
    "mlp_time_share": "--breakdown: mlp_ms over the same total: the MLPs' share of the time",
    "mixer_ms": "--breakdown: ms per iteration inside the token-mixer modules (CPU wall time "
    "on the model's thread; on CUDA the kernel time they launched), window time excluded",
    "mlp_ms": "--breakdown: ms per iteration inside the MLP modules (as mixer_ms)",
    "norm_ms": "--breakdown: ms per iteration in norms outside the mixers and MLPs",
    "window_ms": "--breakdown, Swin: window partition and reverse, cyclic shift (roll) and "
    "shift mask, ms per iteration: the time W-MSA pays for its saved MACs",
    "other_ms": "--breakdown: the profiled forward pass less the lines above (patch "
    "embedding, merging, residuals, head, Python between modules)",
    "mixer_cpu_ms": "--breakdown on CUDA: CPU-side (launch) ms per iteration of the mixers; "
    "likewise mlp_cpu_ms, norm_cpu_ms, window_cpu_ms, other_cpu_ms",
    "breakdown_total_ms": "--breakdown: ms per profiled iteration (with the CUDA sync), "
    "taken after and apart from the timed trials",
    "breakdown_vs_median": "breakdown_total_ms / latency_ms_median: profiler and hook "
    "overhead (above 1) made visible",
    "breakdown_kernel_ms": "--breakdown on CUDA: device time of every kernel, memcpy and "
    "memset per iteration; breakdown_cpu_ms: the CPU-side forward pass",
    "launch_share": "--breakdown on CUDA: 1 - breakdown_kernel_ms / breakdown_total_ms, the "
    "share of the iteration the GPU ran nothing; near 1: launch-bound",
    "breakdown_note": "--breakdown: why a line is empty (no module of the declared types) "
    "or what could not be timed",
}


@dataclass
class Report:
    """Everything a writer needs. ``rows`` hold scalars only; ``details`` the per-row JSON extras."""

    kind: str
    command: str
    created: str
    environment: dict[str, Any]
    settings: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)
    #: Warnings for the reader, shown at the top of report.md (e.g. mixed devices).
    notes: list[str] = field(default_factory=list)
    #: Further tables by title (latency ratios, scaling slopes): a section each in
    #: report.md, a key each under "tables" in report.json.
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    #: False while a run is still adding rows: writers may leave out what is costly to
    #: redraw after every row (the plots) until the last write.
    complete: bool = True
    #: Sort keys of the rows, where given: rows finished out of order (interleaved trials,
    #: a batch that fails early) still appear in the order the user asked for them.
    keys: list[tuple] = field(default_factory=list, repr=False)
    #: The figures' file format (png, pdf, svg).
    figure_format: str = "png"
    #: The summary table's columns, as chosen with ``--columns`` (empty: the default).
    columns: list[str] = field(default_factory=list)

    def add_row(self, row: dict[str, Any], details: dict[str, Any], key: tuple = ()) -> None:
        index = bisect.bisect_right(self.keys, key) if key else len(self.rows)
        self.rows.insert(index, row)
        self.details.insert(index, details)
        self.keys.insert(index, key)

    def frame(self) -> pd.DataFrame:
        """The tidy table: identity columns first, then every column in first-seen order."""
        import pandas as pd

        columns = list(ID_COLUMNS)
        for row in self.rows:
            columns.extend(c for c in row if c not in columns)
        tail = [c for c in ("status", "error") if c in columns]
        columns = [c for c in columns if c not in tail] + tail
        return pd.DataFrame(self.rows, columns=columns)

    def summary_columns(self) -> list[str]:
        """``--columns`` as given, else the :data:`SUMMARY_COLUMNS` some row has a value of."""
        if self.columns:
            return list(self.columns)
        return [c for c in SUMMARY_COLUMNS
                if any(_present(summary_value(row, c)) for row in self.rows)
                and (c not in SHOWN_WHEN
                     or any(row.get(c) is SHOWN_WHEN[c] for row in self.rows))]

    def summary_records(self) -> list[dict[str, Any]]:
        """The summary columns' values, a dict per row (``latency_ms_ci95`` a (low, high)
        pair, None where missing); :mod:`archbench.report.cells` prints them."""
        columns = self.summary_columns()
        return [{c: summary_value(row, c) for c in columns} for row in self.rows]

    def summary_frame(self) -> pd.DataFrame:
        """:meth:`summary_records` as a pandas frame (object columns)."""
        import pandas as pd

        return pd.DataFrame(self.summary_records(), columns=self.summary_columns(),
                            dtype=object)

    def document(self) -> dict[str, Any]:
        """report.json's content, as plain JSON values (:func:`jsonable`): what the JSON
        writer prints and the results store records."""
        from archbench import __version__

        frame = self.frame()
        rows = [{**record, "details": details}
                for record, details in zip(frame.to_dict(orient="records"), self.details)]
        return jsonable({
            "report_version": REPORT_VERSION, "kind": self.kind,
            "archbench_version": __version__, "created": self.created,
            "command": self.command, "environment": self.environment,
            "settings": self.settings, "notes": self.notes, "tables": self.tables,
            "columns": list(frame.columns), "rows": rows,
        })

    def caption(self) -> str:
        """The settings a reader needs beside a table or a figure (device, dtype, batch,
        threads, timing), in one sentence."""
        from archbench.report.cells import settings_caption

        return settings_caption(self)


def summary_value(row: dict[str, Any], column: str) -> Any:
    """A row's value of a summary column, derived ones included (None where missing)."""
    if column in DISPLAY_COLUMNS:
        needs, derive = DISPLAY_COLUMNS[column]
        return derive(row) if all(_present(row.get(n)) for n in needs) else None
    return row.get(column)


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


Rendered = str | bytes | dict[str, str | bytes]


@dataclass(frozen=True)
class ReportWriter:
    """One output format: ``render(report)`` returns the text (or bytes) of ``filename``, or
    ``{filename: content}`` for a format that writes several files (markdown and its plots).
    """

    format: str
    filename: str
    render: Callable[[Report], Rendered]
    #: Filled in by the core: the plugin that registered it.
    plugin: str = ""
    #: Written when no ``--format`` is given (csv, md, json); False: only when asked for
    #: (latex).
    default: bool = True

    def files(self, report: Report) -> dict[str, str | bytes]:
        """``{filename: content}`` of everything this writer writes for ``report``."""
        rendered = self.render(report)
        return dict(rendered) if isinstance(rendered, dict) else {self.filename: rendered}

    def write(self, report: Report, folder: Path) -> None:
        write_files(folder, self.files(report))


def write_files(folder: Path, files: Mapping[str, str | bytes]) -> None:
    """Write several files so that they change together: each to a temporary file in
    ``folder`` first, then all renamed over their names, with Ctrl-C and SIGTERM held back
    until the last rename. A reader, or a run interrupted at any point, sees every file as
    of the same moment, each whole."""
    temporary: list[tuple[str, Path]] = []
    try:
        for name, data in files.items():
            temporary.append((name, _temporary_copy(Path(folder) / name, data)))
        with held_signals():
            for name, tmp in temporary:
                os.replace(tmp, Path(folder) / name)
    finally:
        for _, tmp in temporary:
            tmp.unlink(missing_ok=True)


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write to a temporary file in the same folder, then rename over ``path``."""
    write_files(Path(path).parent, {Path(path).name: data})


def _temporary_copy(path: Path, data: str | bytes) -> Path:
    """``data`` in a temporary file beside ``path``, flushed to disk, with the permissions
    an ordinary ``open`` would give it (the umask's), not mkstemp's private 0600."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


@contextlib.contextmanager
def held_signals() -> Iterator[None]:
    """SIGINT and SIGTERM that arrive inside are delivered when it ends (to the handlers
    there were before), so the few renames of :func:`write_files` are never split. Only
    the main thread receives signals; elsewhere nothing is held."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: arrived.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        for sig in dict.fromkeys(arrived):
            signal.raise_signal(sig)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: The values a table cell holds as they are.
SCALARS = (str, int, float, bool, type(None))


def jsonable(value: Any) -> Any:
    """Plain JSON values, whatever a plugin put in a row or its details: NaN and infinities
    become ``None``; tuples and sets lists; numpy and torch values (scalars or arrays) Python
    numbers or lists; anything else its text."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [jsonable(v) for v in value]
        with contextlib.suppress(TypeError):
            items.sort()
        return items
    if not isinstance(value, SCALARS) and callable(getattr(value, "tolist", None)):
        with contextlib.suppress(Exception):
            return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if isinstance(value, SCALARS) else str(value)


def plain_row(row: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A row whose every value is one plain value (what every format can hold), and a note
    by column for each value that had to become its text: numpy and one-element torch values become
    Python numbers; a set, a list, an object or a larger tensor becomes ``str(value)``."""
    plain: dict[str, Any] = {}
    notes: dict[str, str] = {}
    for column, value in row.items():
        if not isinstance(value, SCALARS) and callable(getattr(value, "item", None)):
            with contextlib.suppress(Exception):
                value = value.item()
        if not isinstance(value, SCALARS):
            notes[column] = (f"column {column!r}: a {type(value).__name__} is not one "
                             "value; stored as its text")
            value = str(value)
        plain[column] = value
    return plain, notes
