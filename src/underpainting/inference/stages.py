"""The two stages of sketch inference, each built from `conf/infer/stage{1,2}/*.yaml`.

Stage 1 (sketch -> scene): `GeneratorScene` (a trained SPADE or pix2pix checkpoint, or a published one read by
`underpainting.zoo`) or `ProceduralScene` (the synthetic renderer, no learned model, labelled as such on every
sheet).
Stage 2 (scene -> painting): `CycleGANPainting` (photo -> painting generator); the stages that optimise an image
(NST, the doodle) are in `inference/painting.py`.

Stages are cheap to construct; `setup(labels, device)` loads checkpoints and checks them against the config, so a
missing or mismatched checkpoint is reported before any sketch is processed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from underpainting.checkpoints import load_exported, load_trained, read, suggest_checkpoints
from underpainting.data.labels import LabelSet
from underpainting.data.paintings import Painting
from underpainting.data.synthetic import PHOTO_COLOURS, SyntheticLandscapes
from underpainting.errors import UserError, WeightsError
from underpainting.models.pix2pix import protocol_mode
from underpainting.models.tiling import run_large

log = logging.getLogger(__name__)


@dataclass
class Style:
    """An optional style painting (1, 3, H, W) in [-1, 1] with its label map (1, H, W), and a display name;
    `paintings`: every painting of `style.paintings=[...]` (the painter's sources; `image` is the first)."""

    image: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    name: str = ""
    paintings: tuple[Painting, ...] = ()


# ------------------------------------------------------------------------------------------- checkpoint loading
def missing_checkpoint_error(
    key: str, train_command: str, targets: Sequence[str], published: str = ""
) -> UserError:
    hint = suggest_checkpoints(targets)
    found = f" Found: {', '.join(str(p) for p in hint)}." if hint else ""
    return UserError(
        f"`{key}` is not set: no checkpoint for this stage. Train one with `{train_command}` and pass "
        f"`{key}=outputs/train/<run>/checkpoints/last.ckpt` (no weights are shipped with the repo).{found}{published}"
    )


def folder_given(key: str, path: Path, model: str, files: str) -> WeightsError:
    """A folder where a stage takes one file (only SPADE's published checkpoints come as a folder)."""
    found = sorted(p.name for p in path.iterdir() if p.suffix in (".ckpt", ".pth"))[:5]
    holds = f"; it holds {', '.join(found)}" if found else ""
    return WeightsError(f"`{key}`={path} is a folder, but this {model} stage takes one file: {files}{holds}")


def find_published(checkpoint: str, source: str, options: dict | None, download: bool):
    """A published generator (`underpainting.zoo`: .pth, SPADE folder, model name, converted file) or None."""
    from underpainting.zoo import find_published as find

    return find(checkpoint, source, download, **dict(options or {}))


def check_output(image: torch.Tensor, source: str, what: str) -> torch.Tensor:
    """A stage's output must be a picture: nan/inf or one flat colour means a broken checkpoint (a diverged run
    paints black and used to report `ok`)."""
    if not torch.isfinite(image).all():
        raise WeightsError(
            f"{source}: the {what} holds nan/inf values: the checkpoint is broken (its training diverged?); use an "
            "earlier checkpoint of that run"
        )
    flat = image.float().flatten(-2).std(-1) < 1e-5  # per channel
    if bool(flat.all()):
        colour = [round(float(v), 3) for v in image.float().flatten(-2).mean(-1).flatten()[:3]]
        raise WeightsError(
            f"{source}: the {what} is one flat colour ({colour} in [-1, 1]) whatever the input: the checkpoint is "
            "broken (its training diverged or collapsed); use an earlier checkpoint of that run"
        )
    return image


def _probe_labels(labels: LabelSet, size: int = 64) -> torch.Tensor:
    """A small sketch with three regions, to try a stage-1 generator on before any real sketch."""
    ids = torch.full((1, size, size), labels.id("sky") if "sky" in labels.names else 0, dtype=torch.long)
    ids[:, size // 2 :] = labels.id("grass") if "grass" in labels.names else min(1, len(labels) - 1)
    ids[:, size // 4 : size // 2, size // 4 : size // 2] = len(labels) - 1
    return ids


def _resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    kw = {} if mode == "nearest" else {"align_corners": False, "antialias": mode != "bicubic"}
    return F.interpolate(x.float(), size=size, mode=mode, **kw)


def _scaled_size(h: int, w: int, scale: float) -> tuple[int, int]:
    return max(8, round(h * scale)), max(8, round(w * scale))


# ------------------------------------------------------------------------------------------------------ stage 1
class ProceduralScene:
    """Stage 1 without a learned model: the synthetic generator's photo renderer applied to the sketch's label map
    (classes it does not render keep their palette colour). Honest baseline and offline demo; not SPADE."""

    def __init__(self, name: str = "scene (procedural, no model)", seed: int = 0) -> None:
        self.name, self.seed = name, seed

    def setup(self, labels: LabelSet, device: torch.device) -> None:
        self.labels = labels

    @torch.no_grad()
    def __call__(self, labels: torch.Tensor, style: Style) -> list[torch.Tensor]:
        renderer = SyntheticLandscapes(self.labels, tuple(labels.shape))
        photo = renderer.photo(labels, torch.Generator().manual_seed(self.seed))
        known = torch.zeros_like(labels, dtype=torch.bool)
        for cls in PHOTO_COLOURS:
            known |= labels == self.labels.id(cls)
        return [torch.where(known[None], photo, self.labels.colourise(labels))]


class GeneratorScene:
    """Stage 1 from a trained label -> image checkpoint: SPADE (`SPADEModel`) or pix2pix (`Pix2Pix`).

    Args:
        checkpoint: a `train.py` checkpoint of one of `targets`.
        targets: LightningModule classes this stage accepts (`_target_` strings).
        train_command: the command that trains one, quoted when `checkpoint` is unset.
        num_styles: scenes per sketch when SPADE has its style encoder (z ~ N(0, I) each); 1 otherwise.
        style_image: with the encoder, a photo whose look the first scene takes (its encoded mean z).
        tile / overlap: tiling for sketches larger than `tile` px (with the encoder: tiles of its crop size).
        scale: run the generator on the label map resized by this factor (e.g. training size / sketch size, so
            regions have the size the model learnt), then resize the scene back to the sketch's size.
        source / options / download: for published files (`underpainting.zoo`): junyanz, nvlabs or auto; the
            reference's option names; fetch a model name missing from the cache.
        test_protocol: pix2pix's "paper" (dropout on, test-image statistics) or "eval"; None: the checkpoint's.
    """

    def __init__(
        self,
        checkpoint: str | None,
        targets: Sequence[str],
        train_command: str,
        name: str = "scene",
        num_styles: int = 1,
        style_image: str | None = None,
        tile: int = 512,
        overlap: int = 128,
        seed: int = 0,
        key: str = "stage1.checkpoint",
        scale: float = 1.0,
        source: str = "auto",
        options: dict | None = None,
        download: bool = True,
        test_protocol: str | None = None,
    ) -> None:
        self.scale = float(scale)
        self.source, self.options, self.download = source, options, download
        self.test_protocol = test_protocol
        self.checkpoint, self.targets, self.train_command = checkpoint, list(targets), train_command
        self.name, self.num_styles, self.style_image = name, num_styles, style_image
        self.tile, self.overlap, self.seed, self.key = tile, overlap, seed, key

    def setup(self, labels: LabelSet, device: torch.device) -> None:
        if not self.checkpoint:
            published = " Or a published SPADE: `stage1.checkpoint=<checkpoints>/ade20k_pretrained` (docs/pretrained.md)."
            raise missing_checkpoint_error(self.key, self.train_command, self.targets, published)
        self.labels, self.device = labels, device
        if Path(self.checkpoint).is_dir() and "underpainting.models.spade.SPADEModel" not in self.targets:
            files = f"a train.py checkpoint (e.g. {Path(self.checkpoint) / 'last.ckpt'}) or a published .pth"
            raise folder_given(self.key, Path(self.checkpoint), self.name, files)
        if (pub := find_published(self.checkpoint, self.source, self.options, self.download)) is not None:
            from underpainting.zoo.scene import published_scene

            self.module = published_scene(pub, labels, self.targets, self.key).to(device)
        else:
            self.module = load_trained(self.checkpoint, self.targets, labels, self.key).to(device)
        self.protocol = self.test_protocol or getattr(self.module.hparams, "test_protocol", "eval")
        if getattr(self.module.hparams, "use_instance", False):
            raise WeightsError(
                f"{self.checkpoint} was trained with instance maps (model.use_instance=true); sketches have none"
            )
        self.G = self.module.G
        self.encoder = getattr(self.module, "E", None)
        self.style_z = None
        if self.style_image:
            if self.encoder is None:
                raise UserError(
                    f"`stage1.style_image` needs a SPADE checkpoint with the style encoder; {self.checkpoint} has none"
                )
            from underpainting.data.images import load_rgb, pil_to_tensor

            style = pil_to_tensor(load_rgb(self.style_image))[None]
            self.style_z, _ = self.module.encode_style(style.to(device))
        self(
            _probe_labels(labels, self.G.crop_size[0] if self.encoder is not None else 64)[0], Style()
        )  # checked

    def condition(self, ids: torch.Tensor) -> torch.Tensor:
        """The generator's input for (1, H, W) ids: SPADE's one-hot semantics or pix2pix's colour/one-hot map."""
        if hasattr(self.module, "semantics"):
            return self.module.semantics({"label": ids})
        return self.module.condition(ids)

    def style_codes(self) -> list[torch.Tensor | None]:
        if self.encoder is None:
            return [None]
        g = torch.Generator().manual_seed(int(self.seed))
        codes = [self.style_z] if self.style_z is not None else []
        while len(codes) < max(1, self.num_styles):
            codes.append(torch.randn(1, self.G.z_dim, generator=g).to(self.device))
        return codes

    @torch.no_grad()
    def __call__(self, labels: torch.Tensor, style: Style) -> list[torch.Tensor]:
        h, w = labels.shape[-2:]
        small = _resize(labels[None, None], _scaled_size(h, w, self.scale), "nearest")[:, 0].long()
        cond = self.condition(small.to(self.device))
        stride = int(getattr(self.G, "scale", getattr(self.G, "stride", 1)))
        fixed = self.encoder is not None  # z is projected to a fixed crop size: tiles of exactly that size
        tile = self.G.crop_size[0] if fixed else self.tile
        overlap = min(self.overlap, tile // 4) if fixed else self.overlap
        scenes = []
        for z in self.style_codes():

            def fn(c: torch.Tensor, z=z) -> torch.Tensor:
                return self.G(c, z) if z is not None else self.G(c)

            # pix2pix's paper protocol: dropout on, batch norm with this sketch's own statistics
            with protocol_mode(self.G, self.protocol, self.seed):
                out = run_large(fn, cond, net=self.G, tile=tile, overlap=overlap, multiple=stride,
                                fixed_size=fixed, stats_mode="nearest")  # fmt: skip
            check_output(out, self.checkpoint, "scene")
            scenes.append(_resize(out.cpu(), (h, w), "bicubic")[0].clamp(-1, 1))
        return scenes


# ------------------------------------------------------------------------------------------------------ stage 2
class CycleGANPainting:
    """Stage 2: a CycleGAN generator (photo -> painting, `G_BA` by default) applied to the scene, tiled when large
    (`scale`: run at this fraction of the scene's size, then resize back, as for `GeneratorScene`).

    `checkpoint` is a `train.py` checkpoint, a generator exported by `python -m underpainting.export`, or a
    published junyanz generator (`style_vangogh`, a `.pth`, or a `python -m underpainting.zoo convert` file)."""

    TARGETS = ("underpainting.models.cyclegan.CycleGAN",)

    def __init__(
        self,
        checkpoint: str | None,
        name: str = "cyclegan",
        generator: str = "G_BA",
        tile: int = 512,
        overlap: int = 128,
        stats_max_side: int = 1024,
        key: str = "stage2.cyclegan.checkpoint",
        train_command: str = "python train.py experiment=quickstart",
        scale: float = 1.0,
        source: str = "auto",
        options: dict | None = None,
        download: bool = True,
    ) -> None:
        self.scale = float(scale)
        self.source, self.options, self.download = source, options, download
        self.checkpoint, self.name, self.generator = checkpoint, name, generator
        self.tile, self.overlap, self.stats_max_side, self.key = tile, overlap, stats_max_side, key
        self.train_command = train_command

    def setup(self, labels: LabelSet, device: torch.device) -> None:
        if not self.checkpoint:
            published = (
                " Or a published painter: `stage2.cyclegan.checkpoint=style_vangogh` (docs/pretrained.md)."
            )
            raise missing_checkpoint_error(self.key, self.train_command, self.TARGETS, published)
        path = Path(self.checkpoint)
        if path.is_dir():
            files = (
                f"a train.py checkpoint (e.g. {path / 'last.ckpt'}), a generator exported by "
                "`python -m underpainting.export`, or a junyanz photo -> painting .pth (or a name: style_vangogh)"
            )
            raise folder_given(self.key, path, "CycleGAN", files)
        pub = find_published(self.checkpoint, self.source, self.options, self.download)
        payload = read(path) if pub is None else {}
        if pub is not None:
            if pub.source != "junyanz":
                raise WeightsError(f"`{self.key}`={path} is a {pub.source} generator, not a CycleGAN painter")
            self.net = pub.net
        elif "underpainting_config" in payload:
            module = load_trained(path, self.TARGETS, labels, self.key)
            if not hasattr(module, self.generator):
                raise WeightsError(f"{path} has no network {self.generator!r}; it has {module.exportable}")
            self.net = getattr(module, self.generator)
        elif "config" in payload and "name" in payload:  # exported generator
            if payload["name"] != self.generator:
                raise WeightsError(
                    f"`{self.key}`={path} is the exported {payload['name']} network, but this stage needs "
                    f"{self.generator} (photo -> painting); export it with `python -m underpainting.export <ckpt>`"
                )
            self.net, _ = load_exported(path)
        else:
            raise WeightsError(
                f"`{self.key}`={path} is neither a train.py checkpoint nor an exported generator"
            )
        self.net = self.net.eval().to(device)
        self.device = device
        ramp = torch.linspace(-1, 1, 64)
        probe = torch.stack(
            [ramp[None].expand(64, -1), ramp[:, None].expand(-1, 64), -ramp[None].expand(64, -1)]
        )
        self(probe, None, Style())  # a broken generator fails here, before any sketch (outputs are checked)

    @torch.no_grad()
    def __call__(self, scene: torch.Tensor, labels: torch.Tensor, style: Style) -> torch.Tensor:
        stride = int(getattr(self.net, "stride", 4))
        h, w = scene.shape[-2:]
        x = _resize(scene[None], _scaled_size(h, w, self.scale), "bilinear").to(self.device)
        out = run_large(self.net, x, net=self.net, tile=self.tile, overlap=self.overlap, multiple=stride,
                        stats_max_side=self.stats_max_side)  # fmt: skip
        check_output(out, self.checkpoint, "painting")
        return _resize(out.cpu(), (h, w), "bicubic")[0].clamp(-1, 1)
