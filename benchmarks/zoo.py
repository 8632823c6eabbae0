"""Published checkpoints: what `underpainting.zoo` costs over the reference-style load, and what pix2pix's paper
test protocol (one image at a time, batch statistics, dropout) costs over eval mode.

    python benchmarks/zoo.py [--rounds 3] [--batch 4] [--device cpu]

Full-size files of the published layouts are written with random weights to a temporary folder; each variant is
timed in interleaved rounds (median), so a loaded machine slows all of them alike.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from underpainting.models.networks.resnet import ResnetGenerator
from underpainting.models.networks.spade import SPADEGenerator
from underpainting.models.networks.unet import UnetGenerator
from underpainting.models.pix2pix import run_with_protocol
from underpainting.zoo import junyanz, load_published, nvlabs


def published_files(folder: Path) -> dict[str, tuple[Path, Callable[[], torch.nn.Module]]]:
    """name -> (a full-size file in the reference's layout, the plain reference-style loader for it)."""
    nets = {
        "style_vangogh (resnet_9blocks)": (ResnetGenerator(), junyanz),
        "pix2pix unet_256": (UnetGenerator(), junyanz),
        "SPADE ade20k": (SPADEGenerator(151), nvlabs),
    }
    files = {}
    for name, (net, module) in nets.items():
        path = folder / f"{name.split()[0]}.pth"
        torch.save(module.to_reference(net), path)

        def plain(path=path, net=net, module=module) -> torch.nn.Module:
            # the reference's load_networks: torch.load, rename, strict load into a freshly built network
            sd = torch.load(path, map_location="cpu", weights_only=True)
            fresh = type(net)(151) if isinstance(net, SPADEGenerator) else type(net)()
            fresh.load_state_dict({module.to_project_key(k): v for k, v in sd.items()})
            return fresh.eval()

        files[name] = (path, plain)
    return files


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (path, plain) in published_files(Path(tmp)).items():
            times = {"reference-style": [], "zoo.load_published": []}
            for _ in range(args.rounds):
                times["reference-style"].append(timed(plain))
                times["zoo.load_published"].append(timed(lambda path=path: load_published(path)))
            base = statistics.median(times["reference-style"])
            for variant, ts in times.items():
                rows.append((f"load {name}", variant, statistics.median(ts), statistics.median(ts) / base))
    torch.manual_seed(0)
    device = torch.device(args.device)
    unet = UnetGenerator().to(device).eval()
    x = torch.rand(args.batch, 3, 256, 256, device=device) * 2 - 1
    times = {"eval": [], "paper": []}
    with torch.no_grad():
        run_with_protocol(unet, x[:1], "paper", 0)  # warm-up
        for _ in range(args.rounds):
            for protocol in times:
                times[protocol].append(
                    timed(lambda protocol=protocol: run_with_protocol(unet, x, protocol, 0))
                )
    base = statistics.median(times["eval"])
    for protocol, ts in times.items():
        rows.append((f"pix2pix unet_256 batch {args.batch}, 256 px", f"test_protocol={protocol}",
                     statistics.median(ts), statistics.median(ts) / base))  # fmt: skip
    print(f"\n| what | variant | seconds (median of {args.rounds}) | x first |\n| --- | --- | ---: | ---: |")
    for what, variant, seconds, ratio in rows:
        print(f"| {what} | {variant} | {seconds:.3f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
