"""pix2pix's test protocol (Isola et al. 2017, Sec. 3.3; the reference's test.py without --eval): dropout on and
batch norm with the test image's own statistics, as the default for validation, samples and export; eval mode on
request."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from tests.test_pix2pix import TINY_PIX2PIX

pytestmark = pytest.mark.usefixtures("one_thread")


def batch(n: int = 2) -> dict:
    g = torch.Generator().manual_seed(0)
    label = torch.randint(0, 20, (n, 4, 4), generator=g).repeat_interleave(8, 1).repeat_interleave(8, 2)
    return {"label": label, "image": torch.zeros(n, 3, 32, 32)}


def trained_like(model) -> None:
    """Running statistics far from the batch's, so the two protocols differ measurably."""
    for m in model.G.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.fill_(0.5)
            m.running_var.fill_(4.0)


def test_default_is_the_papers(make_cfg):
    model = instantiate(make_cfg(TINY_PIX2PIX).model)
    assert model.hparams.test_protocol == "paper"
    with pytest.raises(Exception, match="test_protocol must be 'paper' or 'eval'"):
        instantiate(make_cfg([*TINY_PIX2PIX, "model.test_protocol=train"]).model)


def test_paper_protocol_normalises_each_test_image_alone(make_cfg):
    """Without dropout the paper protocol is batch norm over one image: a batch of two gives what each gives
    alone, and not what the running statistics give."""
    model = instantiate(make_cfg([*TINY_PIX2PIX, "model.G.dropout=false"]).model).eval()
    trained_like(model)
    b = batch()
    with torch.no_grad():
        both = model.generate(b)
        second = model.generate({"label": b["label"][1:], "image": b["image"][1:]})
        running = model.G(model.condition(b["label"]))
    assert torch.allclose(both[1:], second, atol=1e-6)
    assert (both - running).abs().max() > 0.05


def test_paper_protocol_has_no_side_effects(make_cfg):
    """Dropout draws come from a seeded, forked RNG: the same numbers every validation, the training RNG stream
    untouched; running statistics and module modes stay as they were."""
    model = instantiate(make_cfg(TINY_PIX2PIX).model).eval()
    trained_like(model)
    before = {k: v.clone() for k, v in model.G.state_dict().items()}
    rng = torch.get_rng_state()
    with torch.no_grad():
        a, b = model.generate(batch()), model.generate(batch())
    assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in model.G.state_dict().items())
    assert not any(m.training for m in model.G.modules())


def test_eval_protocol_is_plain_eval_mode(make_cfg):
    model = instantiate(make_cfg([*TINY_PIX2PIX, "model.test_protocol=eval"]).model).eval()
    trained_like(model)
    b = batch()
    with torch.no_grad():
        assert torch.equal(model.generate(b), model.G(model.condition(b["label"])))


def test_paper_protocol_is_rank_local_under_sync_batchnorm(make_cfg, gloo_group):
    """Under `trainer=ddp` (sync_batchnorm) the sample grid renders on rank 0 alone: the paper protocol must not
    enter SyncBatchNorm's collective (the other ranks never join it), and validation numbers must not depend on the
    GPU count. On a CPU that collective path raises at once instead of waiting."""
    from lightning.pytorch.plugins.layer_sync import TorchSyncBatchNorm

    plain = instantiate(make_cfg(TINY_PIX2PIX).model).eval()
    trained_like(plain)
    synced = TorchSyncBatchNorm().apply(instantiate(make_cfg(TINY_PIX2PIX).model).eval())
    synced.load_state_dict(plain.state_dict())
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in synced.G.modules())
    before = {k: v.clone() for k, v in synced.G.state_dict().items()}
    with torch.no_grad():
        expected, got = plain.generate(batch()), synced.generate(batch())
    torch.testing.assert_close(got, expected)
    after = synced.G.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items()), "running statistics untouched"
    assert all(not m.training for m in synced.G.modules() if isinstance(m, torch.nn.SyncBatchNorm))
