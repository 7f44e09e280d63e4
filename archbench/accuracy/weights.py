"""Which weights a model is evaluated with, and whether they fit it.

``--weights timm`` loads the timm pretrained weights of the timm model that matches the
variant (:data:`TIMM_TAGS`; a ``timm:NAME`` target is its own match) through
``timm.create_model(tag, pretrained=True)``, so the user's Hugging Face hub cache and
offline settings apply, and copies its state_dict into ours with ``strict=True`` (our ViT
and Swin are state_dict-compatible with timm's). timm has no HorNet: HorNet loads the
official checkpoints through ``--weights PATH``.

``--weights PATH`` loads a checkpoint with ``torch.load(weights_only=True)`` (or a
``.safetensors`` file): a plain state_dict, or one wrapped as official releases do
(``{"model": ...}``: DeiT, Swin, HorNet; ``{"state_dict": ...}``), with a DDP ``module.``
prefix removed.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from archbench.core.spec import ModelSpec

if TYPE_CHECKING:
    import torch

#: Each built-in variant's matching timm model and pretrained tag: the preprocessing of
#: every evaluation of it (timm's pretrained config), and what ``--weights timm`` loads.
#: HorNet has no timm model; ViT-H/14 has no timm ImageNet-1k classifier at 224.
TIMM_TAGS: dict[str, str] = {
    "vit:tiny": "deit_tiny_patch16_224.fb_in1k",
    "vit:small": "deit_small_patch16_224.fb_in1k",
    "vit:base": "deit_base_patch16_224.fb_in1k",
    "vit:base_384": "deit_base_patch16_384.fb_in1k",
    "vit:large": "vit_large_patch16_224.augreg_in21k_ft_in1k",
    "vit:base_patch32": "vit_base_patch32_224.augreg_in21k_ft_in1k",
    "swin:tiny": "swin_tiny_patch4_window7_224.ms_in1k",
    "swin:small": "swin_small_patch4_window7_224.ms_in1k",
    "swin:base": "swin_base_patch4_window7_224.ms_in1k",
    "swin:base_384": "swin_base_patch4_window12_384.ms_in1k",
    "swin:large": "swin_large_patch4_window7_224.ms_in22k_ft_in1k",
    "swin:large_384": "swin_large_patch4_window12_384.ms_in22k_ft_in1k",
}
#: Wrapper keys of released checkpoints, tried in this order.
WRAPPERS = ("model", "state_dict", "model_state_dict", "module")
#: Seconds to wait for the Hugging Face Hub before calling it unreachable.
PROBE_TIMEOUT = 5.0


def timm_tag(spec: ModelSpec) -> str | None:
    """The timm model (with its pretrained tag) that matches ``spec``: the table's, or a
    ``timm:NAME`` target's own; None for a swapped mixer or a variant timm lacks."""
    if spec.arch.name == "timm":
        return spec.variant
    if spec.mixer or spec.label:
        return None
    return TIMM_TAGS.get(f"{spec.arch.name}:{spec.variant}")


def timm_kwargs(spec: ModelSpec) -> dict[str, Any]:
    """``create_model`` keywords that shape a ``timm:`` model (its class count, channels)."""
    return dict(spec.config) if spec.arch.name == "timm" else {}


# -- checkpoints --------------------------------------------------------------------------


def unwrap(obj: Any, where: str) -> dict[str, Any]:
    """The state_dict inside a loaded checkpoint; ValueError when there is none."""
    for key in WRAPPERS:
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not obj:
        raise ValueError(f"{where}: not a state_dict (a {type(obj).__name__}; expected a "
                         f"mapping of names to tensors, or one under {', '.join(WRAPPERS)})")
    state = dict(obj)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def read_checkpoint(path: str | Path, mmap: bool = False) -> dict[str, torch.Tensor]:
    """A checkpoint file's state_dict (``weights_only=True``; ``mmap`` reads tensors only
    when touched, for a look at names and shapes)."""
    import torch

    path = str(path)
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except RuntimeError as exc:
        if mmap and "mmap" in str(exc):  # the legacy (pre-zip) format cannot be mapped
            obj = torch.load(path, map_location="cpu", weights_only=True)
        else:
            raise
    return unwrap(obj, path)


def checkpoint_problem(path: str | Path) -> tuple[dict[str, tuple], str | None]:
    """(name → shape of each tensor, None), or ({}, why the file cannot be loaded)."""
    try:
        state = read_checkpoint(path, mmap=True)
    except Exception as exc:  # the message names the file and what it held
        text = str(exc).strip().splitlines()
        return {}, f"cannot be loaded with weights_only=True ({type(exc).__name__}: " \
                   f"{text[0] if text else ''})"
    return shapes(state), None


def shapes(state: Mapping[str, Any]) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}


def mismatch(model: Mapping[str, tuple], checkpoint: Mapping[str, tuple]) -> str | None:
    """How a checkpoint's names and shapes differ from a model's, naming the first
    missing, unexpected and misshapen key; None when they fit."""
    missing = [k for k in model if k not in checkpoint]
    unexpected = [k for k in checkpoint if k not in model]
    misshapen = [k for k in model if k in checkpoint and model[k] != checkpoint[k]]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s), the first {missing[0]!r}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s), the first {unexpected[0]!r}")
    if misshapen:
        k = misshapen[0]
        parts.append(f"{len(misshapen)} shape mismatch(es), the first {k!r}: checkpoint "
                     f"{checkpoint[k]} vs model {model[k]}")
    return "; ".join(parts) or None


def file_digest(path: str | Path) -> str:
    """The first 12 hex digits of the file's SHA-256 (what was loaded, in the report)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def load_into(model: torch.nn.Module, state: Mapping[str, Any], where: str, name: str) -> None:
    """Copy ``state`` into ``model`` (on its device and dtype) with strict keys; a
    mismatch names the first missing and unexpected keys."""
    problem = mismatch(shapes(model.state_dict()), shapes(state))
    if problem:
        raise ValueError(f"{where} does not fit {name}: {problem}")
    model.load_state_dict(state, strict=True)


def timm_state(tag: str, spec: ModelSpec) -> dict[str, torch.Tensor]:
    """timm's pretrained weights for ``tag``, through its own download machinery."""
    import timm

    return timm.create_model(tag, pretrained=True, **timm_kwargs(spec)).state_dict()


# -- is timm's download possible? ------------------------------------------------------


def _reachable(url: str) -> bool:
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True  # through a proxy: left to the download itself
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "", parsed.port or 443),
                                      timeout=PROBE_TIMEOUT):
            return True
    except OSError:
        return False


def _cached(cfg: Any) -> tuple[bool, str]:
    """Whether timm would find the weights on disk, and where it would download them."""
    if getattr(cfg, "file", None):
        return os.path.isfile(cfg.file), cfg.file
    if getattr(cfg, "hf_hub_id", None):
        from huggingface_hub import constants, try_to_load_from_cache

        repo, _, revision = cfg.hf_hub_id.partition("@")
        names = ([cfg.hf_hub_filename] if getattr(cfg, "hf_hub_filename", None)
                 else ["model.safetensors", "pytorch_model.bin"])
        found = any(isinstance(try_to_load_from_cache(repo, n, revision=revision or None), str)
                    for n in names)
        return found, f"{constants.ENDPOINT}/{repo}"
    if getattr(cfg, "url", None):
        import torch.hub

        local = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(cfg.url).path).name
        return local.is_file(), cfg.url
    return False, ""


def timm_download_problem(tag: str) -> str | None:
    """Why ``timm.create_model(tag, pretrained=True)`` cannot get its weights here (no such
    tag; not in the cache, and offline or the hub unreachable), or None. Seconds at most:
    timm's own attempt retries for about a minute before it fails."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(tag)
    if cfg is None:
        return f"timm has no pretrained weights for {tag!r}"
    found, where = _cached(cfg)
    if found:
        return None
    if not where:
        return f"timm's config of {tag!r} names no place to download its weights from"
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE and getattr(cfg, "hf_hub_id", None):
        return (f"timm's weights {tag} are not in the Hugging Face cache "
                f"({constants.HF_HUB_CACHE}) and HF_HUB_OFFLINE is set")
    if not _reachable(where):
        return (f"timm's weights {tag} are not in the local cache and {urlparse(where).hostname} "
                "cannot be reached (no network?)")
    return None
