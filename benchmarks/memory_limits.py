"""Peak memory (process RSS) against input size for `infer.py` and the app's job, up to their pixel limits, and what
an input over the limit costs. A benchmark, not a test: it prints a table.

    python benchmarks/memory_limits.py [--sides 256 512 1024 2048 4096] [--app-sides 256 512 1024 2048] [--ngf 64]

Each measurement runs in a fresh process (peak RSS is per process): stage 1 procedural (full-resolution label and
scene tensors, no learned model) and stage 2 a CycleGAN painter (ResNet 9 blocks; `--ngf 64` is the paper's),
tiled at 512 px as `conf/infer/stage2/cyclegan.yaml` does. The painter's weights come from a one-step `train.py`
run made once into the cache folder; memory does not depend on what the weights learnt. The full-size painter needs
~40 min for 4096 px on 1 shared CPU thread; `--ngf 16` (16x less arithmetic, the same full-resolution buffers)
measures the slope in minutes, and the two agree where both are run (docs/performance.md). The over-the-limit rows
are the 140 KB 12000x12000 PNG of issue 22: refused from its header. The last lines fit peak = a + b * MP and say
the bound at each limit.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(tempfile.gettempdir()) / "underpainting-memory-limits"

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    from pathlib import Path
    side, kind, ckpt, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
    sketch = out / f"sketch_{side}.png"
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    error = ""
    overrides = ["infer/stage1=procedural", "infer/stage2=[cyclegan]", f"stage2.cyclegan.checkpoint={ckpt}",
                 "progress=false", "logger=none"]
    try:
        if kind == "infer":
            from underpainting.config.compose import compose_run
            from underpainting.infer import run
            cfg = compose_run([*overrides, f"input={sketch}"], out / f"run_{side}", "infer")
            results = run(cfg)
            error = "" if results[0].ok else results[0].error
        else:
            from underpainting.app.choices import stage_options
            from underpainting.app.compose import Composer
            from underpainting.app.jobs import JobRequest, run_job
            from underpainting.data.canvas import read_sketch_upload
            from underpainting.data.images import pixel_limit
            from hydra.utils import instantiate
            composer = Composer(["logger=none"])
            settings = composer.settings()
            labels = instantiate(composer.base().labels)
            with pixel_limit(int(settings.max_pixels), "app.max_pixels"):
                ids = read_sketch_upload(sketch, labels)
                request = JobRequest("procedural", ["cyclegan"], {"stage2.cyclegan.checkpoint": ckpt})
                run_job(ids, request, stage_options(composer), composer, out / "app", labels)
    except Exception as e:  # the refusal of an input over the limit
        error = f"{type(e).__name__}: {e}"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_mb": peak / 1024, "start_mb": base / 1024, "seconds": time.perf_counter() - start,
                      "error": error}))
    """
)


def painter_checkpoint(ngf: int) -> Path:
    """A CycleGAN checkpoint of width `ngf` (one training step on 64 px synthetic data), made once."""
    ckpt = CACHE / f"cyclegan_ngf{ngf}" / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        subprocess.run(
            [sys.executable, str(ROOT / "train.py"), "model=cyclegan", "data=synthetic", "data.image_size=64",
             "data.num_train=2", "data.num_val=1", "data.num_workers=0", "trainer.max_steps=2", "logger=none",
             "callbacks.progress_bar=null", "callbacks.sample_grid=null", "print_config=false",
             f"model.G_AB.ngf={ngf}", f"hydra.run.dir={CACHE / f'cyclegan_ngf{ngf}'}"],
            check=True, cwd=ROOT, capture_output=True,
        )  # fmt: skip
    return ckpt


def make_sketch(path: Path, side: int) -> None:
    """Sky over grass with a tree: a flat sketch (PNG, small on disk); over 8000 px a palette PNG (140 KB)."""
    import numpy as np
    from PIL import Image

    if path.exists():
        return
    if side > 8000:
        img = Image.new("P", (side, side), 1)
        img.putpalette([156, 238, 221] * 256)
        img.save(path)
        return
    a = np.zeros((side, side, 3), np.uint8)
    a[: side // 2], a[side // 2 :] = (156, 238, 221), (123, 200, 0)
    a[side // 3 : side // 2, side // 4 : side // 2] = (168, 200, 50)
    Image.fromarray(a).save(path)


def measure(side: int, kind: str, ckpt: Path) -> dict:
    out = CACHE / "runs"
    out.mkdir(parents=True, exist_ok=True)
    make_sketch(out / f"sketch_{side}.png", side)
    env_python = [sys.executable, "-c", CHILD, str(side), kind, str(ckpt), str(out)]
    done = subprocess.run(env_python, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def fit(rows: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares a + b * x over (x, y)."""
    n = len(rows)
    mx, my = sum(x for x, _ in rows) / n, sum(y for _, y in rows) / n
    b = sum((x - mx) * (y - my) for x, y in rows) / max(sum((x - mx) ** 2 for x, _ in rows), 1e-12)
    return my - b * mx, b


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sides", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    p.add_argument("--app-sides", type=int, nargs="+", default=[256, 512, 1024, 2048])
    p.add_argument("--over", type=int, nargs="+", default=[12000], help="sides over the limits (refused)")
    p.add_argument("--ngf", type=int, default=64, help="the painter's width (64: the paper's)")
    a = p.parse_args()
    import torch

    from underpainting.config.compose import compose_run

    limits = {
        "infer": int(compose_run([], CACHE / "probe", "infer").max_pixels),
        "app": int(compose_run(["+app=default"], CACHE / "probe", "infer").app.max_pixels),
    }
    ckpt = painter_checkpoint(a.ngf)
    print(
        f"CPU: {torch.backends.cpu.get_cpu_capability()}, torch threads {torch.get_num_threads()}; painter {ckpt}"
    )
    print(f"{'job':<6} {'side':>6} {'MP':>7} {'peak RSS MB':>12} {'seconds':>8}  outcome")
    fits = {}
    for kind, sides in (("infer", a.sides), ("app", a.app_sides)):
        rows = []
        for side in [*sides, *a.over]:
            r = measure(side, kind, ckpt)
            mp = side * side / 1e6
            outcome = "painted" if not r["error"] else r["error"][:90]
            print(
                f"{kind:<6} {side:>6} {mp:>7.2f} {r['peak_mb']:>12.0f} {r['seconds']:>8.1f}  {outcome}",
                flush=True,
            )
            if not r["error"]:
                rows.append((mp, r["peak_mb"]))
        fits[kind] = fit(rows) if len(rows) > 1 else (rows[0][1], 0.0)
    for kind, (base, per_mp) in fits.items():
        limit_mp = limits[kind] / 1e6
        print(
            f"{kind}: peak RSS ~ {base:.0f} MB + {per_mp:.0f} MB/MP; at its limit ({limit_mp:.1f} MP) "
            f"~ {base + per_mp * limit_mp:.0f} MB"
        )


if __name__ == "__main__":
    main()
