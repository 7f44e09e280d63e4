"""Forward latency of archbench's HorNet-T (7x7 and GF) against Swin-T and ConvNeXt-T, same run.

Run:  python benchmarks/bench_hornet.py [--threads N] [--batch B] [--min-time 2] [--rounds 3]
                                        [--warmup 3] [--img 224]

Swin-T is archbench's own (``archbench_swin.model.SwinTransformer``) when it imports and
builds, otherwise timm's ``swin_tiny_patch4_window7_224``; ConvNeXt-T is timm's
``convnext_tiny``. All models are randomly initialised, in eval mode under
``torch.inference_mode``, fp32 on the CPU, timed in alternating rounds (so drift hits all
equally) with the same thread count. Prints the median latency of each and its ratio to
HorNet-T (7x7).
Not a test.
"""

from __future__ import annotations

import argparse
from functools import partial

import timm
import torch
from _compare import print_table, time_alternating

from archbench_hornet.model import HorNet


def _swin_tiny(img: int) -> tuple[str, torch.nn.Module]:
    try:
        from archbench_swin.model import SwinTransformer

        model = SwinTransformer(img_size=img)
        n = sum(p.numel() for p in model.parameters())
        if abs(n - 28_288_354) > 1_000_000:  # not Swin-T's defaults: do not guess
            raise ValueError(f"archbench SwinTransformer() has {n} params, not Swin-T")
        return "swin_t (archbench)", model
    except Exception as exc:  # the Swin plugin is optional here
        print(f"archbench Swin-T unavailable ({exc}); using timm's")
        return "swin_t (timm)", timm.create_model(
            "swin_tiny_patch4_window7_224", pretrained=False, img_size=img
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--min-time", type=float, default=2.0, help="seconds per model")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per round")
    parser.add_argument("--img", type=int, default=224)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    models: dict[str, torch.nn.Module] = {
        "hornet_t_7x7": HorNet(base_dim=64),
        "hornet_t_gf": HorNet(base_dim=64, gf=True),
    }
    name, swin = _swin_tiny(args.img)
    models[name] = swin
    models["convnext_t (timm)"] = timm.create_model("convnext_tiny", pretrained=False)
    for m in models.values():
        m.eval()
    x = torch.randn(args.batch, 3, args.img, args.img)

    results = time_alternating({k: partial(m, x) for k, m in models.items()},
                               rounds=args.rounds, min_time=args.min_time, warmup=args.warmup)
    print(
        f"threads={torch.get_num_threads()} batch={args.batch} img={args.img} "
        f"rounds={args.rounds} torch={torch.__version__}"
    )
    params = {k: f"{sum(p.numel() for p in m.parameters()) / 1e6:.2f}" for k, m in models.items()}
    print_table(results, reference="hornet_t_7x7", extra={"params_m": params})


if __name__ == "__main__":
    main()
