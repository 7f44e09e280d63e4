"""HorNet's FLOP counting: the fvcore handlers, what the count includes (``COUNT_NOTES``),
and gnConv's exact cost term by term (``gnconv_macs``) beside the paper's bound.

The handlers read traced shapes and dtypes only, so this module needs no torch import.
FLOP convention: MACs, fvcore's; docs/hornet.md says the same as ``COUNT_NOTES``.
Re-exported by :mod:`archbench_hornet`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from archbench.formulas import shape_of


def _numel(value: Any) -> int:
    return math.prod(shape_of(value))


def _is_tensor(value: Any) -> bool:
    return value.type().kind() == "TensorType"


def _dtype(value: Any) -> str:
    return str(value.type().scalarType())


def fft_macs(spatial: Sequence[int], batch_channels: int) -> int:
    """One 2-D (i)rFFT, the HorNet/GFNet authors' convention: N·C·ceil(log2 N), N = H·W."""
    n = math.prod(spatial)
    return batch_channels * n * math.ceil(math.log2(n)) if n > 1 else 0


def rfft2_handle(inputs: list[Any], outputs: list[Any]) -> int:
    """``aten::fft_rfft2``: N·C·ceil(log2 N) with N = H·W of the real input."""
    *bc, h, w = shape_of(inputs[0])
    return fft_macs((h, w), math.prod(bc))


def irfft2_handle(inputs: list[Any], outputs: list[Any]) -> int:
    """``aten::fft_irfft2``: N·C·ceil(log2 N) with N = H·W of the real output (same as the
    forward transform)."""
    *bc, h, w = shape_of(outputs[0])
    return fft_macs((h, w), math.prod(bc))


def mul_handle(inputs: list[Any], outputs: list[Any]) -> int:
    """``aten::mul``: every floating-point multiply the model executes, one MAC per output
    element; a complex x complex product (the GF filter) counts 4 real MACs per element;
    integer multiplies (shape arithmetic of the trace) count 0.

    In HorNet that is: the gnConv gating products p_k * q_k, the gnConv scale s, the GF
    complex filter, and the layer-scale multiplies γ1, γ2 (see ``COUNT_NOTES``).
    """
    tensors = [v for v in inputs[:2] if _is_tensor(v)]
    dtypes = {_dtype(v) for v in tensors}
    if any("Complex" in d for d in dtypes):
        return 4 * _numel(outputs[0])
    if not any(d in ("Float", "Half", "BFloat16", "Double") for d in dtypes):
        return 0
    if not _is_tensor(outputs[0]) or _dtype(outputs[0]) not in (
        "Float",
        "Half",
        "BFloat16",
        "Double",
    ):
        return 0
    return _numel(outputs[0])


#: What the count includes and leaves out (docs/hornet.md says the same).
COUNT_NOTES = [
    "counted (fvcore): convolutions and linear layers (MACs, bias adds not counted); "
    "aten::layer_norm at 5 MACs/element (all LayerNorms, channels-first ones included: they run "
    "as F.layer_norm on a channels-last view)",
    "counted (hornet handler aten::mul): every floating multiply, 1 MAC/element: gnConv gating "
    "products p_k*q_k, the gnConv scale s (x1/3 on the depth-wise output), layer scale "
    "gamma1/gamma2; GF complex filter multiply at 4 real MACs/element",
    "counted (hornet handlers aten::fft_rfft2 / aten::fft_irfft2): N*C*ceil(log2 N) per "
    "transform with N = H*W, C = channels (x batch), the HorNet/GFNet authors' convention",
    "not counted: adds (bias, residual), GELU, global average pool (aten::mean), "
    "view_as_complex; bilinear resizing of a GF filter only when sizes differ (fvcore, 4/element)",
]


#: The handlers a model with gnConv needs (HorNet, or another backbone with ``--mixer gnconv``).
HANDLERS: dict[str, Any] = {
    "aten::fft_rfft2": rfft2_handle,
    "aten::fft_irfft2": irfft2_handle,
    "aten::mul": mul_handle,
    "aten::add": None,
    "aten::gelu": None,
    "aten::mean": None,
    "aten::view_as_complex": None,
}


def gnconv_dims(dim: int, order: int) -> list[int]:
    """C_k = C / 2^(n-k-1), k = 0..n-1 (paper eq. 3.3; same as model.gnconv_dims)."""
    return [dim // 2 ** (order - k - 1) for k in range(order)]


def gnconv_macs(
    side: int,
    dim: int,
    order: int,
    kernel_size: int = 7,
    gf_size: Sequence[int] | None = None,
) -> dict[str, int]:
    """Exact MACs of one gnConv layer on a side x side map, term by term, from the construction.

    proj_in 2HWC², depth-wise HW·K²·ΣC_k (or the GF layer), g_k projections HW·ΣC_k·C_{k+1},
    proj_out HWC², gating products HW·ΣC_k, scale s HW·ΣC_k (the last one is outside the
    paper's construction: it could be folded into the depth-wise weights).
    """
    hw = side * side
    dims = gnconv_dims(dim, order)
    sdim = sum(dims)
    terms = {
        "proj_in": hw * dim * 2 * dim,
        "pws": hw * sum(dims[k] * dims[k + 1] for k in range(order - 1)),
        "proj_out": hw * dim * dim,
        "gating": hw * sdim,
        "scale": hw * sdim,
    }
    if gf_size is None:
        terms["dwconv"] = hw * kernel_size**2 * sdim
    else:
        half = sdim // 2
        spec_h, spec_w = side, side // 2 + 1
        terms["gf_norms"] = 2 * 5 * hw * sdim  # pre_norm, post_norm (fvcore's 5/element)
        terms["gf_dw3x3"] = hw * 9 * half
        terms["gf_fft"] = 2 * fft_macs((side, side), half)  # rfft2 + irfft2
        terms["gf_filter"] = 4 * half * spec_h * spec_w  # complex multiply
        if tuple(gf_size) != (spec_h, spec_w):  # weight resized by bilinear interpolation
            terms["gf_resize"] = 4 * 2 * half * spec_h * spec_w
    return terms


def paper_bound_macs(side: int, dim: int, kernel_size: int) -> float:
    """Paper sec. 3.1: FLOPs(gnConv) < HWC(2K² + 11C/3 + 2)."""
    return side * side * dim * (2 * kernel_size**2 + 11 * dim / 3 + 2)
