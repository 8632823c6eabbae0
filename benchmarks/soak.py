"""Soak test of resume (not a unit test): a CycleGAN on the real `vangogh_landscapes` data, killed with SIGKILL at
three points - two at random moments, one right after an epoch-boundary checkpoint - and resumed from its
`last.ckpt` each time. The final weights must equal those of the same run left alone.

    python benchmarks/soak.py [--minutes 6] [--size 64] [--data ../shared/data/vangogh_landscapes]

Prints one row per run segment (where it was killed, the step its checkpoint holds) and the max absolute weight
difference of the final state against the uninterrupted run (0.0 = bitwise equal). Every process runs with one
intra-op thread so the float reduction order is the same in all of them.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def overrides(data: Path, size: int, epochs: int, items: int) -> list[str]:
    return [
        "model=cyclegan", "data=vangogh_landscapes", f"data.root={data}", f"data.max_dataset_size={items}",
        f"data.preprocess.load_size={size + size // 8}", f"data.preprocess.crop_size={size}",
        "data.batch_size=4", "data.num_workers=2",
        "model.G_AB.ngf=16", "model.G_AB.n_blocks=3", "model.D_A.ndf=16", "model.G_AB.dropout=true",
        f"model.scheduler.n_epochs={epochs // 2}", f"model.scheduler.n_epochs_decay={epochs - epochs // 2}",
        f"trainer.max_epochs={epochs}", "trainer.log_every_n_steps=8",
        "callbacks.model_checkpoint.every_n_train_steps=8", "callbacks.sample_grid.every_n_steps=0",
        "callbacks.progress_bar=null", "logger=none",
    ]  # fmt: skip


def start(args: list[str], out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    log = open(out.with_suffix(".log"), "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "train.py", *args, *extra, f"hydra.run.dir={out}"], cwd=ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def step_of(ckpt: Path) -> int | None:
    try:
        return int(torch.load(ckpt, weights_only=True, map_location="cpu")["global_step"])
    except Exception:  # noqa: BLE001 - absent, or being replaced
        return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "vangogh_landscapes")
    p.add_argument("--out", type=Path, default=ROOT / "outputs" / "soak")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--items", type=int, default=48, help="images per domain: an epoch is items / 4 batches")
    p.add_argument("--seed", type=int, default=0, help="where the random kills fall")
    a = p.parse_args()
    if not (a.data / "trainA").is_dir():
        sys.exit(f"no dataset at {a.data} (expected trainA/trainB/testA/testB); pass --data")
    rng = random.Random(a.seed)
    args = overrides(a.data.resolve(), a.size, a.epochs, a.items)
    steps_per_epoch = 2 * (a.items // 4)
    a.out.mkdir(parents=True, exist_ok=True)

    t0 = time.monotonic()
    ref_dir = a.out / "uninterrupted"
    if start(args, ref_dir).wait() != 0:
        sys.exit(f"the uninterrupted run failed; see {ref_dir.with_suffix('.log')}")
    wall = time.monotonic() - t0
    ref = torch.load(ref_dir / "checkpoints" / "last.ckpt", weights_only=True)
    rows = [("uninterrupted", "ran to the end", "-", ref["global_step"], wall)]

    ckpt: Path | None = None
    for i, kind in enumerate(["random", "epoch boundary", "random"]):
        out = a.out / f"segment{i}"
        proc, t = start(args, out, *([f"ckpt_path={ckpt}"] if ckpt else [])), time.monotonic()
        last = out / "checkpoints" / "last.ckpt"
        if kind == "random":
            time.sleep(rng.uniform(0.15, 0.3) * wall)
        else:  # right after a checkpoint written on an epoch's last batch
            while proc.poll() is None and not ((s := step_of(last)) and s % steps_per_epoch == 0):
                time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        start_step = step_of(ckpt) if ckpt else 0
        if last.is_file():  # killed before its first save: resume from the same checkpoint again
            ckpt = last
        rows.append((f"segment {i}", f"SIGKILL ({kind})", start_step, step_of(ckpt), time.monotonic() - t))
    out, t = a.out / "final", time.monotonic()
    if start(args, out, f"ckpt_path={ckpt}").wait() != 0:
        sys.exit(f"the final segment failed; see {out.with_suffix('.log')}")
    final = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    diff = max(
        (final["state_dict"][k].float() - v.float()).abs().max().item() for k, v in ref["state_dict"].items()
    )
    rows.append(
        ("final segment", "ran to the end", step_of(ckpt), final["global_step"], time.monotonic() - t)
    )

    print(f"\nsoak: CycleGAN on {a.data} ({a.items} images per domain, {a.size} px, {a.epochs} epochs of "
          f"{steps_per_epoch} steps, 2 DataLoader workers, 1 thread)")  # fmt: skip
    print(f"{'run':<15} {'how it ended':<26} {'resumed from step':>18} {'checkpoint step':>16} {'wall s':>7}")
    for name, how, begin, end, secs in rows:
        print(f"{name:<15} {how:<26} {begin!s:>18} {end!s:>16} {secs:>7.0f}")
    print(
        f"kills: 3, final step {final['global_step']} (uninterrupted: {ref['global_step']}), "
        f"max |weight difference| = {diff:.3g}{' (bitwise equal)' if diff == 0 else ''}"
    )


if __name__ == "__main__":
    main()
