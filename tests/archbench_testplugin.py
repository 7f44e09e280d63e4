"""A small plugin for the tests, loaded through ARCHBENCH_PLUGINS=archbench_testplugin.

Architecture ``toy`` has a tiny real model and variants that fail in each way the core
must survive: a build that raises, a CUDA out-of-memory during timing, and Ctrl-C.
"""

from __future__ import annotations

from archbench import Architecture, ModelSpec, Variant, hookimpl

#: Every spec name the plugin was asked to build, so tests can check nothing was built.
BUILDS: list[str] = []


def _variant(**extra) -> Variant:
    return Variant(config={"width": 8, **extra}, img_size=32)


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
    },
    token_mixer_types=("Conv2d",),
)


@hookimpl
def archbench_architectures() -> list[Architecture]:
    return [TOY]


@hookimpl
def archbench_build_model(spec: ModelSpec):
    if spec.arch.name != "toy":
        return None
    from torch import nn

    BUILDS.append(spec.name)
    fail = spec.config.get("fail")
    if fail == "build":
        raise RuntimeError("toy model refuses to build")
    if fail == "interrupt":
        raise KeyboardInterrupt
    width = spec.config["width"]
    model = nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(width, 10),
    )
    if fail == "frozen":
        model.requires_grad_(False)
    if fail == "limited":
        model.register_forward_pre_hook(_out_of_memory_above(6))
    return model


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
