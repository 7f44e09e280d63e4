"""Core plugin (torch imported lazily, as in every core plugin): parameters, fvcore MACs, the token-mixer breakdown and a FlopCounterMode cross-check."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archbench import hookimpl
from archbench.core.spec import ModelSpec
from archbench.mixers import SWAP_LAYER_TYPE

if TYPE_CHECKING:
    from torch import nn

    from archbench.measure.counting import AnalysisContext, Handle

#: fvcore operator keys that are matrix products or convolutions: the work that
#: ``FlopCounterMode`` also counts. The rest of fvcore's total (norms, pooling, FFTs and
#: element-wise products counted by plugin handlers) is outside the cross-check.
MATRIX_OPERATORS = frozenset(
    {"conv", "linear", "matmul", "mm", "addmm", "bmm", "baddbmm", "einsum",
     "scaled_dot_product_attention"}
)


@hookimpl
def archbench_flop_handlers(spec: ModelSpec) -> dict[str, Handle | None]:
    from archbench.measure.counting import CORE_HANDLERS

    return dict(CORE_HANDLERS)


def _params(modules: list[nn.Module]) -> int:
    seen: set[int] = set()
    total = 0
    for module in modules:
        for p in module.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
    return total


def _modules_of_types(model: nn.Module, type_names: tuple[str, ...]) -> list[nn.Module]:
    from archbench.measure.counting import module_types_of, type_keys

    types, names = module_types_of(model), set(type_names)
    return [m for path, m in model.named_modules() if type_keys(path, types) & names]


#: Up to this many MACs (fvcore's count), the cross-check runs the model itself on the CPU:
#: a forward pass of 10 GMACs takes ~0.1-0.3 s there, less than the meta device's
#: Python-level kernels take for a model of that size, and it needs neither SymPy nor the
#: symbolic-shape machinery (another ~0.5 s to import). Larger models, and training steps,
#: run on the meta device, whose cost does not grow with the MACs.
REAL_PASS_MAX_MACS = 10**10


def flopcounter_macs(ctx: AnalysisContext, train: bool = False) -> int:
    """PyTorch's own count of one pass of the same model, in MACs (``FlopCounterMode``
    counts 2 FLOPs per MAC); ``train`` counts a forward and a backward pass.

    Where fvcore counted at most :data:`REAL_PASS_MAX_MACS` and ``train`` is off, the model
    runs on its CPU tensors with scaled-dot-product attention forced to its math form (the
    fused CPU kernel is invisible to ``FlopCounterMode``; its math form is the matmuls it
    counts). Otherwise the parameters and buffers are swapped for meta tensors of the same
    shapes (``torch.func.functional_call``), so nothing is allocated; the meta device
    dispatches attention to its math form too. Both give the same count (tested).

    The pass runs without importing ``torch._dynamo`` (see ``dynamo_import_deferred``);
    should it fail that way, it runs again the ordinary way.
    """
    from archbench.measure.counting import dynamo_import_deferred

    on_meta = train or ctx.flops.total > REAL_PASS_MAX_MACS
    if on_meta:
        # imported before the stand-in is in place (the meta kernels' checks need the second)
        import torch.fx.experimental.symbolic_shapes  # noqa: F401
    import torch.utils.flop_counter  # noqa: F401

    one_pass = _meta_pass if on_meta else _real_pass
    deferred = False
    try:
        with dynamo_import_deferred() as deferred:
            return one_pass(ctx, train)
    except Exception:
        if not deferred:
            raise
    return one_pass(ctx, train)


def conv_backward_flops(grad_out_shape: Any, x_shape: Any, w_shape: Any, *args: Any,
                        out_shape: Any = None, **kwargs: Any) -> int:
    """FLOPs of ``aten::convolution_backward``: the gradient of the input and that of the
    weight each cost what the forward convolution costs (the formula PyTorch registers
    transposes the weight's shape and so ignores ``groups``: it counts a depth-wise 7x7
    convolution's backward C times over, HorNet-T's training step 16x its forward pass).
    The positional ``args`` are bias, stride, padding, dilation, transposed, output padding,
    groups and the output mask (which gradients are computed)."""
    from torch.utils.flop_counter import conv_flop_count

    transposed, output_mask = args[4], args[7]
    one = conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape), transposed)
    return one * (int(output_mask[0]) + int(output_mask[1]))


def flop_counter() -> Any:
    """PyTorch's ``FlopCounterMode`` with :func:`conv_backward_flops` in place of its own."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    return FlopCounterMode(display=False, custom_mapping={
        torch.ops.aten.convolution_backward: conv_backward_flops})


def _real_pass(ctx: AnalysisContext, train: bool) -> int:
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with flop_counter() as counter, torch.no_grad(), \
            sdpa_kernel(SDPBackend.MATH):
        ctx.model(*ctx.inputs)
    return counter.get_total_flops() // 2


def _meta_pass(ctx: AnalysisContext, train: bool) -> int:
    import torch

    model = ctx.model
    tensors = {name: torch.empty_like(t, device="meta").requires_grad_(train and t.requires_grad)
               for name, t in [*model.named_parameters(), *model.named_buffers()]}
    inputs = tuple(x.to("meta") if isinstance(x, torch.Tensor) else x for x in ctx.inputs)
    was_training = model.training
    model.train(train)
    try:
        with flop_counter() as counter, torch.set_grad_enabled(train):
            output = torch.func.functional_call(model, tensors, inputs)
            if train:
                output.float().pow(2).mean().backward()
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


@hookimpl(tryfirst=True)
def archbench_analyze(ctx: AnalysisContext) -> dict[str, Any]:
    model, arch, flops = ctx.model, ctx.spec.arch, ctx.flops
    # swapped-in mixers sit in the core's TokenMixerLayer, in place of the model's own
    mixer_types = arch.token_mixer_types if ctx.swap is None else (SWAP_LAYER_TYPE,)
    mixers = _modules_of_types(model, mixer_types)
    mlps = _modules_of_types(model, arch.mlp_types)
    mixer_macs = flops.macs_of_types(mixer_types)
    mlp_macs = flops.macs_of_types(arch.mlp_types)
    columns: dict[str, Any] = {
        "params_m": _params([model]) / 1e6,
        "trainable_params_m": sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6,
        "gmacs": flops.total / 1e9,
        "gflops": 2 * flops.total / 1e9,
        "mixer_gmacs": mixer_macs / 1e9 if mixers else None,
        "mixer_params_m": _params(mixers) / 1e6 if mixers else None,
        "mlp_gmacs": mlp_macs / 1e9 if mlps else None,
        "mlp_params_m": _params(mlps) / 1e6 if mlps else None,
        "other_gmacs": (flops.total - mixer_macs - mlp_macs) / 1e9,
        "mixer_share": mixer_macs / flops.total if mixers and flops.total else None,
        "unsupported_ops": ", ".join(sorted(flops.unsupported)),
        "flops_by_operator": {k: int(v) for k, v in sorted(flops.by_operator.items())},
        "unsupported_operators": {k: int(v) for k, v in sorted(flops.unsupported.items())},
    }
    matrix = sum(v for k, v in flops.by_operator.items() if k in MATRIX_OPERATORS)
    try:
        check = flopcounter_macs(ctx)
    except Exception as exc:  # the cross-check must never cost the row
        check = None
        columns["flop_crosscheck"] = {"error": f"{type(exc).__name__}: {exc}"}
    if check is not None:
        diff = (check - matrix) / matrix if matrix else 0.0
        columns["gmacs_flopcounter"] = check / 1e9
        columns["gmacs_crosscheck_diff"] = diff
        columns["flop_crosscheck"] = {
            "fvcore_matrix_macs": int(matrix),
            "flopcountermode_macs": int(check),
            "relative_difference": diff,
            "compared": "matrix products, convolutions and attention (FlopCounterMode's "
            "scope); fvcore's norms, pooling and plugin-counted element-wise ops are "
            "outside it",
        }
    if ctx.settings is not None and ctx.settings.mode == "train":
        # fvcore counts forward passes only; a training step's MACs come from PyTorch.
        columns["train_gmacs"] = flopcounter_macs(ctx, train=True) / 1e9
    return columns
