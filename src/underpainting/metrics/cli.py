"""`python -m underpainting.metrics GENERATED REFERENCE [--content DIR] --out metrics.json`

FID/KID between two image folders, LPIPS when the files pair up by name (or against `--content` for style transfer,
which also gives ArtFID). Prints the protocol with the numbers and writes both to JSON.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from underpainting.data.images import (
    DEFAULT_MAX_PIXELS,
    DataError,
    list_images,
    load_rgb,
    pil_to_tensor,
    pixel_limit,
)
from underpainting.errors import exit_on_user_error
from underpainting.metrics import protocol
from underpainting.metrics.evaluator import Evaluator
from underpainting.metrics.features import FEATURES, build_feature
from underpainting.metrics.lpips import LPIPSNet
from underpainting.runtime.destinations import writable_folder


def _load(path: Path) -> torch.Tensor:
    return pil_to_tensor(load_rgb(path))


def _batches(groups: Sequence[Sequence[Path]], batch_size: int) -> Iterator[list[torch.Tensor]]:
    """Parallel lists of files -> lists of stacked batches; items are grouped by image size so each batch stacks."""
    by_size: dict[tuple, list[list[torch.Tensor]]] = defaultdict(list)
    for files in zip(*groups, strict=True):
        images = [_load(f) for f in files]
        key = tuple(tuple(im.shape) for im in images)
        by_size[key].append(images)
        if len(by_size[key]) == batch_size:
            yield [torch.stack(col) for col in zip(*by_size.pop(key), strict=True)]
    for items in by_size.values():
        yield [torch.stack(col) for col in zip(*items, strict=True)]


def evaluate_folders(
    generated: str | Path,
    reference: str | Path,
    content: str | Path | None = None,
    feature: str = "inception",
    weights: str | None = None,
    lpips: str | None = protocol.LPIPS_NET,
    lpips_weights: str = "imagenet",
    batch_size: int = 16,
    kid_subset_size: int = protocol.KID_SUBSET_SIZE,
    fid_mode: str = protocol.FID_MODE,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> dict:
    """Metrics between folders; see the module docstring. Returns the dict that the command writes as JSON.
    Images over `max_pixels` (`--max-pixels`) are refused, checked from their headers."""
    gen, ref = list_images(generated), list_images(reference)
    cont = list_images(content) if content else None
    notes = []
    pairs, lp_files = "reference", None
    if cont is not None:
        by_stem = {p.stem: p for p in cont}
        missing = [p.name for p in gen if p.stem not in by_stem]
        if missing:
            raise DataError(
                f"{len(missing)} generated images have no content image of the same name in {content} "
                f"(e.g. {missing[0]}); name each output after its content image"
            )
        pairs, lp_files = "source", [by_stem[p.stem] for p in gen]
    elif lpips and {p.stem for p in gen} == {p.stem for p in ref}:
        by_stem = {p.stem: p for p in ref}
        lp_files = [by_stem[p.stem] for p in gen]
    elif lpips:
        notes.append("LPIPS skipped: generated and reference file names do not pair up")
    lp_net = (
        LPIPSNet(lpips, lpips_weights, net_key="--lpips", weights_key="--lpips-weights")
        if lpips and lp_files is not None
        else None
    )
    ev = Evaluator(
        build_feature(feature, weights, fid_mode),
        lpips=lp_net,
        lpips_pairs=pairs,
        artfid=cont is not None and lp_net is not None,
        kid_subset_size=kid_subset_size,
        reference=f"folder {reference}",
    )
    with pixel_limit(max_pixels, "--max-pixels"):
        if lp_net is not None and pairs == "reference":
            for g, r in _batches([gen, lp_files], batch_size):
                ev.update(g, reference=r)
        else:
            for g, *c in _batches([gen] + ([lp_files] if lp_net is not None else []), batch_size):
                ev.update(g, source=c[0] if c else None)
            for (r,) in _batches([ref], batch_size):
                ev.update_reference(r)
    result = ev.compute()
    proto = result["protocol"]
    proto.notes += notes
    return {
        "generated": str(generated),
        "reference": str(reference),
        "content": str(content) if content else None,
        "metrics": result["metrics"],
        "protocol": proto.as_dict(),
    }


def format_result(result: dict) -> str:
    nums = ", ".join(
        f"{k}={v:.4g}" if not math.isnan(v) else f"{k}=nan" for k, v in result["metrics"].items()
    )
    return f"{nums}\n  protocol: {result['protocol']['summary']}"


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m underpainting.metrics", description=__doc__.splitlines()[0])
    p.add_argument("generated", help="folder of generated images")
    p.add_argument("reference", help="folder of reference images (real photos / the style set)")
    p.add_argument(
        "--content", help="content images named like the outputs: LPIPS(content, output) and ArtFID"
    )
    p.add_argument(
        "--feature",
        default="inception",
        choices=list(FEATURES),
        help="FID/KID features; anything but inception is a stand-in and is labelled so",
    )
    p.add_argument("--weights", help="local weights file for --feature")
    p.add_argument(
        "--fid-mode",
        default=protocol.FID_MODE,
        choices=list(protocol.FID_MODES),
        help="how images reach Inception: clean (clean-fid's default) or torch_fidelity (torch-fidelity/torchmetrics)",
    )
    p.add_argument("--lpips", default=protocol.LPIPS_NET, help="alex | vgg | none")
    p.add_argument(
        "--lpips-weights", default="imagenet", help="backbone weights: imagenet or a state_dict path"
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help="images larger than this are refused, checked from their headers (default 64 MP: 8000x8000)",
    )
    p.add_argument("--out", help="write the JSON here")
    a = p.parse_args(argv)
    if a.out:
        writable_folder(Path(a.out).parent, "--out")  # before the evaluation, not after it
    result = evaluate_folders(
        a.generated,
        a.reference,
        a.content,
        a.feature,
        a.weights,
        None if a.lpips == "none" else a.lpips,
        a.lpips_weights,
        a.batch_size,
        fid_mode=a.fid_mode,
        max_pixels=a.max_pixels,
    )
    print(format_result(result))
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(result, indent=2, allow_nan=True) + "\n")
        print(f"wrote {a.out}")
    return 0
