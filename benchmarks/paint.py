"""The painter (NNST with region guidance, docs/paint.md) against semantic Gram NST and the neural doodle: seconds,
peak memory and the region-style distance, for the same sketch, paintings and VGG, one process per row.

    python benchmarks/paint.py --weights ../shared/weights/vgg16_caffe_features.pth --arch vgg16 \
        [--rows painter-256 gram-256 doodle-256 painter-512 painter-1024] [--precisions fp32 bf16] \
        [--emulate-avx2] [--threads 2] [--images DIR] [--set stage2.nnst.module.moment_weight=2 ...]

Rows:
- `painter-256`: examples/sketches/wild_vegetation.png (256x256) from Field with Poppies, the infer stage's defaults
  (conf/infer/stage2/nnst.yaml);
- `gram-256`, `doodle-256`: the docs/doodle.md figure's objectives on the same sketch and painting (semantic Gram at
  relu1_1..relu5_1; the doodle's MRF + semantic Gram), from the same kind of start, 64 -> 128 -> 256 px x 100 L-BFGS
  steps (minutes each: run them once, never in CI);
- `painter-512`: examples/sketches/wide/wild_vegetation_512x384.png from both example paintings, the sky and
  mountains from Mountains Behind Saint-Paul and the field from Field with Poppies (the README picture);
- `painter-1024`: the same sketch at 1024x768 (nearest), both paintings.

Seconds: the painting alone (VGG weights loaded before); peak: the process's peak RSS. Distance: the region-style
distance (`underpainting.metrics.region_style`) on one VGG-16 with average pooling for every row. bf16 rows run only
where the CPU has it natively (`runtime/precision.py`) unless --force-bf16; --emulate-avx2 adds fp32 rows with
ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 (an emulated AVX2-only CPU: say so beside the figure).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
STYLES = ROOT / "examples" / "styles"
POPPIES, MOUNTAINS = "field_with_poppies_1889", "mountains_behind_saint_paul_1889"
ALL_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
ROWS = {
    "painter-256": {"method": "painter", "sketch": "examples/sketches/wild_vegetation.png", "paintings": [POPPIES]},
    "gram-256": {"method": "semantic Gram", "sketch": "examples/sketches/wild_vegetation.png", "paintings": [POPPIES]},
    "doodle-256": {"method": "doodle", "sketch": "examples/sketches/wild_vegetation.png", "paintings": [POPPIES]},
    "painter-512": {"method": "painter", "sketch": "examples/sketches/wide/wild_vegetation_512x384.png",
                    "paintings": [MOUNTAINS, POPPIES], "weights": [{"grass": 0}, {"sky": 0}]},
    "painter-1024": {"method": "painter", "sketch": "examples/sketches/wide/wild_vegetation_512x384.png",
                     "paintings": [MOUNTAINS, POPPIES], "weights": [{"grass": 0}, {"sky": 0}], "long_side": 1024},
}  # fmt: skip
NST = {  # scripts/doodle_figure.py: the docs/doodle.md figure's objectives
    "semantic Gram": {"style_loss": "gram", "semantic": True, "style_layers": ALL_LAYERS},
    "doodle": {"style_loss": "both", "semantic": True, "style_layers": ALL_LAYERS, "mrf_weight": 1e-6,
               "mrf": {"style_stride": 1}},
}  # fmt: skip


def _painter(row: dict, args: dict, labels, sketch, paintings, bf16: bool):
    from hydra import compose, initialize_config_dir

    from underpainting.inference.nnst import NNSTPainting
    from underpainting.inference.stages import Style

    overrides = ["infer/stage1=none", "infer/stage2=[nnst]", "progress=false",
                 f"stage2.nnst.module.vgg.weights={args['weights']}", f"stage2.nnst.module.vgg.arch={args['arch']}",
                 f"stage2.nnst.module.bf16={'on' if bf16 else 'off'}", *args["set"]]  # fmt: skip
    if row.get("long_side"):
        overrides.append(f"stage2.nnst.long_side={row['long_side']}")
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("infer", overrides=overrides)
    from hydra.utils import instantiate

    stage: NNSTPainting = instantiate(cfg.stage2.nnst)
    stage.setup(labels, torch.device("cpu"))
    style = Style(paintings[0].image, paintings[0].labels, paintings[0].name, tuple(paintings))
    t0, c0 = time.perf_counter(), time.process_time()
    out = stage(labels.colourise(sketch[0]), sketch[0], style)
    seconds = (time.perf_counter() - t0, time.process_time() - c0)
    return out[None], seconds, stage.module.sources, stage.module.timings


def _nst(row: dict, args: dict, labels, sketch, paintings, bf16: bool):
    from underpainting.data.doodle import doodle_start
    from underpainting.data.nst import NSTProblem
    from underpainting.data.paintings import region_sources
    from underpainting.features.vgg import VGGFeatures
    from underpainting.models.losses.mrf import MRFStyleLoss
    from underpainting.models.nst import NeuralStyleTransfer

    p = paintings[0]
    start = doodle_start(sketch, [p.image], [p.labels], "regions", 0.1, 0, labels.borrow)
    kw = dict(NST[row["method"]])
    mrf = functools.partial(MRFStyleLoss, **kw.pop("mrf", {}))
    vgg = functools.partial(VGGFeatures, arch=args["arch"], weights=args["weights"], pooling="avg")
    lbfgs = functools.partial(torch.optim.LBFGS, lr=1.0, max_iter=1, history_size=100, tolerance_grad=0.0,
                              tolerance_change=0.0)  # fmt: skip
    m = NeuralStyleTransfer(
        vgg=vgg, optimizer=lbfgs, content_weight=0.0, tv_weight=1e4, init="content", mrf=mrf, **kw
    )
    pyramid = [{"edge": 64, "steps": 100}, {"edge": 128, "steps": 100}, {"edge": 256, "steps": 100}]
    problem = NSTProblem(start, [p.image], [1.0], sketch, [p.labels], labels)
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        m.attach(problem, pyramid)
        out = m.optimise()
    seconds = (time.perf_counter() - t0, time.process_time() - c0)
    sources = region_sources(sorted(sketch.unique().tolist()), paintings, labels.borrow, labels.names)
    return out, seconds, sources, {}


def one(row_name: str, precision: str, args: dict) -> dict:
    """One row in this process: paint, time, measure peak RSS and the region-style distance."""
    sys.path.insert(0, str(ROOT / "src"))
    from underpainting.data.images import tensor_to_pil
    from underpainting.data.labels import LabelSet
    from underpainting.data.nst import load_label_map, resize_labels
    from underpainting.data.paintings import load_paintings
    from underpainting.features.vgg import VGGFeatures
    from underpainting.metrics.region_style import REGION_STYLE_LAYERS, region_style_distance

    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    row = ROWS[row_name]
    labels = LabelSet.from_yaml(ROOT / "conf" / "labels" / "landscape.yaml")
    paintings = load_paintings([STYLES / f"{n}.jpg" for n in row["paintings"]],
                               [STYLES / f"{n}_labels.png" for n in row["paintings"]], labels, row.get("weights"))  # fmt: skip
    sketch = load_label_map(ROOT / row["sketch"], labels)
    if row.get("long_side") and row["method"] != "painter":
        h, w = sketch.shape[-2:]
        sketch = resize_labels(sketch, (h * row["long_side"] // max(h, w), w * row["long_side"] // max(h, w)))
    paint = _painter if row["method"] == "painter" else _nst
    out, seconds, sources, timings = paint(row, args, labels, sketch, paintings, precision == "bf16")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    metric_vgg = VGGFeatures(REGION_STYLE_LAYERS, arch=args["arch"], weights=args["weights"], pooling="avg")
    distance, _ = region_style_distance(out.float(), sketch, paintings, sources, metric_vgg)
    if args.get("images"):
        Path(args["images"]).mkdir(parents=True, exist_ok=True)
        tensor_to_pil(out[0].float()).save(
            Path(args["images"]) / f"{row_name}_{precision}{args.get('tag', '')}.png"
        )
    return {"row": row_name, "method": row["method"], "size": "x".join(map(str, out.shape[-1:-3:-1])),
            "precision": precision, "cpu": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
            "seconds": round(seconds[0], 1), "cpu_seconds": round(seconds[1], 1), "peak_mib": round(peak),
            "distance": float(f"{distance:.3g}"), "load": round(os.getloadavg()[0], 1),
            "timings": {k: round(v, 1) for k, v in timings.items()}}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, help="VGG weights file (the same network for every row)")
    p.add_argument("--arch", default="vgg16")
    p.add_argument("--rows", nargs="+", default=["painter-256", "painter-512"], choices=list(ROWS))
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--force-bf16", action="store_true", help="bf16 rows on a CPU without native bf16 too")
    p.add_argument("--emulate-avx2", action="store_true", help="also fp32 rows on an emulated AVX2-only CPU")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--images", default=None, help="write each row's painting here")
    p.add_argument("--set", nargs="*", default=[], help="overrides for the painter stage (Hydra syntax)")
    p.add_argument("--tag", default="", help="suffix of the image names")
    p.add_argument("--json", default=None, help="append the rows to this JSON-lines file")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one:
        row, precision = a.one.split(":")
        print(json.dumps(one(row, precision, vars(a))), flush=True)
        return
    sys.path.insert(0, str(ROOT / "src"))
    from underpainting.runtime.precision import cpu_has_native_bf16

    runs = [
        (r, prec, {})
        for r in a.rows
        for prec in a.precisions
        if prec == "fp32" or cpu_has_native_bf16() or a.force_bf16
    ]
    if a.emulate_avx2:
        runs += [(r, "fp32", {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}) for r in a.rows]
    print(
        "| method | size | precision | CPU | threads | s | CPU s | peak MiB | region-style distance | load |\n"
        "|---|---|---|---|---|---|---|---|---|---|"
    )
    for row, precision, emulate in runs:
        cmd = [sys.executable, __file__, "--one", f"{row}:{precision}", "--weights", a.weights, "--arch", a.arch,
               "--tag", a.tag + ("_avx2" if emulate else ""), *(["--images", a.images] if a.images else []),
               *(["--set", *a.set] if a.set else [])]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), **emulate}
        res = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if res.returncode:
            print(
                f"| {row} | failed: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode} |"
            )
            continue
        r = json.loads(res.stdout.strip().splitlines()[-1])
        cpu = r["cpu"] + (" (emulated AVX2)" if emulate else "")
        print(f"| {r['method']} | {r['size']} | {r['precision']} | {cpu} | {r['threads']} | {r['seconds']} | "
              f"{r['cpu_seconds']} | {r['peak_mib']} | {r['distance']:.3g} | {r['load']} |", flush=True)  # fmt: skip
        if a.json:
            with open(a.json, "a") as f:
                f.write(json.dumps({**r, "cpu": cpu, "set": a.set}) + "\n")


if __name__ == "__main__":
    main()
