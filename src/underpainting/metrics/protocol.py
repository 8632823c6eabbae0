"""The one place for metric defaults, and the protocol string printed beside every number.

A FID is only comparable with another FID computed the same way: same feature extractor and weights, same resize
filter, same image counts, same reference set (Parmar et al. 2022, "On Aliased Resizing and Surprising Subtleties in
GAN Evaluation" = clean-fid). `Protocol` records all of that and `str(protocol)` is what gets printed and stored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Inception-v3 pool3 features with torch-fidelity's port of the TF 2015-12-05 graph: the weights every published
# FID/KID uses (Heusel et al. 2017; Binkowski et al. 2018).
INCEPTION_WEIGHTS_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
INCEPTION_SIZE = 299
# clean-fid: resize with an antialiasing filter (PIL-like); torch's bilinear with antialias=True matches PIL bilinear.
RESIZE_FILTER = "bilinear+antialias"
# KID: Binkowski et al. 2018 / torchmetrics defaults (100 subsets of 1000); the subset shrinks to the smaller set.
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
KID_DEGREE = 3
KID_SEED = 0
# LPIPS: Zhang et al. 2018, AlexNet backbone "lin" v0.1 heads (the reference `lpips.LPIPS(net='alex')` default).
LPIPS_NET = "alex"
# Below this many images a FID is dominated by its bias (Chong & Forsyth 2020; clean-fid uses 50k); we still report it
# but say so. Below the feature dimension the covariance is singular, which makes it worse.
FID_MIN_RELIABLE = 2048
KID_MIN = 2


@dataclass
class Protocol:
    """How a set of numbers was computed; `str()` gives the one-line form printed with them."""

    feature: str = "inception-v3 (torch-fidelity 2015-12-05 weights, pool3 2048-d)"
    standard: bool = (
        True  # False for any stand-in feature extractor: then it is not "FID" as papers report it
    )
    resize: str = f"{RESIZE_FILTER} to {INCEPTION_SIZE}x{INCEPTION_SIZE}"
    n_generated: int = 0
    n_reference: int = 0
    reference: str = "val split"
    kid_subsets: int = KID_SUBSETS
    kid_subset_size: int = KID_SUBSET_SIZE
    lpips: str = f"LPIPS v0.1 {LPIPS_NET}"
    lpips_pairs: str = "generated vs reference"
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        name = (
            "FID/KID" if self.standard else "FID/KID with STAND-IN features (not comparable to published FID)"
        )
        parts = [
            f"{name}: features={self.feature}",
            f"resize={self.resize}",
            f"n_generated={self.n_generated}",
            f"n_reference={self.n_reference}",
            f"reference={self.reference}",
            f"KID {self.kid_subsets}x{self.kid_subset_size}",
            f"{self.lpips} ({self.lpips_pairs})",
        ]
        return "; ".join(parts) + "".join(f" [{n}]" for n in self.notes)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["summary"] = str(self)
        return d


def kid_subset_size(n_generated: int, n_reference: int, requested: int = KID_SUBSET_SIZE) -> int:
    """KID's subset size, shrunk to the smaller set (torchmetrics' fixed 1000 exceeds most of our sets)."""
    return max(0, min(requested, n_generated, n_reference))


def size_notes(n_generated: int, n_reference: int, num_features: int) -> list[str]:
    """Warnings about set sizes that make FID/KID hard to interpret; they travel with the numbers."""
    notes = []
    n = min(n_generated, n_reference)
    if n < num_features:
        notes.append(
            f"FID on {n} < {num_features} images (the feature dimension): the covariance is singular and FID is "
            "strongly biased upwards; compare only with runs of the same image count, prefer KID"
        )
    elif n < FID_MIN_RELIABLE:
        notes.append(f"FID on only {n} images is biased; compare only with runs of the same image count")
    if n < 50:
        notes.append(f"KID subsets of {n} images have a large variance; read kid_std")
    return notes
