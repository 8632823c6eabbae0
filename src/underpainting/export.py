"""Exporting a trained model's generators alone, for `infer.py` or as the reference code's files.

Every checkpoint written by `train.py` carries its resolved config (`underpainting_config`), so a generator can be
rebuilt without the command line that trained it: `python -m underpainting.export <ckpt> [out_dir]` writes one
small file per generator (e.g. `G_BA.pt`, photo -> painting) that `checkpoints.load_exported` reads back.

`--format junyanz` (CycleGAN, pix2pix) or `--format nvlabs` (SPADE) writes them instead as the reference code's
`latest_net_G*.pth`, which its `test.py` loads, and prints that command. `--test-protocol paper|eval` records how
pix2pix is to be run at test time (default: the model's `test_protocol`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from torch import nn

from underpainting.checkpoints import build_model, write
from underpainting.errors import UserError, exit_on_user_error
from underpainting.zoo import junyanz, nvlabs


def exportable_names(model: nn.Module) -> tuple[str, ...]:
    return tuple(getattr(model, "exportable", ()))


def _protocol(model: nn.Module, test_protocol: str | None) -> str | None:
    """The test protocol to record: the caller's, else the model's own (pix2pix); None for models without one."""
    own = getattr(model, "hparams", {}).get("test_protocol")
    if test_protocol is not None and test_protocol not in ("paper", "eval"):
        raise UserError(f"--test-protocol must be paper or eval, got {test_protocol!r}")
    return test_protocol or own


def export_generators(
    path: str | Path, out_dir: str | Path | None = None, test_protocol: str | None = None
) -> list[Path]:
    """Write each of the model's `exportable` networks as {name, config, labels, state_dict[, test_protocol]}."""
    model, cfg = build_model(path)
    out_dir = Path(out_dir) if out_dir is not None else Path(path).parent.parent / "export"
    protocol = _protocol(model, test_protocol)
    written = []
    for name in exportable_names(model):
        net = getattr(model, name)
        payload = {
            "name": name,
            "config": cfg["model"][name],
            "labels": cfg.get("labels"),
            "state_dict": net.state_dict(),
            **({"test_protocol": protocol} if protocol else {}),
        }
        written.append(write(payload, out_dir / f"{name}.pt"))
    return written


# The reference's file names: CycleGAN G_A is A -> B (our G_AB), G_B is B -> A (our G_BA); others save `G`.
REFERENCE_NAMES = {"G_AB": "G_A", "G_BA": "G_B", "G": "G"}


def export_reference(
    path: str | Path,
    out_dir: str | Path | None = None,
    fmt: str = "junyanz",
    test_protocol: str | None = None,
) -> tuple[list[Path], list[str]]:
    """Write the generators as the reference's `save_networks` would (`<out_dir>/<fmt>/latest_net_G*.pth`), and
    return the files and the reference `test.py` commands that load them."""
    if fmt not in ("junyanz", "nvlabs"):
        raise UserError(f"--format must be underpainting, junyanz or nvlabs, got {fmt!r}")
    model, _ = build_model(path)
    base = Path(out_dir) if out_dir is not None else Path(path).parent.parent / "export"
    dest_dir = base / fmt
    eval_mode = _protocol(model, test_protocol) == "eval"
    written, commands = [], []
    for name in (n for n in exportable_names(model) if n in REFERENCE_NAMES):
        net, ref = getattr(model, name), REFERENCE_NAMES[name]
        if fmt == "junyanz":
            options, state = junyanz.reference_options(net), junyanz.to_reference(net)
            suffix = ref[1:]  # "_A", "_B" or ""
            commands.append(junyanz.reference_command(options, str(base), fmt, suffix, eval_mode))
        else:
            hp = model.hparams
            options = nvlabs.reference_options(
                net, len(model.labels), hp.get("contain_dontcare_label", False), hp.get("use_instance", False)
            )
            state = nvlabs.to_reference(net)
            commands.append(nvlabs.reference_command(options, str(base), fmt))
        written.append(write(state, dest_dir / f"latest_net_{ref}.pth"))
    return written, commands


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m underpainting.export", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="a train.py checkpoint (last.ckpt)")
    p.add_argument("out_dir", nargs="?", help="default: <run>/export")
    p.add_argument("--format", default="underpainting", choices=("underpainting", "junyanz", "nvlabs"))
    p.add_argument(
        "--test-protocol", choices=("paper", "eval"), help="pix2pix at test time (default: the model's)"
    )
    return p


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        _parser().print_usage()
        return 2
    try:
        opts = _parser().parse_args(args)
    except SystemExit as e:  # -h, or a bad flag (argparse has printed why)
        return int(e.code or 0)
    if opts.format == "underpainting":
        for p in export_generators(opts.checkpoint, opts.out_dir, opts.test_protocol):
            print(p)
        return 0
    written, commands = export_reference(opts.checkpoint, opts.out_dir, opts.format, opts.test_protocol)
    for p in written:
        print(p)
    for c in commands:
        print(f"reference: {c}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
