"""What a command asks for, as parsed by the CLI and before any check against the plugins:
plain data handed to the plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from archbench.core.mixers import MixerConfig


@dataclass(frozen=True)
class Measurement:
    """The measurement options every measuring command shares (``cli/options.py``)."""

    batch_sizes: tuple[str, ...] = ()
    max_batch: bool = False
    max_memory: float | None = None
    device: str = "auto"
    dtype: str = "fp32"
    amp: bool = False
    mode: str = "infer"
    channels_last: bool = False
    compile_mode: str | None = None
    cuda_graphs: bool = False
    warmup: int = 3
    min_time: float = 1.0
    repeat: int = 5
    threads: int | None = None
    no_latency: bool = False
    debug: bool = False
    #: Add trials until every row's 95% interval half-width is within this % of its median.
    target_ci: float | None = None
    #: With ``target_ci``: seconds a comparison group's trials may take in all.
    max_time: float | None = None
    no_cache: bool = False
    #: A profiled pass after each row's trials: time by module (``--breakdown``).
    breakdown: bool = False
    #: ``--data DIR``: measure top-1/top-5 on these images (``compare`` only).
    data: str | None = None
    #: ``--labels FILE``: the labels CSV of a flat ``--data`` folder.
    labels: str | None = None
    #: ``--weights SOURCE`` (repeatable): ``timm``, a checkpoint path, or MODEL=SOURCE.
    weights: tuple[str, ...] = ()
    #: ``--limit N``: evaluate N images, evenly spaced through the folder.
    limit: int | None = None


@dataclass(frozen=True)
class Output:
    """Where and what the session writes, and which executor runs the tasks."""

    out: Path = Path("results")
    formats: tuple[str, ...] = ()
    executor: str = "local"
    ray_address: str | None = None
    retries: int = 0
    #: png, pdf or svg: the figures' file format (report.md embeds PNGs only).
    figure_format: str = "png"
    #: The columns of the summary table (terminal and report.md); () for the default.
    columns: tuple[str, ...] = ()
    #: ``--store PATH`` (or ARCHBENCH_STORE); None: ``<out>/archbench.sqlite``.
    store: Path | None = None
    #: ``--no-store``: the run is not recorded (a baseline can still be read from a store).
    no_store: bool = False
    #: ``--baseline RUN``: a run folder, a stored run id, or ``latest``.
    baseline: str | None = None
    #: ``--fail-on METRIC:THRESHOLD`` values, as given.
    fail_on: tuple[str, ...] = ()
    #: ``--baseline-any-device``: compare latency with a baseline from another device model.
    baseline_any_device: bool = False


@dataclass(frozen=True)
class ModelRequest:
    """``compare`` (one input size) or ``sweep`` (several) over targets."""

    kind: str
    targets: tuple[str, ...]
    measurement: Measurement = field(default_factory=Measurement)
    img_sizes: tuple[int | None, ...] = (None,)
    seq_lens: tuple[int | None, ...] = (None,)
    overrides: tuple[str, ...] = ()
    mixer: str | None = None


@dataclass(frozen=True)
class MixerRequest:
    """``mixers``: token mixers alone, across feature-map sides."""

    names: tuple[str, ...]
    base: MixerConfig
    sizes: tuple[int, ...]
    measurement: Measurement = field(default_factory=Measurement)
