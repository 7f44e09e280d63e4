"""Analytic cost formulas shared by the architecture plugins (pure arithmetic, no torch).

All results are multiply-accumulates (MACs), fvcore's convention, so they compare
directly with the counted ``gmacs`` columns.
"""

from __future__ import annotations


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
