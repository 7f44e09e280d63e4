"""Forward latency of archbench's Swin-T against timm's Swin-T, same weights, same run.

Run:  python benchmarks/bench_swin.py [--threads N] [--batch B] [--min-time 3] [--rounds 3]
                                      [--warmup 5] [--img 224]

Loads timm's randomly initialised state_dict into ours (strict), checks the logits agree,
then times both models in alternating rounds (eval, ``torch.inference_mode``) and prints
the median latency of each and the ratio ours / timm (goal: <= 1.0). Not a test.
"""

from __future__ import annotations

import argparse

import timm
import torch
from _compare import print_goal, print_table, time_alternating

from archbench_swin.model import SwinTransformer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--min-time", type=float, default=3.0, help="seconds per model")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls per round")
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

    results = time_alternating({"ours": lambda: ours(x), "timm": lambda: ref(x)},
                               rounds=args.rounds, min_time=args.min_time, warmup=args.warmup)
    print(
        f"Swin-T {args.img}x{args.img} batch {args.batch}, {torch.get_num_threads()} threads, "
        f"{args.rounds} rounds, torch {torch.__version__}, timm {timm.__version__}"
    )
    print(f"max |logit diff| = {diff:.2e}")
    print_table(results, reference="timm")
    print_goal(results, "ours", "timm")


if __name__ == "__main__":
    main()
