"""The report: one row per (model, input, batch, device, dtype), the run's environment, and
the writers that render it. Files are replaced atomically, so a reader (or an interrupted
run) only ever sees whole files.
"""

from __future__ import annotations

import bisect
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

#: Bumped when the JSON layout changes incompatibly.
REPORT_VERSION = 1

#: Columns that identify a row, in table order.
ID_COLUMNS = ["model", "arch", "variant", "input", "batch_size", "device", "dtype"]
#: The columns shown on the terminal and in report.md, where present; the CSV and JSON
#: hold every column.
SUMMARY_COLUMNS = [
    "run", "device_name", "model", "input", "batch_size", "device", "dtype",
    "params_m", "gmacs", "mixer", "mixer_gmacs", "mixer_gmacs_formula",
    "mixer_gmacs_as_msa", "mixer_msa_saving",
    "latency_ms_median", "latency_ms_p10", "latency_ms_p90", "throughput_per_s", "memory_mb",
    "status",
]
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
    "memory_mb": "see memory_measure: CUDA max allocated, or CPU RSS growth",
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

    def summary_frame(self) -> pd.DataFrame:
        frame = self.frame()
        shown = [c for c in SUMMARY_COLUMNS if c in frame and frame[c].notna().any()]
        return frame[shown]


Rendered = str | bytes | dict[str, str | bytes]


@dataclass(frozen=True)
class ReportWriter:
    """One output format: ``render(report)`` returns the text (or bytes) of ``filename``, or
    ``{filename: content}`` for a format that writes several files (markdown and its plots).
    """

    format: str
    filename: str
    render: Callable[[Report], Rendered]

    def write(self, report: Report, folder: Path) -> None:
        rendered = self.render(report)
        files = rendered if isinstance(rendered, dict) else {self.filename: rendered}
        for name, content in files.items():
            write_atomic(Path(folder) / name, content)


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write to a temporary file in the same folder, then rename over ``path``. The file
    gets the permissions an ordinary ``open`` would give it (the umask's), not mkstemp's
    private 0600."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def jsonable(value: Any) -> Any:
    """Plain JSON values: NaN and infinities become ``None``; tuples lists; numpy scalars Python."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
