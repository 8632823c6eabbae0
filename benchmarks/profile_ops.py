"""Where a CycleGAN iteration spends its time: torch.profiler's table of the top ops (self time), per variant.

    python benchmarks/profile_ops.py [--size 128] [--precision 32-true] [--steps 2] [--top 15] [--fused] [--compile]

The step is `plain_loops.cyclegan_step` (the reference update on the project's nets: the same ops as the project's
training_step); warm-up steps run first, then `--steps` profiled steps. Also prints the share of the step taken by
the op families the issue names (convolutions, transposed convolutions, instance norm, reflection pads, optimizer,
zero_grad), so that a change can be aimed at the biggest.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = {  # substrings of aten op names (forward and backward)
    "convolution (fwd+bwd)": ("convolution", "conv2d", "mkldnn_convolution"),
    "transposed conv": ("conv_transpose", "slow_conv_transpose"),
    "instance/batch norm": ("instance_norm", "batch_norm", "native_batch_norm", "var_mean"),
    "reflection pad": ("reflection_pad",),
    "optimizer (Adam)": ("_foreach_", "addcdiv", "addcmul", "lerp", "_fused_adam", "sqrt", "mul_", "add_"),
    "zero_grad / fill": ("zero_", "fill_"),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"])
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--fused", action="store_true", help="fused Adam")
    p.add_argument("--compile", action="store_true", help="torch.compile the networks")
    args = p.parse_args()
    sys.path.insert(0, str(ROOT))
    from benchmarks.plain_loops import cyclegan_step

    step, _ = cyclegan_step(args.size, args.precision, compile=args.compile, fused=args.fused)
    for _ in range(args.warmup):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    events = prof.key_averages()
    print(
        f"# CycleGAN iteration, {args.size} px, {args.precision}, fused Adam {args.fused}, compile {args.compile}, "
        f"CPU x{torch.get_num_threads()} threads ({torch.backends.cpu.get_cpu_capability()}), {args.steps} steps"
    )
    print(events.table(sort_by="self_cpu_time_total", row_limit=args.top, max_name_column_width=48))
    total = sum(e.self_cpu_time_total for e in events)
    print(f"{'op family':<26} {'share of self time':>18}")
    for family, keys in FAMILIES.items():
        t = sum(e.self_cpu_time_total for e in events if any(k in e.key for k in keys))
        print(f"{family:<26} {100 * t / total:>17.1f}%")


if __name__ == "__main__":
    main()
