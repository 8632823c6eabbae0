"""Doodle / MRF benchmark: seconds per L-BFGS step and peak memory, Gram vs MRF, at 256 and 512 px, in one run.

    python benchmarks/doodle.py [--sizes 256 512] [--steps 4] [--warmup 1] [--device cpu|cuda]

Variants (VGG19 with random weights: speed and memory do not depend on the values; a synthetic painting with its
label map as the style and another synthetic layout as the sketch, 7 classes, semantic everywhere):
- `gram`: semantic Gram NST at relu1_1..relu5_1 (Gatys et al. 2017, the existing NST);
- `mrf`: semantic MRF at relu3_1 + relu4_1, matching in chunks of 2048 style patches (the default);
- `mrf unchunked`: the same with one convolution over all style patches (what a plain reference-style loop does);
- `doodle`: the doodle stage's objective, MRF over every style patch (style stride 1) + semantic Gram at relu1_1..relu5_1.
Each variant runs in its own process so its peak memory is its own: CUDA `max_memory_allocated`, on the CPU the
process's peak RSS (`ru_maxrss`) and its growth over the steps (what the optimisation itself allocates).
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "gram": {"style_loss": "gram"},
    "mrf": {"style_loss": "mrf"},
    "mrf unchunked": {"style_loss": "mrf", "chunk_size": None},
    "doodle": {"style_loss": "both", "style_stride": 1},
}


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one(size: int, variant: str, steps: int, warmup: int, device: str) -> dict:
    sys.path.insert(0, str(ROOT / "src"))
    from underpainting.data.labels import LabelSet
    from underpainting.data.nst import NSTProblem
    from underpainting.data.synthetic import SyntheticLandscapes
    from underpainting.features.vgg import VGGFeatures
    from underpainting.models.losses.mrf import MRFStyleLoss
    from underpainting.models.losses.nst import NSTObjective
    from underpainting.models.nst import NeuralStyleTransfer

    labels = LabelSet.from_yaml(ROOT / "conf" / "labels" / "landscape.yaml")
    render = SyntheticLandscapes(labels, size)
    style, sketch = render(3), render(0)
    problem = NSTProblem(sketch.painting[None], [style.painting[None]], [1.0], sketch.labels[None],
                         [style.labels[None]], labels)  # fmt: skip
    kw = dict(VARIANTS[variant])
    mrf = functools.partial(
        MRFStyleLoss, chunk_size=kw.pop("chunk_size", 2048), style_stride=kw.pop("style_stride", 2)
    )
    lbfgs = functools.partial(torch.optim.LBFGS, lr=1.0, max_iter=1, history_size=100, tolerance_grad=0.0,
                              tolerance_change=0.0)  # fmt: skip
    objective = functools.partial(NSTObjective, content_weight=0.0, mrf=mrf, tv_weight=1e4, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights
        m = NeuralStyleTransfer(vgg=functools.partial(VGGFeatures, weights="random", pooling="avg"), optimizer=lbfgs,
                                objective=objective, semantic=True).to(device)  # fmt: skip
    m.attach(problem, [{"edge": size, "steps": warmup + steps}])
    opt = m.configure_optimizers()
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base = rss_mib()
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        m._step(opt, lambda loss: loss.backward())
        if cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    row = {"size": size, "variant": variant, "s_per_step": round(times[len(times) // 2], 3)}
    if cuda:
        row["peak_MiB"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        row["peak_kind"] = "cuda max_memory_allocated"
    else:
        row["peak_MiB"], row["growth_MiB"] = round(rss_mib(), 1), round(rss_mib() - base, 1)
        row["peak_kind"] = "process peak RSS"
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default=None)
    p.add_argument("--json", default=None)
    p.add_argument("--one", nargs=2, metavar=("SIZE", "VARIANT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.one:
        print(json.dumps(one(int(args.one[0]), args.one[1], args.steps, args.warmup, device)), flush=True)
        return
    info = (
        torch.cuda.get_device_name()
        if device.startswith("cuda")
        else f"CPU x{torch.get_num_threads()} threads"
    )
    print(f"# doodle / MRF: seconds per L-BFGS step on {info}; torch {torch.__version__}", flush=True)
    print(
        "| size | variant | s / step | peak MiB | growth MiB |\n| --- | --- | --- | --- | --- |", flush=True
    )
    rows = []
    for size in args.sizes:
        for variant in args.variants:
            cmd = [sys.executable, __file__, "--one", str(size), variant, "--steps", str(args.steps),
                   "--warmup", str(args.warmup), "--device", device]  # fmt: skip
            out = (
                subprocess.run(cmd, capture_output=True, text=True, check=True)
                .stdout.strip()
                .splitlines()[-1]
            )
            row = json.loads(out)
            rows.append(row)
            print(f"| {size} | {variant} | {row['s_per_step']} | {row['peak_MiB']} | {row.get('growth_MiB', '')} |",
                  flush=True)  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"device": info, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
