"""`python -m underpainting.zoo list | download NAME... | info SRC | convert SRC --out FILE | paint PHOTOS --model NAME`
(see docs/pretrained.md)."""

from __future__ import annotations

import argparse
import sys

import torch
import yaml

from underpainting.errors import UserError, exit_on_user_error
from underpainting.zoo.download import FAMILIES, cache_dir, download, resolve
from underpainting.zoo.loader import convert, read_published


def _options(pairs: list[str]) -> dict:
    """`--option num_upsampling_layers=more` -> {"num_upsampling_layers": "more"} (values read as YAML scalars)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UserError(f"--option {pair!r}: write it as key=value, e.g. --option dataset_mode=coco")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m underpainting.zoo", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the published names and where the cache keeps them")
    d = sub.add_parser("download", help="fetch CycleGAN/pix2pix generators into the cache")
    d.add_argument("names", nargs="+", help="e.g. style_vangogh, pix2pix/facades_label2photo")
    d.add_argument("--mirror", help="a host serving the same paths (default: the reference's)")
    for name, help_ in (("info", "what a file holds"), ("convert", "write a file infer.py and export read")):
        c = sub.add_parser(name, help=help_)
        c.add_argument("src", help="a .pth, a SPADE checkpoints folder, or a published name in the cache")
        c.add_argument("--source", default="auto", choices=("auto", "junyanz", "nvlabs"))
        c.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="reference option")
        if name == "convert":
            c.add_argument("--out", required=True, help="e.g. style_vangogh.ckpt")
    t = sub.add_parser(
        "paint", help="photos -> paintings with published CycleGAN painters, one contact sheet"
    )
    t.add_argument("photos", help="a photo or a folder of photos")
    t.add_argument("--model", action="append", required=True, help="style_vangogh, a .pth, ... (repeatable)")
    t.add_argument(
        "--out", default="outputs/zoo_paint", help="folder for the paintings and contact_sheet.png"
    )
    t.add_argument("--max-side", type=int, default=512, help="paint at most this many px on the long side")
    t.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return p


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "list":
        print(f"cache: {cache_dir()}  (set UNDERPAINTING_HOME to move it)")
        for family, names in FAMILIES.items():
            how = "manual download (docs/pretrained.md)" if family == "spade" else "download"
            print(f"{family} ({how}): {', '.join(names)}")
    elif args.command == "download":
        for name in args.names:
            print(download(name, host=args.mirror))
    elif args.command == "paint":
        from underpainting.zoo.paint import paint_photos

        print(paint_photos(args.photos, args.model, args.out, args.max_side, args.device))
    else:
        src = resolve(args.src, allow_download=False)
        options = _options(args.option)
        if args.command == "info":
            print(read_published(src, args.source, device="meta", **options).summary())
        else:
            print(convert(src, args.out, args.source, **options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
