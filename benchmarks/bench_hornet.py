"""Forward latency of archbench's HorNet-T (7x7 and GF) against Swin-T and ConvNeXt-T, same run.

Run:  python benchmarks/bench_hornet.py [--threads N] [--batch B] [--iters N] [--img 224]

Swin-T is archbench's own (``archbench_swin.model.SwinTransformer``) when it imports and
builds, otherwise timm's ``swin_tiny_patch4_window7_224``; ConvNeXt-T is timm's
``convnext_tiny``. All models are randomly initialised, in eval mode under
``torch.inference_mode``, fp32 on the CPU, timed round-robin (so drift hits all equally)
with the same thread count. Prints the median latency of each and its ratio to HorNet-T.
Not a test.
"""

from __future__ import annotations

import argparse
import statistics
import time

import timm
import torch

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


def _time_once(model: torch.nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    model(x)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
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

    times: dict[str, list[float]] = {k: [] for k in models}
    with torch.inference_mode():
        for _ in range(args.warmup):
            for m in models.values():
                m(x)
        names = list(models)
        for i in range(args.iters):
            shift = i % len(names)  # rotate the order each round
            for k in names[shift:] + names[:shift]:
                times[k].append(_time_once(models[k], x))

    base = statistics.median(times["hornet_t_7x7"])
    print(
        f"threads={args.threads} batch={args.batch} img={args.img} iters={args.iters} "
        f"torch={torch.__version__}"
    )
    print(f"{'model':<22}{'params_m':>10}{'median_ms':>12}{'vs hornet_t_7x7':>18}")
    for k, ts in times.items():
        med = statistics.median(ts)
        params = sum(p.numel() for p in models[k].parameters()) / 1e6
        print(f"{k:<22}{params:>10.2f}{med * 1e3:>12.2f}{med / base:>17.2f}x")


if __name__ == "__main__":
    main()
