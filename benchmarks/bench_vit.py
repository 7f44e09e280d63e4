"""Our ViT against timm's, same weights, same threads, same run: forward latency ratio.

    python benchmarks/bench_vit.py [--threads 2] [--min-time 3] [--rounds 3]

Rounds alternate the two implementations (ours, timm, ours, timm, ...) so drift hits both
alike; the ratio is ours / timm of the medians over all rounds. Goal: <= 1.0 on CPU.
"""

from __future__ import annotations

import argparse
import statistics

import timm
import torch

from archbench.builtin.latency import time_cpu
from archbench_vit.model import VisionTransformer

MODELS = {
    "vit:small": ("vit_small_patch16_224", dict(embed_dim=384, depth=12, num_heads=6)),
    "vit:base": ("vit_base_patch16_224", dict(embed_dim=768, depth=12, num_heads=12)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--min-time", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads={torch.get_num_threads()} torch={torch.__version__} timm={timm.__version__}")
    print(f"{'model':<10} {'ours ms':>9} {'timm ms':>9} {'ours/timm':>9}")
    for name, (timm_name, config) in MODELS.items():
        reference = timm.create_model(timm_name, pretrained=False).eval()
        ours = VisionTransformer(**config).eval()
        ours.load_state_dict(reference.state_dict(), strict=True)
        x = torch.randn(args.batch_size, 3, 224, 224)
        samples: dict[str, list[float]] = {"ours": [], "timm": []}
        with torch.inference_mode():
            for _ in range(args.rounds):
                for label, model in (("ours", ours), ("timm", reference)):
                    samples[label] += time_cpu(lambda m=model, x=x: m(x), warmup=2,
                                               min_time=args.min_time / args.rounds)
        ours_ms = statistics.median(samples["ours"])
        timm_ms = statistics.median(samples["timm"])
        print(f"{name:<10} {ours_ms:9.2f} {timm_ms:9.2f} {ours_ms / timm_ms:9.3f}")


if __name__ == "__main__":
    main()
