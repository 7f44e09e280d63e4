"""Token mixers: what plugins register and declare, for ``archbench mixers`` and ``--mixer``.

Plugin authors import from here: :class:`TokenMixer` (a mixer, ``archbench_token_mixers``),
:class:`MixerConfig` (one layer's width, heads, window, order, map side), and
:class:`MixerSwap` / :class:`SwapStage` (``Architecture.mixer_swap``: an architecture that
takes another mixer in every block). Light at import: no torch.
"""

from archbench.core.mixers import (
    REFERENCE_MIXER,
    Layout,
    MixerConfig,
    MixerSwap,
    SwapStage,
    TokenMixer,
    check_mixer_config,
    collect_mixers,
    find_mixer,
)

#: Class name of the layer that holds a swapped-in mixer (:mod:`archbench.mixers.layer`).
SWAP_LAYER_TYPE = "TokenMixerLayer"

__all__ = [
    "REFERENCE_MIXER",
    "SWAP_LAYER_TYPE",
    "Layout",
    "MixerConfig",
    "MixerSwap",
    "SwapStage",
    "TokenMixer",
    "check_mixer_config",
    "collect_mixers",
    "find_mixer",
]
