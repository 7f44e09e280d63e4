"""Helpers for plugin authors (pure arithmetic, no torch): analytic cost formulas, and
readers of the traced values that fvcore handlers receive.

All formulas return multiply-accumulates (MACs), fvcore's convention, so they compare
directly with the counted ``gmacs`` columns.
"""

from __future__ import annotations

from typing import Any


def msa_macs(tokens: int, dim: int) -> int:
    """Global multi-head self-attention, Swin paper eq. (1): Ω(MSA) = 4NC² + 2N²C.

    ``4NC²`` are the q, k, v and output projections; ``2N²C`` the two N×N matmuls
    (QKᵀ and AV). Softmax, scaling and bias adds are omitted, as in the paper. The
    number of heads does not change the count.
    """
    return 4 * tokens * dim * dim + 2 * tokens * tokens * dim


def wmsa_macs(tokens: int, dim: int, window: int) -> int:
    """Window attention, Swin paper eq. (2): Ω(W-MSA) = 4hwC² + 2M²hwC for hw tokens.

    ``tokens`` is hw, including any padding up to a multiple of the window; ``window``
    is M. Linear in the number of tokens for a fixed window.
    """
    return 4 * tokens * dim * dim + 2 * window * window * tokens * dim


def padded_side(side: int, window: int) -> int:
    """A map side rounded up to a multiple of the window: the zero padding before window
    partition (official Swin code), so hw of eq. (2) is ``padded_side(h, M) ** 2``."""
    return -(-side // window) * window


def msa_crossover_tokens(dim: int) -> int:
    """Token count above which the N² term of eq. (1) exceeds the 4NC² projections: N > 2C."""
    return 2 * dim


# -- fvcore handler helpers: a handler receives torch._C.Value inputs and outputs ---------


def shape_of(value: Any) -> list[int]:
    """Shape of a traced tensor value (``torch._C.Value``), for fvcore handlers."""
    return list(value.type().sizes())


def constant_list(value: Any) -> list[Any] | None:
    """The constant list behind a traced ``int[]``/``float[]`` argument (a
    ``prim::ListConstruct`` of ``prim::Constant`` nodes, e.g. ``torch.roll``'s shifts or a
    convolution's stride), or None where an element is computed at run time."""
    node = value.node()
    if node.kind() == "prim::Constant":
        return value.toIValue()
    if node.kind() != "prim::ListConstruct":
        return None
    items = []
    for item in node.inputs():
        if item.node().kind() != "prim::Constant":
            return None
        items.append(item.toIValue())
    return items
