"""Our ViT against timm's, same weights, same threads, same run: forward latency ratio.

    python benchmarks/bench_vit.py [--threads 2] [--min-time 2] [--rounds 3] [--batch-size 1]

Rounds alternate the two implementations (ours, timm, ours, timm, ...) so drift hits both
alike; the ratio is ours / timm of the medians over all rounds. Goal: <= 1.0 on CPU.
"""

from __future__ import annotations

import argparse
from functools import partial

import timm
import torch
from _compare import print_goal, print_table, time_alternating

from archbench_vit.model import VisionTransformer

MODELS = {
    "vit:small": ("vit_small_patch16_224", dict(embed_dim=384, depth=12, num_heads=6)),
    "vit:base": ("vit_base_patch16_224", dict(embed_dim=768, depth=12, num_heads=12)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--min-time", type=float, default=2.0, help="seconds per model")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads={torch.get_num_threads()} torch={torch.__version__} timm={timm.__version__}")
    for name, (timm_name, config) in MODELS.items():
        reference = timm.create_model(timm_name, pretrained=False).eval()
        ours = VisionTransformer(**config).eval()
        ours.load_state_dict(reference.state_dict(), strict=True)
        x = torch.randn(args.batch_size, 3, 224, 224)
        results = time_alternating({"ours": partial(ours, x), "timm": partial(reference, x)},
                                   rounds=args.rounds, min_time=args.min_time)
        print(f"\n{name}, batch {args.batch_size}")
        print_table(results, reference="timm")
        print_goal(results, "ours", "timm")


if __name__ == "__main__":
    main()
