"""The compare page on real runs made by the training and inference entry points (in-process, through Hydra, as
`underpainting-train` / `underpainting-infer` run them), one per logger: W&B offline (the default, twice), TensorBoard,
CSV; then an `infer.py` run. The page must find every run's metrics whatever logged them, show only the config keys
that differ, and render, sort and filter in a real headless browser (Debian's chromium)."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT, TINY_CYCLEGAN, run_console_script
from underpainting import cli
from underpainting.compare import find_runs, main, render_html, write_compare
from underpainting.compare.readers import read_metrics_json
from underpainting.compare.wandb_offline import find_wandb_runs, read_wandb_run

TRAIN = [o for o in TINY_CYCLEGAN if o != "logger=none"] + [
    "callbacks=[default,metrics]",
    "metrics/feature=random",
    "metrics/lpips=random",
    "trainer.max_epochs=2",
    "trainer.log_every_n_steps=1",
]
NOISE = (
    "litlogger",
    "anonymous setting",
    "LeafSpec",
    "not supported by the model summary",
    "pre-optimization",
)


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    """4 tiny CycleGAN runs and one inference run, about 50 s on 2 loaded cores."""
    root = tmp_path_factory.mktemp("outputs")
    log = [f"paths.log_dir={root}"]
    # `python train.py` itself, with the default logger and bf16 as the quick-start: its output must be free of noise
    first = [*TRAIN, *log, "run_name=idt05", "tags=[dev,a]", "trainer.precision=bf16-mixed"]
    env = {**os.environ, "WANDB_MODE": "offline"}
    done = subprocess.run(
        [sys.executable, "train.py", *first], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    root.joinpath("first_run_output.txt").write_text(done.stdout + done.stderr)
    run_console_script(cli.train, [*TRAIN, *log, "run_name=idt0", "tags=[dev,b]", "model.lambda_identity=0"])
    run_console_script(
        cli.train, [*TRAIN, *log, "run_name=tb", "tags=[dev,lam5]", "logger=tensorboard", "model.lambda_A=5"]
    )
    run_console_script(
        cli.train, [*TRAIN, *log, "run_name=csv", "tags=[dev,lam5]", "logger=csv", "model.lambda_A=5"]
    )
    [ckpt] = root.glob("train/*_idt05/checkpoints/last.ckpt")
    run_console_script(
        cli.infer,
        [
            *log,
            "infer/stage1=procedural",
            "infer/stage2=[cyclegan]",
            f"stage2.cyclegan.checkpoint={ckpt}",
            f"input={ROOT / 'examples' / 'sketches' / 'synthetic_seed3.png'}",
            "progress=false",  # run_name left to its default: the interpolation ${hydra:runtime.choices.infer/stage1}
        ],
    )
    return root


def _by_name(root: Path) -> dict:
    return {r.run_name: r for r in find_runs(root)}


@pytest.mark.slow
def test_runs_are_read_whatever_logged_them(runs_root):
    runs = _by_name(runs_root)
    assert set(runs) == {"idt05", "idt0", "tb", "csv", "procedural"}  # Hydra saves run_name unresolved
    for name, source in [("idt05", "wandb"), ("idt0", "wandb"), ("tb", "tensorboard"), ("csv", "csv")]:
        r = runs[name]
        assert r.task == "train" and r.status == "done" and r.model == "cyclegan", name
        assert r.metrics["val/cycle_A"].source == source and r.metrics["train/G_total"].source == source, name
        assert r.metrics["train/G_total"].count == 8  # 4 steps per epoch, 2 epochs, logged every step
        assert r.metrics["val/fid"].source == "metrics.json" and r.metrics["val/fid"].count == 2
        assert "STAND-IN random conv" in r.protocol["val"]
        history, _ = read_metrics_json(r.path / "metrics.json")
        assert r.metrics["val/fid"].best == min(v for _, v in history["val/fid"])
    assert runs["idt05"].wandb["group"] == "idt05" and runs["idt05"].wandb["job_type"] == "train"
    assert runs["idt05"].wandb["tags"] == ["dev", "a"] and runs["idt05"].wandb["exit_code"] == 0
    paint = runs["procedural"]
    assert paint.task == "infer" and paint.status == "done" and paint.model == "procedural \u2192 cyclegan"
    assert paint.metrics["infer/sketches_ok"].last == 1 and set(paint.sheets) == {"synthetic_seed3"}


@pytest.mark.slow
def test_the_page_shows_metrics_first_then_only_differing_config(runs_root, tmp_path):
    runs = _by_name(runs_root)
    page = write_compare(runs_root, tmp_path / "compare.html").read_text()
    train = page[page.index("id='runs-train'") : page.index("</table>", page.index("id='runs-train'"))]
    header = train[: train.index("</thead>")]
    assert header.index("val/fid") < header.index("lambda_A")  # metrics before config
    cfg_cols = re.findall(r"<th class='cfg' data-key='([^']+)'", header)
    # nothing else differs (the first run is bf16), grouped model before trainer
    assert cfg_cols == ["model.lambda_A", "model.lambda_identity", "trainer.precision"]
    for name in ("idt05", "idt0", "tb", "csv"):  # each run's own numbers, whatever logged them
        row = train[train.index(f"<b>{name}</b>") :].split("</tr>")[0]
        fid = runs[name].metrics["val/fid"]
        assert f"data-v='{fid.last!r}'" in row and f"data-v='{fid.best!r}'" in row, name
        assert f"data-v='{runs[name].metrics['val/cycle_A'].last!r}'" in row, name
    assert "id='runs-infer'" in page and "Contact sheets: the same sketch" in page
    assert page.count("data:image/") == 4 + 1 + 1  # 4 sample grids, the inference overview, its contact sheet
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", page)  # self-contained


@pytest.mark.slow
def test_tensorboard_hparams_tab_has_key_hyperparameters_and_final_metrics(runs_root):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    [log_dir] = runs_root.glob("train/*_tb/tensorboard")
    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    data = {
        tag: plugin_data_pb2.HParamsPluginData.FromString(content)
        for tag, content in acc.PluginTagToContent("hparams").items()
    }
    hparams = data["_hparams_/session_start_info"].session_start_info.hparams
    assert hparams["model.lambda_A"].number_value == 5 and hparams["choice/model"].string_value == "cyclegan"
    assert "labels.classes" not in str(dict(hparams)) and not any(k.startswith("paths.") for k in hparams)
    metrics = {m.name.tag for m in data["_hparams_/experiment"].experiment.metric_infos}
    assert {"val/fid", "best/val/fid", "val/cycle_A", "train/G_total"} <= metrics
    best = acc.Scalars("best/val/fid")[-1].value
    assert best == pytest.approx(min(e.value for e in acc.Scalars("val/fid")))


@pytest.mark.slow
def test_wandb_run_has_group_tags_config_best_and_no_noise(runs_root):
    [path] = find_wandb_runs(next(runs_root.glob("train/*_idt05")))
    run = read_wandb_run(path)
    assert (run.group, run.job_type, run.tags, run.exit_code) == ("idt05", "train", ["dev", "a"], 0)
    assert run.config["model"]["lambda_identity"] == 0.5 and "metrics_protocol" in run.config
    fids = [row["val/fid"] for row in run.history if "val/fid" in row]
    assert len(fids) == 2 and run.summary["best/val/fid"] == pytest.approx(min(fids))
    out = (runs_root / "first_run_output.txt").read_text()
    assert "run directory:" in out and "CONFIG" in out  # the run did print its report and its config tree
    assert not [n for n in NOISE if n in out], out


def _write_log(path: Path, records: list[bytes], truncate: int = 0) -> None:
    """A W&B transaction log as wandb-core writes it: file header, 32 KiB blocks, records split across blocks."""
    out = bytearray(struct.pack("<4sHB", b":W&B", 0xBEE1, 0))
    for rec in records:
        first = True
        while True:
            left = 32768 - len(out) % 32768
            if left < 7:
                out += b"\0" * left
                continue
            chunk, rec = rec[: left - 7], rec[left - 7 :]
            kind = (1 if not rec else 2) if first else (4 if not rec else 3)
            out += struct.pack("<IHB", 0, len(chunk), kind) + chunk
            first = False
            if not rec:
                break
    path.write_bytes(bytes(out[: len(out) - truncate]))


def test_wandb_reader_spans_blocks_and_survives_a_truncated_log(tmp_path):
    from wandb.proto import wandb_internal_pb2 as pb

    run = pb.Record()
    run.run.run_id, run.run.display_name, run.run.run_group = "abc123", "attempt", "quickstart"
    run.run.tags.extend(["a", "b"])
    item = run.run.config.update.add()
    item.key, item.value_json = "notes", '"' + "x" * 70_000 + '"'  # one record over two 32 KiB blocks
    rows = []
    for step, fid in enumerate([40.0, 31.5, 35.0]):
        rec = pb.Record()
        for key, value in [("val/fid", fid), ("trainer/global_step", step * 10)]:
            h = rec.history.item.add()
            h.nested_key.append(key)
            h.value_json = repr(value)
        rows.append(rec.SerializeToString())
    exit_rec = pb.Record()
    exit_rec.exit.exit_code = 0
    records = [run.SerializeToString(), *rows, exit_rec.SerializeToString()]
    _write_log(tmp_path / "run.wandb", records)
    full = read_wandb_run(tmp_path / "run.wandb")
    assert (full.run_id, full.group, full.tags, full.exit_code) == ("abc123", "quickstart", ["a", "b"], 0)
    assert len(full.config["notes"]) == 70_000 and [r["val/fid"] for r in full.history] == [40.0, 31.5, 35.0]
    _write_log(tmp_path / "killed.wandb", records, truncate=len(records[-1]) + 3)  # killed while writing
    killed = read_wandb_run(tmp_path / "killed.wandb")
    assert [r["val/fid"] for r in killed.history] == [40.0, 31.5, 35.0] and killed.exit_code is None


@pytest.mark.slow
def test_a_failed_run_is_shown_red_with_its_error(runs_root, tmp_path):
    root = tmp_path / "outputs"
    shutil.copytree(next(runs_root.glob("train/*_idt0")), root / "multirun" / "0")
    (root / "multirun" / "0" / "failure.json").write_text('{"type": "ValueError", "message": "Invalid lr"}')
    [run] = find_runs(root)
    assert run.status == "failed" and "Invalid lr" in run.error
    assert "<tr class='failed'" in render_html([run])


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _browser(tmp_path: Path) -> list[str]:
    return [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="needs Debian's chromium (apt-get install -y chromium)")
def test_page_sorts_filters_and_renders_in_headless_chromium(runs_root, tmp_path):
    out = tmp_path / "compare.html"
    assert main([str(runs_root), "--out", str(out)]) == 0
    runs = _by_name(runs_root)

    def dom(fragment: str) -> str:
        text = subprocess.run(
            [*_browser(tmp_path), "--dump-dom", f"{out.as_uri()}#{fragment}"],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        start = text.index('id="runs-train"')
        return text[start : text.index("</table>", start)]

    # `#sort=val/fid` sorts by the last val/fid on load (the JavaScript ran: the DOM order changed)
    table = dom("sort=val/fid")
    order = re.findall(r"<b>(\w+)</b>", table)
    expected = sorted(["idt05", "idt0", "tb", "csv"], key=lambda n: (runs[n].metrics["val/fid"].last, n))
    assert [runs[n].metrics["val/fid"].last for n in order] == [
        runs[n].metrics["val/fid"].last for n in expected
    ]
    assert "sorted-asc" in table and 'class="num metric best"' in table
    # the tag filter keeps two runs with the same lambdas: their rows stay, the config columns that no longer
    # differ are hidden with the other rows
    table = dom("tag=lam5")
    rows = re.findall(r'<tr([^>]*data-task="train"[^>]*)>\s*<td class="run"><b>(\w+)</b>', table)
    assert sorted(name for attrs, name in rows if "hidden" not in attrs) == ["csv", "tb"]
    assert sorted(name for attrs, name in rows if "hidden" in attrs) == ["idt0", "idt05"]
    assert re.search(r'<th class="cfg hidden" data-key="model.lambda_A"', table)

    shot = tmp_path / "shot.png"
    subprocess.run(
        [*_browser(tmp_path), "--window-size=1200,2000", f"--screenshot={shot}", out.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape[:2] == (2000, 1200)
    saturation = img.max(axis=2) - img.min(axis=2)
    assert (saturation > 80).mean() > 0.01, "no colourful sample images visible"
    assert ((img == [240, 240, 240]).all(axis=2)).sum() > 500, "no table header visible"
    assert ((img == [216, 245, 208]).all(axis=2)).sum() > 100, "no best value highlighted"


def test_a_folder_without_runs_is_one_line_and_exit_1(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main([str(tmp_path), "--out", str(tmp_path / "compare.html")])
    assert done.value.code == 1 and not (tmp_path / "compare.html").exists()
    assert (
        capsys.readouterr().err
        == f"error: no runs under {tmp_path} (a run is a folder with .hydra/config.yaml)\n"
    )
