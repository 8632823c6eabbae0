"""The docs/doodle.md picture: sketch | style | style labels | plain Gram | semantic Gram | doodle (MRF), with the
distance of each output region's mean colour to the colour of the style region it paints from.

All three methods paint from the sketch alone, from the same start (the style's region colours + noise, content
weight 0) over the same coarse-to-fine schedule; only the style loss differs:
- plain Gram: Gatys et al. 2016, global Gram matrices at relu1_1..relu5_1 (where things are is lost);
- semantic Gram: Gatys et al. 2017 Sec. 4.1, guided Gram matrices per class (with the region correspondences);
- doodle: the doodle stage's objective (conf/infer/stage2/doodle.yaml): semantic MRF at relu3_1, relu4_1 (Li & Wand
  2016, Champandard 2016) + the semantic Gram term.

    python scripts/doodle_figure.py --weights ../shared/weights/vgg16_caffe_features.pth --arch vgg16 \
        --style examples/styles/field_with_poppies_1889.jpg --out docs/images/doodle_poppies
"""

from __future__ import annotations

import argparse
import functools
import json
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from underpainting.data.doodle import doodle_start, region_colours
from underpainting.data.images import load_rgb, pil_to_tensor, tensor_to_pil
from underpainting.data.labels import LabelSet
from underpainting.data.nst import NSTProblem, load_label_map
from underpainting.data.sheets import labelled_grid
from underpainting.features.vgg import VGGFeatures
from underpainting.models.losses.mrf import MRFStyleLoss
from underpainting.models.losses.nst import NSTObjective
from underpainting.models.nst import NeuralStyleTransfer

ROOT = Path(__file__).resolve().parents[1]
ALL_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
METHODS = {
    "plain Gram": {"style_loss": "gram", "semantic": False, "style_layers": ALL_LAYERS},
    "semantic Gram": {"style_loss": "gram", "semantic": True, "style_layers": ALL_LAYERS},
    "doodle (MRF)": {
        "style_loss": "both",
        "semantic": True,
        "style_layers": ALL_LAYERS,
        "mrf_weight": 1e-6,
        "mrf": {"style_stride": 1},
    },
}


def region_distances(image, sketch, colours, names) -> dict[str, float]:
    """|mean colour of each sketch region in `image` − the colour of the style region it paints from| (RGB, [-1, 1])."""
    lab = F.interpolate(sketch[None].float(), size=image.shape[-2:], mode="nearest")[0, 0].long()
    out = {}
    for k, rgb in colours.items():
        sel = lab == k
        if sel.float().mean() > 0.01:
            out[names[k]] = round(float((image[0][:, sel].mean(1) - rgb).norm()), 3)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sketch", default=str(ROOT / "examples" / "sketches" / "wild_vegetation.png"))
    p.add_argument("--style", required=True)
    p.add_argument("--style-labels", default=None, help="default: <style>_labels.png")
    p.add_argument("--weights", required=True)
    p.add_argument("--arch", default="vgg16")
    p.add_argument("--edges", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--steps", type=int, nargs="+", default=[100, 100, 100])
    p.add_argument("--tv", type=float, default=1e4)
    p.add_argument("--init", default="regions")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--out", required=True, help="output prefix: <out>.png, <out>.json, <out>_<method>.png")
    p.add_argument("--reuse", action="store_true", help="take methods already in <out>.json from their PNGs")
    args = p.parse_args()
    torch.manual_seed(0)
    labels = LabelSet.from_yaml(ROOT / "conf" / "labels" / "landscape.yaml")
    style = pil_to_tensor(load_rgb(args.style))[None]
    style_labels = load_label_map(args.style_labels or args.style.rsplit(".", 1)[0] + "_labels.png", labels,
                                  tuple(style.shape[-2:]))  # fmt: skip
    sketch = load_label_map(args.sketch, labels)
    start = doodle_start(sketch, [style], [style_labels], args.init, 0.1, 0, labels.borrow)
    colours = region_colours(sketch, [style], [style_labels], labels.borrow)
    vgg = functools.partial(VGGFeatures, arch=args.arch, weights=args.weights, pooling="avg")
    lbfgs = functools.partial(torch.optim.LBFGS, lr=1.0, max_iter=1, history_size=100, tolerance_grad=0.0,
                              tolerance_change=0.0)  # fmt: skip
    pyramid = [{"edge": e, "steps": s} for e, s in zip(args.edges, args.steps, strict=True)]
    results, log = {}, {"args": vars(args)}
    previous = (
        json.loads(Path(f"{args.out}.json").read_text())
        if args.reuse and Path(f"{args.out}.json").is_file()
        else {}
    )
    for name in METHODS:
        png = Path(f"{args.out}_{name.split()[0].lower()}.png")
        if name in previous and png.is_file() and (name not in args.methods or args.reuse):
            results[name], log[name] = pil_to_tensor(load_rgb(png))[None], previous[name]
    for name in [n for n in args.methods if n not in results]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kw = dict(METHODS[name])
            semantic, mrf = kw.pop("semantic"), functools.partial(MRFStyleLoss, **kw.pop("mrf", {}))
            objective = functools.partial(NSTObjective, content_weight=0.0, tv_weight=args.tv, mrf=mrf, **kw)
            m = NeuralStyleTransfer(
                vgg=vgg, optimizer=lbfgs, objective=objective, semantic=semantic, init="content"
            )
        m.attach(NSTProblem(start, [style], [1.0], sketch, [style_labels], labels), pyramid)
        t0 = time.perf_counter()
        results[name] = m.optimise()
        log[name] = {"seconds": round(time.perf_counter() - t0, 1), "losses": m.last_losses,
                     "region_colour_distance": region_distances(results[name], sketch, colours, labels.names),
                     "borrowed": {labels.names[k]: labels.names[v] if v is not None else "whole painting"
                                  for k, v in m.borrowed.items()}}  # fmt: skip
        print(name, json.dumps(log[name]), flush=True)
        tensor_to_pil(results[name][0]).save(f"{args.out}_{name.split()[0].lower()}.png", optimize=True)
    results = {n: results[n] for n in METHODS if n in results}
    size = next(iter(results.values())).shape[-2:]
    sk = F.interpolate(sketch[None].float(), size=size, mode="nearest")[0].long()
    grid = labelled_grid({
        "sketch": labels.colourise(sk),
        "style": F.interpolate(style, size=size, mode="bilinear", antialias=True),
        "style labels": F.interpolate(labels.colourise(style_labels), size=size, mode="nearest"),
        **results,
    })  # fmt: skip
    grid.save(f"{args.out}.png", optimize=True)
    Path(f"{args.out}.json").write_text(json.dumps(log, indent=1, default=str))


if __name__ == "__main__":
    main()
