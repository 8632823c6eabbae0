"""`Evaluator`: FID, KID, LPIPS (and ArtFID) over a stream of (generated, reference, source) batches.

One feature pass per batch feeds both FID and KID. All states are torchmetrics states, so `compute()` gives the same
numbers on every DDP rank, computed over all ranks' images. Used by the in-loop callback and the folder command.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torchmetrics import SumMetric

from underpainting.metrics import protocol
from underpainting.metrics.artfid import artfid
from underpainting.metrics.features import FeatureExtractor
from underpainting.metrics.fid import FID, KID, Precomputed
from underpainting.metrics.lpips import LPIPS, LPIPSNet

PAIRS = ("reference", "source")


class Evaluator(nn.Module):
    """Accumulate image batches, then `compute()` -> {"fid", "kid", "kid_std", "lpips", "artfid"} + `protocol`.

    Args:
        feature: the FID/KID feature extractor (Inception for standard numbers; a named stand-in otherwise).
        lpips: an `LPIPSNet`, or None to skip LPIPS.
        fid, kid: switch each metric off.
        lpips_pairs: "reference" (paired models: output vs ground truth) or "source" (unpaired/NST: output vs its
            input, i.e. how much content survived).
        artfid: also report ArtFID = (1 + LPIPS) * (1 + FID); needs lpips_pairs="source".
        reference: what the reference set is, for the protocol line (e.g. "val split paintings").
    """

    def __init__(
        self,
        feature: FeatureExtractor,
        lpips: LPIPSNet | None = None,
        fid: bool = True,
        kid: bool = True,
        lpips_pairs: str = "reference",
        artfid: bool = False,
        kid_subsets: int = protocol.KID_SUBSETS,
        kid_subset_size: int = protocol.KID_SUBSET_SIZE,
        reference: str = "val split",
    ) -> None:
        super().__init__()
        if lpips_pairs not in PAIRS:
            raise ValueError(f"lpips_pairs must be one of {PAIRS}, got {lpips_pairs!r}")
        if artfid and (lpips is None or lpips_pairs != "source" or not fid):
            raise ValueError(
                "ArtFID needs FID and LPIPS between content and output: set lpips_pairs='source'"
            )
        self.feature = feature
        d = feature.num_features
        self.fid = FID(Precomputed(d)) if fid else None
        self.kid = KID(Precomputed(d), subsets=kid_subsets, subset_size=kid_subset_size) if kid else None
        self.lpips = LPIPS(lpips) if lpips is not None else None
        self.n_generated, self.n_reference = SumMetric(), SumMetric()
        self.lpips_pairs, self.artfid, self.reference = lpips_pairs, artfid, reference
        self.kid_subsets, self.kid_subset_size = kid_subsets, kid_subset_size

    @torch.no_grad()
    def update(
        self,
        generated: torch.Tensor,
        reference: torch.Tensor | None = None,
        source: torch.Tensor | None = None,
    ) -> None:
        """Add a batch. `reference` feeds the reference distribution (it need not be paired with `generated`)."""
        self.n_generated.update(torch.tensor(float(generated.shape[0]), device=generated.device))
        if self.fid is not None or self.kid is not None:
            fg = self.feature(generated).double()
            fr = self.feature(reference).double() if reference is not None else None
            for m in (self.fid, self.kid):
                if m is None:
                    continue
                m.update(fg, real=False)
                if fr is not None:
                    m.update(fr, real=True)
        if reference is not None:
            self.n_reference.update(torch.tensor(float(reference.shape[0]), device=reference.device))
        if self.lpips is not None:
            other = reference if self.lpips_pairs == "reference" else source
            if other is None:
                raise ValueError(
                    f"LPIPS against the {self.lpips_pairs} needs `{self.lpips_pairs}` images in the batch"
                )
            self.lpips.update(generated, other)

    def update_reference(self, reference: torch.Tensor) -> None:
        """Add reference-only images (e.g. a style set larger than the outputs)."""
        fr = self.feature(reference).double()
        for m in (self.fid, self.kid):
            if m is not None:
                m.update(fr, real=True)
        self.n_reference.update(torch.tensor(float(reference.shape[0]), device=reference.device))

    def protocol(self) -> protocol.Protocol:
        n_gen, n_ref = int(self.n_generated.compute()), int(self.n_reference.compute())
        return protocol.Protocol(
            feature=self.feature.name,
            standard=bool(self.feature.standard),
            resize=self.feature.resize,
            n_generated=n_gen,
            n_reference=n_ref,
            reference=self.reference,
            kid_subsets=self.kid_subsets,
            kid_subset_size=protocol.kid_subset_size(n_gen, n_ref, self.kid_subset_size),
            lpips=self.lpips.name if self.lpips is not None else "LPIPS off",
            lpips_pairs=f"generated vs {self.lpips_pairs}",
            notes=protocol.size_notes(n_gen, n_ref, self.feature.num_features)
            + (protocol.kid_notes(n_gen, n_ref, self.kid_subset_size, self.kid_subsets) if self.kid else []),
        )

    def compute(self) -> dict:
        """Numbers (NaN where a set is too small) and the protocol they were computed under."""
        proto = self.protocol()
        out: dict[str, float] = {}
        enough = min(proto.n_generated, proto.n_reference) >= 2
        if self.fid is not None:
            out["fid"] = float(self.fid.compute()) if enough else math.nan
        if self.kid is not None:
            if proto.kid_subset_size > 0:
                mean, std = self.kid.compute()
                out["kid"], out["kid_std"] = float(mean), float(std)
            else:
                out["kid"] = out["kid_std"] = math.nan
        if self.lpips is not None:
            out["lpips"] = float(self.lpips.compute())
        if self.artfid:
            out["artfid"] = artfid(out["fid"], out["lpips"])
        if not enough:
            proto.notes.append("fewer than 2 images in a set: FID undefined (NaN)")
        return {"metrics": out, "protocol": proto}

    def reset(self) -> None:
        for m in (self.fid, self.kid, self.lpips, self.n_generated, self.n_reference):
            if m is not None:
                m.reset()
