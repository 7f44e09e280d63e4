"""Forward latency of archbench's Swin-T against timm's Swin-T, same weights, same run.

Run:  python benchmarks/bench_swin.py [--threads N] [--batch B] [--iters N] [--img 224]

Loads timm's randomly initialised state_dict into ours (strict), checks the logits agree,
then times both models alternately (eval, ``torch.inference_mode``) and prints the median
latency of each and the ratio ours / timm (goal: <= 1.0). Not a test.
"""

from __future__ import annotations

import argparse
import statistics
import time

import timm
import torch

from archbench_swin.model import SwinTransformer


def _time_once(model: torch.nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    model(x)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--img", type=int, default=224)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    ref = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, img_size=args.img)
    ours = SwinTransformer(img_size=args.img)
    ours.load_state_dict(ref.state_dict(), strict=True)
    ref.eval()
    ours.eval()
    x = torch.randn(args.batch, 3, args.img, args.img)

    with torch.inference_mode():
        diff = (ours(x) - ref(x)).abs().max().item()
        for _ in range(args.warmup):
            ours(x)
            ref(x)
        t_ours, t_ref = [], []
        for i in range(args.iters):  # alternate, so drift hits both equally
            if i % 2:
                t_ours.append(_time_once(ours, x))
                t_ref.append(_time_once(ref, x))
            else:
                t_ref.append(_time_once(ref, x))
                t_ours.append(_time_once(ours, x))

    med_ours = statistics.median(t_ours) * 1e3
    med_ref = statistics.median(t_ref) * 1e3
    print(
        f"Swin-T {args.img}x{args.img} batch {args.batch}, {args.threads} threads, "
        f"{args.iters} iters, torch {torch.__version__}, timm {timm.__version__}"
    )
    print(f"max |logit diff| = {diff:.2e}")
    print(f"archbench swin : {med_ours:8.2f} ms (median)")
    print(f"timm swin      : {med_ref:8.2f} ms (median)")
    print(f"ratio ours/timm: {med_ours / med_ref:.3f}")


if __name__ == "__main__":
    main()
