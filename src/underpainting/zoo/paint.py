"""Photos -> paintings with published CycleGAN painters (`style_vangogh`, `style_monet`, ...), one contact sheet:
`python -m underpainting.zoo paint photos/ --model style_vangogh --model style_monet --out outputs/zoo_paint`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from underpainting.data.images import list_images, load_rgb, pil_to_tensor, tensor_to_pil
from underpainting.data.sheets import overview_sheet
from underpainting.errors import WeightsError
from underpainting.models.tiling import run_large
from underpainting.zoo.download import find_published


def load_painters(models: Sequence[str], device: torch.device) -> dict[str, torch.nn.Module]:
    painters = {}
    for name in models:
        pub = find_published(name)
        if pub is None or pub.source != "junyanz":
            raise WeightsError(
                f"{name} is not a published junyanz CycleGAN generator (a name, .pth or converted file)"
            )
        painters[Path(name).stem] = pub.net.to(device)
    return painters


@torch.no_grad()
def paint(photo: torch.Tensor, net: torch.nn.Module, max_side: int, device: torch.device) -> torch.Tensor:
    """(3, H, W) in [-1, 1] -> painting, at most `max_side` px on the long side (tiled above 512 px)."""
    h, w = photo.shape[-2:]
    s = min(1.0, max_side / max(h, w))
    x = photo[None]
    if s < 1:
        x = F.interpolate(x, size=(round(h * s), round(w * s)), mode="bilinear", antialias=True)
    return run_large(net, x.to(device), net=net, tile=512, overlap=128, multiple=4)[0].cpu().clamp(-1, 1)


def paint_photos(
    source: str | Path, models: Sequence[str], out_dir: str | Path, max_side: int = 512, device: str = "cpu"
) -> Path:
    """Write `<out_dir>/<photo>/<model>.png` for every photo and painter, and `<out_dir>/contact_sheet.png`."""
    source, out_dir, dev = Path(source), Path(out_dir), torch.device(device)
    photos = [source] if source.is_file() else list_images(source)
    painters = load_painters(models, dev)
    rows = []
    for path in tqdm(photos, desc="photos", unit="photo"):
        photo = pil_to_tensor(load_rgb(path))
        row = {"photo": photo}
        (out_dir / path.stem).mkdir(parents=True, exist_ok=True)
        for name, net in painters.items():
            row[name] = paint(photo, net, max_side, dev)
            tensor_to_pil(row[name]).save(out_dir / path.stem / f"{name}.png")
        rows.append((path.stem, row))
    sheet = out_dir / "contact_sheet.png"
    overview_sheet(rows, cell=256).save(sheet)
    return sheet
