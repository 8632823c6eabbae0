"""Neural style transfer: seconds per L-BFGS evaluation, peak memory, bf16 Gram precision, and the docs figure.

    python benchmarks/nst.py bench [--sizes 256 512] [--evals 10] [--device cuda]
    python benchmarks/nst.py figure --content photo.jpg --content-labels photo.png --style painting.jpg \
        --style-labels painting_sketch.png --weights vgg16_caffe_features.pth --arch vgg16 --out docs/images

`bench` times one L-BFGS step (= one loss evaluation: VGG forward + backward to the pixels) of the real module on a
synthetic content/style pair, plain and semantic, fp32 and bf16 autocast (the Gram matrices stay fp32 in both; the
`gram_bf16_rel_err` column shows what computing them in bf16 would cost). VGG19 with random weights: speed and memory
do not depend on the values. `figure` runs plain and semantic transfer with the same settings and writes the
comparison strip used in docs/nst.md, with per-region colour statistics.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def lbfgs():
    return functools.partial(
        torch.optim.LBFGS, lr=1.0, max_iter=1, history_size=100, tolerance_grad=0.0, tolerance_change=0.0
    )


def make_module(
    semantic: bool, arch: str = "vgg19", weights: str = "random", objective: dict | None = None, **kw
):
    """The module with `objective`'s `NSTObjective` settings (defaults: the config's) and `kw` the module's."""
    from underpainting.features.vgg import VGGFeatures
    from underpainting.models.losses.nst import NSTObjective
    from underpainting.models.nst import NeuralStyleTransfer

    vgg = functools.partial(VGGFeatures, arch=arch, weights=weights, pooling="avg")
    terms = functools.partial(NSTObjective, **(objective or {}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return NeuralStyleTransfer(vgg=vgg, optimizer=lbfgs(), objective=terms, semantic=semantic, **kw)


def synthetic_problem(size: int):
    from underpainting.data.labels import LabelSet
    from underpainting.data.nst import NSTDataModule

    labels = LabelSet.from_yaml(ROOT / "conf" / "labels" / "landscape.yaml")
    dm = NSTDataModule(labels=labels, synthetic={"content_seed": 0, "style_seed": 3, "size": size})
    dm.setup()
    return dm.problem


def bench_one(size: int, semantic: bool, bf16: bool, evals: int, warmup: int, device: str) -> dict:
    problem = synthetic_problem(size)
    m = make_module(semantic).to(device)
    m.attach(problem, [{"edge": size, "steps": warmup + evals}])
    opt = m.configure_optimizers()
    dev_type = "cuda" if device.startswith("cuda") else "cpu"
    if dev_type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(warmup + evals):
        t0 = time.perf_counter()
        with torch.autocast(dev_type, dtype=torch.bfloat16, enabled=bf16):
            terms = m._step(opt, lambda loss: loss.backward(), i)
        if dev_type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    from benchmarks.memory import PeakAllocated, state_bytes

    start = state_bytes([m], [opt])
    with PeakAllocated(device) as p, torch.autocast(dev_type, dtype=torch.bfloat16, enabled=bf16):
        m._step(opt, lambda loss: loss.backward())
    peak = (start + p.peak) / 2**20
    times.sort()
    return {
        "size": size,
        "semantic": semantic,
        "precision": "bf16-autocast" if bf16 else "fp32",
        "s_per_eval_median": round(times[len(times) // 2], 4),
        "peak_mem_MiB": round(peak, 1),
        "peak_kind": "allocated tensor memory (benchmarks/memory.py)",
        "final_total": float(terms["total"]),
        **gram_precision(m, device, dev_type),
    }


@torch.no_grad()
def gram_precision(m, device: str, dev_type: str) -> dict:
    """Relative error of bf16 Gram matrices (bf16 features, bf16 matmul) against fp32, per style layer (max)."""
    from underpainting.models.losses.style import gram_matrix

    x = m.image.detach()
    ref = m.objective.vgg(x)
    with torch.autocast(dev_type, dtype=torch.bfloat16):
        low = m.objective.vgg(x)
    errs, errs_feat_only = [], []
    for name in m.objective.style_loss.layer_weights:
        g_ref = gram_matrix(ref[name])
        f = low[name].to(torch.bfloat16)
        b, c, h, w = f.shape
        g_bf16 = (torch.bmm(f.reshape(b, c, -1), f.reshape(b, c, -1).transpose(1, 2)) / (h * w)).float()
        g_mixed = gram_matrix(low[name])  # what the module does: bf16 features, fp32 Gram
        errs.append(float((g_bf16 - g_ref).norm() / g_ref.norm()))
        errs_feat_only.append(float((g_mixed - g_ref).norm() / g_ref.norm()))
    return {"gram_bf16_rel_err": max(errs), "gram_fp32_of_bf16_feats_rel_err": max(errs_feat_only)}


def bench(args) -> None:
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    info = (
        torch.cuda.get_device_name()
        if device.startswith("cuda")
        else f"CPU x{torch.get_num_threads()} threads"
    )
    print(f"# NST L-BFGS evaluation time on {info}; torch {torch.__version__}", flush=True)
    from benchmarks import plain_loops

    rows = []
    for size in args.sizes:
        # the peer column: the PyTorch tutorial's L-BFGS loop, its own layers and Gatys' (the project's work)
        for layers, precision in itertools.product(("tutorial", "gatys"), ("32-true", "bf16-mixed")):
            r = plain_loops.nst(size, args.evals, args.warmup, precision, device, layers)
            row = {"size": size, "loop": f"plain {layers}", "precision": precision}
            rows.append(
                row | {"s_per_eval_mean": round(r["s_per_iter"], 4), "peak_mem_MiB": round(r["peak_mib"], 1)}
            )
            print(json.dumps(rows[-1]), flush=True)
        for semantic in (False, True):
            for bf16 in (False, True):
                row = bench_one(size, semantic, bf16, args.evals, args.warmup, device)
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"device": info, "rows": rows}, indent=1))
    print(f"\n{'size':>5} {'loop':<16} {'precision':<14} {'s/eval':>8} {'x plain':>8} {'peak MiB':>9}")
    for r in rows:
        plain = next(p for p in rows if p["size"] == r["size"] and p.get("loop") == "plain gatys")
        t = r.get("s_per_eval_median", r.get("s_per_eval_mean"))
        loop = r.get("loop") or ("project semantic" if r["semantic"] else "project")
        print(
            f"{r['size']:>5} {loop:<16} {r['precision']:<14} {t:>8.3f} {plain['s_per_eval_mean'] / t:>7.2f}x {r['peak_mem_MiB']:>9.0f}"
        )
    print(
        "x plain: speed-up over the tutorial loop with Gatys layers (the project's work), fp32, same size; one "
        "evaluation = VGG forward + backward. The tutorial's own layers stop at conv3_1 (less work)"
    )


# ---------------------------------------------------------------------------------------------- figure
def region_stats(image: torch.Tensor, labels: torch.Tensor) -> dict[int, torch.Tensor]:
    """Mean RGB of each class region (image (1, 3, H, W) in [-1, 1], labels (1, H, W) at the same size)."""
    out = {}
    for k in labels.unique().tolist():
        mask = labels[0] == k
        if mask.float().mean() > 0.02:
            out[k] = image[0][:, mask].mean(dim=1)
    return out


def figure(args) -> None:
    import torch.nn.functional as F

    from underpainting.data.images import load_rgb, pil_to_tensor, tensor_to_pil
    from underpainting.data.labels import LabelSet
    from underpainting.data.nst import NSTProblem, load_label_map, resize_labels, resize_to_edge
    from underpainting.data.sheets import labelled_grid

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    labels = LabelSet.from_yaml(ROOT / "conf" / "labels" / "landscape.yaml")
    content = pil_to_tensor(load_rgb(args.content))[None]
    style = pil_to_tensor(load_rgb(args.style))[None]
    c_lab = load_label_map(args.content_labels, labels, tuple(content.shape[-2:]))
    s_lab = load_label_map(args.style_labels, labels, tuple(style.shape[-2:]))
    problem = NSTProblem(content, [style], [1.0], c_lab, [s_lab], labels, {})
    pyramid = [{"edge": e, "steps": s} for e, s in zip(args.edges, args.steps, strict=True)]
    results, log = {}, {}
    for semantic in (False, True):
        m = make_module(
            semantic, arch=args.arch, weights=args.weights, objective={"guide_mode": args.guide_mode},
            colour=args.colour,
        ).to(device)  # fmt: skip
        m.attach(problem, pyramid)
        t0 = time.perf_counter()
        out = m.optimise()
        name = "semantic" if semantic else "plain"
        results[name] = out.cpu()
        log[name] = {"seconds": round(time.perf_counter() - t0, 1), "losses": m.last_losses}
        print(name, log[name], m.objective.regions, flush=True)
    size = results["plain"].shape[-2:]
    c_small = resize_to_edge(content, max(size))
    lab_small = resize_labels(c_lab, tuple(size))
    style_small = F.interpolate(style, size=size, mode="bilinear", antialias=True)
    # Per-region colour statistics: how far each output region's mean colour is from the same region in the style.
    s_stats = region_stats(style, s_lab)
    dist = {}
    for name, img in results.items():
        o_stats = region_stats(img, lab_small)
        dist[name] = {
            labels.names[k]: round(float((o_stats[k] - s_stats[k]).norm()), 3)
            for k in o_stats
            if k in s_stats
        }
    log["region_mean_rgb_distance_to_style_region"] = dist
    print(json.dumps(dist), flush=True)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    grid = labelled_grid(
        {
            "content": c_small,
            "content labels": labels.colourise(lab_small),
            "style": style_small,
            "style labels": F.interpolate(labels.colourise(s_lab), size=size, mode="nearest"),
            "plain": results["plain"],
            "semantic": results["semantic"],
        }
    )
    grid.save(out_dir / "nst_comparison.png", optimize=True)
    if args.save_singles:
        for name, img in results.items():
            tensor_to_pil(img[0]).save(out_dir / f"nst_{name}.png", optimize=True)
    (out_dir / "nst_figure.json").write_text(json.dumps({"args": vars(args), **log}, indent=1, default=str))


def main() -> None:
    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(ROOT))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench")
    b.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    b.add_argument("--evals", type=int, default=10)
    b.add_argument("--warmup", type=int, default=3)
    b.add_argument("--device", default=None)
    b.add_argument("--json", default=None)
    f = sub.add_parser("figure")
    f.add_argument("--content", required=True)
    f.add_argument("--content-labels", required=True)
    f.add_argument("--style", required=True)
    f.add_argument("--style-labels", required=True)
    f.add_argument("--weights", required=True)
    f.add_argument("--arch", default="vgg16")
    f.add_argument("--edges", type=int, nargs="+", default=[256])
    f.add_argument("--steps", type=int, nargs="+", default=[300])
    f.add_argument("--guide-mode", default="simple")
    f.add_argument("--colour", default="none")
    f.add_argument("--save-singles", action="store_true")
    f.add_argument("--device", default=None)
    f.add_argument("--out", default="docs/images")
    args = p.parse_args()
    bench(args) if args.cmd == "bench" else figure(args)


if __name__ == "__main__":
    main()
