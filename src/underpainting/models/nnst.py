"""The painter: guided neural-neighbour style transfer from one or several paintings, as a tracked run.

Kolkin, Kucera, Paris, Sykora, Shechtman & Shakhnarovich 2022, "Neural Neighbor Style Transfer" (NNST; code
nkolkin13/NeuralNeighborStyleTransfer), with the region guidance of Kolkin, Salavon & Shakhnarovich 2019, "Style
Transfer by Relaxed Optimal Transport and Self-Similarity" (STROTSS, Sec. 2.3): coarse to fine, at each scale every
output hypercolumn is matched once to its nearest style hypercolumn of the classes its region draws from
(`models/losses/neighbours.py`), then the image is optimised towards those fixed targets, with STROTSS's moment term
per region (`models/losses/moments.py`). No nearest-neighbour search runs inside the gradient loop; `refresh_every`
re-matches at the finest scale, as NNST's final pass does at every step.

The only parameter is the image. One Trainer step is one optimiser step (as `NeuralStyleTransfer`), so loggers,
sample grids, progress bars and checkpoints work as for every other run; `optimise()` runs the same loop without a
Trainer (infer stage, benchmarks, tests).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn

from underpainting.data.colour import match_colour
from underpainting.data.correspondences import REGION_FALLBACKS
from underpainting.data.labels import LabelSet
from underpainting.data.nst import resize_labels, resize_to_edge
from underpainting.data.paintings import (
    Painting,
    Source,
    parse_weight,
    region_sources,
    regions_start,
    source_pixels,
)
from underpainting.errors import UserError
from underpainting.features.hypercolumns import NNST_CELL, NNST_LAYERS, cell_grid, hypercolumns, layer_stride
from underpainting.features.vgg import VGGFeatures, layer_names
from underpainting.models.losses.moments import RegionMomentLoss
from underpainting.models.losses.neighbours import (
    CellBank,
    NeuralNeighbourLoss,
    block_targets,
    centred_unit,
    guided_nearest_neighbours,
)
from underpainting.models.pyramid import CoarseToFine
from underpainting.runtime.precision import cpu_has_native_bf16

log = logging.getLogger(__name__)

COLOUR_MODES = ("none", "regions")
BF16_MODES = ("auto", "on", "off")


def use_bf16(mode: str | bool, device: torch.device) -> bool:
    """bf16 autocast for the VGG only where it is native: CUDA with bf16, or a CPU with AVX512-BF16/AMX (on AVX2-only
    CPUs oneDNN emulates it, 30-50x slower; `runtime/precision.py`)."""
    mode = {True: "on", False: "off"}.get(mode, mode)
    if mode not in BF16_MODES:
        raise UserError(f"`bf16` must be one of {', '.join(BF16_MODES)}, got {mode!r}")
    if mode != "auto":
        return mode == "on"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_native_bf16()


def source_weights(
    zeros: torch.Tensor, labels: torch.Tensor | None, sources: Sequence[Source], painting: int
) -> torch.Tensor:
    """Each position's weight as a source of a region, on painting `painting`'s `labels` (cells or pixels, the
    shape of `zeros`): a source's weight where its class is (everywhere for a whole-painting source), else 0."""
    w = zeros
    for s in sources:
        if s.index == painting:
            w = (
                torch.where(labels == s.cls, s.weight, w)
                if s.cls is not None
                else torch.full_like(w, s.weight)
            )
    return w


class NeuralNeighbourStyleTransfer(CoarseToFine, pl.LightningModule):
    """Paint a label map (or repaint a scene) from paintings by guided neural-neighbour matching, coarse to fine.

    Args:
        vgg: partial `VGGFeatures` (arch, weights, convention, pooling); the layers are filled in here.
        optimizer: partial optimiser over the image (L-BFGS, one iteration per step).
        layers: hypercolumn layers, matched together and compared one by one (NNST: relu1_1 ... relu4_3 of VGG-16).
        fine_layers: the layers compared at the finest scale (null: `layers`); fewer and shallower layers stop the
            VGG early there, where each step costs most.
        cell: pixels per hypercolumn cell (NNST: 4).
        l2_weight: weight of the relative L2 term beside the cosine (matches the features' magnitude too).
        moment_weight / moment_layers / moment_samples: STROTSS's per-region mean and covariance term.
        refresh_every: at the finest scale, re-match every this many steps (0: once per scale, NNST's hypercolumn
            regime).
        style_scale: a painting's long side at each scale = the scale's long side x this (NNST: both at one size),
            but never above `style_max_upscale` x the painting's own size (a small scan blown up only blurs).
        style_rim: the share of a painting's short side left out at each edge (frames, tape, varnish; at least a
            cell).
        margin: the image is painted with a mirrored margin of this share of its long side, cut off at the end
            (the optimiser pushes the statistics' extremes into the image's edge: a dark frame without it).
        rotations: also match the paintings turned by 90, 180, 270 degrees (NNST `flip_aug`): 0 or 3.
        style_scales: the paintings are matched at these multiples of their size at each scale (more stroke sizes
            to choose from; each copy costs matching time).
        chunk_size: output cells per block of the exact matching (memory: chunk x style cells x 4 bytes).
        colour: 'regions': after the last scale, each region's colours are matched to its sources' (Image Analogies
            colour transfer per region, `data.colour.match_colour`) | 'none'.
        colour_match: the colour transfer's method (pca | chol | sym | histogram).
        init: 'regions' (each sketch region starts from its sources' mean colour + noise, as the doodle) | 'content'
            (from the given start image: a scene, a photo).
        noise: std of the noise on the region colours.
        region_fallback: 'borrow' (a class no painting has follows `labels.borrow`) | 'global' (the whole paintings).
        min_region_fraction: a painting "has" a class covering at least this share of its label map.
        bf16: 'auto' (bf16 autocast of the VGG where native) | 'on' | 'off'.
        seed: seed of the start's noise and of the moment term's sampling.
        class_weights: for Trainer runs, per painting a {class: weight} (0: never from it) or a number, times
            `data.style_weights` (infer takes them from `style.weights`).
    """

    result_name = "painter"  # <run_dir>/painter/final.png

    def __init__(
        self,
        vgg: Callable[..., VGGFeatures],
        optimizer: Callable[..., torch.optim.Optimizer],
        layers: Sequence[str] = NNST_LAYERS,
        fine_layers: Sequence[str] | None = None,
        cell: int = NNST_CELL,
        l2_weight: float = 0.0,
        moment_weight: float = 5.0,
        moment_layers: Sequence[str] = ("relu2_1", "relu3_1", "relu4_1"),
        moment_samples: int = 1024,
        refresh_every: int = 0,
        style_scale: float = 1.0,
        style_max_upscale: float = 1.0,
        style_rim: float = 0.02,
        margin: float = 0.03,
        rotations: int = 0,
        style_scales: Sequence[float] = (1.0,),
        chunk_size: int = 1024,
        colour: str = "none",
        colour_match: str = "pca",
        init: str = "regions",
        noise: float = 0.1,
        region_fallback: str = "borrow",
        min_region_fraction: float = 0.005,
        bf16: str = "auto",
        seed: int = 0,
        class_weights: Sequence[Mapping[str, float] | float | None] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["vgg", "optimizer"])
        self.automatic_optimization = False
        self.strict_loading = (
            False  # checkpoints hold the image alone, its size the scale's (on_save_checkpoint)
        )
        self.layers = list(layers)
        self.fine_layers = list(fine_layers) if fine_layers else self.layers
        self.moment_layers = list(moment_layers) if moment_weight else []
        if colour not in COLOUR_MODES:
            raise UserError(f"`colour` must be one of {', '.join(COLOUR_MODES)}, got {colour!r}")
        if region_fallback not in REGION_FALLBACKS:
            raise UserError(
                f"`region_fallback` must be one of {', '.join(REGION_FALLBACKS)}, got {region_fallback!r}"
            )
        if init not in ("regions", "content"):
            raise UserError(f"`init` must be 'regions' or 'content', got {init!r}")
        if not style_scales or any(f <= 0 for f in style_scales):
            raise UserError(f"`style_scales` needs positive factors, got {list(style_scales)}")
        if rotations not in (0, 3):
            raise UserError(f"`rotations` is 0 or 3 (NNST's 90/180/270 degree copies), got {rotations!r}")
        missing = [n for n in self.fine_layers if n not in self.layers]
        if missing:
            raise UserError(f"`fine_layers` {missing} are not among `layers` {self.layers}")
        too_coarse = [n for n in self.layers if layer_stride(n) > 4 * cell]
        if too_coarse:
            raise UserError(
                f"layers {too_coarse} are coarser than 4 cells of {cell} px; drop them or raise `cell`"
            )
        self._make_vgg, self.optimizer_factory = vgg, optimizer
        self.vgg: VGGFeatures | None = None
        self.nn_loss = NeuralNeighbourLoss(l2_weight)
        self.moment_loss = RegionMomentLoss(self.moment_layers, moment_samples)
        self.image = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.paintings: list[Painting] = []
        self.pyramid: list[dict[str, int]] = []
        self.level, self.margin, self.edge = -1, 0, 0
        self._resumed: tuple[int, torch.Tensor] | None = (
            None  # (scale, image) from a checkpoint, until fit start
        )
        self.timings: dict[str, float] = {}
        self.last_losses: dict[str, float] = {}

    # ----------------------------------------------------------------- inputs and scales
    def build(self) -> None:
        """Build the VGG (weights loaded: a missing file fails here, before any painting)."""
        if self.vgg is None:
            wanted = set(self.layers) | set(self.moment_layers)
            layers = [n for n in layer_names(self._arch()) if n in wanted]
            self.vgg = self._make_vgg(layers=layers).to(self.image.device)

    def attach(
        self,
        content: torch.Tensor | None,
        sketch: torch.Tensor | None,
        paintings: Sequence[Painting],
        labels: LabelSet | None,
        pyramid: Sequence[Mapping[str, int]],
        enter: bool = True,
    ) -> None:
        """Set the content (1, 3, H, W: a scene or photo, the start with init='content'), the sketch (1, H, W; None:
        no guidance), the paintings and the schedule (`{edge: px, steps}` per scale, coarse to fine), then enter the
        first scale (`enter=False`: later, once the module is on its device)."""
        if not paintings:
            raise UserError("the painter needs at least one style painting")
        if content is None and sketch is None:
            raise UserError("the painter needs a sketch (label map) or a content image to paint")
        if self.hparams.init == "content" and content is None:
            raise UserError(
                "`init: content` needs a content image (a scene); a bare sketch takes `init: regions`"
            )
        self.build()
        size = sketch.shape[-2:] if sketch is not None else content.shape[-2:]
        self.sketch = sketch.long() if sketch is not None else torch.zeros(1, *size, dtype=torch.long)
        self.paintings, self.label_set = list(paintings), labels
        classes = sorted(self.sketch.unique().tolist())
        if sketch is None or all(p.labels is None for p in self.paintings):
            whole = [Source(i, None, p.weight) for i, p in enumerate(self.paintings) if p.weight > 0]
            self.sources = {k: whole for k in classes}
        else:
            borrow = labels.borrow if labels is not None and self.hparams.region_fallback == "borrow" else {}
            names = labels.names if labels is not None else None
            self.sources = region_sources(
                classes, self.paintings, borrow, names, self.hparams.min_region_fraction
            )
        if self.hparams.init == "regions":
            content = regions_start(
                self.sketch, self.paintings, self.sources, self.hparams.noise, self.hparams.seed
            )
        self.start = content.detach().float()
        self.pyramid = [{"edge": int(p["edge"]), "steps": int(p["steps"])} for p in pyramid]
        smallest = 4 * self.hparams.cell
        if not self.pyramid or any(p["edge"] < smallest or p["steps"] < 1 for p in self.pyramid):
            raise UserError(
                f"the painter's pyramid needs scales with edge >= {smallest} px and steps >= 1, got {self.pyramid}"
            )
        self.level = -1
        self.timings = {}
        if enter:
            self.enter_level(0)

    def _arch(self) -> str:
        return getattr(self._make_vgg, "keywords", {}).get("arch", "vgg19")

    def _autocast(self):
        if use_bf16(self.hparams.bf16, self.image.device):
            return torch.autocast(self.image.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def features(self, image: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """VGG activations at `layers` (relu layers), running the network only as deep as the deepest of them."""
        out = {}
        for name, x in self._forward(image, layers):
            out[name] = x
        return out

    def _forward(self, image: torch.Tensor, layers: Sequence[str]):
        """Yield (name, activation) at each of `layers` in order. The ReLUs run in place on the conv outputs: only
        relu layers are read, and a conv's backward does not need its output, so the largest maps are kept once
        (at 1024 px, hundreds of MB)."""
        wanted = set(layers)
        if any(not n.startswith("relu") for n in wanted):
            raise ValueError(f"the painter reads relu layers only, got {sorted(wanted)}")
        x = self.vgg.preprocess(image)
        with self._autocast():
            for name, module in self.vgg.body.named_children():
                x = torch.relu_(x) if isinstance(module, nn.ReLU) else module(x)
                if name in wanted:
                    yield name, x
                    wanted.discard(name)
                    if not wanted:
                        return

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        """(1, C, h, w) mirrored into this scale's margin (`margin`)."""
        return F.pad(x, [self.margin] * 4, mode="reflect") if self.margin else x

    def _tick(self, key: str, t0: float) -> None:
        self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - t0

    @torch.no_grad()
    def enter_level(self, level: int, image: torch.Tensor | None = None) -> None:
        """Resize the inputs for scale `level`, read the paintings' features, start the image from `image`, the
        previous scale's result (upsampled) or the start image, and match (NNST: coarse to fine)."""
        t0 = time.perf_counter()
        device = self.image.device
        edge = self.edge = self.pyramid[level]["edge"]
        h0, w0 = self.start.shape[-2:]
        inner = (
            max(self.hparams.cell * 4, round(h0 * edge / max(h0, w0))),
            max(self.hparams.cell * 4, round(w0 * edge / max(h0, w0))),
        )
        self.margin = min(round(self.hparams.margin * max(inner)), min(inner) - 1)
        size = (inner[0] + 2 * self.margin, inner[1] + 2 * self.margin)
        self.final = level == len(self.pyramid) - 1
        self.loss_layers = self.fine_layers if self.final else self.layers
        feats, grids, cell_labels, owners, self.style_inputs = [], [], [], [], []
        copies = [(f, k) for f in self.hparams.style_scales for k in range(self.hparams.rotations + 1)]
        for i, p in enumerate(self.paintings):
            native = max(p.image.shape[-2:])
            side = min(round(edge * self.hparams.style_scale), round(native * self.hparams.style_max_upscale))
            for factor, k in copies:  # NNST flip_aug: turned copies; and copies at other sizes
                img = resize_to_edge(p.image.float(), max(4 * self.hparams.cell, round(side * factor))).to(
                    device
                )
                lab = (
                    resize_labels(p.labels, tuple(img.shape[-2:])).to(device)
                    if p.labels is not None
                    else None
                )
                img = torch.rot90(img, k, dims=(-2, -1))
                lab = torch.rot90(lab, k, dims=(-2, -1)) if lab is not None else None
                grid = cell_grid(*img.shape[-2:], self.hparams.cell)
                feats.append({n: v.float() for n, v in self.features(img, self.vgg.layers).items()})
                grids.append(grid)
                cell_labels.append(resize_labels(lab, grid).flatten() if lab is not None else None)
                owners.append(i)
                self.style_inputs.append((img, lab, i))
        self.widths = {n: feats[0][n].shape[1] for n in self.layers}
        keys = torch.cat(
            [
                hypercolumns(f, self.layers, g, self.hparams.cell)[0].flatten(1).T
                for f, g in zip(feats, grids, strict=True)
            ]
        )
        self.keys = centred_unit(keys, inplace=True)  # centred on the paintings' mean, unit: once per scale
        self.key_weights = self._key_weights(cell_labels, grids, owners)
        self.key_classes = torch.cat([c if c is not None else torch.full((g[0] * g[1],), -1, device=device)
                                      for c, g in zip(cell_labels, grids, strict=True)])  # fmt: skip
        self.key_owners = torch.cat(
            [torch.full((g[0] * g[1],), i, device=device) for g, i in zip(grids, owners, strict=True)]
        )
        if image is None and self.level >= 0:
            image = self.image.detach()
        if image is None:  # the start at this scale's size, mirrored into the margin
            image = self._pad(
                F.interpolate(self.start.to(device), size=inner, mode="bicubic", antialias=True)
            )
        start = F.interpolate(image.float().to(device), size=size, mode="bicubic", antialias=True)
        self.image = nn.Parameter(start.clamp(-1, 1).contiguous())
        self.size, self.grid = size, cell_grid(*size, self.hparams.cell)
        self.output_labels = self._pad(resize_labels(self.sketch, inner)[None].float().to(device))[0].long()
        self.cell_labels = resize_labels(self.output_labels, self.grid).flatten()
        if self.moment_layers:
            maps = {k: self._weight_maps(src) for k, src in self.sources.items()}
            self.moment_loss.set_target(
                [{n: f[n] for n in self.moment_layers} for f in feats], maps, self.output_labels
            )
        self.bank = CellBank(feats, grids, self.loss_layers, self.hparams.cell, release=True)
        del feats
        self._tick(f"style features {edge}px", t0)
        self.generator = torch.Generator().manual_seed(int(self.hparams.seed) + level)
        self.level = level
        cells = len(self.bank)
        self.match()
        if not (self.final and self.hparams.refresh_every):
            # nothing matches again at this scale: the style's cells and features go before the optimisation
            # (at 1024 px from two paintings they are over a GB)
            self.bank = self.keys = None
        log.info("painter scale %d: %dx%d px, %d style cells, %d steps", level, size[1], size[0], cells,
                 self.pyramid[level]["steps"])  # fmt: skip

    def _key_weights(self, cell_labels, grids, owners) -> dict[int, torch.Tensor]:
        """{sketch class: (M,) weight of each style cell as a match for it} from the region sources, the paintings'
        rims left out (`_inside`). A class whose source cells all vanish at this scale (a sliver) may match its
        source paintings' every cell instead."""
        out = {}
        c = self.hparams.cell
        inner = [self._inside(gh * c, gw * c)[c // 2 :: c, c // 2 :: c].flatten().float() for gh, gw in grids]
        for k, sources in self.sources.items():
            parts = []
            for lab, (gh, gw), i, keep in zip(cell_labels, grids, owners, inner, strict=True):
                parts.append(
                    source_weights(torch.zeros(gh * gw, device=self.image.device), lab, sources, i) * keep
                )
            w = torch.cat(parts)
            if not bool((w > 0).any()):
                parts = [torch.full((gh * gw,), 1.0, device=w.device) if any(s.index == i for s in sources)
                         else torch.zeros(gh * gw, device=w.device) for (gh, gw), i in zip(grids, owners, strict=True)]  # fmt: skip
                w = torch.cat(parts)
            out[k] = w
        return out

    def _inside(self, h: int, w: int) -> torch.Tensor:
        """(h, w) bool: a painting of that size without its rim of `style_rim` x its short side (at least a cell):
        scans end in frames, tape and yellowed varnish, which no region of the output should take."""
        r = max(self.hparams.cell, round(self.hparams.style_rim * min(h, w)))
        m = torch.zeros(h, w, dtype=torch.bool, device=self.image.device)
        if h > 2 * r and w > 2 * r:
            m[r : h - r, r : w - r] = True
        else:
            m[:] = True
        return m

    def _weight_maps(self, sources: Sequence[Source]) -> list[torch.Tensor]:
        """The sources' pixel weights on each (rotated) style image of this scale, rims left out."""
        out = []
        for im, lab, i in self.style_inputs:
            m = source_weights(torch.zeros(1, *im.shape[-2:], device=im.device), lab, sources, i)
            out.append(m * self._inside(*im.shape[-2:]))
        return out

    @torch.no_grad()
    def match(self) -> None:
        """Replace every output hypercolumn by its nearest allowed style hypercolumn; fix the layer targets. Each
        layer is reduced to the cell grid as soon as the VGG reaches it (at 1024 px the full maps are a GB)."""
        t0 = time.perf_counter()
        starts, c = {}, 0
        for n in self.layers:  # each layer's channels in the hypercolumn
            starts[n], c = c, c + self.widths[n]
        queries = torch.empty(1, c, *self.grid, device=self.image.device)
        for name, x in self._forward(self.image.detach(), self.layers):
            queries[:, starts[name] : starts[name] + self.widths[name]] = hypercolumns(
                {name: x}, [name], self.grid, self.hparams.cell
            )
        queries = centred_unit(queries[0].flatten(1).T, inplace=True)  # NNST: centred on the output's mean
        self.indices = guided_nearest_neighbours(
            queries, self.cell_labels, self.keys, self.key_weights, self.hparams.chunk_size
        )
        del queries
        self.nn_loss.set_target(block_targets(self.bank, self.indices, self.grid, self.loss_layers))
        self._tick(f"matching {self.edge}px", t0)

    # ----------------------------------------------------------------- optimisation
    def objective(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """The loss terms, each layer's added as soon as the VGG reaches it: autograd then makes a layer's feature
        gradient when its backward gets there, not every layer's at the start of the backward (at 1024 px in fp32,
        about 1 GB less at the peak)."""
        if not self.nn_loss.units:
            raise RuntimeError(
                "the painter has no targets: `attach(...)` (or a Trainer's fit) enters a scale first"
            )
        neighbours, moments = [], []
        for name, x in self._forward(image, list(dict.fromkeys([*self.loss_layers, *self.moment_layers]))):
            if name in self.nn_loss.units:
                neighbours.append(self.nn_loss.layer_term(name, x))
            if name in self.moment_layers:
                moments.append(self.moment_loss.layer_term(name, x, self.generator))
        terms = {"neighbours": sum(neighbours)}
        if self.moment_layers:
            terms["moments"] = sum(moments)
        terms["total"] = terms["neighbours"] + self.hparams.moment_weight * terms.get("moments", 0.0)
        return terms

    def _step(
        self, optimizer, backward: Callable[[torch.Tensor], None], step: int
    ) -> dict[str, torch.Tensor]:
        every, in_level = int(self.hparams.refresh_every), self.step_in_level(step)
        if self.final and every and in_level and in_level % every == 0:
            self.match()
        terms: dict[str, torch.Tensor] = {}

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            out = self.objective(self.image)
            backward(out["total"])
            terms.update({k: v.detach() for k, v in out.items()})
            return out["total"].detach()

        t0 = time.perf_counter()
        optimizer.step(closure=closure)
        with torch.no_grad():
            self.image.clamp_(-1, 1)
        self._tick(f"optimisation {self.edge}px", t0)
        return terms

    @torch.no_grad()
    def output(self) -> torch.Tensor:
        """The current image in [-1, 1]; at the last scale with colour='regions', each region recoloured to its
        sources' colour statistics."""
        m = self.margin
        image = self.image.detach().float().clamp(-1, 1)
        image = image[..., m : image.shape[-2] - m, m : image.shape[-1] - m].contiguous()
        if self.hparams.colour == "none" or not self.final:
            return image
        out = image.clone()
        labels = self.output_labels[
            ..., m : self.output_labels.shape[-2] - m, m : self.output_labels.shape[-1] - m
        ]
        for k, sources in self.sources.items():
            sel = labels[0] == k
            target, _ = source_pixels(sources, self.paintings)
            if int(sel.sum()) < 2 or target.shape[1] < 2:
                continue
            region = image[0][:, sel][None, :, None]
            out[0][:, sel] = match_colour(
                region, target.to(image.device)[None, :, None], self.hparams.colour_match
            )[0, :, 0]
        return out

    # ----------------------------------------------------------------- Trainer-driven runs
    def setup(self, stage: str) -> None:
        if self.pyramid:
            return
        dm = self.trainer.datamodule
        if not hasattr(dm, "pyramid"):
            raise UserError(
                f"model=nnst needs a sketch and paintings, not {type(dm).__name__}: add `data=doodle data.sketch=<png> "
                "data.style=[p.jpg] data.style_labels=[p_labels.png]` (or use `experiment=nnst`)"
            )
        dm.setup(stage)
        problem = dm.problem
        extra = list(self.hparams.class_weights or [None] * len(problem.styles))
        if len(extra) != len(problem.styles):
            raise UserError(
                f"{len(problem.styles)} paintings in `data.style` but {len(extra)} `model.class_weights`: give one "
                "{class: weight} per painting (or none)"
            )
        paintings = []
        for i, (image, lab, w, cw) in enumerate(
            zip(problem.styles, problem.style_labels, problem.style_weights, extra, strict=True)
        ):
            default, per_class = parse_weight(cw, problem.labels, f"`model.class_weights[{i}]`")
            per_class = {k: float(w) * v for k, v in per_class.items()}
            name = Path(dm.style[i]).stem if i < len(getattr(dm, "style", [])) else f"style {i}"
            paintings.append(Painting(image, lab, name, float(w) * default, per_class))
        # Lightning calls `setup` before it moves the module to its device: the matching and every target it
        # builds wait for `on_fit_start`, or they would stay on the CPU (plain dicts, the VGG's outputs)
        self.attach(
            problem.content, problem.content_labels, paintings, problem.labels, dm.pyramid, enter=False
        )

    def on_fit_start(self) -> None:
        if self.level < 0 and self.pyramid:
            level, image = self._resumed or (0, None)
            self.enter_level(level, image=None if image is None else image.to(self.device))
            # a fresh optimiser over the new image (its state is restored after this hook on resume)
            self.trainer.strategy.optimizers = [self.configure_optimizers()]

    def training_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        opt = self.optimizers()
        terms = self._step(opt, self.manual_backward, self.global_step)
        self.last_losses = {k: float(v) for k, v in terms.items()}
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, on_step=True)
        self.log("train/loss", terms["total"], prog_bar=True, on_step=True)
        self.log("painter/scale", float(self.level), prog_bar=True, on_step=True)
        return {"train/objective": terms["total"]}

    def sample_images(self, batch=None) -> dict[str, torch.Tensor]:
        """Sample grid columns: the sketch, the first painting, the current image, at the image's size."""
        out = self.output()
        size = out.shape[-2:]
        cols = {}
        if self.label_set is not None:
            cols["sketch"] = self.label_set.colourise(resize_labels(self.sketch, tuple(size))).to(out.device)
        for i, p in enumerate(self.paintings[:2]):
            cols[f"painting {i}"] = F.interpolate(
                p.image.float(), size=size, mode="bilinear", antialias=True
            ).to(out.device)
        cols["painted"] = out
        return {k: v.clamp(-1, 1) for k, v in cols.items()}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # The frozen VGG and the style features are rebuilt from the config and inputs; keep the image and scale.
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k == "image"}
        checkpoint["painter_level"] = self.level

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        image = checkpoint["state_dict"].get("image")
        if image is None:
            return
        if self.pyramid:  # the scale is entered on the module's device in `on_fit_start`
            self._resumed = (int(checkpoint.get("painter_level", 0)), image.detach().clone())
        self.image = nn.Parameter(torch.zeros_like(image))
