"""The compare page: runs found under a folder, differing hyperparameters, metrics, samples side by side; rendered
in a real headless browser (Debian's chromium), whose screenshot must show the table and the images."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from underpainting.compare import differing_keys, find_runs, main, write_compare
from underpainting.data.images import tensor_to_pil
from underpainting.data.labels import LabelSet
from underpainting.data.synthetic import SyntheticLandscapes
from underpainting.utils.grid import labelled_grid

ROOT = Path(__file__).resolve().parents[1]


def _run(root: Path, name: str, lambda_a: float, fid: float | None, seed: int, failed: bool = False) -> Path:
    d = root / name
    (d / ".hydra").mkdir(parents=True)
    cfg = {
        "model": {"lambda_A": lambda_a, "G_AB": {"ngf": 16}},
        "seed": 1889,
        "paths": {"output_dir": str(d)},
    }
    (d / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"model.lambda_A={lambda_a}"]))
    if failed:
        (d / "failure.json").write_text(
            json.dumps({"type": "ValueError", "message": "Invalid learning rate"})
        )
        return d
    proto = {"summary": "FID/KID with STAND-IN features: n_generated=8"}
    metrics = {"fid": fid, "kid": fid / 1000, "lpips": 0.3}
    (d / "metrics.json").write_text(json.dumps({"val": {"metrics": metrics, "protocol": proto}}))
    scenes = SyntheticLandscapes(LabelSet.from_yaml(ROOT / "conf" / "labels" / "landscape.yaml"), 32)
    import torch

    photos = torch.stack([scenes(i).photo for i in range(3)])
    paint = torch.stack([scenes(i + seed).painting for i in range(3)])
    (d / "samples").mkdir()
    labelled_grid({"real_B": photos, "fake_A": paint}).save(d / "samples" / "val_step0000010.png")
    (d / "outputs").mkdir()
    tensor_to_pil(paint[0]).save(d / "outputs" / "sketch_000.png")
    return d


@pytest.fixture
def runs_root(tmp_path) -> Path:
    root = tmp_path / "outputs"
    _run(root, "multirun/0", 5.0, 40.0, seed=10)
    _run(root, "multirun/1", 10.0, 25.0, seed=20)
    _run(root, "multirun/2", 15.0, None, seed=30, failed=True)
    return root


def test_runs_are_found_with_metrics_and_differences(runs_root):
    runs = find_runs(runs_root)
    assert [r.name for r in runs] == ["multirun/0", "multirun/1", "multirun/2"]
    assert [r.status for r in runs] == ["done", "done", "failed"]
    assert runs[1].metrics["val/fid"] == 25.0 and runs[1].sample.name == "val_step0000010.png"
    assert differing_keys(runs) == ["model.lambda_A"]  # paths.* differ too but are not hyperparameters


def test_page_is_self_contained(runs_root, tmp_path):
    out = write_compare(runs_root, tmp_path / "compare.html")
    page = out.read_text()
    assert "model.lambda_A" in page and "val/fid" in page and "Invalid learning rate" in page
    assert page.count("data:image/png;base64,") >= 2 + 2  # two sample grids and two aligned outputs
    assert "STAND-IN" in page
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", page)  # nothing fetched from the network


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="needs Debian's chromium (apt-get install -y chromium)")
def test_page_renders_and_sorts_in_headless_chromium(runs_root, tmp_path):
    out = tmp_path / "compare.html"
    assert main([str(runs_root), "--out", str(out)]) == 0
    base = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    # JS sorting: `#sort=val/fid` sorts ascending on load; the failed run (no FID) goes last.
    dom = subprocess.run(
        [*base, "--dump-dom", f"{out.as_uri()}#sort=val/fid"], capture_output=True, text=True, timeout=120
    ).stdout
    body = dom[dom.index("<tbody>") : dom.index("</tbody>")]
    order = re.findall(r"<td>(multirun/\d)</td>", body)
    assert order == ["multirun/1", "multirun/0", "multirun/2"]
    assert "sorted-asc" in dom

    shot = tmp_path / "shot.png"
    subprocess.run(
        [*base, "--window-size=1000,700", f"--screenshot={shot}", out.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape[:2] == (700, 1000)
    # The table's header is light grey and the painted samples are strongly coloured: both must be on screen.
    saturation = img.max(axis=2) - img.min(axis=2)
    assert (saturation > 80).mean() > 0.01, "no colourful sample images visible"
    assert ((img == [240, 240, 240]).all(axis=2)).sum() > 500, "no table header visible"
