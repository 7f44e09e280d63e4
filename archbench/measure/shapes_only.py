"""Models built for counting only. Parameter and FLOP counts depend on a model's shapes, not
on its parameters' values, so a count-only run (no timing, no evaluation) skips most of the
random initialisation that every constructor runs (``nn.init``, timm's ``trunc_normal_``):
on the 2-core development machine that was two thirds of the time it took to build DeiT-S,
Swin-T and HorNet-T. The model's counts are those of the same model built the ordinary way
(tested for each built-in architecture and for timm models; a reviewer compared 31 timm
families).

What changes: each parameter is zero when a module registers it, and value writes made to
an ``nn.Parameter`` itself do nothing: ``torch.nn.init``'s functions (``orthogonal_``,
``eye_`` and ``dirac_`` still run) and the in-place methods in :data:`VALUE_WRITES`. Writes
through ``.data``, slices or ``out=`` still happen, so some parameters end up non-zero;
either way their values are not what counting reads. Shapes, ``requires_grad`` and buffers
are made as usual. A constructor that fails this way (one that reads a value it drew) is
run again the ordinary way, and so is a model that cannot be counted with these values
(``TaskRun.analyze``). What stays different is a count that depends on parameter values,
such as the tokens an argmax router sends to each expert: with zero weights every token
takes the first route.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

#: In-place Tensor methods that write values and keep the shape: what initialisation code
#: does to a parameter (besides calling ``torch.nn.init``'s functions, also skipped).
VALUE_WRITES = frozenset({
    "uniform_", "normal_", "erfinv_", "exponential_", "random_", "bernoulli_", "cauchy_",
    "log_normal_", "geometric_", "fill_", "zero_", "copy_", "mul_", "div_", "add_", "sub_",
    "clamp_", "clamp_min_", "clamp_max_", "abs_", "neg_", "sqrt_", "exp_", "pow_",
    "masked_fill_", "index_fill_", "fill_diagonal_", "addcmul_", "addcdiv_", "lerp_",
})


def build_for_counting(build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` with every parameter zero from the moment a module registers it (a
    global registration hook, acting in this thread only) and the writes of its
    initialisation skipped; should that fail, ``build()`` the ordinary way. Zero first,
    because some initialisers read what they wrote: torch 2.14's ``nn.init.trunc_normal_``
    draws again every value outside its bounds, and uninitialised memory is full of them."""
    from torch.nn.modules.module import register_module_parameter_registration_hook

    handle = register_module_parameter_registration_hook(
        _zero_parameter(threading.get_ident()))
    try:
        with _skip_parameter_init():
            return build()
    except Exception:
        pass
    finally:
        handle.remove()
    return build()


def _zero_parameter(thread: int) -> Callable[[Any, str, Any], None]:
    import torch
    from torch.nn.parameter import UninitializedParameter

    def zero(module: Any, name: str, param: Any) -> None:
        if threading.get_ident() == thread and param is not None and \
                not isinstance(param, UninitializedParameter):
            param.data = torch.zeros_like(param)

    return zero


def _skip_parameter_init() -> Any:
    """A ``TorchFunctionMode`` in which value writes to an ``nn.Parameter`` (the functions
    of ``torch.nn.init`` and :data:`VALUE_WRITES`) return the parameter unchanged."""
    import torch
    from torch.overrides import TorchFunctionMode

    skipped = VALUE_WRITES | {name for name in vars(torch.nn.init)
                              if name.endswith("_") and not name.startswith("_")}

    class SkipParameterInit(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                               kwargs: dict | None = None) -> Any:
            kwargs = kwargs or {}
            # nn.init's functions pass their tensor by keyword to __torch_function__
            target = args[0] if args else next(iter(kwargs.values()), None)
            if isinstance(target, torch.nn.Parameter) and \
                    getattr(func, "__name__", None) in skipped:
                return target
            return func(*args, **kwargs)

    return SkipParameterInit()
