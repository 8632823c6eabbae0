"""SPADE and pix2pix training speed and peak memory at 256 px: fp32 vs mixed precision.

    python benchmarks/spade_pix2pix.py [--steps 8] [--sizes 256] [--models spade pix2pix] [--batch 1]

Full reference networks through the real Hydra configs and Trainer on synthetic pairs (20 landscape classes):
- spade: SPADEGenerator ngf 64 + 2-scale PatchGAN D; G step (hinge + feature matching + VGG19 perceptual) and D step
  (on a fresh fake, as the reference). The VGG has random weights unless --vgg-weights is given: same cost, and no
  download on an offline machine.
- spade_vae: the same with the style encoder (multimodal) and the KL term.
- pix2pix: U-Net 256 + 70x70 PatchGAN, batch norm, dropout.
- spade_plain: `plain_loops.spade`, the NVlabs trainer's update on the same nets without Lightning (the peer column:
  `x plain` is each SPADE row's speed-up over it at the same size and precision).
Each variant runs in its own process; the first steps are warm-up and excluded. Peak memory is allocated tensor
memory of one extra step (benchmarks/memory.py), not RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 3
MODELS = {
    "spade": ["model=spade"],
    "spade_vae": [
        "model=spade",
        "model.G.use_vae=true",
        "+model.E._target_=underpainting.models.networks.spade.ConvEncoder",
        "+model.E.input_size=256",
    ],
    "pix2pix": ["model=pix2pix"],
    "spade_plain": [],
}


def measure(
    model: str, size: int, precision: str, steps: int, batch: int, accelerator: str, vgg: str
) -> dict:
    import torch

    sys.path.insert(0, str(ROOT))
    device = (
        torch.cuda.get_device_name() if accelerator == "gpu" else f"cpu x{torch.get_num_threads()} threads"
    )
    row = {"model": model, "size": size, "precision": precision, "batch": batch, "device": device}
    if model == "spade_plain":
        from benchmarks import plain_loops

        dev = "cuda" if accelerator == "gpu" else "cpu"
        return row | plain_loops.spade(size, steps, WARMUP, precision, dev, vgg)
    from benchmarks.step_timer import StepTimer
    from underpainting.config.compose import compose_run
    from underpainting.train import run

    timer = StepTimer(memory_step=WARMUP + steps)
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_{model}_{size}_{precision}"
    overrides = [
        *MODELS[model],
        "data=synthetic_pairs",
        f"data.image_size={size}",
        f"data.num_train={(steps + WARMUP + 1) * batch}",
        "data.num_workers=0",
        f"data.batch_size={batch}",
        "logger=none",
        "callbacks=none",
        f"trainer.accelerator={accelerator}",
        f"trainer.precision={precision}",
        "trainer.max_epochs=1",
        "+trainer.limit_val_batches=0",
        "+trainer.enable_checkpointing=false",
        "+trainer.enable_progress_bar=false",
        "+trainer.enable_model_summary=false",
    ]
    if model.startswith("spade"):
        overrides += [f"model.vgg.weights={vgg}", f"model.G.crop_size={size}"]
    if model == "pix2pix" and size != 256:
        overrides += [f"model.G.num_downs={size.bit_length() - 1}"]
    cfg = compose_run(overrides, out, root_dir=ROOT)
    run(cfg, extra_callbacks=[timer])
    t = timer.times[WARMUP:]
    return row | {"s_per_iter": sum(t) / len(t), "peak_mib": timer.peak_bytes / 2**20}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--sizes", type=int, nargs="+", default=[256])
    p.add_argument("--models", nargs="+", default=["spade_plain", "spade", "pix2pix"], choices=list(MODELS))
    p.add_argument("--batch", type=int, default=1)
    p.add_argument(
        "--precisions", nargs="+", default=None, help="default: 32-true bf16-mixed (+16-mixed on GPU)"
    )
    p.add_argument(
        "--vgg-weights", default="random", help="VGG19 weights for SPADE's perceptual loss (timing only)"
    )
    p.add_argument("--accelerator", default=None, help="cpu or gpu (default: gpu when available)")
    p.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="intra-op threads of each row's process"
    )
    p.add_argument("--json", default=None, help="also write the rows to this file")
    p.add_argument("--one", nargs=3, metavar=("MODEL", "SIZE", "PRECISION"), help=argparse.SUPPRESS)
    args = p.parse_args()
    import torch

    accelerator = args.accelerator or ("gpu" if torch.cuda.is_available() else "cpu")
    if args.one:
        model, size, precision = args.one[0], int(args.one[1]), args.one[2]
        r = measure(model, size, precision, args.steps, args.batch, accelerator, args.vgg_weights)
        print("RESULT " + json.dumps(r))
        return
    precisions = args.precisions or ["32-true", "bf16-mixed"] + (["16-mixed"] if accelerator == "gpu" else [])
    rows, failed = [], []
    for model in args.models:
        for size in args.sizes:
            for precision in precisions:
                cmd = [sys.executable, __file__, "--one", model, str(size), precision, "--steps", str(args.steps),
                       "--batch", str(args.batch), "--accelerator", accelerator, "--vgg-weights", args.vgg_weights]  # fmt: skip
                env = {**os.environ, "WANDB_MODE": "offline", "PYTHONWARNINGS": "ignore"}
                env["OMP_NUM_THREADS"] = str(args.threads)
                r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
                line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
                if r.returncode or not line:
                    print(f"{model} {size}px {precision}: failed\n{r.stderr[-2000:]}", file=sys.stderr)
                    failed.append(f"{model} {size}px {precision}")
                    continue
                rows.append(json.loads(line[0][7:]))
                print(f"  {model} {size}px {precision}: {rows[-1]['s_per_iter']:.3f} s/iter", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    base = {(r["model"], r["size"]): r for r in rows if r["precision"] == "32-true"}
    plain = {(r["size"], r["precision"]): r for r in rows if r["model"] == "spade_plain"}
    device = rows[0]["device"] if rows else ""
    print(
        f"\nSPADE / pix2pix training, reference networks, batch {args.batch}, {args.steps} timed steps, {device}"
    )
    print(
        f"{'model':<11} {'size':>5} {'precision':<11} {'s/iter':>8} {'x fp32':>7} {'x plain':>7} {'peak MiB':>9} {'x fp32':>7}"
    )
    for r in rows:
        b = base.get((r["model"], r["size"]))
        speed = b["s_per_iter"] / r["s_per_iter"] if b else float("nan")
        mem = r["peak_mib"] / b["peak_mib"] if b else float("nan")
        pl = plain.get((r["size"], r["precision"])) if r["model"].startswith("spade") else None
        vs_plain = pl["s_per_iter"] / r["s_per_iter"] if pl else float("nan")
        print(
            f"{r['model']:<11} {r['size']:>5} {r['precision']:<11} {r['s_per_iter']:>8.3f} {speed:>6.2f}x "
            f"{vs_plain:>6.2f}x {r['peak_mib']:>9.0f} {mem:>6.2f}x"
        )
    print("x fp32: speed-up (higher is faster) and memory ratio against fp32 for the same model and size")
    print(
        "x plain: SPADE's speed-up over the plain NVlabs-style loop (spade_plain) at the same size and precision"
    )
    print("peak MiB: allocated tensor memory (weights, grads, Adam state and the step's peak), not RSS")
    if failed:
        sys.exit(f"{len(failed)} row(s) failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
