"""The published models by name, their download URLs and the local cache; `find_published` turns a name or a
path into the generator (or None for the project's own checkpoints).

URLs follow junyanz/pytorch-CycleGAN-and-pix2pix `scripts/download_cyclegan_model.sh`
(`http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/$FILE.pth`) and `download_pix2pix_model.sh`
(`.../pix2pix/models-pytorch/$FILE.pth`). The SPADE generators come in one `checkpoints.tar.gz` on a file-sharing
site (NVlabs/SPADE README), which cannot be fetched by a script: it is downloaded by hand and extracted into the
cache. The cache is `$UNDERPAINTING_HOME/zoo` (default `~/.cache/underpainting/zoo`), like `TORCH_HOME`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from underpainting.checkpoints import peek
from underpainting.data.download import download_file
from underpainting.errors import WeightsError
from underpainting.zoo.loader import Published, read_published

HOST = "http://efrosgans.eecs.berkeley.edu"
URLS = {
    "cyclegan": "{host}/cyclegan/pretrained_models/{name}.pth",
    "pix2pix": "{host}/pix2pix/models-pytorch/{name}.pth",
}
# The names the two download scripts list.
CYCLEGAN = (
    "apple2orange", "orange2apple", "summer2winter_yosemite", "winter2summer_yosemite", "horse2zebra",
    "zebra2horse", "monet2photo", "style_monet", "style_cezanne", "style_ukiyoe", "style_vangogh", "sat2map",
    "map2sat", "cityscapes_photo2label", "cityscapes_label2photo", "facades_photo2label", "facades_label2photo",
    "iphone2dslr_flower",
)  # fmt: skip
PIX2PIX = ("edges2shoes", "sat2map", "map2sat", "facades_label2photo", "day2night")
SPADE = ("ade20k_pretrained", "coco_pretrained", "cityscapes_pretrained")
FAMILIES = {"cyclegan": CYCLEGAN, "pix2pix": PIX2PIX, "spade": SPADE}


def cache_dir() -> Path:
    """`$UNDERPAINTING_HOME/zoo`, else `$XDG_CACHE_HOME/underpainting/zoo`, else `~/.cache/underpainting/zoo`."""
    if home := os.environ.get("UNDERPAINTING_HOME"):
        return Path(home).expanduser() / "zoo"
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "underpainting" / "zoo"


@dataclass(frozen=True)
class ZooModel:
    family: str  # cyclegan | pix2pix | spade
    name: str

    @property
    def source(self) -> str:
        return "nvlabs" if self.family == "spade" else "junyanz"

    def path(self, cache: Path | None = None) -> Path:
        """Where the cache keeps it: `<cache>/cyclegan/style_vangogh.pth`, `<cache>/spade/ade20k_pretrained/`."""
        root = (cache or cache_dir()) / self.family
        return root / self.name if self.family == "spade" else root / f"{self.name}.pth"

    def url(self, host: str | None = None) -> str | None:
        template = URLS.get(self.family)
        host = (host or os.environ.get("UNDERPAINTING_ZOO_MIRROR") or HOST).rstrip("/")
        return template.format(host=host, name=self.name) if template else None


def lookup(name: str) -> ZooModel | None:
    """`style_vangogh`, `style_vangogh_pretrained` (the reference's folder name) or `pix2pix/sat2map`; None if
    it is no published name. A name in two families must say which."""
    family, _, bare = name.rpartition("/")
    candidates = [bare, bare.removesuffix("_pretrained")] if family in ("", *FAMILIES) else []
    hits = [
        ZooModel(f, n)
        for n in dict.fromkeys(candidates)
        for f, names in FAMILIES.items()
        if n in names and family in ("", f)
    ]
    if len({(m.family, m.name) for m in hits}) > 1:
        raise WeightsError(
            f"{name!r} is published as {' and '.join(f'{m.family}/{m.name}' for m in hits)}: name one of them"
        )
    return hits[0] if hits else None


def _manual_spade(model: ZooModel, dest: Path) -> WeightsError:
    return WeightsError(
        f"{model.name} is not in the cache ({dest} is missing). SPADE's pretrained generators come only as "
        "checkpoints.tar.gz from the Google Drive folder linked in NVlabs/SPADE's README ('Generating Images Using "
        f"Pretrained Model'): download it by hand, then `mkdir -p {dest.parent} && tar xf checkpoints.tar.gz -C "
        f"{dest.parent}` so that {dest}/latest_net_G.pth exists (or pass the extracted folder or its .pth directly)"
    )


def download(name: str, cache: Path | None = None, host: str | None = None, timeout: float = 30.0) -> Path:
    """Fetch a published CycleGAN/pix2pix generator into the cache, atomically, and check that it loads."""
    model = lookup(name)
    if model is None:
        known = ", ".join(
            f"{f}/{n}" if n in CYCLEGAN and n in PIX2PIX else n for f in FAMILIES for n in FAMILIES[f]
        )
        raise WeightsError(f"{name!r} is no published model name; known: {known}")
    dest = model.path(cache)
    url = model.url(host)
    if url is None:
        if dest.is_dir():
            return dest
        raise _manual_spade(model, dest)
    if dest.is_file():
        return dest
    staging = dest.with_name(f".{dest.name}.{os.getpid()}.download")
    try:
        download_file(url, staging, timeout=timeout)
    except OSError as e:  # no route, DNS failure, refused connection, HTTP errors, timeouts
        raise WeightsError(
            f"could not download {model.name} from {url} ({getattr(e, 'reason', e)}). On a machine with internet "
            f"access, download that URL and save it as {dest} (file name {dest.name}; UNDERPAINTING_HOME moves "
            "the cache), or pass the file's path directly"
        ) from e
    finally:
        staging.with_suffix(staging.suffix + ".part").unlink(missing_ok=True)
    try:
        read_published(staging, model.source)
        os.replace(staging, dest)
    except WeightsError as e:
        raise WeightsError(
            f"{url} was downloaded but is not a usable generator; nothing was kept. {e}"
        ) from e
    finally:
        staging.unlink(missing_ok=True)
    return dest


def resolve(value: str | Path, allow_download: bool = True) -> Path:
    """A path as it is when it exists; a published name -> its cached copy (fetched when missing and allowed)."""
    path = Path(value).expanduser()
    if path.exists():
        return path
    model = lookup(str(value))
    if model is None:
        return path  # not a name: the caller reports the missing file
    dest = model.path()
    if dest.exists():
        return dest
    if model.url() is None:
        raise _manual_spade(model, dest)
    if not allow_download:
        raise WeightsError(
            f"{model.name} is not in the cache ({dest}); fetch it with `python -m underpainting.zoo download "
            f"{model.family}/{model.name}` or allow downloads (download=true)"
        )
    return download(str(value))


def find_published(
    value: str | Path, source: str = "auto", allow_download: bool = True, **options
) -> Published | None:
    """A published `.pth`, SPADE folder, model name (from the cache, fetched when missing) or converted file ->
    `Published`; None for underpainting's own train.py checkpoints and exported generators."""
    path = resolve(value, allow_download)
    if path.is_dir():
        return read_published(path, source, **options)
    payload = peek(path) if path.is_file() else None
    if not isinstance(payload, Mapping) or not payload:
        return None
    if "zoo" in payload or all(isinstance(v, torch.Tensor) for v in payload.values()):
        return read_published(path, source, **options)
    return None
