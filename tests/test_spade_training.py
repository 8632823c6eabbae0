"""SPADE end to end through the real configs: learning, logging, sample grids, exact resume, bf16, DDP, errors."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from tests.conftest import ROOT, RecordLosses
from underpainting.checkpoints import build_model
from underpainting.errors import UserError
from underpainting.models.label_to_image import class_colour_error
from underpainting.train import run

# Tiny SPADE on 32 px synthetic pairs (head 1x1); every loss term on: encoder (KL), VGG with random weights.
TINY_SPADE = [
    "experiment=spade_quickstart",
    "data.image_size=32",
    "data.num_train=8",
    "data.num_val=2",
    "data.batch_size=2",
    "model.G.ngf=8",
    "model.G.spade_hidden=16",
    "model.D.ndf=8",
    "trainer.precision=32-true",
    "logger=none",
    "callbacks.progress_bar=null",
]
WITH_ENCODER = [
    "model.G.use_vae=true",
    "model.G.crop_size=32",
    "+model.E._target_=underpainting.models.networks.spade.ConvEncoder",
    "+model.E.ngf=8",
    "+model.E.z_dim=256",
    "+model.E.input_size=32",
    "model.lambda_vgg=1.0",
    "model.vgg.weights=random",
]


pytestmark = pytest.mark.usefixtures("one_thread")


@torch.no_grad()
def val_colour_error(model, dm) -> float:
    model.eval()
    errs = []
    for i in range(len(dm.val_set)):
        item = dm.val_set[i]
        batch = {"label": item["label"][None], "image": item["image"][None]}
        errs.append(float(class_colour_error(model.generate(batch), batch["image"], batch["label"], 20)))
    return statistics.mean(errs)


@pytest.mark.slow
def test_seeded_training_moves_class_colours_toward_target(make_cfg):
    """About 30 s: the per-class mean colour error of generated validation scenes falls to a low absolute value."""
    import lightning.pytorch as pl

    cfg = make_cfg(
        [
            *TINY_SPADE,
            "data.image_size=64",  # 2x2 head: batch-norm statistics that mean something
            "data.num_val=4",
            "data.batch_size=4",
            "model.optimizer_G.lr=1e-3",
            "model.optimizer_D.lr=1e-3",
            "trainer.max_epochs=16",
            "callbacks.sample_grid.every_n_steps=0",
            "callbacks.model_checkpoint.every_n_train_steps=null",
        ]
    )
    pl.seed_everything(cfg.seed, workers=True)  # as run() does: the same untrained networks
    dm, untrained = instantiate(cfg.data), instantiate(cfg.model)
    dm.setup()
    before = val_colour_error(untrained, dm)
    metrics = run(cfg)
    after = metrics["val/class_colour_error"]
    print(f"class colour error {before:.3f} -> {after:.3f}")
    # The untrained value depends on the seed's initial networks (0.19-0.43) and the float reduction order; the
    # trained one does not: 0.10-0.12 here (AMD, 1 and 2 threads, seeds 1889/7/42), 0.10-0.13 on Intel. An
    # absolute bound with >= 29% margin over the worst measured value.
    assert after < 0.17 and after < before, f"class colour error {before:.3f} -> {after:.3f}"


def test_logs_grids_losses_and_resumes_exactly(make_cfg, tmp_path):
    common = [
        *TINY_SPADE,
        *WITH_ENCODER,
        "trainer.log_every_n_steps=1",
        "callbacks.model_checkpoint.every_n_train_steps=4",
        "callbacks.sample_grid.every_n_steps=4",
        "trainer.max_epochs=2",
    ]
    full, first, resumed = RecordLosses(), RecordLosses(), RecordLosses()
    with pytest.warns(UserWarning, match="RANDOM"):
        run(make_cfg([*common, "trainer.max_steps=12"], "full"), extra_callbacks=[full])
        run(make_cfg([*common, "trainer.max_steps=4"], "first"), extra_callbacks=[first])  # stops mid-epoch
        ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
        run(
            make_cfg([*common, "trainer.max_steps=12", f"ckpt_path={ckpt}"], "resumed"),
            extra_callbacks=[resumed],
        )

    terms = {
        "train/G_GAN",
        "train/G_feat",
        "train/G_VGG",
        "train/KLD",
        "train/D_fake",
        "train/D_real",
        "train/G_total",
    }
    assert terms <= set(full.losses[12])
    assert min(resumed.losses) == 6
    for step in range(6, 13, 2):
        for name, value in full.losses[step].items():
            assert resumed.losses[step][name] == pytest.approx(value, rel=1e-5, abs=1e-6), (step, name)

    state = torch.load(ckpt, weights_only=True)
    assert "rng" in state and len(state["optimizer_states"]) == 2
    assert not any(k.startswith("_vgg") or ".vgg." in k for k in state["state_dict"])  # fixed VGG not saved
    lr = {k: v for k, v in state["optimizer_states"][0]["param_groups"][0].items() if k in ("lr", "betas")}
    assert lr == {"lr": 1e-4, "betas": (0.0, 0.9)} or lr == {"lr": 1e-4, "betas": [0.0, 0.9]}
    assert state["optimizer_states"][1]["param_groups"][0]["lr"] == 4e-4  # TTUR

    samples = sorted(p.name for p in (tmp_path / "full" / "samples").glob("*.png"))
    assert {"train_step0000004.png", "final_step0000012.png"} <= set(samples) and any(
        s.startswith("val_") for s in samples
    )
    grid = Image.open(tmp_path / "full" / "samples" / "final_step0000012.png")
    assert grid.width == 5 * (32 + 2) + 2  # label | generated | random_style_1 | random_style_2 | real

    model, _ = build_model(tmp_path / "full" / "checkpoints" / "last.ckpt")
    assert model.exportable == ("G", "E")
    labels = torch.zeros(1, 32, 32, dtype=torch.long)
    labels[:, 16:] = 8
    styles = model.sample_styles(labels, 3, generator=torch.Generator().manual_seed(0))
    assert styles.shape == (3, 1, 3, 32, 32) and not torch.allclose(styles[0], styles[1])
    style_image = torch.rand(1, 3, 32, 32) * 2 - 1
    a = model.transfer_style(labels.expand(2, -1, -1), style_image)
    assert torch.allclose(a[0], a[1], atol=1e-5)  # one encoded style reused for every map
    assert torch.allclose(a[:1], model.transfer_style(labels, style_image), atol=1e-5)


def test_bf16_mixed_on_cpu(make_cfg, tmp_path):
    from tests.test_cyclegan import run_bf16

    run_bf16(make_cfg, tmp_path, TINY_SPADE, "G")


def test_missing_vgg_weights_stop_with_a_fix(make_cfg, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_hub"))
    cfg = make_cfg([*TINY_SPADE, "model.lambda_vgg=10", "model.vgg.download=false", "trainer.max_steps=2"])
    with pytest.raises(UserError) as err:
        run(cfg)
    msg = str(err.value)
    assert "VGG19" in msg and "model.vgg.weights" in msg and "model.lambda_vgg=0" in msg
    assert not (tmp_path / "checkpoints").exists()  # stopped before any training


def test_wrong_semantic_nc_and_unknown_label_ids(make_cfg):
    with pytest.raises(UserError, match="model.G.semantic_nc"):
        run(make_cfg([*TINY_SPADE, "model.G.semantic_nc=19", "model.D.label_nc=19", "trainer.max_steps=2"]))
    model = instantiate(make_cfg(TINY_SPADE).model)
    bad = torch.full((1, 32, 32), 3)
    bad[0, 0, 0] = 57
    with pytest.raises(UserError, match=r"\[57\] in x\.png"):
        model.semantics({"label": bad, "path": ["x.png"]})


@pytest.mark.slow
def test_ddp_cpu_two_processes(tmp_path):
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    args = [*TINY_SPADE, "trainer=ddp_cpu", "trainer.max_epochs=1", f"hydra.run.dir={tmp_path}"]
    r = subprocess.run(
        [sys.executable, "train.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-3000:]
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 2 * 2  # 8 scenes over 2 ranks, batch 2: 2 batches per rank, G + D steps


@pytest.mark.parametrize("model", ["spade", "pix2pix"])
def test_dontcare_ids_without_a_channel_for_them_stop_at_setup(make_cfg, model):
    """On a GPU the per-batch id check is skipped (a host sync per step): a data/model mismatch is caught once, at
    setup, before any step, on every device."""
    from tests.test_pix2pix import TINY_PIX2PIX

    tiny = TINY_SPADE if model == "spade" else TINY_PIX2PIX
    with pytest.raises(UserError, match="data.dontcare=true adds id 20 .* set data.dontcare=false"):
        run(make_cfg([*tiny, "data.dontcare=true", "trainer.max_steps=1"]))
