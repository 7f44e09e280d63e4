"""archbench: compare vision-Transformer architectures, measured, side by side.

Plugin authors need two names from here: :data:`hookimpl` to mark hook implementations,
and the data classes re-exported from :mod:`archbench.core` (spec, config schema, settings,
errors).
Token-mixer classes are in :mod:`archbench.mixers`; formula helpers in
:mod:`archbench.formulas`.
"""

import pluggy

from archbench.core.errors import UsageError
from archbench.core.schema import Field, Schema
from archbench.core.settings import RunSettings
from archbench.core.spec import Architecture, InputKind, ModelSpec, Variant

__version__ = "0.1.0"

#: Marker for hook implementations: ``@archbench.hookimpl``.
hookimpl = pluggy.HookimplMarker("archbench")

__all__ = [
    "Architecture",
    "Field",
    "InputKind",
    "ModelSpec",
    "RunSettings",
    "Schema",
    "UsageError",
    "Variant",
    "__version__",
    "hookimpl",
]
