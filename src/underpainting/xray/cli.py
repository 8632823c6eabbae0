"""`python -m underpainting.xray {simulate,separate,trace}`: the X-ray workflow from the command line.

simulate SURFACE HIDDEN --out DIR      a mixed X-ray of HIDDEN under SURFACE, with the ground truth
separate XRAY VISIBLE --out DIR [k=v]  the concealed design's X-ray (= train.py experiment=xray_separation)
trace HIDDEN --out DIR [--sketch S]    the hidden X-ray as a backdrop (and palette key) to paint a sketch on
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from underpainting.config.compose import compose_run, conf_dir
from underpainting.data.images import DEFAULT_MAX_PIXELS
from underpainting.errors import UserError, exit_on_user_error
from underpainting.runtime.destinations import writable_folder

log = logging.getLogger(__name__)
MAX_PIXELS_HELP = "images (and --size) larger than this are refused (default 64 MP: 8000x8000)"


def separate(xray: str, visible: str, out: str, overrides: list[str], truth: str | None = None) -> dict:
    """Train the separation on this painting (the tracked `train.py` run, in `out`) and return its summary."""
    import json

    from underpainting.train import run

    out_dir = writable_folder(Path(out).resolve(), "--out")
    args = ["experiment=xray_separation", f"data.xray={_quote(xray)}", f"data.visible={_quote(visible)}"]
    if truth:
        args.append(f"data.truth={_quote(truth)}")
    cfg = compose_run([*args, *overrides], out_dir)
    from omegaconf import OmegaConf

    OmegaConf.save(cfg, out_dir / "config.yaml", resolve=True)  # `python train.py` keeps this in .hydra/
    run(cfg)
    return json.loads((out_dir / "separation.json").read_text())


def _quote(path: str) -> str:
    return "'" + str(Path(path).expanduser()).replace("'", "\\'") + "'"


def _size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--size must be WIDTHxHEIGHT in px, e.g. 512x384; got {text!r}") from None
    if w < 1 or h < 1:
        raise UserError(f"--size {text}: the width and the height must be at least 1 px, e.g. 512x384")
    return h, w


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m underpainting.xray", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("simulate", help="simulate a mixed X-ray with its ground truth")
    p.add_argument("surface", help="the painting on top (its photo becomes visible.png)")
    p.add_argument("hidden", help="the concealed painting")
    p.add_argument("--out", required=True)
    p.add_argument("--size", type=int, default=None, help="long side in px (default: the surface's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--simple", action="store_true", help="no weave, bars, seams or noise")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help=MAX_PIXELS_HELP)
    p = sub.add_parser("separate", help="separate the concealed design from a mixed X-ray")
    p.add_argument("xray")
    p.add_argument("visible")
    p.add_argument("--out", required=True)
    p.add_argument(
        "--truth", default=None, help="ground-truth hidden X-ray (simulations): scores in separation.json"
    )
    p.epilog = "Further arguments key=value are Hydra overrides, e.g. trainer.max_epochs=12 data.artefacts.bars=false"
    p = sub.add_parser("trace", help="the hidden X-ray as a backdrop to paint a sketch on")
    p.add_argument("hidden", help="hidden.png from `separate`")
    p.add_argument("--out", required=True)
    p.add_argument(
        "--size", default=None, help="WIDTHxHEIGHT of the sketch (default: the sketch's or the X-ray's)"
    )
    p.add_argument("--sketch", default=None, help="a sketch traced on it: also writes overlay.png")
    p.add_argument("--labels", default=None, help="label set YAML (default: conf/labels/landscape.yaml)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help=MAX_PIXELS_HELP)
    args, rest = parser.parse_known_args(argv)
    if rest and (args.command != "separate" or any("=" not in r for r in rest)):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.overrides = rest
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    if args.command == "simulate":
        from underpainting.data.xray.simulator import XRaySimulator
        from underpainting.xray.simulate import simulate_files

        sim = XRaySimulator.simple(seed=args.seed) if args.simple else XRaySimulator(seed=args.seed)
        _, summary = simulate_files(args.surface, args.hidden, args.out, args.size, sim, args.max_pixels)
        print(f"wrote {', '.join(summary['files'])} and simulation.json to {args.out}")
    elif args.command == "separate":
        summary = separate(args.xray, args.visible, args.out, args.overrides, args.truth)
        print(f"wrote {', '.join(summary['files'])} and separation.json to {args.out}")
        if "scores_vs_truth" in summary:
            for k, v in summary["scores_vs_truth"].items():
                print(f"  {k:<11} r {v['r']:.3f}  PSNR {v['psnr']:.2f} dB  SSIM {v['ssim']:.3f}")
    else:
        from underpainting.data.labels import LabelSet
        from underpainting.xray.trace import write_trace

        labels = LabelSet.from_yaml(args.labels or conf_dir() / "labels" / "landscape.yaml")
        key = write_trace(args.hidden, args.out, labels, _size(args.size), args.sketch, args.max_pixels)
        print(
            f"wrote {key['backdrop']}, {key['palette_key']}, key.json{', overlay.png' if 'overlay' in key else ''} to {args.out}"
        )
    return 0
