"""The browser page (`python -m underpainting.app`): stage choices from the configs, jobs written as infer runs
the compare page lists, the server's API (gradio_client) with bad input and the queue, and a real headless
browser (Debian's chromium through Playwright) painting two classes on the canvas.

Quick-start checkpoints are trained tiny here, into an `outputs/train/` the page searches, as after `make demo`."""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import CONF, ROOT, TINY_CYCLEGAN, compose_train
from tests.test_infer import TINY_SPADE
from underpainting.data.sketch import decode_sketch
from underpainting.errors import UserError
from underpainting.train import run as train_run

if os.environ.get("CI") == "true":  # CI installs the app extra: a missing Gradio is a failure there
    import gradio as gr
else:
    gr = pytest.importorskip("gradio", reason="the app extra: pip install 'underpainting[app]'")
from underpainting.app.choices import checkpoint_choices, initial_stages, stage_options  # noqa: E402
from underpainting.app.compose import Composer  # noqa: E402
from underpainting.app.jobs import JobRequest, job_overrides, run_job  # noqa: E402
from underpainting.compare.runs import find_runs  # noqa: E402

EXAMPLES = ROOT / "examples" / "sketches"
# Applied by the page only to the jobs that choose these stages (random VGG: wiring, not looks).
TINY_DOODLE = [
    "stage2.doodle.module.vgg.weights=random",
    "stage2.doodle.module.vgg.arch=vgg16",
    "stage2.doodle.module.objective.mrf.layers=[relu2_1]",
    "stage2.doodle.pyramid=[{edge:24,steps:2},{edge:48,steps:2}]",
]
TINY_PAINTER = [
    "stage2.nnst.module.vgg.weights=random",
    "stage2.nnst.module.layers=[relu1_1,relu2_1]",
    "stage2.nnst.module.moment_layers=[relu1_1]",
    "stage2.nnst.pyramid=[{edge:32,steps:2},{edge:48,steps:2}]",
]
NO_DOWNLOAD = ["++stage2.nst.module.vgg.download=false"]  # offline: the missing-weights message, no network


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    """`outputs/` after a tiny `make demo`: train/<time>_demo_cyclegan and train/<time>_demo_spade."""
    root = tmp_path_factory.mktemp("outputs")
    cg = [*TINY_CYCLEGAN, "trainer=cpu", "trainer.max_epochs=1", "trainer.precision=32-true"]
    train_run(
        compose_train(
            [*cg, "callbacks.sample_grid=null"], root / "train" / "2026-01-01_00-00-00_demo_cyclegan"
        )
    )
    train_run(compose_train(TINY_SPADE, root / "train" / "2026-01-01_00-00-01_demo_spade"))
    return root


def ckpt(outputs: Path, model: str) -> str:
    return str(next((outputs / "train").glob(f"*_demo_{model}")) / "checkpoints" / "last.ckpt")


@pytest.fixture(scope="module")
def composer(outputs) -> Composer:
    return Composer([
        f"app.run_dir={outputs / 'app'}", f"app.train_dir={outputs / 'train'}", "progress=false",
        *TINY_DOODLE, *TINY_PAINTER, *NO_DOWNLOAD,
    ])  # fmt: skip


def test_choices_come_from_the_configs_and_the_trained_checkpoints(composer, outputs, tmp_path, monkeypatch):
    settings = composer.settings()
    assert (settings.host, settings.port, settings.share, settings.queue.concurrency) == (
        "127.0.0.1",
        7860,
        False,
        1,
    )
    stages = stage_options(composer)
    assert {"procedural", "spade", "pix2pix"} <= set(stages.first)
    assert {"cyclegan", "nst", "nst_xray", "nnst"} <= set(stages.second)
    assert stages.second["nnst"].uses_style and stages.second["nnst"].checkpoint_key is None
    assert (
        stages.first["spade"].checkpoint_key == "stage1.checkpoint"
        and stages.first["procedural"].checkpoint_key is None
    )
    assert stages.second["nst"].uses_style and stages.second["nst_xray"].uses_xray
    assert sum(p["steps"] for p in stages.second["nst"].pyramid) == 250
    # after `make demo` the page starts on the painter and the quick-start models
    assert initial_stages(settings, stages) == ("spade", ["nnst", "cyclegan"])
    spade = checkpoint_choices(stages.first["spade"], outputs / "train", ["ade20k_pretrained"])
    assert [v for _, v in spade] == [
        ckpt(outputs, "spade"),
        "ade20k_pretrained",
    ]  # the CycleGAN is not offered
    cyclegan = [v for _, v in checkpoint_choices(stages.second["cyclegan"], outputs / "train")]
    assert cyclegan == [ckpt(outputs, "cyclegan")]
    empty = Composer([f"app.train_dir={tmp_path / 'none'}"])
    assert initial_stages(empty.settings(), stages) == ("procedural", ["nnst"])
    # a stage config in the user's config folder appears on the page by itself
    user = tmp_path / "underpainting_conf" / "infer" / "stage2"
    user.mkdir(parents=True)
    shutil.copy(CONF / "infer" / "stage2" / "cyclegan.yaml", user / "my_painter.yaml")
    (user / "my_painter.yaml").write_text(
        (user / "my_painter.yaml")
        .read_text()
        .replace("@package stage2.cyclegan", "@package stage2.my_painter")
    )
    monkeypatch.setenv("UNDERPAINTING_CONFIG_DIR", str(tmp_path / "underpainting_conf"))
    mine = stage_options(Composer([]))
    assert mine.second["my_painter"].checkpoint_key == "stage2.cyclegan.checkpoint"  # its `key` as configured


def test_style_paintings_are_offered_by_absolute_path(tmp_path, monkeypatch):
    from underpainting.app.choices import style_paintings

    (tmp_path / "styles").mkdir()
    for name in ("wheat.jpg", "wheat_labels.png", "no_labels.jpg"):
        Image.new("RGB", (8, 8)).save(tmp_path / "styles" / name)
    monkeypatch.chdir(tmp_path)
    [found] = style_paintings(Path("styles"))  # app.styles_dir is relative: examples/styles
    assert (found.name, found.painting, found.labels) == (
        "wheat",
        tmp_path / "styles" / "wheat.jpg",
        tmp_path / "styles" / "wheat_labels.png",
    )


def test_overrides_keep_odd_paths_and_share_out_steps(composer, tmp_path):
    stages = stage_options(composer)
    odd = tmp_path / "my paintings, 1889" / "it's =wheat.png"
    odd.parent.mkdir()
    request = JobRequest(
        "procedural", ["nst"], style_painting=str(odd), style_labels=str(odd), steps=50, seed=3
    )
    cfg = composer.job_config(job_overrides(request, stages, odd), tmp_path / "run")
    assert cfg.style.painting == str(odd) and cfg.input == str(odd) and cfg.seed == 3
    assert [p["steps"] for p in cfg.stage2.nst.pyramid] == [30, 20]  # 150:100 of the config, 50 in all
    assert cfg.stage2.nst.module.vgg.download is False  # the command line's override for NST jobs
    plain = composer.job_config(job_overrides(JobRequest("procedural", []), stages, odd), tmp_path / "run2")
    assert "nst" not in (plain.get("stage2") or {})  # ... and not for the others (Hydra would refuse the key)
    with pytest.raises(UserError, match="stage 2 'oil' is no option of conf/infer/stage2/"):
        job_overrides(JobRequest("procedural", ["oil"]), stages, odd)


def test_a_job_is_an_infer_run_the_compare_page_lists(composer, outputs, labels):
    stages = stage_options(composer)
    ids = decode_sketch(EXAMPLES / "wild_vegetation.png", labels)
    seen = []
    request = JobRequest(
        "spade", ["cyclegan"], {"stage1.checkpoint": ckpt(outputs, "spade"),
                                "stage2.cyclegan.checkpoint": ckpt(outputs, "cyclegan")}, size=128,
    )  # fmt: skip
    result = run_job(ids, request, stages, composer, outputs / "app", labels, lambda *a: seen.append(a))
    run = result.run_dir
    assert run.parent == outputs / "app" and run.name.endswith("_spade")
    assert [s[0] for s in seen] == ["scene (spade)", "cyclegan", "contact sheet"]
    assert [s[1:] for s in seen] == [(0, 2), (1, 2), (2, 2)]
    assert list(result.images) == ["sketch", "labels", "scene", "cyclegan"]
    assert Image.open(result.images["cyclegan"]).size == (128, 128)  # `size`: the long side
    painted = np.asarray(Image.open(result.images["cyclegan"]).convert("RGB"), dtype=float)
    assert painted.std() > 5  # a picture, not a flat fill
    saved = (run / "canvas" / "config.yaml").read_text()
    assert ckpt(outputs, "spade") in saved and ckpt(outputs, "cyclegan") in saved
    assert (run / "inputs" / "canvas.png").is_file() and (run / "summary.json").is_file()
    names = set(__import__("zipfile").ZipFile(result.archive).namelist())
    assert f"{run.name}/canvas/contact_sheet.png" in names and f"{run.name}/.hydra/config.yaml" in names
    [listed] = [r for r in find_runs(outputs / "app") if r.path == run]
    assert (listed.task, listed.status, listed.model) == ("infer", "done", "spade \u2192 cyclegan")
    assert listed.sheets == {"canvas": run / "canvas" / "contact_sheet.png"}
    assert listed.sample is not None and listed.sample.name == "final_overview.png"


def test_a_failed_job_keeps_its_folder_and_says_what_infer_says(composer, outputs, labels):
    stages = stage_options(composer)
    ids = torch.ones(32, 32, dtype=torch.long)
    with pytest.raises(
        UserError, match=r"`stage1.checkpoint` is not set.*experiment=spade_quickstart"
    ) as err:
        run_job(ids, JobRequest("spade", []), stages, composer, outputs / "app", labels)
    [run] = [r for r in find_runs(outputs / "app") if r.status == "failed"]
    assert str(err.value) in run.error and (run.path / "inputs" / "canvas.png").is_file()


# ---------------------------------------------------------------------------------------------- the server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(run_dir: Path, overrides: list[str]):
    """Serve the page in this process on a free loopback port, as `python -m underpainting.app` serves it, with its
    jobs in `run_dir`; yields the URL, closes the page after."""
    from underpainting.app.page import build_page, launch_kwargs

    port = _free_port()
    composer = Composer([f"app.run_dir={run_dir}", f"app.train_dir={run_dir.parent / 'train'}", f"app.port={port}",
                         "progress=false", *overrides])  # fmt: skip
    settings = composer.settings()
    demo, page = build_page(composer, settings)
    demo.launch(prevent_thread_lock=True, quiet=True, **launch_kwargs(settings, page))
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def server(outputs, tmp_path_factory):
    """The page served in this process on a free loopback port, as `python -m underpainting.app` serves it."""
    scratch = tmp_path_factory.mktemp("gradio")
    old = {k: os.environ.get(k) for k in ("GRADIO_TEMP_DIR", "TORCH_HOME")}
    os.environ.update(GRADIO_TEMP_DIR=str(scratch / "cache"), TORCH_HOME=str(scratch / "torch"))
    yield from _serve(outputs / "app", ["app.max_upload_mb=1", *TINY_DOODLE, *TINY_PAINTER, *NO_DOWNLOAD])
    for k, v in old.items():
        os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def _client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False)


def _job(outputs: Path, **kw) -> dict:
    """The API's arguments: the quick-start choices unless `kw` says otherwise."""
    return {
        "stage1": "spade", "stage1_checkpoint": ckpt(outputs, "spade"), "stage2": ["cyclegan"],
        "cyclegan_checkpoint": ckpt(outputs, "cyclegan"), "style": "synthetic", "style_painting": None,
        "style_labels": None, "xray": None, "size": 0, "steps": 0, "seed": 1889, **kw,
    }  # fmt: skip


def test_api_paints_a_sketch_file(server, outputs, labels):
    from gradio_client import handle_file

    status, sheet, painting, decoded, gallery, files = _client(server).predict(
        sketch=handle_file(str(EXAMPLES / "wild_vegetation.png")), **_job(outputs), api_name="/paint_sketch"
    )
    assert "done" in status and str(outputs / "app") in status
    ids = decode_sketch(EXAMPLES / "wild_vegetation.png", labels)
    assert torch.equal(decode_sketch(decoded, labels), ids)  # the labels shown are the sketch's, exactly
    assert Image.open(painting).size == (256, 256) and np.asarray(Image.open(painting)).std() > 5
    assert Image.open(sheet).width > 3 * 256 * 0.5  # sketch | labels | scene | painting
    assert [g["caption"] for g in gallery] == ["contact sheet", "sketch", "labels", "scene", "cyclegan"]
    assert sorted(Path(f).name for f in files)[0].endswith(".zip")


def test_api_bad_input_gets_the_infer_message_and_the_server_keeps_serving(server, outputs, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    client = _client(server)
    notes = tmp_path / "notes.png"
    notes.write_text("these are notes, not a sketch\n")
    bad = np.array(Image.open(EXAMPLES / "synthetic_seed3.png").convert("RGB"))
    bad[20:60, 20:60] = (255, 0, 255)
    Image.fromarray(bad).save(tmp_path / "magenta.png")
    cases = [
        (notes, {}, "notes.png: cannot be read as an image"),
        (tmp_path / "magenta.png", {}, r"magenta.png: 1600 pixels .* rgb\(255,0,255\)"),
        (EXAMPLES / "wild_vegetation.png", {"stage1_checkpoint": ""}, "`stage1.checkpoint` is not set"),
        (EXAMPLES / "wild_vegetation.png", {"stage1_checkpoint": str(tmp_path / "gone.ckpt")}, "gone.ckpt"),
        (
            EXAMPLES / "wild_vegetation.png",
            {"stage2": ["nst"]},
            "ImageNet VGG19 weights are not in the torch hub",
        ),
    ]
    bomb = Image.new(
        "P", (12000, 12000), 1
    )  # 140 KB on disk, under the 1 MB upload cap: it killed the server
    bomb.putpalette([156, 238, 221] * 256)
    bomb.save(tmp_path / "bomb.png")
    cases += [
        (
            tmp_path / "bomb.png",
            {},
            r"bomb.png: 12000x12000 px \(144.0 MP\) is over the limit .*app.max_pixels",
        ),
        (
            EXAMPLES / "wild_vegetation.png",
            {"size": 20000},
            "greater than maximum value 1024",  # the size widget's own bound
        ),
    ]
    for path, kw, message in cases:
        with pytest.raises(AppError, match=message):
            client.predict(sketch=handle_file(str(path)), **_job(outputs, **kw), api_name="/paint_sketch")
    status, *_ = client.predict(
        sketch=handle_file(str(EXAMPLES / "synthetic_seed3.png")), **_job(outputs), api_name="/paint_sketch"
    )
    assert "done" in status
    big = tmp_path / "big.png"  # over the 1 MB cap of this server
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (800, 800, 3), dtype=np.uint8)).save(big)
    assert big.stat().st_size > 1_200_000
    with pytest.raises(Exception, match="(?i)too large|413|exceeds"):
        client.predict(sketch=handle_file(str(big)), **_job(outputs), api_name="/paint_sketch")


def test_one_job_at_a_time_with_a_visible_queue_position(server, outputs):
    from gradio_client import handle_file
    from gradio_client.utils import Status

    client = _client(server)
    sketch = handle_file(str(EXAMPLES / "wild_vegetation.png"))
    jobs = [
        client.submit(sketch=sketch, **_job(outputs, size=768), api_name="/paint_sketch") for _ in range(2)
    ]
    queued, deadline = [], time.time() + 300
    while not all(j.done() for j in jobs) and time.time() < deadline:
        queued += [
            s.rank for s in (j.status() for j in jobs) if s.code == Status.IN_QUEUE and s.rank is not None
        ]
        time.sleep(0.05)
    runs = [Path(j.result()[0].split("`")[1]) for j in jobs]
    spans = sorted(
        ((r / "inputs" / "canvas.png").stat().st_mtime, (r / "summary.json").stat().st_mtime) for r in runs
    )
    assert spans[0][1] <= spans[1][0], f"the two jobs overlapped: {spans}"
    assert queued, "no job was ever reported waiting in the queue"


def test_api_doodle_paints_from_the_sketch_alone(server, outputs):
    from gradio_client import handle_file

    styles = sorted((ROOT / "examples" / "styles").glob("*_labels.png"))
    assert styles, "the doodle ships example styles in examples/styles/"
    painting = next(p for p in styles[0].parent.iterdir() if p.stem == styles[0].stem.removesuffix("_labels"))
    status, sheet, out, decoded, gallery, files = _client(server).predict(
        sketch=handle_file(str(EXAMPLES / "wild_vegetation.png")),
        **_job(outputs, stage1="none", stage1_checkpoint="", stage2=["doodle"], style=str(painting), size=48),
        api_name="/paint_sketch",
    )
    assert "done" in status and Image.open(out).size == (48, 48)
    assert [g["caption"] for g in gallery][-1] == "doodle"


def test_api_painter_paints_from_a_shipped_painting(server, outputs):
    from gradio_client import handle_file

    painting = str((ROOT / "examples" / "styles" / "mountains_behind_saint_paul_1889.jpg").resolve())
    status, sheet, out, decoded, gallery, files = _client(server).predict(
        sketch=handle_file(str(EXAMPLES / "wild_vegetation.png")),
        **_job(outputs, stage1="none", stage1_checkpoint="", stage2=["nnst"], style=painting, size=48),
        api_name="/paint_sketch",
    )
    assert "done" in status and Image.open(out).size == (48, 48)
    assert [g["caption"] for g in gallery][
        -1
    ] == "nnst"  # the images are named by their stage option, as the files (nnst.png)


# --------------------------------------------------------------------------------------- a real browser
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def browser_page():
    """A Playwright page in Debian's chromium that can reach this machine only (every other request refused
    and recorded). Missing browser: a skip here, a failure under CI=true."""
    try:
        from playwright.sync_api import sync_playwright
    except ModuleNotFoundError:
        sync_playwright = None
    missing = "playwright (the dev extra)" if sync_playwright is None else None
    missing = missing or (None if _chromium() else "Debian's chromium (apt-get install -y chromium)")
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser test: {missing} is missing")
        pytest.skip(f"needs {missing}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        page.outside = []

        def local_only(route):
            url = route.request.url
            if url.startswith(("http://127.0.0.1", "data:", "blob:")):
                return route.continue_()
            page.outside.append(url)
            return route.abort()

        page.route("**/*", local_only)
        yield page
        browser.close()


def _canvas_point(page, x: float, y: float, size: int = 256) -> tuple[float, float]:
    """Screen position of canvas pixel (x, y): the image sits centred in the editor's canvas at its zoom."""
    box = page.locator("#canvas canvas").first.bounding_box()
    zoom = float(page.locator("#canvas").get_by_text("%").first.inner_text().strip().rstrip("%")) / 100
    return box["x"] + box["width"] / 2 + (x - size / 2) * zoom, box["y"] + box["height"] / 2 + (
        y - size / 2
    ) * zoom


def _stroke(page, name: str, y: int, x0: int = 16, x1: int = 240) -> None:
    page.click("#canvas button[aria-label='Color']")
    page.click(f"#canvas button.color[title='{name}']")  # the swatches are titled with class names
    page.mouse.click(5, 5)  # close the colour menu
    (sx0, sy), (sx1, _) = _canvas_point(page, x0, y), _canvas_point(page, x1, y)
    page.mouse.move(sx0, sy)
    page.mouse.down()
    for i in range(31):
        page.mouse.move(sx0 + (sx1 - sx0) * i / 30, sy)
    page.mouse.up()


def _image(page, selector: str) -> np.ndarray:
    src = page.get_attribute(f"{selector} img", "src")
    assert src.startswith("http://127.0.0.1")
    return np.asarray(Image.open(io.BytesIO(urllib.request.urlopen(src, timeout=30).read())).convert("RGB"))


@pytest.mark.slow
def test_paint_two_classes_in_a_real_browser(server, outputs, labels, browser_page, tmp_path):
    page = browser_page
    page.goto(server)
    page.wait_for_selector("#canvas canvas", timeout=60_000)
    # the page starts on the quick-start models found under outputs/train
    page.wait_for_function(
        "() => document.querySelector('#ckpt1 input') && document.querySelector('#ckpt1 input').value.includes('demo_spade')",
        timeout=30_000,
    )
    assert page.locator("#stage2 label", has_text="cyclegan:").locator("input").is_checked()
    page.click("#canvas button[aria-label='Brush']")
    _stroke(page, "sky", y=48)
    _stroke(page, "grass", y=200)
    page.click("#paint")
    page.wait_for_selector("#painting img", timeout=180_000)
    assert "done" in page.inner_text("#status")
    # a viewport as tall as the page: a full_page capture leaves the canvas (WebGL) blank
    page.set_viewport_size({"width": 1400, "height": 2800})
    page.screenshot(path=str(tmp_path / "page.png"))

    decoded = _image(page, "#labels")
    ids = torch.from_numpy(
        np.argmin(((decoded[:, :, None].astype(int) - labels.palette.numpy()[None, None]) ** 2).sum(-1), -1)
    )
    exact = (labels.palette[ids].numpy() == decoded).all(-1)
    assert exact.all(), "the labels shown are not in exact palette colours"
    sky, grass = labels.id("sky"), labels.id("grass")
    assert set(ids.unique().tolist()) == {sky, grass}
    assert (ids[40:56, 24:232] == sky).all() and (ids[192:208, 24:232] == grass).all()  # under the strokes
    assert (ids[:100] == sky).all() and (ids[150:] == grass).all()  # and the nearest stroke's class elsewhere
    painting = _image(page, "#painting")
    assert painting.shape[:2] == (256, 256) and painting.std() > 5
    # the job's folder, as the status says, holds what the page shows
    run = Path(re.search(r"(/\S+_spade[-\d]*)", page.inner_text("#status"))[1])
    assert np.array_equal(np.asarray(Image.open(run / "canvas" / "labels.png").convert("RGB")), decoded)
    assert np.array_equal(np.asarray(Image.open(run / "canvas" / "cyclegan.png").convert("RGB")), painting)

    # bad input on the page: the same message infer.py gives (the API test: the server keeps serving)
    notes = tmp_path / "notes.png"
    notes.write_text("not an image\n")
    page.set_input_files("#upload input[type=file]", str(notes))
    page.wait_for_selector("text=cannot be read as an image", timeout=30_000)
    assert page.outside == [], f"the page tried to reach outside this machine: {page.outside}"


SHARED_VGG16 = ROOT.parent / "shared" / "weights" / "vgg16_caffe_features.pth"


@pytest.fixture
def painter_server(outputs, tmp_path_factory):
    """The page with the painter on real VGG-16 weights (../shared), its default schedule."""
    if not SHARED_VGG16.is_file():
        pytest.skip(
            "../shared/weights/vgg16_caffe_features.pth is absent: the painter needs real VGG weights"
        )
    yield from _serve(outputs / "app_painter", [f"stage2.nnst.module.vgg.weights={SHARED_VGG16}"])


@pytest.mark.slow
def test_the_painter_makes_a_real_painting_in_a_real_browser(painter_server, browser_page, tmp_path):
    """The page's default painter on the example sketch and the first shipped painting, real weights: a painting,
    not a flat fill. UNDERPAINTING_APP_SCREENSHOT=<png> keeps the page (docs/images/app.png is made this way)."""
    page = browser_page
    page.goto(painter_server)
    page.wait_for_selector("#canvas canvas", timeout=60_000)
    assert (
        page.locator("#stage2 label", has_text="nnst:").locator("input").is_checked()
    )  # the default painter
    cyclegan = page.locator("#stage2 label", has_text="cyclegan:").locator("input")
    if cyclegan.is_checked():
        cyclegan.uncheck()  # the quick-start toy painter: not this picture
    page.set_input_files("#upload input[type=file]", str(EXAMPLES / "wild_vegetation.png"))
    page.wait_for_timeout(3_000)  # the upload loads into the canvas
    page.click("#paint_file")
    page.wait_for_selector("#painting img", timeout=600_000)
    assert "done" in page.inner_text("#status")
    painting = _image(page, "#painting")
    assert painting.shape[:2] == (256, 256) and painting.std() > 20
    page.set_viewport_size({"width": 1400, "height": 2800})
    page.screenshot(path=str(tmp_path / "page.png"))
    assert page.outside == [], f"the page tried to reach outside this machine: {page.outside}"
    if os.environ.get("UNDERPAINTING_APP_SCREENSHOT"):
        shutil.copy(tmp_path / "page.png", os.environ["UNDERPAINTING_APP_SCREENSHOT"])


def test_cli_flags_set_host_port_share_and_the_upload_cap(monkeypatch, outputs):
    from underpainting.app.__main__ import main

    launched = {}
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: launched.update(kw))
    assert main(["--host", "0.0.0.0", "--port", "8123", "--share", "app.max_upload_mb=5",
                 f"app.train_dir={outputs / 'train'}"]) == 0  # fmt: skip
    assert (launched["server_name"], launched["server_port"], launched["share"]) == ("0.0.0.0", 8123, True)
    assert launched["max_file_size"] == "5mb" and launched["ssr_mode"] is False
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"
