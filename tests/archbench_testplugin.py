"""A small plugin for the tests, loaded through ARCHBENCH_PLUGINS=archbench_testplugin.

Architecture ``toy`` has a tiny real model and variants that fail in each way the core
must survive: a build that raises, a CUDA out-of-memory during timing, Ctrl-C, SIGTERM,
a build that kills its own process (for Ray workers only), and a build that ignores a
``--mixer`` swap it declares. It declares swaps (one stage, one
block, the 32x32 map), and registers ``toy-mixer``, a token mixer that fails like CUDA on
a 14x14 map and is interrupted on a 21x21 one.
"""

from __future__ import annotations

from archbench import Architecture, ModelSpec, Variant, hookimpl
from archbench.mixers import MixerConfig, MixerSwap, SwapStage

#: Every spec name the plugin was asked to build, so tests can check nothing was built.
BUILDS: list[str] = []


def _variant(**extra) -> Variant:
    return Variant(config={"width": 8, **extra}, img_size=32)


def _swap_stages(spec: ModelSpec) -> list[SwapStage]:
    """One stage: one block, after the stem, on the whole map."""
    return [SwapStage(MixerConfig(dim=spec.config["width"], heads=1, window=8, order=1,
                                  size=spec.img_size), 1)]


TOY = Architecture(
    name="toy",
    family="Toy",
    paper="none (test fixture)",
    input_kind="image",
    default_variant="tiny",
    variants={
        "tiny": _variant(),
        "broken": _variant(fail="build"),
        "oom": _variant(fail="oom"),
        "interrupt": _variant(fail="interrupt"),
        "frozen": _variant(fail="frozen"),
        "limited": _variant(fail="limited"),
        "sigterm": _variant(fail="sigterm"),
        "ignores-swap": _variant(fail="ignores-swap"),
        "dies": _variant(fail="dies"),
        "no-meta": _variant(fail="no-meta"),
        "init-reads": _variant(fail="init-reads"),
        "forward-reads": _variant(fail="forward-reads"),
    },
    token_mixer_types=("Conv2d",),
    mixer_swap=MixerSwap(stages=_swap_stages, layout="channels_first"),
)


@hookimpl
def archbench_architectures() -> list[Architecture]:
    return [TOY]


@hookimpl
def archbench_build_model(spec: ModelSpec, swap):
    if spec.arch.name != "toy":
        return None
    import os
    import signal

    from torch import nn

    BUILDS.append(spec.name)
    fail = spec.config.get("fail")
    if fail == "build":
        raise RuntimeError("toy model refuses to build")
    if fail == "interrupt":
        raise KeyboardInterrupt
    if fail == "sigterm":
        os.kill(os.getpid(), signal.SIGTERM)
    if fail == "dies":  # the process is killed: only ever build it in a Ray worker
        os.kill(os.getpid(), signal.SIGKILL)
    if fail == "no-meta":
        import torch

        if torch.empty(0).is_meta:  # reads a value at build time, as some models do
            raise NotImplementedError("toy model cannot be built on the meta device")
    width = spec.config["width"]
    mixer = [swap(0)] if swap is not None and fail != "ignores-swap" else []
    model = nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1), *mixer, nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(width, 10),
    )
    if fail == "frozen":
        model.requires_grad_(False)
    if fail == "limited":
        model.register_forward_pre_hook(_out_of_memory_above(6))
    if fail == "init-reads" and not model[0].weight.any():  # reads what it drew
        raise ValueError("toy model needs drawn weights to be built")
    if fail == "forward-reads":
        model.register_forward_pre_hook(_needs_drawn_weights)
    return model


def _needs_drawn_weights(module, args):
    """A forward pass that cannot run with all-zero weights, as some real ones cannot (a
    Cholesky factor of W Wᵀ, a distribution whose scale is a parameter)."""
    if not module[0].weight.any():
        raise ValueError("toy model needs drawn weights to run")


def _out_of_memory_above(limit: int):
    """A forward pre-hook that fails like CUDA does for batches above ``limit``."""

    def hook(module, args):
        import torch

        if args[0].shape[0] > limit:
            raise torch.cuda.OutOfMemoryError(f"batch {args[0].shape[0]} does not fit")

    return hook


@hookimpl
def archbench_evaluate(spec):
    if spec.arch.name == "toy" and spec.config.get("fail") == "oom":
        import torch

        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 TiB")
    return None


# -- a token mixer that fails like CUDA on a 14x14 map, and is interrupted on a 21x21 one --


def _build_toy_mixer(cfg):
    from torch import nn

    class ToyMixer(nn.Conv2d):
        def forward(self, x):
            import torch

            if x.shape[-1] == 14 and not torch.jit.is_tracing():
                raise torch.cuda.OutOfMemoryError("toy-mixer: no memory for a batch of "
                                                  "196 tokens (simulated)")
            if x.shape[-1] == 21:
                raise KeyboardInterrupt
            return super().forward(x)

    return ToyMixer(cfg.dim, cfg.dim, 1)


@hookimpl
def archbench_token_mixers():
    from archbench.mixers import TokenMixer

    return [TokenMixer(name="toy-mixer", description="a 1x1 convolution", paper="none",
                       build=_build_toy_mixer, macs=lambda cfg: cfg.tokens * cfg.dim**2,
                       layout="channels_first")]
