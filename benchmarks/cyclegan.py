"""CycleGAN training speed and peak allocated memory against a plain reference-style loop, in one run.

    python benchmarks/cyclegan.py [--steps 4] [--warmup 2] [--sizes 128 256]
                                  [--precisions 32-true bf16-mixed 16-mixed] [--variants base compile fused]

Rows: the project (real Hydra config + Trainer, synthetic data) for each variant, and `plain_loops.cyclegan` (the
reference's `optimize_parameters` on the same nets, no Lightning), fp32, bf16 autocast and fp16 with loss scaling,
eager and compiled. Exits non-zero when a row failed.
Each row runs in its own process, in the order given, interleaved per size; the first steps are warm-up (and the
compile) and excluded. Peak memory is allocated tensor memory of one extra step (benchmarks/memory.py), not RSS.
`x plain fp32` is the speed-up over the plain fp32 loop at the same size (the issue's goal: >= 3 at 256 px).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {  # project overrides per variant
    "base": [],
    "compile": ["model.compile=true"],
    "fused": ["+model.optimizer_G.fused=true"],  # optimizer_D interpolates optimizer_G
    "compile+fused": ["model.compile=true", "+model.optimizer_G.fused=true"],
}


def project(size: int, precision: str, variant: str, steps: int, accelerator: str, warmup: int) -> dict:
    sys.path.insert(0, str(ROOT))
    from benchmarks.step_timer import StepTimer
    from underpainting.config.compose import compose_run
    from underpainting.train import run

    timer = StepTimer(memory_step=warmup + steps)
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_cyclegan_{size}_{precision}_{variant}"
    cfg = compose_run(
        [
            "model=cyclegan",
            *VARIANTS[variant],
            "data=synthetic",
            f"data.image_size={size}",
            f"data.num_train={steps + warmup + 1}",
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
            "print_config=false",
        ],
        out,
        root_dir=ROOT,
    )
    run(cfg, extra_callbacks=[timer])
    t = timer.times[warmup:]
    return {"s_per_iter": sum(t) / len(t), "peak_mib": timer.peak_bytes / 2**20}


def plain(size: int, precision: str, variant: str, steps: int, accelerator: str, warmup: int) -> dict:
    sys.path.insert(0, str(ROOT))
    from benchmarks import plain_loops

    device = "cuda" if accelerator == "gpu" else "cpu"
    return plain_loops.cyclegan(size, steps, warmup, precision, device, compile="compile" in variant)


def device_name(accelerator: str) -> str:
    import torch

    if accelerator == "gpu":
        return torch.cuda.get_device_name()
    return f"cpu x{torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (the compile happens there)")
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    p.add_argument("--precisions", nargs="+", default=["32-true", "bf16-mixed"])
    p.add_argument("--variants", nargs="+", default=["base", "compile"], choices=list(VARIANTS))
    p.add_argument("--plain-variants", nargs="+", default=["base", "compile"], choices=["base", "compile"])
    p.add_argument("--accelerator", default=None, help="cpu or gpu (default: gpu when available)")
    p.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="intra-op threads of each row's process"
    )
    p.add_argument("--json", default=None, help="also write the rows to this file")
    p.add_argument("--one", nargs=4, metavar=("LOOP", "SIZE", "PRECISION", "VARIANT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    import torch

    accelerator = args.accelerator or ("gpu" if torch.cuda.is_available() else "cpu")
    if args.one:
        loop, size, precision, variant = args.one
        run = project if loop == "project" else plain
        r = run(int(size), precision, variant, args.steps, accelerator, args.warmup)
        r.update(
            loop=loop, size=int(size), precision=precision, variant=variant, device=device_name(accelerator)
        )
        print("RESULT " + json.dumps(r))
        return
    rows, failed = [], []
    for size in args.sizes:
        jobs = [("plain", pr, v) for pr in args.precisions for v in args.plain_variants]
        jobs += [("project", pr, v) for pr in args.precisions for v in args.variants]
        for loop, precision, variant in jobs:
            cmd = [sys.executable, __file__, "--one", loop, str(size), precision, variant, "--steps", str(args.steps),
                   "--warmup", str(args.warmup), "--accelerator", accelerator]  # fmt: skip
            env = {**os.environ, "WANDB_MODE": "offline", "PYTHONWARNINGS": "ignore"}
            env["OMP_NUM_THREADS"] = str(args.threads)
            r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
            line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
            if r.returncode or not line:
                print(f"{loop} {size}px {precision} {variant}: failed\n{r.stderr[-2000:]}", file=sys.stderr)
                failed.append(f"{loop} {size}px {precision} {variant}")
                continue
            rows.append(json.loads(line[0][7:]))
            print(f"  {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    print_table(rows, args.steps)
    if failed:  # the table shows what ran; the exit status says a row is missing (benchmarks/gpu_check.sh)
        sys.exit(f"{len(failed)} row(s) failed: {', '.join(failed)}")


def print_table(rows: list[dict], steps: int) -> None:
    ref = {(r["size"], r["precision"]): r for r in rows if r["loop"] == "plain" and r["variant"] == "base"}
    print(
        f"\nCycleGAN training (reference nets: 2 x ResNet-9 G, 2 x 70x70 PatchGAN D, batch 1), {steps} timed steps, "
        f"{rows[0]['device'] if rows else ''}"
    )
    head = f"{'size':>5} {'loop':<8} {'precision':<11} {'variant':<14} {'s/iter':>8} {'x plain fp32':>12} {'x plain same':>12} {'peak MiB':>9}"  # fmt: skip
    print(head)
    for r in rows:
        fp32, same = ref.get((r["size"], "32-true")), ref.get((r["size"], r["precision"]))
        x32 = fp32["s_per_iter"] / r["s_per_iter"] if fp32 else float("nan")
        xs = same["s_per_iter"] / r["s_per_iter"] if same else float("nan")
        print(
            f"{r['size']:>5} {r['loop']:<8} {r['precision']:<11} {r['variant']:<14} {r['s_per_iter']:>8.3f} "
            f"{x32:>11.2f}x {xs:>11.2f}x {r['peak_mib']:>9.0f}"
        )
    print(
        "x plain fp32 / same: speed-up over the plain reference-style loop (eager) in fp32 / in the row's precision; "
        "peak MiB: allocated tensor memory (weights, grads, Adam state and the step's peak), not RSS"
    )


if __name__ == "__main__":
    main()
