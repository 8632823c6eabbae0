"""CycleGAN training speed and peak memory: full reference nets, 128 and 256 px, fp32 vs mixed precision.

    python benchmarks/cyclegan.py [--steps 6] [--sizes 128 256]

Each variant runs in its own process (clean peak-memory numbers) through the real Hydra config and Trainer, on
synthetic data; the first steps are warm-up and excluded. Prints a table with ratios to fp32 at the same size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 2


def measure(size: int, precision: str, steps: int, accelerator: str) -> dict:
    import torch

    sys.path.insert(0, str(ROOT))
    from benchmarks.step_timer import StepTimer
    from tests.conftest import compose_train
    from underpainting.train import run

    timer = StepTimer()
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_cyclegan_{size}_{precision}"
    cfg = compose_train(
        [
            "model=cyclegan",
            "data=synthetic",
            f"data.image_size={size}",
            f"data.num_train={steps + WARMUP}",
            "data.num_workers=0",
            "data.batch_size=1",
            "logger=none",
            "callbacks=none",
            f"trainer.accelerator={accelerator}",
            f"trainer.precision={precision}",
            "trainer.max_epochs=1",
            "+trainer.limit_val_batches=0",
            "+trainer.enable_checkpointing=false",
            "+trainer.enable_progress_bar=false",
            "+trainer.enable_model_summary=false",
        ],
        out,
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    run(cfg, extra_callbacks=[timer])
    t = timer.times[WARMUP:]
    peak = (
        torch.cuda.max_memory_allocated()
        if accelerator == "gpu"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    return {
        "size": size,
        "precision": precision,
        "s_per_iter": sum(t) / len(t),
        "peak_mib": peak / 2**20,
        "device": torch.cuda.get_device_name() if accelerator == "gpu" else f"cpu x{torch.get_num_threads()}",
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    p.add_argument("--one", nargs=2, metavar=("SIZE", "PRECISION"), help=argparse.SUPPRESS)
    p.add_argument("--accelerator", default=None, help="cpu or gpu (default: gpu when available)")
    args = p.parse_args()
    import torch

    accelerator = args.accelerator or ("gpu" if torch.cuda.is_available() else "cpu")
    if args.one:
        print("RESULT " + json.dumps(measure(int(args.one[0]), args.one[1], args.steps, accelerator)))
        return
    precisions = ["32-true", "bf16-mixed"] + (["16-mixed"] if accelerator == "gpu" else [])
    rows = []
    for size in args.sizes:
        for precision in precisions:
            cmd = [
                sys.executable,
                __file__,
                "--one",
                str(size),
                precision,
                "--steps",
                str(args.steps),
                "--accelerator",
                accelerator,
            ]
            r = subprocess.run(
                cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "WANDB_MODE": "offline"}
            )
            line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
            if r.returncode or not line:
                print(f"{size}px {precision}: failed\n{r.stderr[-2000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(line[0][7:]))
    base = {r["size"]: r for r in rows if r["precision"] == "32-true"}
    print(
        f"\nCycleGAN training (reference nets: 2 x ResNet-9 G, 2 x 70x70 PatchGAN D, batch 1), {rows[0]['device'] if rows else ''}"
    )
    print(f"{'size':>5} {'precision':<11} {'s/iter':>8} {'x fp32':>7} {'peak MiB':>9} {'x fp32':>7}")
    for r in rows:
        b = base.get(r["size"])
        speed = b["s_per_iter"] / r["s_per_iter"] if b else float("nan")
        mem = r["peak_mib"] / b["peak_mib"] if b else float("nan")
        print(
            f"{r['size']:>5} {r['precision']:<11} {r['s_per_iter']:>8.3f} {speed:>6.2f}x {r['peak_mib']:>9.0f} {mem:>6.2f}x"
        )
    print("x fp32: speed-up (higher is faster) and memory ratio against fp32 at the same size")


if __name__ == "__main__":
    main()
