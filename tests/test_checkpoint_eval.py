"""Evaluating a checkpoint: `train=false test=true ckpt_path=X` tests X (test/*), `ckpt_path` goes through the same
checks as infer.py (one paragraph per problem), and with the metrics callback the best checkpoint by val/fid is kept
beside last.ckpt."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from tests.conftest import TINY_CYCLEGAN
from underpainting.checkpoints import build_model
from underpainting.errors import ConfigError, WeightsError
from underpainting.train import run

pytestmark = pytest.mark.usefixtures("one_thread")
FAST = [*TINY_CYCLEGAN, "callbacks.sample_grid.every_n_steps=0"]


def _run(cfg):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run(cfg)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from tests.conftest import compose_train

    out = tmp_path_factory.mktemp("trained")
    torch.set_num_threads(1)
    _run(compose_train([*FAST, "trainer.max_epochs=2"], out))
    return out / "checkpoints" / "last.ckpt"


def test_test_only_evaluates_the_given_checkpoint(make_cfg, trained):
    metrics = _run(make_cfg([*FAST, "train=false", "test=true", f"ckpt_path={trained}"]))
    assert {"test/cycle_A", "test/cycle_B"} <= set(metrics) and not any(k.startswith("val/") for k in metrics)
    model, cfg = build_model(trained)
    from hydra.utils import instantiate

    dm = instantiate(make_cfg(FAST).data)
    dm.setup()
    batch = next(iter(dm.test_dataloader()))
    with torch.no_grad():
        expected = float(model.generator_losses(batch["A"], batch["B"])[0]["cycle_A"])
    assert metrics["test/cycle_A"] == pytest.approx(expected, rel=1e-5), (
        "the checkpoint's weights were tested"
    )
    with pytest.raises(ConfigError, match="add ckpt_path="):
        _run(make_cfg([*FAST, "train=false", "test=true"]))


def _crafted(trained, tmp_path, edit) -> str:
    ckpt = torch.load(trained, weights_only=True)
    edit(ckpt)
    path = tmp_path / "crafted.ckpt"
    torch.save(ckpt, path)
    return str(path)


def _other_model(ckpt):
    ckpt["underpainting_config"]["model"]["_target_"] = "underpainting.models.spade.SPADEModel"


def _pix2pix_other_labels(ckpt):
    ckpt["underpainting_config"]["model"]["_target_"] = "underpainting.models.pix2pix.Pix2Pix"
    ckpt["underpainting_config"]["labels"]["classes"][9]["name"] = "poppy"


@pytest.mark.parametrize(
    "case, pattern",
    [
        ("missing", r"does not exist"),
        ("truncated", r"is not a readable checkpoint"),
        (
            "other model",
            r"holds a SPADEModel checkpoint .* but this run's model is CycleGAN: add `model=spade`",
        ),
        ("other labels", r"different label set .* id 9: checkpoint 'poppy'"),
        (
            "other size",
            r"does not fit the configured networks: .* It was trained with model.G_AB.ngf=8 \(now 16\)",
        ),
    ],
)
def test_ckpt_path_is_checked_like_infer(make_cfg, trained, tmp_path, case, pattern):
    overrides, path = list(FAST), str(trained)
    if case == "missing":
        path = str(tmp_path / "nope.ckpt")
    elif case == "truncated":
        path = str(tmp_path / "half.ckpt")
        data = trained.read_bytes()
        (tmp_path / "half.ckpt").write_bytes(data[: len(data) // 2])
    elif case == "other model":
        path = _crafted(trained, tmp_path, _other_model)
    elif (
        case == "other labels"
    ):  # a pix2pix run (labels matter there) given a checkpoint trained on other labels
        overrides = ["experiment=pix2pix_quickstart", "data.image_size=32", "logger=none"]
        path = _crafted(trained, tmp_path, _pix2pix_other_labels)
    else:
        overrides = [o for o in FAST if o != "model.G_AB.ngf=8"] + ["model.G_AB.ngf=16"]
    with pytest.raises(WeightsError, match=pattern) as err:
        _run(make_cfg([*overrides, f"ckpt_path={path}"]))
    assert path in str(err.value) and "\n" not in str(err.value)


def test_metrics_callback_keeps_the_best_by_val_fid_beside_last(make_cfg, tmp_path):
    cfg = make_cfg(
        [*FAST, "callbacks=[default,metrics]", "metrics/feature=random", "metrics/lpips=random", "trainer.max_epochs=3",
         "callbacks.model_checkpoint.every_n_train_steps=4", "test=true"]
    )  # fmt: skip
    metrics = _run(cfg)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    best = [n for n in names if n.startswith("best_fid_step")]
    assert "last.ckpt" in names and len(best) == 1, names
    history = json.loads((tmp_path / "metrics.json").read_text())["history"]
    vals = {h["step"]: h["metrics"]["fid"] for h in history if h["stage"] == "val"}
    assert int(best[0][len("best_fid_step") : -len(".ckpt")]) == min(vals, key=vals.get)
    assert "test/fid" in metrics
