"""Speed of our Transformer (base) encoder layer against ``torch.nn.TransformerEncoderLayer``.

Both layers are post-norm, ReLU, d_model=512, h=8, d_ff=2048, carry the same weights, run in
the same process with the same thread count, in eval mode under ``torch.inference_mode()``,
timed in alternating rounds (ours, ours eq. 1, torch, ours, ...) so drift hits all alike.
The goal is ours / torch <= 1.0.

FLOP note: in eval mode under ``inference_mode``/``no_grad``, ``nn.TransformerEncoderLayer``
takes PyTorch's fused "fast path": run eagerly, the whole layer is one opaque
``aten::_transformer_encoder_layer_fwd`` that ``FlopCounterMode`` counts as 0; traced by
fvcore (which disables the layer-level fast path), the attention still runs as one
``aten::_native_multi_head_attention`` that fvcore lists as unsupported, so only the FFN and
norms are counted.  Our layer, made of ordinary ``linear`` and
``scaled_dot_product_attention`` calls, is counted in full either way.  The script prints
both counts to show it.  (On real CPU tensors ``FlopCounterMode`` also misses the
2n²d of ``aten::_scaled_dot_product_flash_attention_for_cpu``; on the meta device, where the
core runs its cross-check, SDPA is decomposed into counted matmuls.)

Run::

    python benchmarks/bench_transformer.py                 # batch 8, seq 128
    python benchmarks/bench_transformer.py --batch-size 1 --seq-len 512 --threads 2
    python benchmarks/bench_transformer.py --min-time 3 --rounds 15   # the defaults
"""

from __future__ import annotations

import argparse

import torch
from _compare import print_goal, print_table, time_alternating
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archbench.formulas import msa_macs
from archbench.measure.counting import CORE_HANDLERS, count_flops
from archbench_transformer.model import EncoderLayer, torch_layer_state_dict

D_MODEL, HEADS, D_FF, DROPOUT = 512, 8, 2048, 0.1  # Transformer (base), Table 3


def build(fused: bool = True) -> tuple[EncoderLayer, EncoderLayer, nn.TransformerEncoderLayer]:
    """Our layer (fused attention), our layer (written-out eq. 1), torch's: same weights."""
    torch.manual_seed(0)
    ours = EncoderLayer(D_MODEL, HEADS, D_FF, DROPOUT, fused_attention=True).eval()
    ours_eq1 = EncoderLayer(D_MODEL, HEADS, D_FF, DROPOUT, fused_attention=False).eval()
    ours_eq1.load_state_dict(ours.state_dict())
    theirs = nn.TransformerEncoderLayer(
        D_MODEL, HEADS, D_FF, DROPOUT, activation="relu", batch_first=True, norm_first=False
    ).eval()
    theirs.load_state_dict(torch_layer_state_dict(ours))
    return ours, ours_eq1, theirs


def flop_counts(layer: nn.Module, x: torch.Tensor, grad: bool) -> tuple[float, float, str]:
    """(fvcore GMACs, FlopCounterMode GMACs, fvcore's uncounted ops) of one forward, with
    autograd on or off."""
    ctx = torch.enable_grad() if grad else torch.no_grad()
    with ctx:
        fv = count_flops(layer, (x,), CORE_HANDLERS)
        mode = FlopCounterMode(display=False)
        with mode:
            layer(x)
    skipped = ", ".join(op for op in sorted(fv.unsupported) if op != "aten::add")
    return fv.total / 1e9, mode.get_total_flops() / 2 / 1e9, skipped


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="default: torch's")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--min-time", type=float, default=3.0, help="seconds per layer")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    ours, ours_eq1, theirs = build()
    x = torch.randn(args.batch_size, args.seq_len, D_MODEL)
    with torch.inference_mode():
        ref = theirs(x)
        err = max((ours(x) - ref).abs().max().item(), (ours_eq1(x) - ref).abs().max().item())
    print(
        f"encoder layer d={D_MODEL} h={HEADS} d_ff={D_FF}, batch {args.batch_size}, "
        f"seq {args.seq_len}, threads {torch.get_num_threads()}, torch {torch.__version__}"
    )
    print(f"max |ours - torch| = {err:.2e}")

    results = time_alternating(
        {
            "ours (sdpa)": lambda: ours(x),
            "ours (eq. 1 written out)": lambda: ours_eq1(x),
            "torch TransformerEncoderLayer": lambda: theirs(x),
        },
        rounds=args.rounds,
        min_time=args.min_time,
    )
    print_table(results, reference="torch TransformerEncoderLayer")
    print_goal(results, "ours (sdpa)", "torch TransformerEncoderLayer")

    n = args.seq_len
    ffn = 2 * n * D_MODEL * D_FF
    expected = args.batch_size * (msa_macs(n, D_MODEL) + ffn) / 1e9
    print(f"\nFLOPs of one layer forward (GMACs; analytic MSA + FFN = {expected:.4f}):")
    for name, layer in (("ours (sdpa)", ours), ("torch TransformerEncoderLayer", theirs)):
        for grad in (True, False):
            fv, fc, skipped = flop_counts(layer, x, grad)
            mode = "autograd on " if grad else "no_grad     "
            line = f"  {name:32s} {mode} fvcore {fv:8.4f}   FlopCounterMode {fc:8.4f}"
            print(line + (f"   fvcore skipped: {skipped}" if skipped else ""))
    print(
        "Under no_grad torch's layer takes its fused fast path: FlopCounterMode sees one\n"
        "_transformer_encoder_layer_fwd (0 FLOPs); fvcore's trace sees one uncounted\n"
        "_native_multi_head_attention. Ours is counted the same either way. (FlopCounterMode\n"
        "on CPU tensors also misses the 2n^2d of the CPU flash-attention kernel.)"
    )


if __name__ == "__main__":
    main()
