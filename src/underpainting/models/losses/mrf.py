"""Patch-based (MRF) style loss with semantic matching, a companion of the Gram loss in `style.py`.

- Li & Wand 2016, "Combining Markov Random Fields and Convolutional Neural Networks for Image Synthesis" (CVPR),
  Eq. 2-3: E_s = Σ_l Σ_i ||Ψ_i(Φ_l(x)) − Ψ_NN(i)(Φ_l(x_s))||², where Ψ_i(Φ) is the i-th k×k patch of a feature map
  and NN(i) = argmax_j <Ψ_i(Φ(x)), Ψ_j(Φ(x_s))> / (|Ψ_i(Φ(x))|·|Ψ_j(Φ(x_s))|), the style patch with the highest
  normalised cross-correlation. Official code (chuanli11/CNNMRF `cnnmrf.lua`): relu3_1 + relu4_1, 3×3 patches, style
  patches sampled with stride 2, weight 1e-4 per layer; rotated and scaled copies of the style (paper Sec. 3.1, off in
  the official defaults).
- Champandard 2016, "Semantic Style Transfer and Turning Two-Bit Doodles into Fine Artworks", Sec. 3: the label maps of
  both images, downsampled to the layer, scaled by γ (`semantic_weight`) and concatenated to the features, take part
  in the matching (not in the loss), so sky patches match sky patches.

Features are (1, C, H, W) (one optimised image); label guides are (1, K, H, W) one-hot maps at image resolution.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from underpainting.models.losses.targets import Targets


def extract_patches(features: torch.Tensor, patch_size: int = 3, stride: int = 1) -> torch.Tensor:
    """All k×k patches of a (1, C, H, W) map, row-major, as (N, C, k, k)."""
    c = features.shape[1]
    cols = F.unfold(features, patch_size, stride=stride)  # (1, C·k², N)
    return cols[0].T.reshape(-1, c, patch_size, patch_size)


@torch.no_grad()
def nearest_patches(
    features: torch.Tensor, patches: torch.Tensor, stride: int = 1, chunk_size: int | None = None
) -> torch.Tensor:
    """For every k×k patch of `features` (1, C, H, W), the index of the patch in `patches` (N, C, k, k) with the
    highest normalised cross-correlation; returns (H', W') indices, H' = (H − k) // stride + 1.

    The correlations are one convolution of `features` with the unit-normalised patches as filters, done `chunk_size`
    filters at a time with a running maximum, so memory is chunk × H' × W' scores instead of N × H' × W'. The norm of
    the output patch is the same for every candidate, so it cannot change the argmax and is left out.
    """
    if patches.shape[0] == 0:
        raise ValueError("no style patches to match against (is the style image smaller than the patch?)")
    x = features.detach().float()
    filters = patches.detach().float()
    inv_norm = 1.0 / filters.flatten(1).norm(dim=1).clamp_min(1e-8)
    step = int(chunk_size) if chunk_size else filters.shape[0]
    best_val = best_idx = None
    with torch.autocast(device_type=x.device.type, enabled=False):  # bf16 scores would flip near-ties
        for start in range(0, filters.shape[0], step):
            w = filters[start : start + step] * inv_norm[start : start + step].view(-1, 1, 1, 1)
            val, idx = F.conv2d(x, w, stride=stride)[0].max(dim=0)
            if best_val is None:
                best_val, best_idx = val, idx
            else:
                better = val > best_val
                best_val = torch.where(better, val, best_val)
                best_idx = torch.where(better, idx + start, best_idx)
    return best_idx


def _rotate_valid(image: torch.Tensor, degrees: float, nearest: bool) -> torch.Tensor:
    """Rotate (1, C, H, W) about its centre and crop to the largest centred rectangle without empty corners."""
    from torchvision.transforms.functional import InterpolationMode, rotate

    if degrees == 0:
        return image
    h, w = image.shape[-2:]
    mode = InterpolationMode.NEAREST if nearest else InterpolationMode.BILINEAR
    out = rotate(image.float(), degrees, interpolation=mode)
    a = math.radians(abs(degrees))
    cw = int(w * math.cos(a) - h * math.sin(a))
    ch = int(h * math.cos(a) - w * math.sin(a))
    if cw < 8 or ch < 8:
        raise ValueError(f"a {degrees}° rotation leaves no valid crop of a {w}x{h} style image")
    top, left = (h - ch) // 2, (w - cw) // 2
    return out[..., top : top + ch, left : left + cw]


def rotated_and_scaled(
    image: torch.Tensor,
    labels: torch.Tensor | None = None,
    num_rotations: int = 0,
    rotation_step: float = 7.5,
    num_scales: int = 0,
    scale_step: float = 0.05,
) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """The style image (and its (1, H, W) labels) rotated by k·rotation_step degrees, k = −num_rotations..num_rotations,
    and scaled by 1 + s·scale_step, s = −num_scales..num_scales (Li & Wand 2016, Sec. 3.1: "we also use rotated and
    scaled versions of the style image"; official code steps: π/24 = 7.5° and 5 %). The original comes first."""
    out = []
    for s in sorted(range(-num_scales, num_scales + 1), key=abs):
        for r in sorted(range(-num_rotations, num_rotations + 1), key=abs):
            img = _rotate_valid(image, r * rotation_step, nearest=False)
            lab = (
                None
                if labels is None
                else _rotate_valid(labels[:, None].float(), r * rotation_step, nearest=True)
            )
            factor = 1.0 + s * scale_step
            if factor != 1.0:
                size = [max(8, round(n * factor)) for n in img.shape[-2:]]
                img = F.interpolate(img, size=size, mode="bilinear", align_corners=False, antialias=True)
                lab = None if lab is None else F.interpolate(lab, size=size, mode="nearest")
            out.append((img.clamp(-1, 1), None if lab is None else lab[:, 0].round().long()))
    return out


class MRFStyleLoss(nn.Module):
    """Li & Wand's MRF style loss, E = Σ_l w_l Σ_i ||Ψ_i(Φ_l(x)) − Ψ_NN(i)(Φ_l(x_s))||², with Champandard's semantic
    matching when label guides are given.

    Call `set_target(style_features, style_guides, content_guide)` once per pyramid level (style features of one or
    more style images, e.g. the `rotated_and_scaled` copies; their patches are pooled), then `loss(features_of_x)`.
    The nearest patches are found without gradient (`nearest_patches`) and the loss pulls each output patch towards
    its match.

    Args:
        layers / layer_weights: matched layers and their weights (None: 1 each, the official code's sum).
        patch_size: k (3: Li & Wand, Champandard).
        stride: stride of the output patches (1: every position is matched).
        style_stride: stride of the sampled style patches (2: official `target_sample_stride`).
        semantic_weight: γ, relative: 1 gives the label channels of a patch the same norm as an average style
            feature patch of that layer, so the value does not depend on the network's feature scale. Each class is
            a one-hot channel: larger γ keeps matches inside their class more strictly, 0 ignores the labels.
        chunk_size: style patches per matching convolution (memory: chunk × output positions × 4 bytes); None: all.
        num_rotations / rotation_step / num_scales / scale_step: style augmentation, see `rotated_and_scaled`.
        match_every: recompute the matches every n-th evaluation (1: every evaluation, as in the paper).
    """

    def __init__(
        self,
        layers: Sequence[str] = ("relu3_1", "relu4_1"),
        layer_weights: Sequence[float] | None = None,
        patch_size: int = 3,
        stride: int = 1,
        style_stride: int = 2,
        semantic_weight: float = 1.0,
        chunk_size: int | None = 2048,
        num_rotations: int = 0,
        rotation_step: float = 7.5,
        num_scales: int = 0,
        scale_step: float = 0.05,
        match_every: int = 1,
    ) -> None:
        super().__init__()
        layers = [str(n) for n in layers]
        if layer_weights is None:
            layer_weights = [1.0] * len(layers)
        if len(layer_weights) != len(layers) or not layers:
            raise ValueError(f"{len(layers)} MRF layers but {len(layer_weights)} layer weights")
        if patch_size < 1 or stride < 1 or style_stride < 1 or match_every < 1:
            raise ValueError("patch_size, stride, style_stride and match_every must be >= 1")
        self.layer_weights = dict(zip(layers, map(float, layer_weights), strict=True))
        self.patch_size, self.stride, self.style_stride = int(patch_size), int(stride), int(style_stride)
        self.semantic_weight, self.chunk_size = float(semantic_weight), chunk_size
        self.augment = {"num_rotations": int(num_rotations), "rotation_step": float(rotation_step),
                        "num_scales": int(num_scales), "scale_step": float(scale_step)}  # fmt: skip
        self.match_every = int(match_every)
        # per layer: the style feature patches (N, C, k, k), the loss targets, and what is matched against,
        # (N, C[+K], k, k): the features ‖ γ·labels
        # (buffers: they move with the module)
        self.patches, self.keys, self._cache = Targets(), Targets(), Targets()
        self.register_buffer("content_guide", None, persistent=False)
        self.guide_scale: dict[str, float] = {}
        self._calls = 0

    def variants(
        self, image: torch.Tensor, labels: torch.Tensor | None = None
    ) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """The style copies whose patches are pooled (just the image unless rotations/scales are configured)."""
        return rotated_and_scaled(image, labels, **self.augment)

    @property
    def semantic(self) -> bool:
        return self.content_guide is not None

    @torch.no_grad()
    def set_target(
        self,
        style_features: Sequence[Mapping[str, torch.Tensor]],
        style_guides: Sequence[torch.Tensor | None] | None = None,
        content_guide: torch.Tensor | None = None,
    ) -> None:
        """Sample the style patches of every layer. With `content_guide` (1, K, H, W) and one guide (1, K, h, w) per
        style feature set, matching is semantic; a content class no style has gets no label channel (its patches
        match any style patch: the whole-painting fallback)."""
        semantic = content_guide is not None
        if semantic and (style_guides is None or any(g is None for g in style_guides)):
            raise ValueError("semantic MRF matching needs a label guide for every style image")
        if semantic:
            present = torch.stack([g.float().sum(dim=(0, 2, 3)) > 0 for g in style_guides]).any(dim=0)
            self.content_guide = content_guide.float() * present.view(1, -1, 1, 1).to(content_guide.device)
        else:
            self.content_guide = None
        k, s = self.patch_size, self.style_stride
        patches_of, keys_of = {}, {}
        for n in self.layer_weights:
            feats, guides = [], []
            for i, f in enumerate(style_features):
                fmap = f[n].detach().float()
                if min(fmap.shape[-2:]) < k:
                    raise ValueError(f"the style image is too small for {k}x{k} patches at {n}")
                feats.append(extract_patches(fmap, k, s))
                if semantic:
                    g = F.interpolate(style_guides[i].float(), size=fmap.shape[-2:], mode="area")
                    guides.append(extract_patches(g, k, s))
            patches = torch.cat(feats)
            patches_of[n] = patches
            if semantic:
                # γ relative to the features: a full one-hot patch (norm k) gets γ × the mean style patch norm
                scale = self.semantic_weight * float(patches.flatten(1).norm(dim=1).mean()) / k
                self.guide_scale[n] = scale
                keys_of[n] = torch.cat([patches, scale * torch.cat(guides)], dim=1)
            else:
                keys_of[n] = patches
        self.patches.set(patches_of)
        self.keys.set(keys_of)
        self._cache.set({})
        self._calls = 0

    def _content_guide_at(self, name: str, size: tuple[int, int]) -> torch.Tensor:
        g = F.interpolate(self.content_guide, size=size, mode="area")
        return self.guide_scale[name] * g

    def match(self, name: str, features: torch.Tensor) -> torch.Tensor:
        """(H', W') indices of the nearest style patches of layer `name` for `features` (1, C, H, W)."""
        x = features.detach().float()
        if self.semantic:
            x = torch.cat([x, self._content_guide_at(name, tuple(x.shape[-2:]))], dim=1)
        return nearest_patches(x, self.keys[name], self.stride, self.chunk_size)

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if not self.patches:
            raise RuntimeError("call set_target(...) before computing the MRF loss")
        rematch = self._calls % self.match_every == 0 or not self._cache
        self._calls += 1
        total = features[next(iter(features))].new_zeros((), dtype=torch.float32)
        for n, w in self.layer_weights.items():
            f = features[n]
            if f.shape[0] != 1:
                raise ValueError(f"the MRF loss optimises one image at a time, got a batch of {f.shape[0]}")
            if rematch:
                self._cache[n] = self.match(n, f)
            target = self.patches[n][self._cache[n].flatten()].flatten(1)  # (L, C·k²)
            cols = F.unfold(f.float(), self.patch_size, stride=self.stride)[0].T  # (L, C·k²)
            total = total + w * (cols - target).pow(2).sum()
        return total
