"""X-ray separation on simulated mixtures of real paintings (../shared/data): one table.

    python benchmarks/xray.py [--sizes 256 512] [--pairs 3] [--out docs/images]

For each pair (surface, hidden) and size, the default simulation (lead-white response, 1 px blur, weave, stretcher
bars, 2x2 plate seams, noise) is separated by: the mixture itself, the linear and the polynomial (degree 3)
regression baselines, and the network (`experiment=xray_separation`, through the Trainer). Rows report r, PSNR and
SSIM of the hidden part against the truth (`underpainting.xray.metrics`) and the seconds of the run (artefact
removal included). The `poly, artefacts:` rows show each artefact removal's effect (none / one at a time / all /
the true artefacts subtracted, an oracle). `--out` also writes the docs figure of the first 256 px pair. The last
rows time one training step of our network against the reference's LCISTA network (5 layers, 64 codes, 5x5).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
PAIRS_256 = [("vangogh_013", "vangogh_023"), ("vangogh_000", "vangogh_005"), ("vangogh_054", "vangogh_068")]
PAIRS_512 = [("starry_night_1889", "starry_night_over_the_rhone_1888"), ("bedroom_in_arles_1888", "starry_night_1889"),
             ("starry_night_over_the_rhone_1888", "bedroom_in_arles_1888")]  # fmt: skip


def painting(name: str, size: int) -> torch.Tensor:
    from underpainting.data.xray.io import load_visible

    path = DATA / "style" / f"{name}.jpg"
    if not path.is_file():
        path = DATA / "vangogh_landscapes" / "testA" / f"{name}.jpg"
    img = load_visible(path)
    return F.interpolate(img[None], size=(size, size), mode="bicubic", antialias=True)[0].clamp(0, 1)


def network(mixture, size: int, overrides: list[str]) -> tuple[torch.Tensor, float]:
    """The hidden part from a full `experiment=xray_separation` run on this mixture, and its seconds."""
    from underpainting.data.xray.io import load_xray, save_grey, save_rgb
    from underpainting.train import run
    from underpainting.xray.cli import compose_run

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        lo, hi = float(mixture.xray.min()), float(mixture.xray.max())
        save_grey((mixture.xray - lo) / (hi - lo), d / "xray.png", bits=16)
        save_rgb(mixture.visible, d / "visible.png")
        cfg = compose_run(["experiment=xray_separation", f"data.xray={d / 'xray.png'}", f"data.visible={d / 'visible.png'}",
                           "logger=none", "callbacks.progress_bar=null", "callbacks.sample_grid=null", *overrides], d / "run")  # fmt: skip
        start = time.perf_counter()
        run(cfg)
        seconds = time.perf_counter() - start
        return load_xray(d / "run" / "hidden_16bit.png"), seconds


def rows_for(surface: str, hidden: str, size: int, overrides: list[str]) -> tuple[list[dict], dict]:
    from underpainting.data.xray.artefacts import ArtefactRemoval
    from underpainting.data.xray.baseline import regression_baseline
    from underpainting.data.xray.simulator import XRaySimulator
    from underpainting.xray.metrics import score

    m = XRaySimulator(seed=0)(painting(surface, size), painting(hidden, size))
    pair = f"{surface[:14]}/{hidden[:14]}"
    rows = [{"pair": pair, "size": size, "method": "mixture", **score(m.xray, m.hidden), "s": 0.0}]

    def guide(x):
        return regression_baseline(x, m.visible, 3)[0]

    variants = {"none": dict(weave=False, bars=False, seams=False), "seams only": dict(weave=False, bars=False),
                "bars only": dict(weave=False, seams=False), "weave only": dict(bars=False, seams=False), "all": {}}  # fmt: skip
    clean_all = None
    for name, kw in variants.items():
        start = time.perf_counter()
        clean, _ = ArtefactRemoval(**kw)(m.xray, guide)
        for degree, label in ((1, "linear"), (3, "poly")):
            if name != "all" and degree == 1:
                continue
            _, hid = regression_baseline(clean, m.visible, degree)
            method = f"{label}" if name == "all" else f"poly, artefacts: {name}"
            rows.append(
                {
                    "pair": pair,
                    "size": size,
                    "method": method,
                    **score(hid, m.hidden),
                    "s": time.perf_counter() - start,
                }
            )
        clean_all = clean if name == "all" else clean_all
    oracle = m.xray - sum(m.artefacts.values())
    rows.append({"pair": pair, "size": size, "method": "poly, artefacts: oracle", **score(regression_baseline(oracle, m.visible, 3)[1], m.hidden), "s": 0.0})  # fmt: skip
    hid, seconds = network(m, size, overrides)
    rows.append({"pair": pair, "size": size, "method": "network", **score(hid, m.hidden), "s": seconds})
    return rows, {"mixture": m, "clean": clean_all, "network": hid}


def step_seconds(build, steps: int = 5, batch: int = 8, patch: int = 64) -> float:
    """Seconds per Adam step (forward + backward) of a separation network on random patches."""
    net, fn = build()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, v, i = (
        torch.rand(batch, 1, patch, patch),
        torch.rand(batch, 3, patch, patch),
        torch.rand(batch, 1, patch, patch),
    )
    times = []
    for k in range(steps + 1):
        start = time.perf_counter()
        loss = fn(net, x, v, i)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if k:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def ours():
    from underpainting.models.networks.xray import XRaySeparationNet

    return XRaySeparationNet(), lambda n, x, v, i: sum(t.square().mean() for t in n(x, v, i).values())


def reference():
    from benchmarks.xray_reference import LCISTANet

    return LCISTANet(), lambda n, x, v, i: sum(t.square().mean() for t in n(x, v.mean(1, keepdim=True), i))


def figure(parts: dict, out: Path, name: str) -> Path:
    from underpainting.data.sheets import contact_sheet
    from underpainting.data.xray.baseline import regression_baseline
    from underpainting.data.xray.io import contrast_normalise

    m = parts["mixture"]
    grey = lambda t: contrast_normalise(t).expand(3, -1, -1) * 2 - 1  # noqa: E731
    row = {"mixed X-ray": grey(m.xray), "visible": m.visible * 2 - 1, "ground truth hidden": grey(m.hidden),
           "baseline (polynomial)": grey(regression_baseline(parts["clean"], m.visible, 3)[1]),
           "separation (network)": grey(parts["network"])}  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    contact_sheet([row], max_side=256).save(path)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--out", type=Path, default=None, help="write the docs figure here")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("overrides", nargs="*", help="Hydra overrides for the network runs")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if not DATA.is_dir():
        sys.exit(f"{DATA} is absent: the benchmark uses the shared paintings")
    rows = []
    for size in args.sizes:
        for k, (s, h) in enumerate((PAIRS_256 if size <= 256 else PAIRS_512)[: args.pairs]):
            r, parts = rows_for(s, h, size, args.overrides)
            rows += r
            if args.out and k == 0 and size == args.sizes[0]:
                print(f"figure: {figure(parts, args.out, 'xray_separation.png')}", flush=True)
            for row in r:
                print(f"| {row['pair']} | {row['size']} | {row['method']} | {row['r']:.3f} | {row['psnr']:.2f} | {row['ssim']:.3f} | {row['s']:.1f} |", flush=True)  # fmt: skip
    print(
        f"\nthreads={torch.get_num_threads()}\n| pair | px | method | r | PSNR dB | SSIM | s |\n|---|---|---|---|---|---|---|"
    )
    for row in rows:
        print(
            f"| {row['pair']} | {row['size']} | {row['method']} | {row['r']:.3f} | {row['psnr']:.2f} | {row['ssim']:.3f} | {row['s']:.1f} |"
        )
    print("\n| mean over pairs | px | method | r | PSNR dB | SSIM |\n|---|---|---|---|---|---|")
    for size in args.sizes:
        for method in dict.fromkeys(r["method"] for r in rows):
            sel = [r for r in rows if r["size"] == size and r["method"] == method]
            if sel:
                mean = {k: statistics.mean(r[k] for r in sel) for k in ("r", "psnr", "ssim")}
                print(
                    f"| {len(sel)} pairs | {size} | {method} | {mean['r']:.3f} | {mean['psnr']:.2f} | {mean['ssim']:.3f} |"
                )
    a, b = step_seconds(ours), step_seconds(reference, steps=2)
    print(f"\ns per training step (8 x 64x64 patches, {torch.get_num_threads()} thread(s)): ours {a:.3f}, "
          f"reference LCISTA (5 layers, 64 codes, 5x5) {b:.3f}: {b / a:.0f}x")  # fmt: skip


if __name__ == "__main__":
    main()
