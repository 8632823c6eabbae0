"""The bad-input corpus: every console entry point (train, infer, xray, export, zoo, metrics, compare) over bad inputs
of every kind (empty, tiny, huge in pixels, truncated, wrong format, wrong encoding, non-finite, mismatched sizes,
symlinks, unwritable destinations, two runs at once).

Each row is one input and its documented outcome: `ok` (exit 0, the result written) or `error` (a non-zero exit
with one message naming the input). Never a `Traceback`. A new bad input is one row: its entry point, a function
that makes the files in a fresh folder and returns the arguments, the outcome, and what the message must name
(`{d}` stands for the folder). Entry points run in-process (as their console scripts), so the corpus is fast.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import bad_inputs as bad
from tests.conftest import run_console_script

# Fast stages: no learned model, no stage 2 unless a row asks (NST on random VGG weights, two tiny steps).
PROCEDURAL = ["infer/stage1=procedural", "infer/stage2=[]", "progress=false"]
NST = [
    "infer/stage1=procedural",
    "infer/stage2=[nst]",
    "progress=false",
    "stage2.nst.module.vgg.weights=random",
    "stage2.nst.module.vgg.arch=vgg16",
    "stage2.nst.module.objective.style_layers=[relu1_1]",
    "stage2.nst.pyramid=[{edge:32,steps:1}]",
]
NST_XRAY = [a.replace("nst", "nst_xray") for a in NST]
NETS = ["model.G_AB.ngf=8", "model.G_AB.n_blocks=1", "model.D_A.ndf=8", "logger=none", "callbacks.progress_bar=null",
        "print_config=false", "trainer.max_steps=1"]  # fmt: skip
TINY = [  # a CycleGAN that composes and builds in a blink; rows fail before training unless they say ok
    "data=synthetic", "data.image_size=32", "data.num_train=2", "data.num_val=1", "data.batch_size=1",
    "data.num_workers=0", *NETS,
]  # fmt: skip
VANGOGH = ["model=cyclegan", "data=vangogh_landscapes", "data.download=false", "data.num_workers=0",
           "data.preprocess.load_size=32", "data.preprocess.crop_size=32", *NETS]  # fmt: skip


@dataclass(frozen=True)
class Case:
    entry: str  # train | infer | xray | export | zoo | metrics | compare
    make: Callable[[Path], list[str]]  # makes the files in a fresh folder, returns the command's arguments
    expect: str  # "ok" or "error"
    says: tuple[str, ...] = ()  # what the output must name ({d}: the folder)


def _run_dir(d: Path) -> str:
    return f"hydra.run.dir={d / 'run'}"


def _xray_case(xray: Callable[[Path], Path], photo_size=(64, 64)) -> Callable[[Path], list[str]]:
    def make(d: Path) -> list[str]:
        return [
            "separate",
            str(xray(d)),
            str(bad.photo(d / "visible.png", photo_size)),
            "--out",
            str(d / "sep"),
        ]

    return make


def _metrics(gen: Callable[[Path], None], *extra: str) -> Callable[[Path], list[str]]:
    def make(d: Path) -> list[str]:
        for i in range(2):
            bad.photo(d / "ref" / f"r{i}.png", seed=i)
        (d / "gen").mkdir(exist_ok=True)
        gen(d / "gen")
        return [str(d / "gen"), str(d / "ref"), "--feature", "random", "--lpips", "none", *extra]

    return make


def _segments(d: Path) -> Path:
    """A landscape_segments layout (images/, labels/) whose index.csv is Latin-1, not UTF-8."""
    bad.photo(d / "seg" / "images" / "a.png")
    bad.grey16(d / "seg" / "labels" / "a.png", (40, 32))
    bad.latin1(d / "seg" / "index.csv", "name,source_dataset\na,coco_stuff \u00e9t\u00e9\n")
    return d / "seg"


def _sketches(d: Path, *makers: Callable[[Path], Path]) -> Path:
    """A folder of sketches a.png, b.png ... made by `makers`."""
    for i, maker in enumerate(makers):
        maker(d / "sketches" / f"{chr(97 + i)}.png")
    return d / "sketches"


def _photos(folder: Path) -> None:
    for i in range(2):
        bad.photo(folder / f"g{i}.png", seed=10 + i)


def _run_folder(d: Path, files: dict[str, Callable[[Path], Path]] | None = None) -> list[str]:
    """An `outputs/` folder with one training run, its `files` (path in the run -> maker) replaced by bad ones."""
    run = d / "outputs" / "train" / "2026-01-01_00-00-00_cyclegan_synthetic"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("task_name: train\nrun_name: cyclegan_synthetic\nseed: 1\n")
    (run / "csv").mkdir()
    (run / "csv" / "metrics.csv").write_text("step,val/fid\n0,50.0\n1,40.0\n")
    (run / "samples").mkdir()
    bad.photo(run / "samples" / "val_step0000001.png")
    for name, maker in (files or {}).items():
        (run / name).unlink(missing_ok=True)
        maker(run / name)
    return [str(d / "outputs"), "--out", str(d / "compare.html")]


CASES: dict[str, Case] = {
    # ------------------------------------------------------------------------------------------------ train
    "train/batch-size-0": Case("train", lambda d: [*TINY, "data.batch_size=0", _run_dir(d)], "error",
                               ("data.batch_size", "1 or more")),
    "train/negative-lr": Case("train", lambda d: [*TINY, "model.optimizer_G.lr=-1", _run_dir(d)], "error",
                              ("model.optimizer_G.lr", "0 or more")),
    "train/image-size-too-odd": Case("train", lambda d: [*TINY, "data.image_size=30", _run_dir(d)], "error",
                                     ("data.image_size", "28 or 32")),
    "train/image-size-too-small": Case("train", lambda d: [*TINY, "data.image_size=12", _run_dir(d)], "error",
                                       ("data.image_size", "D_A")),
    "train/steps-not-a-number": Case("train", lambda d: [*TINY, "trainer.max_steps=abc", _run_dir(d)], "error",
                                     ("trainer.max_steps",)),
    "train/run-dir-unwritable": Case("train", lambda d: [*TINY, f"hydra.run.dir={bad.under_a_file(d)}"], "error",
                                     ("{d}/a_file/out", "hydra.run.dir")),
    "train/dataset-missing": Case("train", lambda d: [*VANGOGH, f"data.root={d / 'none'}", _run_dir(d)], "error",
                                  ("{d}/none", "trainA", "data.download=true", "data.root")),
    "train/dataset-dangling-symlink": Case(
        "train", lambda d: [*VANGOGH, f"data.root={bad.dataset(d / 'ds', trainA=bad.dangling(d / 'x.jpg'))}",
                            _run_dir(d)], "error", ("x.jpg", "does not exist")),
    "train/dataset-self-symlink-skip-mode": Case(
        "train", lambda d: [*VANGOGH, f"data.root={bad.dataset(d / 'ds', trainB=bad.self_link(d / 'loop.jpg'))}",
                            "data.on_bad_file=skip", _run_dir(d)], "ok", ("loop.jpg", "leads back to itself")),
    "train/dataset-truncated": Case(
        "train", lambda d: [*VANGOGH, f"data.root={bad.dataset(d / 'ds', testA=bad.truncated(d / 't.png'))}",
                            _run_dir(d)], "error", ("t.png", "on_bad_file=skip")),
    "train/dataset-empty-file": Case(
        "train", lambda d: [*VANGOGH, f"data.root={bad.dataset(d / 'ds', testB=bad.empty(d / 'e.png'))}",
                            _run_dir(d)], "error", ("e.png",)),
    "train/dataset-huge-pixels": Case(
        "train", lambda d: [*VANGOGH, f"data.root={bad.dataset(d / 'ds', trainB=bad.bomb(d / 'huge.png'))}",
                            _run_dir(d)], "error", ("huge.png", "12000x12000", "max_pixels")),
    "train/filter-file-latin1": Case(
        "train", lambda d: [*VANGOGH, f"data.root={bad.dataset(d / 'ds')}",
                            f"data.filter={{file:{bad.latin1(d / 'tags.csv')},column:subject,equals:x}}",
                            _run_dir(d)], "error", ("tags.csv", "UTF-8")),
    "train/segments-index-latin1": Case(
        "train", lambda d: ["model=pix2pix", "data=landscape_segments", f"data.root={_segments(d)}",
                            "data.label_source=index", "data.num_workers=0", "logger=none",
                            "callbacks.progress_bar=null", "print_config=false", _run_dir(d)], "error",
        ("index.csv", "cannot be read")),
    "train/checkpoint-not-a-checkpoint": Case(
        "train", lambda d: [*TINY, f"ckpt_path={bad.text(d / 'last.ckpt')}", _run_dir(d)], "error", ("last.ckpt",)),
    "train/checkpoint-missing": Case("train", lambda d: [*TINY, f"ckpt_path={d / 'no.ckpt'}", _run_dir(d)],
                                     "error", ("no.ckpt",)),
    "train/xray-nan": Case(
        "train", lambda d: ["experiment=xray_separation", f"data.xray={bad.float_tiff(d / 'x.tif')}",
                            f"data.visible={bad.photo(d / 'v.png', (64, 64))}", "logger=none", _run_dir(d)],
        "error", ("x.tif", "NaN")),
    # ------------------------------------------------------------------------------------------------ infer
    "infer/huge-sketch": Case("infer", lambda d: [*PROCEDURAL, f"input={bad.bomb(d / 'huge.png')}", _run_dir(d)],
                              "error", ("huge.png", "12000x12000", "max_pixels")),
    "infer/over-a-lowered-limit": Case(
        "infer", lambda d: [*PROCEDURAL, f"input={bad.sketch(d / 's.png', (64, 64))}", "max_pixels=1000",
                            _run_dir(d)], "error", ("s.png", "64x64", "max_pixels=1000")),
    "infer/limit-zero": Case("infer", lambda d: [*PROCEDURAL, f"input={bad.sketch(d / 's.png')}", "max_pixels=0",
                                                 _run_dir(d)], "error", ("max_pixels",)),
    "infer/empty-file": Case("infer", lambda d: [*PROCEDURAL, f"input={bad.empty(d / 'e.png')}", _run_dir(d)],
                             "error", ("e.png",)),
    "infer/truncated": Case("infer", lambda d: [*PROCEDURAL, f"input={bad.truncated(d / 't.png')}", _run_dir(d)],
                            "error", ("t.png",)),
    "infer/text-named-png": Case("infer", lambda d: [*PROCEDURAL, f"input={bad.text(d / 'n.png')}", _run_dir(d)],
                                 "error", ("n.png", "cannot be read as an image")),
    "infer/dangling-symlink": Case("infer", lambda d: [*PROCEDURAL, f"input={bad.dangling(d / 'l.png')}",
                                                       _run_dir(d)], "error", ("l.png", "does not exist")),
    "infer/self-symlink": Case("infer", lambda d: [*PROCEDURAL, f"input={bad.self_link(d / 'l.png')}",
                                                   _run_dir(d)], "error", ("l.png", "itself")),
    "infer/missing": Case("infer", lambda d: [*PROCEDURAL, f"input={d / 'nothing.png'}", _run_dir(d)], "error",
                          ("nothing.png",)),
    "infer/folder-with-one-huge": Case(
        "infer", lambda d: [*PROCEDURAL, f"input={_sketches(d, bad.sketch, bad.bomb)}", _run_dir(d)], "error",
        ("a.png", "b.png", "12000x12000", "1 of 2 sketches painted")),
    "infer/tiny-1x1": Case("infer", lambda d: [*PROCEDURAL, f"input={bad.sketch(d / 's.png', (1, 1))}",
                                               _run_dir(d)], "ok", ("1 of 1 sketches painted",)),
    "infer/16-bit-class-ids": Case("infer", lambda d: [*PROCEDURAL, f"input={bad.grey16(d / 'ids.png')}",
                                                       _run_dir(d)], "ok", ("1 of 1 sketches painted",)),
    "infer/style-painting-huge": Case(
        "infer", lambda d: [*NST, f"input={bad.sketch(d / 's.png')}", f"style.painting={bad.bomb(d / 'p.png')}",
                            f"style.labels={bad.sketch(d / 'pl.png')}", _run_dir(d)], "error",
        ("style.painting", "p.png", "12000x12000")),
    "infer/style-labels-dangling": Case(
        "infer", lambda d: [*NST, f"input={bad.sketch(d / 's.png')}", f"style.painting={bad.photo(d / 'p.png')}",
                            f"style.labels={bad.dangling(d / 'pl.png')}", _run_dir(d)], "error",
        ("style.labels", "pl.png", "does not exist")),
    "infer/painting-without-labels-semantic": Case(
        "infer", lambda d: [*NST, f"input={bad.sketch(d / 's.png')}", f"style.painting={bad.photo(d / 'p.png')}",
                            _run_dir(d)], "error", ("style.labels", "stage2.nst.semantic=false")),
    "infer/painting-without-labels-plain-gram": Case(
        "infer", lambda d: [*NST, f"input={bad.sketch(d / 's.png')}", f"style.painting={bad.photo(d / 'p.png')}",
                            "stage2.nst.semantic=false", _run_dir(d)], "ok", ("1 of 1 sketches painted",)),
    "infer/xray-nan": Case(
        "infer", lambda d: [*NST_XRAY, f"input={bad.sketch(d / 's.png')}",
                            f"xray={bad.float_tiff(d / 'h.tif')}", _run_dir(d)], "error", ("h.tif", "NaN")),
    "infer/cyclegan-checkpoint-folder": Case(
        "infer", lambda d: ["infer/stage1=procedural", "infer/stage2=[cyclegan]", "progress=false",
                            f"input={bad.sketch(d / 's.png')}",
                            f"stage2.cyclegan.checkpoint={bad.text(d / 'ckpts' / 'last.ckpt').parent}",
                            _run_dir(d)], "error", ("{d}/ckpts", "CycleGAN", "last.ckpt")),
    "infer/stage1-checkpoint-garbage": Case(
        "infer", lambda d: ["infer/stage1=spade", "infer/stage2=[]", "progress=false",
                            f"input={bad.sketch(d / 's.png')}", f"stage1.checkpoint={bad.text(d / 'g.ckpt')}",
                            _run_dir(d)], "error", ("g.ckpt",)),
    "infer/run-dir-unwritable": Case(
        "infer", lambda d: [*PROCEDURAL, f"input={bad.sketch(d / 's.png')}", f"hydra.run.dir={bad.under_a_file(d)}"],
        "error", ("{d}/a_file/out",)),
    # ------------------------------------------------------------------------------------------------ xray
    "xray/trace-size-0x0": Case("xray", lambda d: ["trace", str(bad.grey(d / "h.png")), "--out", str(d / "t"),
                                                   "--size", "0x0"], "error", ("--size", "at least 1 px")),
    "xray/trace-size-not-a-size": Case("xray", lambda d: ["trace", str(bad.grey(d / "h.png")), "--out",
                                                          str(d / "t"), "--size", "big"], "error", ("--size",)),
    "xray/trace-size-huge": Case("xray", lambda d: ["trace", str(bad.grey(d / "h.png")), "--out", str(d / "t"),
                                                    "--size", "100000x100000"], "error", ("--size", "--max-pixels")),
    "xray/trace-nan": Case("xray", lambda d: ["trace", str(bad.float_tiff(d / "h.tif")), "--out", str(d / "t")],
                           "error", ("h.tif", "NaN")),
    "xray/trace-inf": Case("xray", lambda d: ["trace", str(bad.float_tiff(d / "h.tif", float("inf"))), "--out",
                                              str(d / "t")], "error", ("h.tif", "infinite")),
    "xray/trace-blank": Case("xray", lambda d: ["trace", str(bad.grey(d / "h.png", value=0)), "--out",
                                                str(d / "t")], "error", ("h.png", "blank")),
    "xray/trace-labels-latin1": Case("xray", lambda d: ["trace", str(bad.grey(d / "h.png")), "--out", str(d / "t"),
                                                        "--labels", str(bad.latin1(d / "l.yaml"))], "error",
                                     ("l.yaml",)),
    "xray/trace-out-unwritable": Case("xray", lambda d: ["trace", str(bad.grey(d / "h.png")), "--out",
                                                         str(bad.under_a_file(d))], "error", ("{d}/a_file/out",)),
    "xray/trace-ok": Case("xray", lambda d: ["trace", str(bad.grey(d / "h.png")), "--out", str(d / "t"),
                                             "--size", "48x48"], "ok", ("backdrop.png",)),
    "xray/simulate-huge": Case("xray", lambda d: ["simulate", str(bad.bomb(d / "s.png")),
                                                  str(bad.photo(d / "h.png")), "--out", str(d / "sim")], "error",
                               ("s.png", "12000x12000", "--max-pixels")),
    "xray/simulate-size-negative": Case("xray", lambda d: ["simulate", str(bad.photo(d / "s.png")),
                                                           str(bad.photo(d / "h.png")), "--out", str(d / "sim"),
                                                           "--size", "-5"], "error", ("--size",)),
    "xray/simulate-flat-paintings": Case(
        "xray", lambda d: ["simulate", str(bad.grey(d / "s.png", value=90)), str(bad.grey(d / "h.png", value=90)),
                           "--out", str(d / "sim"), "--simple"], "error", ("s.png", "blank")),
    "xray/separate-nan": Case("xray", _xray_case(lambda d: bad.float_tiff(d / "x.tif")), "error", ("x.tif", "NaN")),
    "xray/separate-blank": Case("xray", _xray_case(lambda d: bad.grey(d / "x.png", value=0)), "error",
                                ("x.png", "blank")),
    "xray/separate-10x8": Case("xray", _xray_case(lambda d: bad.grey(d / "x.png", (10, 8)), (10, 8)), "error",
                               ("x.png", "10x8", "too small")),
    "xray/separate-colour-xray": Case("xray", _xray_case(lambda d: bad.photo(d / "x.png", (64, 64))), "error",
                                      ("x.png", "colour")),
    "xray/separate-mismatched-sizes": Case("xray", _xray_case(lambda d: bad.grey(d / "x.png", (64, 64)), (100, 40)),
                                           "error", ("64x64", "100x40")),
    "xray/separate-missing": Case("xray", lambda d: ["separate", str(d / "no.png"), str(d / "no_photo.png"),
                                                     "--out", str(d / "sep")], "error", ("no.png",)),
    # ------------------------------------------------------------------------------------------------ export
    "export/missing": Case("export", lambda d: [str(d / "no.ckpt"), str(d / "out")], "error", ("no.ckpt",)),
    "export/empty-file": Case("export", lambda d: [str(bad.empty(d / "e.ckpt")), str(d / "out")], "error",
                              ("e.ckpt",)),
    "export/text-file": Case("export", lambda d: [str(bad.text(d / "t.ckpt")), str(d / "out")], "error",
                             ("t.ckpt",)),
    "export/an-image": Case("export", lambda d: [str(bad.photo(d / "p.ckpt")), str(d / "out")], "error",
                            ("p.ckpt",)),
    # ------------------------------------------------------------------------------------------------ zoo
    "zoo/info-text-file": Case("zoo", lambda d: ["info", str(bad.text(d / "g.pth"))], "error", ("g.pth",)),
    "zoo/info-empty-file": Case("zoo", lambda d: ["info", str(bad.empty(d / "g.pth"))], "error", ("g.pth",)),
    "zoo/info-folder-without-weights": Case("zoo", lambda d: ["info", str(bad.text(d / "f" / "opt.txt").parent)],
                                            "error", ("{d}/f", "latest_net_G.pth")),
    "zoo/option-without-value": Case("zoo", lambda d: ["info", str(bad.text(d / "g.pth")), "--option", "netG"],
                                     "error", ("--option",)),
    "zoo/paint-garbage-model": Case("zoo", lambda d: ["paint", str(bad.bomb(d / "p.png")), "--model",
                                                   str(bad.text(d / "g.pth")), "--out", str(d / "z")], "error",
                                 ("g.pth",)),
    # ------------------------------------------------------------------------------------------------ metrics
    "metrics/ok": Case("metrics", _metrics(_photos), "ok", ("fid",)),
    "metrics/content-not-paired": Case(
        "metrics", lambda d: [*_metrics(_photos)(d), "--content", str(bad.photo(d / "content" / "other.png").parent)],
        "error", ("g0.png", "{d}/content", "name each output after its content image")),
    "metrics/empty-folder": Case("metrics", _metrics(lambda g: None), "error", ("{d}/gen", "no images")),
    "metrics/missing-folder": Case("metrics", lambda d: [str(d / "a"), str(d / "b"), "--feature", "random"],
                                   "error", ("{d}/a",)),
    "metrics/huge-image": Case("metrics", _metrics(lambda g: (_photos(g), bad.bomb(g / "huge.png"))), "error",
                               ("huge.png", "12000x12000", "--max-pixels")),
    "metrics/truncated": Case("metrics", _metrics(lambda g: (_photos(g), bad.truncated(g / "t.png"))), "error",
                              ("t.png",)),
    "metrics/dangling-symlink": Case("metrics", _metrics(lambda g: (_photos(g), bad.dangling(g / "l.png"))),
                                     "error", ("l.png", "does not exist")),
    "metrics/out-unwritable": Case("metrics", lambda d: [*_metrics(_photos)(d), "--out",
                                                         str(bad.under_a_file(d, "m.json"))], "error",
                                   ("{d}/a_file", "--out")),
    # ------------------------------------------------------------------------------------------------ compare
    "compare/ok": Case("compare", lambda d: _run_folder(d), "ok", ("compare.html",)),
    "compare/missing-root": Case("compare", lambda d: [str(d / "none"), "--out", str(d / "c.html")], "error",
                                 ("{d}/none",)),
    "compare/metrics-csv-latin1": Case("compare", lambda d: _run_folder(d, {"csv/metrics.csv": bad.latin1}), "ok",
                                       ("compare.html", "metrics.csv")),
    "compare/metrics-csv-binary": Case(
        "compare", lambda d: _run_folder(d, {"csv/metrics.csv": bad.photo}), "ok", ("metrics.csv",)),
    "compare/config-yaml-broken": Case(
        "compare", lambda d: _run_folder(d, {".hydra/config.yaml": lambda p: bad.text(p, "a: [b\n")}), "ok",
        ("config.yaml",)),
    "compare/sample-truncated": Case(
        "compare", lambda d: _run_folder(d, {"samples/val_step0000001.png": bad.truncated}), "ok",
        ("val_step0000001.png",)),
    "compare/sample-huge": Case(
        "compare", lambda d: _run_folder(d, {"samples/val_step0000001.png": bad.bomb}), "ok",
        ("val_step0000001.png", "12000x12000")),
    "compare/out-unwritable": Case("compare", lambda d: [*_run_folder(d)[:1], "--out",
                                                         str(bad.under_a_file(d, "c.html"))], "error",
                                   ("{d}/a_file", "--out")),
}  # fmt: skip


def _entry(name: str) -> Callable[[list[str]], int | None]:
    if name in ("train", "infer"):
        from underpainting import cli

        return lambda argv: run_console_script(getattr(cli, name), argv)
    if name == "xray":
        from underpainting.xray.cli import main
    elif name == "export":
        from underpainting.export import main
    elif name == "zoo":
        from underpainting.zoo.__main__ import main
    elif name == "metrics":
        from underpainting.metrics.cli import main
    else:
        from underpainting.compare import main
    return main


def run_entry(name: str, argv: list[str]) -> int:
    """The entry point as its console script runs it: its exit status (a SystemExit's code, else its return)."""
    try:
        code = _entry(name)(argv)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (1 if e.code else 0)
    return int(code or 0)


@pytest.fixture(autouse=True)
def _own_log_handlers():
    """Entry points configure logging for their process (`basicConfig`, Hydra's job logging); in one test process
    a handler left by one row would write to the next row's closed capture stream."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    root.handlers[:] = before
    root.setLevel(level)


@pytest.mark.parametrize("case_id", list(CASES))
def test_bad_input(case_id, tmp_path, capsys, caplog, monkeypatch):
    case = CASES[case_id]
    monkeypatch.chdir(tmp_path)  # nothing lands in the checkout
    d = tmp_path / "in"
    d.mkdir()
    argv = case.make(d)
    code = run_entry(case.entry, argv)
    out = capsys.readouterr()
    text = out.out + out.err + caplog.text  # log records: on stderr when run from the shell
    assert "Traceback" not in text, text[-3000:]
    if case.expect == "ok":
        assert code == 0, text[-3000:]
    else:
        assert code != 0, text[-3000:]
        assert "error" in text.lower(), text[-3000:]
    for needle in case.says:
        assert needle.format(d=d) in text, f"{needle.format(d=d)!r} not in:\n{text[-3000:]}"


def test_a_second_live_run_in_the_folder_is_refused(tmp_path, capsys):
    """Two at once: the folder's lock is held by another process; this run stops before writing anything."""
    run = tmp_path / "run"
    holder = bad.hold_lock(run)
    try:
        code = run_entry("train", [*TINY, f"hydra.run.dir={run}"])
    finally:
        holder.kill()
        holder.wait()
    text = capsys.readouterr().err
    assert code == 1 and "Traceback" not in text
    assert (
        f"the run folder {run} is in use by run pid {holder.pid}" in text and "python train.py seed=7" in text
    )
    assert sorted(p.name for p in run.iterdir()) == [".run.lock"]  # no .hydra/, no log: nothing of this run
