"""FLOP counting (torch and fvcore are imported only when a count runs): fvcore's
``FlopCountAnalysis`` with archbench's handlers, and the context that ``archbench_analyze``
hooks receive.

Convention: fvcore counts one fused multiply-add as one "flop"; everything here is named
MACs accordingly, and ``gflops`` columns are 2 × MACs.
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
import types
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archbench.core.settings import RunSettings
from archbench.core.spec import ModelSpec
from archbench.formulas import shape_of

if TYPE_CHECKING:
    from torch import nn

    from archbench.mixers.swap import Swap

Handle = Callable[[list[Any], list[Any]], Any]


def sdpa_macs_handle(inputs: list[Any], outputs: list[Any]) -> int:
    """``aten::scaled_dot_product_attention``: QKᵀ (L·S·E) and AV (L·S·Ev) per batch and head.

    fvcore skips this op; without it ViT-B/16 at 224 counts 16.87 instead of 17.58 GMACs.
    The softmax, the 1/√d scaling and any mask add are not counted (Swin eqs. 1-2 omit
    them too).
    """
    q, k, v = (shape_of(x) for x in inputs[:3])
    *batch, length, e = q
    s = k[-2]
    ev = v[-1]
    return math.prod(batch) * length * s * (e + ev)


#: The handlers the core contributes through ``archbench_flop_handlers``.
CORE_HANDLERS: dict[str, Handle | None] = {
    "aten::scaled_dot_product_attention": sdpa_macs_handle,
}


@dataclass
class FlopCount:
    """fvcore's count of one forward pass, in MACs (one fused multiply-add = 1)."""

    total: int
    by_module: Mapping[str, int]
    by_operator: Mapping[str, int]
    #: Operators fvcore saw but no handler counted, with how often they ran.
    unsupported: Mapping[str, int]
    module_types: Mapping[str, str] = field(default_factory=dict)

    def macs_of_types(self, type_names: Iterable[str]) -> int:
        """MACs inside modules of ``type_names`` (see :func:`type_keys`; outermost match
        only, so nested matches are not counted twice)."""
        names = set(type_names)
        matched = [m for m in self.module_types if m and type_keys(m, self.module_types) & names]
        outer = [m for m in matched if not any(m.startswith(o + ".") for o in matched)]
        return sum(self.by_module.get(m, 0) for m in outer)


def type_keys(path: str, module_types: Mapping[str, str]) -> set[str]:
    """The names the module at ``path`` answers to in an Architecture's type lists
    (``token_mixer_types``, ``mlp_types``...): its class name, and ``Parent.attribute`` (its
    parent's class name, then its attribute there) for a child without a class of its own,
    such as timm ConvNeXt's depth-wise ``ConvNeXtBlock.conv_dw``. ``module_types`` maps every
    path of ``model.named_modules()`` to its class name."""
    keys = {module_types[path]}
    if path:
        parent, _, attribute = path.rpartition(".")
        keys.add(f"{module_types[parent]}.{attribute}")
    return keys


def type_names_in(model: nn.Module) -> set[str]:
    """Every name that some module of ``model`` answers to in an Architecture's type lists
    (:func:`type_keys`): plugins use it to see which known module types a model holds."""
    types = module_types_of(model)
    return set().union(*(type_keys(path, types) for path in types))


def module_types_of(model: nn.Module) -> dict[str, str]:
    """Path → class name of every module of ``model`` (the root's path is ``""``)."""
    return {name: type(module).__name__ for name, module in model.named_modules()}


def count_flops(
    model: nn.Module, inputs: tuple[Any, ...], handlers: Mapping[str, Handle | None]
) -> FlopCount:
    """Count one forward pass of ``model(*inputs)`` with fvcore plus ``handlers``."""
    with warnings.catch_warnings():
        # fvcore traces with torch.jit, which now warns that it is deprecated.
        warnings.simplefilter("ignore", FutureWarning)
        from fvcore.nn import FlopCountAnalysis

        analysis = FlopCountAnalysis(model, inputs)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        analysis.set_op_handle(**dict(handlers))
        by_module = dict(analysis.by_module())
    return FlopCount(
        total=int(analysis.total()),
        by_module=by_module,
        by_operator=dict(analysis.by_operator()),
        unsupported=dict(analysis.unsupported_ops()),
        module_types=module_types_of(model),
    )


@contextlib.contextmanager
def dynamo_import_deferred() -> Iterator[bool]:
    """While PyTorch's ``FlopCounterMode`` runs, outside any ``torch.compile``: answer the
    ``import torch._dynamo`` that it and the meta kernels make on first use with a
    stand-in whose ``disable(fn)`` returns ``fn`` unchanged. That import only wraps them in
    ``torch._dynamo.disable``, which matters while compiling, and costs about as much as
    importing torch (1-3.5 s on the 2-core development machine). On leaving, the stand-in
    and every mark it left on a function are removed, so a later ``torch.compile`` imports
    the real module. Yields False, and changes nothing, where torch._dynamo is imported
    already. Not thread-safe: counting runs one model at a time in a process.
    """
    import torch

    if "torch._dynamo" in sys.modules or "_dynamo" in vars(torch):
        yield False
        return
    marked: list[Any] = []

    def disable(fn: Any = None, recursive: bool = True, **kwargs: Any) -> Any:
        if fn is None:
            return lambda f: disable(f, recursive, **kwargs)
        marked.append(fn)
        return fn

    stand_in = types.ModuleType("torch._dynamo", "archbench's stand-in while counting")
    stand_in.disable = disable  # type: ignore[attr-defined]
    sys.modules["torch._dynamo"] = stand_in
    torch._dynamo = stand_in  # type: ignore[attr-defined]
    try:
        yield True
    finally:
        if sys.modules.get("torch._dynamo") is stand_in:
            del sys.modules["torch._dynamo"]
        if vars(torch).get("_dynamo") is stand_in:
            del torch._dynamo
        for fn in marked:
            with contextlib.suppress(AttributeError, TypeError):
                vars(fn).pop("__dynamo_disable", None)


@dataclass
class AnalysisContext:
    """What ``archbench_analyze`` receives: the model, its batch-1 inputs and its FLOP count.

    ``flops`` is computed on first use (fvcore traces the model once) and then shared by
    every plugin.
    """

    spec: ModelSpec
    model: nn.Module
    inputs: tuple[Any, ...]
    handlers: Mapping[str, Handle | None]
    #: The run's settings (``settings.mode == "train"`` asks for training FLOPs too).
    settings: RunSettings | None = None
    #: The ``--mixer`` swap built into the model (mixer, per-stage configs), or None.
    swap: Swap | None = None

    @functools.cached_property
    def flops(self) -> FlopCount:
        return count_flops(self.model, self.inputs, self.handlers)
