"""FID feature extraction: seconds per image for each standard mode against torch-fidelity's own extractor.

    python benchmarks/fid_modes.py [--images 16] [--size 64] [--repeats 3] [--device cpu]

`clean` resizes with PIL on the CPU (clean-fid's filter), `torch_fidelity` inside the network like torch-fidelity;
the reference row is torch-fidelity's `FeatureExtractorInceptionV3` itself on the same uint8 images. Inception with
torch-fidelity's architecture and random weights (speed does not depend on the values; no download). Variants are
interleaved within each repeat, so a loaded machine slows them alike; read the ratio column.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch


def random_inception_weights(path: Path) -> None:
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    with (
        mock.patch("torch.load", return_value={}),
        mock.patch.object(FeatureExtractorInceptionV3, "load_state_dict"),
    ):
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path="-")
    torch.save(net.state_dict(), path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from underpainting.metrics.features import InceptionFeatures

    device = torch.device(a.device)
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "inception_random.pth"
        random_inception_weights(weights)
        variants = {
            "ours mode=clean": InceptionFeatures(weights, mode="clean").to(device),
            "ours mode=torch_fidelity": InceptionFeatures(weights, mode="torch_fidelity").to(device),
            "torch-fidelity extractor (reference)": FeatureExtractorInceptionV3(
                "inception-v3-compat", ["2048"], str(weights)
            ).to(device),
        }
    g = torch.Generator().manual_seed(0)
    u8 = (torch.rand(a.images, 3, a.size, a.size, generator=g) * 255).round().to(torch.uint8).to(device)
    unit = u8.float() / 127.5 - 1
    times: dict[str, list[float]] = {k: [] for k in variants}
    with torch.no_grad():
        for _ in range(a.repeats + 1):  # the first round warms up
            for name, net in variants.items():
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                net(u8) if "reference" in name else net(unit)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times[name].append((time.perf_counter() - start) / a.images)
    ref = min(times["torch-fidelity extractor (reference)"][1:])
    print(f"{a.images} images {a.size}x{a.size} -> 299x299, {torch.get_num_threads()} threads, {device}")
    print(f"| {'variant':<38} | {'s/image (best)':>14} | {'vs reference':>12} |")
    print(f"|{'-' * 40}|{'-' * 16}|{'-' * 14}|")
    for name, ts in times.items():
        best = min(ts[1:])
        print(f"| {name:<38} | {best:>14.4f} | {best / ref:>11.2f}x |")


if __name__ == "__main__":
    main()
