"""GAN objectives, image pool and learning-rate schedule on fixed inputs."""

import math

import pytest
import torch

from underpainting.models.image_pool import ImagePool
from underpainting.models.losses.gan import GANLoss
from underpainting.models.schedules import LinearDecay

PRED = torch.tensor([0.5, -1.0])


def test_lsgan_values():
    assert GANLoss("lsgan")(PRED, True).item() == pytest.approx(((0.5 - 1) ** 2 + (-1 - 1) ** 2) / 2)
    assert GANLoss("lsgan")(PRED, False).item() == pytest.approx((0.25 + 1.0) / 2)


def test_vanilla_values():
    expected = (math.log1p(math.exp(-0.5)) + math.log1p(math.exp(1.0))) / 2
    assert GANLoss("vanilla")(PRED, True).item() == pytest.approx(expected, rel=1e-6)


def test_hinge_values():
    hinge = GANLoss("hinge")
    assert hinge(PRED, True).item() == pytest.approx(1.25)
    assert hinge(PRED, False).item() == pytest.approx(0.75)
    assert hinge(PRED, True, for_discriminator=False).item() == pytest.approx(0.25)


def test_multiscale_predictions_are_averaged():
    loss = GANLoss("lsgan")
    multi = [[torch.zeros(1), PRED], [torch.zeros(1), torch.ones(2)]]  # (features..., prediction) per scale
    assert loss(multi, True).item() == pytest.approx((2.125 + 0.0) / 2)


def test_loss_is_fp32_under_bf16_autocast():
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert GANLoss("lsgan")(PRED.bfloat16(), True).dtype == torch.float32


def test_image_pool_fills_then_swaps_half_the_time():
    pool = ImagePool(size=4, seed=0)
    first = [torch.full((3, 2, 2), float(i)) for i in range(4)]
    for x in first:
        assert torch.equal(pool.query(x[None])[0], x), "until full, the pool returns its input"
    from_history = 0
    for i in range(4, 404):
        out = pool.query(torch.full((1, 3, 2, 2), float(i)))[0]
        from_history += int(out[0, 0, 0].item() != i)
    assert 0.4 < from_history / 400 < 0.6
    assert len(pool.images) == 4


def test_image_pool_state_round_trip_is_exact():
    a = ImagePool(size=3, seed=1)
    for i in range(10):
        a.query(torch.full((2, 1, 1, 1), float(i)))
    b = ImagePool(size=3, seed=99)
    b.load_state_dict(a.state_dict())
    for i in range(10, 20):
        x = torch.full((2, 1, 1, 1), float(i))
        assert torch.equal(a.query(x), b.query(x))


def test_linear_decay_matches_reference_rule():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=2e-4)
    sched = LinearDecay(opt, n_epochs=100, n_epochs_decay=100)
    lrs = []
    for _ in range(200):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    rule = [2e-4 * (1.0 - max(0, e + 1 - 100) / 101) for e in range(200)]
    assert lrs == pytest.approx(rule)
    assert lrs[99] == 2e-4 and lrs[199] == pytest.approx(2e-4 / 101)


def test_image_pool_follows_the_device_and_dtype_of_new_fakes():
    """A pool restored on the CPU and then fed CUDA/bf16 fakes (resume on a GPU) must not end up holding a mixed
    list: that crashed the next checkpoint save (`torch.stack` in state_dict). `meta` stands in for CUDA here."""
    a = ImagePool(size=6, seed=1)
    a.query(torch.rand(6, 3, 2, 2, dtype=torch.float64))
    pool = ImagePool(size=6, seed=1)
    pool.load_state_dict(a.state_dict())
    out = pool.query(torch.rand(2, 3, 2, 2, dtype=torch.bfloat16))  # swaps at most 2 of the 6
    assert out.dtype == torch.bfloat16 and {im.dtype for im in pool.images} == {torch.bfloat16}
    assert pool.state_dict()["images"].shape == (6, 3, 2, 2)
    out = pool.query(torch.empty(2, 3, 2, 2, device="meta"))
    assert out.device.type == "meta" and {im.device.type for im in pool.images} == {"meta"}
    torch.stack(pool.images)  # one device: stackable (what state_dict does)
