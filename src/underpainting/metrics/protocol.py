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
INCEPTION_DIMS = 2048  # pool3; the 64/192/768-d taps exist too but no published FID uses them
# How images reach Inception's 299x299 input. Only these two pipelines give FIDs that match the standard tools:
# - "clean": clean-fid's default (Parmar et al. 2022, `mode="clean"`): uint8 -> float, PIL bicubic per channel
#   (antialiased), clipped to [0, 255].
# - "torch_fidelity": torch-fidelity's (and torchmetrics' `antialias=False`) TF1-style bilinear resize inside the
#   network, no antialiasing: the pipeline of most published GAN FIDs.
FID_MODES = {
    "clean": "clean-fid mode=clean (PIL bicubic on float, antialiased)",
    "torch_fidelity": "torch-fidelity (TF1-style bilinear, no antialias)",
}
FID_MODE = "clean"  # clean-fid's recommendation: aliased resizing moves FID by several points
# Stand-in extractors (not standard anyway) resize with torch's antialiased bilinear.
RESIZE_FILTER = "bilinear+antialias"
# KID: Binkowski et al. 2018 / torch-fidelity defaults: 100 subsets of 1000, cubic kernel, subsets drawn with
# numpy's RandomState(2020).choice exactly as torch-fidelity does, so the same features give torch-fidelity's KID.
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
KID_DEGREE = 3
KID_SEED = 2020
# LPIPS: Zhang et al. 2018, AlexNet backbone "lin" v0.1 heads (the reference `lpips.LPIPS(net='alex')` default).
LPIPS_NET = "alex"
# Below this many images a FID is dominated by its bias (Chong & Forsyth 2020; clean-fid uses 50k); we still report it
# but say so. Below the feature dimension the covariance is singular, which makes it worse.
FID_MIN_RELIABLE = 2048
# A KID subset needs 2 images; subsets of half the smaller set (see `kid_subset_size`) need 4.
KID_MIN = 4


@dataclass
class Protocol:
    """How a set of numbers was computed; `str()` gives the one-line form printed with them."""

    feature: str = "inception-v3 (torch-fidelity 2015-12-05 weights, pool3 2048-d)"
    standard: bool = (
        True  # only Inception pool3 through one of FID_MODES; stand-ins are not "FID" as papers mean it
    )
    resize: str = f"{FID_MODES[FID_MODE]} to {INCEPTION_SIZE}x{INCEPTION_SIZE}"
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
            f"FID/KID, standard: {self.resize.split(' to ')[0]}"
            if self.standard
            else "FID/KID with STAND-IN features (not comparable to published FID)"
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
    """The subset size KID uses: `requested` when both sets have that many images (torch-fidelity raises
    otherwise); else half the smaller set, so the subsets really differ and `kid_std` measures their spread
    (subsets as large as the set are all the same set: std ~1e-16). 0 when KID is undefined (< KID_MIN images)."""
    n = min(n_generated, n_reference)
    if n >= requested:
        return requested
    return n // 2 if n >= KID_MIN else 0


def higher_is_better(name: str) -> bool:
    """Direction of a logged number, for "best" values: PSNR/SSIM/accuracy/IoU go up, distances and losses down."""
    leaf = name.rsplit("/", 1)[-1].lower()
    return leaf.startswith(
        ("psnr", "ssim", "acc", "iou", "miou", "precision", "recall", "is_", "sketches_ok")
    )


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
    return notes


def kid_notes(n_generated: int, n_reference: int, requested: int, subsets: int) -> list[str]:
    """What the KID subsets were, when they are not the requested ones."""
    n, m = min(n_generated, n_reference), kid_subset_size(n_generated, n_reference, requested)
    if m == 0:
        return [f"KID needs at least {KID_MIN} images per set, got {n}: KID undefined (NaN)"]
    if m < requested:
        return [
            f"KID: {n} images, fewer than the subset size {requested}: {subsets} subsets of {m} (half the "
            f"smaller set) instead; kid_std is the spread of {m}-image estimates (KID is unbiased, so the mean "
            "stays comparable)"
        ]
    return []
