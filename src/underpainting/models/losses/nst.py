"""The objective of optimisation-based neural style transfer: named, weighted terms on VGG features.

    L(x) = α·L_content(x) + β·L_style(x) + β_mrf·E_mrf(x) + λ_tv·L_tv(x)

- L_content, L_style: Gatys, Ecker & Bethge 2016, "Image Style Transfer Using Convolutional Neural Networks" (CVPR),
  Eq. 1, 5 and 7 (`style.ContentLoss`, `style.GramStyleLoss`); with label maps the style term is guided region by
  region (Gatys, Ecker, Bethge, Hertzmann & Shechtman 2017, "Controlling Perceptual Factors in Neural Style
  Transfer", Sec. 4.1, `style.GuidedStyleLoss` with the targets of `semantic_targets`).
- E_mrf: Li & Wand 2016's patch loss, with Champandard 2016's semantic matching (`mrf.MRFStyleLoss`).
- L_tv: total variation (Mahendran & Vedaldi 2015; Johnson et al. 2016, Sec. 3.3; `style.TotalVariationLoss`).

Defaults follow the official code of Gatys et al. 2017 as recorded in pystiche_papers `gatys_et_al_2017`. The
objective is built from the config (`model.objective`) before any weights are read; the module hands it the VGG
features (`use_features`) once they are built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from underpainting.data.labels import one_hot
from underpainting.errors import UserError
from underpainting.features.vgg import VGGFeatures
from underpainting.models.losses.mrf import MRFStyleLoss
from underpainting.models.losses.style import (
    ContentLoss,
    GramStyleLoss,
    GuidedStyleLoss,
    TotalVariationLoss,
    default_layer_weights,
    gram_matrix,
    guided_gram_matrix,
    guides_at_layers,
)

# β when the config leaves it null, per input convention (features of 0..255 Caffe inputs are ~50x larger, Gram
# terms grow with the 4th power, the content term with the square):
# caffe: 1e3, pystiche_papers gatys_et_al_2017 `style_loss(score_weight=1e3)` (official code's default);
# torchvision: 1e6, the PyTorch NST tutorial's weight for the same normalisation (Gram / N, MSE, layers 1/C²).
DEFAULT_STYLE_WEIGHT = {"caffe": 1e3, "torchvision": 1e6}
# Gatys et al. Gram matrices | Li & Wand 2016 MRF patches | both, weighted
STYLE_LOSSES = ("gram", "mrf", "both")
# area: regions weighted by their share of the content | equal: pystiche's MultiRegionOperator (a plain sum)
REGION_WEIGHTINGS = ("area", "equal")


def weighted_layers(
    layers: Sequence[str], weights: Sequence[float] | None, default: Mapping[str, float], key: str
) -> dict[str, float]:
    """{layer: weight} from a config's layer list and weight list (None: `default`); one weight per layer."""
    layers = [str(n) for n in layers]
    if weights is None:
        return {n: float(default[n]) for n in layers}
    if len(weights) != len(layers):
        raise UserError(f"{len(layers)} layers but {len(weights)} `{key}`: give one weight per layer")
    return dict(zip(layers, map(float, weights), strict=True))


def semantic_targets(
    style_feats: Sequence[Mapping[str, torch.Tensor]],
    style_weights: Sequence[float],
    content_labels: torch.Tensor,
    style_labels: Sequence[torch.Tensor | None],
    layers: Sequence[str],
    arch: str,
    guide_mode: str,
    num_classes: int,
    min_region_fraction: float = 0.005,
    region_weighting: str = "area",
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list[float], list[str]]:
    """Regions and per-region Gram targets for the guided style loss (Gatys et al. 2017, Sec. 4.1, Eq. 5-6):

        A_r,l = Σ_i (w_i / Σ_j∈S_r w_j) · G_l(F_l(s_i) ∘ T_r,l(s_i)),   S_r = the styles that contain region r

    Every class covering at least `min_region_fraction` of the content becomes a region r whose target is the blend
    (by style weight w_i) of the guided Gram matrices of the same class in the style images that contain it. The
    pixels of all other classes (no counterpart in any style, or too small) form one more region, matched to the
    blend of the styles' global Gram matrices. Returns targets {layer: (R, C, C)}, output guides {layer: (1, R, h, w)},
    region weights λ_r ('area': the region's share of the content; 'equal': 1) and region names ("class <id>" /
    "global").
    """
    total_w = float(sum(style_weights))
    c_onehot = one_hot(content_labels, num_classes)  # (1, K, H, W)
    c_frac = c_onehot.mean(dim=(0, 2, 3))
    s_guides, s_frac = [], []
    for lab in style_labels:
        if lab is None:
            s_guides.append(None)
            s_frac.append(torch.zeros(num_classes))
            continue
        onehot = one_hot(lab, num_classes)
        s_guides.append(guides_at_layers(onehot, layers, arch, guide_mode))
        s_frac.append(onehot.mean(dim=(0, 2, 3)))
    globals_ = [{n: gram_matrix(f[n])[0] for n in layers} for f in style_feats]

    masks, targets, names = [], {n: [] for n in layers}, []
    rest = torch.zeros_like(c_onehot[:, 0])
    for k in range(num_classes):
        if c_frac[k] == 0:
            continue
        owners = [
            i for i in range(len(style_feats)) if s_frac[i][k] >= min_region_fraction and style_weights[i] > 0
        ]
        if c_frac[k] < min_region_fraction or not owners:
            rest += c_onehot[:, k]
            continue
        wsum = sum(float(style_weights[i]) for i in owners)
        for n in layers:
            acc = 0.0
            for i in owners:
                g = s_guides[i][n][:, k]
                # a region eroded away at this depth (guide mode 'inside') falls back to that style's global Gram
                gram = guided_gram_matrix(style_feats[i][n], g)[0] if g.sum() > 0 else globals_[i][n]
                acc = acc + float(style_weights[i]) / wsum * gram
            targets[n].append(acc)
        masks.append(c_onehot[:, k])
        names.append(f"class {k}")
    if rest.sum() > 0:
        for n in layers:
            targets[n].append(
                sum(float(w) / total_w * g[n] for w, g in zip(style_weights, globals_, strict=True))
            )
        masks.append(rest)
        names.append("global")
    region_masks = torch.stack(masks, dim=1)  # (1, R, H, W)
    if region_weighting == "area":
        weights = region_masks.mean(dim=(0, 2, 3)).tolist()
    else:
        weights = [1.0] * len(masks)
    guides = guides_at_layers(region_masks, layers, arch, guide_mode)
    return {n: torch.stack(targets[n]) for n in layers}, guides, weights, names


class NSTObjective(nn.Module):
    """L(x) = α·L_content + β·L_style + β_mrf·E_mrf + λ_tv·L_tv, each term logged under its name (the module docstring
    gives the papers); targets are prepared for one pyramid level at a time (`prepare`).

    Args:
        semantic: use the label maps (given by the module): guided Gram regions (Gatys et al. 2017, Sec. 4.1) and
            semantic MRF matching (Champandard 2016).
        content_layers / content_layer_weights: L_content's layers and weights (null: 1 each).
        content_weight: α.
        style_loss: 'gram' (Gatys et al. 2016) | 'mrf' (Li & Wand 2016) | 'both' (β·Gram + β_mrf·MRF).
        style_layers / style_layer_weights: the Gram layers and weights (null: 1/C_l², official code).
        style_weight: β (null: by the VGG's input convention, `DEFAULT_STYLE_WEIGHT`).
        guide_mode: 'simple' | 'inside' (eroded, official code) | 'all', see `style.guides_at_layers`.
        min_region_fraction: classes smaller than this share of the content use the global style.
        region_weighting: 'area' (λ_r = the region's share of the content, so the style/content balance matches
            unguided transfer) | 'equal' (pystiche's plain sum).
        mrf: partial `MRFStyleLoss` (layers, patch size, strides, semantic weight, chunking, augmentation);
            None: its defaults. Built only for style_loss 'mrf' | 'both'.
        mrf_weight: β_mrf (E_mrf sums over patches, as in the official code).
        tv_weight: λ_tv.
    """

    def __init__(
        self,
        semantic: bool = False,
        content_layers: Sequence[str] = ("relu4_2",),
        content_layer_weights: Sequence[float] | None = None,
        content_weight: float = 1.0,
        style_loss: str = "gram",
        style_layers: Sequence[str] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
        style_layer_weights: Sequence[float] | None = None,
        style_weight: float | None = None,
        guide_mode: str = "simple",
        min_region_fraction: float = 0.005,
        region_weighting: str = "area",
        mrf: Callable[..., MRFStyleLoss] | None = None,
        mrf_weight: float = 5e-6,
        tv_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if style_loss not in STYLE_LOSSES:
            raise UserError(
                f"`model.objective.style_loss` must be one of {', '.join(STYLE_LOSSES)}, got {style_loss!r}"
            )
        if region_weighting not in REGION_WEIGHTINGS:
            raise UserError(
                f"`model.objective.region_weighting` must be one of {', '.join(REGION_WEIGHTINGS)}, got "
                f"{region_weighting!r}"
            )
        content_w = weighted_layers(
            content_layers, content_layer_weights, dict.fromkeys(map(str, content_layers), 1.0),
            "model.objective.content_layer_weights",
        )  # fmt: skip
        style_w = weighted_layers(
            style_layers, style_layer_weights, default_layer_weights(list(map(str, style_layers))),
            "model.objective.style_layer_weights",
        )  # fmt: skip
        self.use_gram = style_loss in ("gram", "both")
        self.mrf = (mrf or MRFStyleLoss)() if style_loss in ("mrf", "both") else None
        self.content_loss = ContentLoss(content_w)
        self.style_loss = GuidedStyleLoss(style_w) if semantic else GramStyleLoss(style_w)
        self.tv_loss = TotalVariationLoss()
        self.content_weight, self.mrf_weight = float(content_weight), float(mrf_weight)
        self.tv_weight = float(tv_weight)
        self.style_weight = None if style_weight is None else float(style_weight)
        self.semantic, self.guide_mode = semantic, guide_mode
        self.min_region_fraction, self.region_weighting = float(min_region_fraction), region_weighting
        self.vgg: VGGFeatures | None = None
        self.regions: list[str] = []

    @property
    def layers(self) -> list[str]:
        """The VGG layers the terms read, in order of first use."""
        mrf = list(self.mrf.layer_weights) if self.mrf is not None else []
        gram = list(self.style_loss.layer_weights) if self.use_gram else []
        return list(dict.fromkeys([*self.content_loss.layer_weights, *gram, *mrf]))

    def use_features(self, vgg: VGGFeatures) -> None:
        """Compute the terms on `vgg`'s activations; a null style weight becomes its convention's default."""
        missing = [n for n in self.layers if n not in vgg.layers]
        if missing:
            raise ValueError(f"the VGG extractor does not return {missing}; build it with these layers")
        self.vgg = vgg
        if self.style_weight is None:
            self.style_weight = DEFAULT_STYLE_WEIGHT[vgg.convention]

    @torch.no_grad()
    def prepare(
        self,
        content: torch.Tensor,
        styles: Sequence[torch.Tensor],
        style_weights: Sequence[float],
        content_labels: torch.Tensor | None = None,
        style_labels: Sequence[torch.Tensor | None] = (),
        num_classes: int | None = None,
    ) -> None:
        """Compute content features and style targets (images (1, 3, H, W) in [-1, 1], labels (1, H, W))."""
        self.content_loss.set_target(self.vgg(content))
        if self.mrf is not None:
            self._prepare_mrf(styles, style_weights, content_labels, style_labels, num_classes)
        if not self.use_gram:
            return
        style_feats = [self.vgg(s) for s in styles]
        if not self.semantic:
            self.style_loss.set_target(style_feats, style_weights)
            return
        if content_labels is None or not any(s is not None for s in style_labels):
            raise UserError(
                "semantic style transfer (`model.semantic=true`) needs `data.content_labels` and `data.style_labels`"
            )
        targets, guides, weights, self.regions = semantic_targets(
            style_feats,
            style_weights,
            content_labels,
            style_labels,
            layers=list(self.style_loss.layer_weights),
            arch=self.vgg.arch,
            guide_mode=self.guide_mode,
            num_classes=num_classes or int(max(int(m.max()) for m in (content_labels, *style_labels) if m is not None)) + 1,
            min_region_fraction=self.min_region_fraction,
            region_weighting=self.region_weighting,
        )  # fmt: skip
        self.style_loss.set_target(targets, guides, weights)

    @torch.no_grad()
    def _prepare_mrf(
        self,
        styles: Sequence[torch.Tensor],
        style_weights: Sequence[float],
        content_labels: torch.Tensor | None,
        style_labels: Sequence[torch.Tensor | None],
        num_classes: int | None,
    ) -> None:
        """Style patches of every (augmented) style image with a positive weight, pooled (Li & Wand 2016); with
        `semantic`, the one-hot label maps for Champandard's semantic matching."""
        used = [i for i, w in enumerate(style_weights) if w > 0]
        labels = list(style_labels) or [None] * len(styles)
        if not self.semantic:
            variants = [v for i in used for v in self.mrf.variants(styles[i])]
            self.mrf.set_target([self.vgg(img) for img, _ in variants])
            return
        if content_labels is None or any(labels[i] is None for i in used):
            raise UserError(
                "semantic MRF matching (`model.semantic=true`, `model.objective.style_loss=mrf`) needs "
                "`data.content_labels` and a label map for every style image (`data.style_labels`)"
            )
        k = num_classes or int(max(int(m.max()) for m in (content_labels, *labels) if m is not None)) + 1
        variants = [v for i in used for v in self.mrf.variants(styles[i], labels[i])]
        self.mrf.set_target(
            [self.vgg(img) for img, _ in variants],
            [one_hot(lab, k) for _, lab in variants],
            one_hot(content_labels, k),
        )

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.vgg(image)
        terms = {"content": self.content_loss(feats)}
        if self.use_gram:
            terms["style"] = self.style_loss(feats)
        if self.mrf is not None:
            terms["mrf"] = self.mrf(feats)
        if self.tv_weight:
            terms["tv"] = self.tv_loss(image)
        terms["total"] = (
            self.content_weight * terms["content"]
            + self.style_weight * terms.get("style", 0.0)
            + self.mrf_weight * terms.get("mrf", 0.0)
            + self.tv_weight * terms.get("tv", 0.0)
        )
        return terms
