"""Generator weight averages (model.ema_decay): the maths, exact swaps, and that validation, sample grids, export
and inference use them while training does not."""

from __future__ import annotations

import statistics
import warnings

import pytest
import torch
from torch import nn

from tests.test_pix2pix import TINY_PIX2PIX
from underpainting.checkpoints import build_model, load_exported
from underpainting.export import export_generators
from underpainting.models.ema import GeneratorEMA, adapt_checkpoint
from underpainting.models.label_to_image import class_colour_error
from underpainting.train import run

pytestmark = pytest.mark.usefixtures("one_thread")


def _net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.utils.parametrizations.spectral_norm(nn.Conv2d(4, 2, 1))
    )


def test_average_update_swap_and_copy():
    net = _net()
    owner = nn.Module()
    owner.net = net
    owner.ema = GeneratorEMA({"net": net}, decay=0.75)
    assert sum(p.numel() for p in owner.parameters()) == sum(p.numel() for p in net.parameters()), (
        "the averages are buffers: no optimizer, DDP or parameter count sees them"
    )
    start = {k: v.clone() for k, v in net.named_parameters()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    net(torch.rand(2, 3, 8, 8))  # moves the batch-norm statistics
    owner.ema.update()
    avg = {k: v.clone() for k, v in owner.ema.shadow["net"].named_buffers()}
    for k, p in net.named_parameters():
        assert torch.allclose(avg[k], 0.75 * start[k] + 0.25 * p, atol=1e-6), k
    assert torch.equal(avg["1.running_mean"], net[1].running_mean), "buffers are copied, not averaged"

    raw = {k: v.clone() for k, v in net.state_dict().items()}
    with owner.ema.swapped():
        assert all(torch.equal(p, avg[k]) for k, p in net.named_parameters())
        with owner.ema.swapped():  # re-entrant
            pass
        with pytest.raises(RuntimeError):
            owner.ema.update()
    assert all(torch.equal(v, raw[k]) for k, v in net.state_dict().items()), "swapping back is exact"
    owner.ema.copy_to_networks()
    assert all(torch.equal(p, avg[k]) for k, p in net.named_parameters())


def test_checkpoints_without_averages_start_them_and_averages_are_dropped_when_off():
    net = _net()
    sd = {f"G.{k}": v for k, v in net.state_dict().items()}
    ema = GeneratorEMA({"G": net}, 0.9)
    assert adapt_checkpoint(sd, ema, ("G",)) and torch.equal(sd["ema.shadow.G.0.weight"], sd["G.0.weight"])
    assert adapt_checkpoint(sd, ema, ("G",)) is None  # already fits
    assert adapt_checkpoint(sd, None, ("G",)) and not any(k.startswith("ema.") for k in sd)


def test_bad_decay_is_a_user_error():
    from underpainting.errors import UserError

    with pytest.raises(UserError, match="model.ema_decay"):
        GeneratorEMA({"G": _net()}, 1.5)


def test_validation_samples_and_export_use_the_averages(make_cfg, tmp_path):
    cfg = make_cfg(
        [
            *TINY_PIX2PIX,
            "model.ema_decay=0.5",
            "trainer.max_epochs=2",
            "callbacks.sample_grid.every_n_steps=0",
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metrics = run(cfg)
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    averaged, _ = build_model(ckpt)
    raw, _ = build_model(ckpt, ema=False)
    from hydra.utils import instantiate

    dm = instantiate(cfg.data)
    dm.setup()

    @torch.no_grad()
    def val(model, key):
        vals = []
        for i in range(len(dm.val_set)):
            item = dm.val_set[i]
            batch = {"label": item["label"][None], "image": item["image"][None]}
            fake = model.generate(batch)
            vals.append(
                float((fake - batch["image"]).abs().mean())
                if key == "L1"
                else float(class_colour_error(fake, batch["image"], batch["label"], 20))
            )
        return statistics.mean(vals)

    assert val(averaged, "L1") == pytest.approx(metrics["val/L1"], abs=1e-5), "validation ran on the averages"
    assert abs(val(raw, "L1") - metrics["val/L1"]) > 1e-4, "and the raw weights give another number"
    x = averaged.condition(torch.zeros(1, 32, 32, dtype=torch.long))
    g, _ = load_exported(export_generators(ckpt, tmp_path / "export")[0])
    assert torch.equal(g(x), averaged.G(x)), "export writes the averaged generator"
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    assert not torch.equal(state["G.model.model.0.weight"], state["ema.shadow.G.model.model.0.weight"])


def test_the_averages_survive_sync_batchnorm(make_cfg):
    """`trainer.sync_batchnorm=true` (conf/trainer/ddp.yaml) converts every batch norm of the module, the averages'
    storage included: it must leave the averages alone, and they must keep following the converted networks."""
    from hydra.utils import instantiate
    from lightning.pytorch.plugins.layer_sync import TorchSyncBatchNorm

    model = instantiate(make_cfg([*TINY_PIX2PIX, "model.ema_decay=0.5"]).model)
    keys = set(model.state_dict())
    model = TorchSyncBatchNorm().apply(model)  # what Lightning's DDP strategy does at setup
    assert any(isinstance(m, nn.SyncBatchNorm) for m in model.G.modules())
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.ema.modules())
    assert set(model.state_dict()) == keys, "checkpoints keep their keys"
    with torch.no_grad():
        for p in model.G.parameters():
            p.add_(1.0)
    before = {k: v.clone() for k, v in model.ema.shadow["G"].named_buffers()}
    model.ema.update()
    for k, p in model.G.named_parameters():
        assert torch.allclose(model.ema.shadow["G"].get_buffer(k), 0.5 * before[k] + 0.5 * p), k


def test_ddp_does_not_broadcast_the_averages(make_cfg, gloo_group):
    """DDP broadcasts the module's buffers from rank 0 before every forward: the averages (buffers too) would cost
    a generator's worth of traffic per step (~91 MB CycleGAN, ~370 MB SPADE); the networks' own buffers still go."""
    from hydra.utils import instantiate
    from torch.nn.parallel import DistributedDataParallel

    model = instantiate(make_cfg([*TINY_PIX2PIX, "model.ema_decay=0.5"]).model)
    synced = set(DistributedDataParallel(model, find_unused_parameters=True).named_module_buffers)
    assert not [k for k in synced if k.startswith("ema.")]
    assert {f"G.{k}" for k, _ in model.G.named_buffers()} <= synced, "batch-norm statistics are still synced"
