"""Plain reference-style training loops, no Lightning: the peer column the benchmarks compare the project against.

Each loop does what the reference implementation's update does, written here from its description (not copied),
on the same networks the project's configs build, with the reference's optimizer settings:
- `cyclegan`: junyanz `CycleGANModel.optimize_parameters`: forward both cycles, G step (identity, LSGAN, cycle
  losses) with both D frozen, then the D step on image-pool fakes, Adam (0.5, 0.999), default (per-tensor) Adam.
- `spade`: NVlabs `Pix2PixTrainer`: G step (hinge, feature matching over the D's intermediate features, VGG19
  perceptual loss; D is not frozen, its gradients are dropped by the D step's zero_grad), then the D step on a
  fresh fake drawn without gradients, TTUR Adam (0, 0.9).
- `nst`: the PyTorch neural-transfer tutorial: torchvision VGG19 features with content/style loss modules inserted
  after its conv_4 / conv_1..5 (= the first five convs, conv2_2 / conv1_1..conv3_1, so the net is cut after conv3_1),
  Gram / (b c h w), L-BFGS over the image, pixels clamped in the closure. `layers="gatys"` puts the losses where
  Gatys et al. (and the project) do, conv4_2 / conv1_1, 2_1, 3_1, 4_1, 5_1: the same work as the project's step.

`precision` is "32-true", "bf16-mixed" (plain `torch.autocast`, as one would add to the reference by hand) or, for
the GAN loops, "16-mixed" (fp16 autocast with a `GradScaler`, as the reference's `--amp`-style patches do).
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import nn

from benchmarks.memory import PeakAllocated, state_bytes

ROOT = Path(__file__).resolve().parents[1]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _autocast(precision: str, device: torch.device, scaled: bool = False):
    """`scaled`: the loop scales its losses (a GradScaler), so fp16 is allowed."""
    if precision not in ("32-true", "bf16-mixed", *(("16-mixed",) if scaled else ())):
        raise ValueError(
            f"this plain loop runs 32-true or bf16-mixed{' or 16-mixed' if scaled else ''}, not {precision}"
        )
    dtype = torch.float16 if precision == "16-mixed" else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype, enabled=precision != "32-true")


def _scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling for 16-mixed (a no-op otherwise), one for both optimizers as Lightning's precision plugin."""
    return torch.amp.GradScaler(device.type, enabled=precision == "16-mixed")


def timed(
    step: Callable[[], None], steps: int, warmup: int, device: torch.device, state: Callable[[], int]
) -> dict:
    """Mean seconds of `steps` calls after `warmup`, then one more call for the peak allocated memory."""
    times = []
    for i in range(warmup + steps):
        _sync(device)
        t0 = time.perf_counter()
        step()
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    start = state()
    with PeakAllocated(device) as p:
        step()
    return {"s_per_iter": sum(times) / len(times), "peak_mib": (start + p.peak) / 2**20}


def _model_cfg(overrides: list[str]):
    from underpainting.config.compose import compose_run

    return compose_run(overrides, Path("/tmp/plain_loop_cfg"), root_dir=ROOT).model


def _set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


class _Pool:
    """The reference's image buffer: store until full, then return a stored image (swapped) with p = 0.5."""

    def __init__(self, size: int = 50) -> None:
        self.size, self.images = size, []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif random.random() > 0.5:
                i = random.randint(0, self.size - 1)
                out.append(self.images[i].clone())
                self.images[i] = image
            else:
                out.append(image)
        return torch.stack(out)


def cyclegan(
    size: int, steps: int, warmup: int, precision: str, device: str = "cpu", compile: bool = False
) -> dict:
    step, state = cyclegan_step(size, precision, device, compile)
    return timed(step, steps, warmup, torch.device(device), state)


def cyclegan_step(
    size: int, precision: str, device: str = "cpu", compile: bool = False, fused: bool = False
) -> tuple[Callable[[], None], Callable[[], int]]:
    """One reference CycleGAN iteration as a function, and the size of its training state."""
    dev = torch.device(device)
    torch.manual_seed(0)
    cfg = _model_cfg(["model=cyclegan"])
    G_A, G_B, D_A, D_B = (instantiate(cfg[k]).to(dev) for k in ("G_AB", "G_BA", "D_A", "D_B"))
    if compile:
        for net in (G_A, G_B, D_A, D_B):
            net.compile()
    adam = {"lr": 2e-4, "betas": (0.5, 0.999), "fused": fused or None}
    opt_G = torch.optim.Adam(itertools.chain(G_A.parameters(), G_B.parameters()), **adam)
    opt_D = torch.optim.Adam(itertools.chain(D_A.parameters(), D_B.parameters()), **adam)
    pool_A, pool_B = _Pool(), _Pool()
    scaler = _scaler(precision, dev)
    real_A = torch.rand(1, 3, size, size, device=dev) * 2 - 1
    real_B = torch.rand(1, 3, size, size, device=dev) * 2 - 1
    lam, lam_idt = 10.0, 0.5

    def gan(pred: torch.Tensor, real: bool) -> torch.Tensor:
        return F.mse_loss(pred, torch.full_like(pred, float(real)))

    def step() -> None:
        with _autocast(precision, dev, scaled=True):
            fake_B = G_A(real_A)
            rec_A = G_B(fake_B)
            fake_A = G_B(real_B)
            rec_B = G_A(fake_A)
        _set_requires_grad([D_A, D_B], False)
        opt_G.zero_grad()
        with _autocast(precision, dev, scaled=True):
            loss_idt_A = F.l1_loss(G_A(real_B), real_B) * lam * lam_idt
            loss_idt_B = F.l1_loss(G_B(real_A), real_A) * lam * lam_idt
            loss_G = (
                gan(D_A(fake_B), True)
                + gan(D_B(fake_A), True)
                + F.l1_loss(rec_A, real_A) * lam
                + F.l1_loss(rec_B, real_B) * lam
                + loss_idt_A
                + loss_idt_B
            )
        scaler.scale(loss_G).backward()
        scaler.step(opt_G)
        scaler.update()
        _set_requires_grad([D_A, D_B], True)
        opt_D.zero_grad()
        for D, real, fake in ((D_A, real_B, pool_B.query(fake_B)), (D_B, real_A, pool_A.query(fake_A))):
            with _autocast(precision, dev, scaled=True):
                loss_D = (gan(D(real), True) + gan(D(fake.detach()), False)) * 0.5
            scaler.scale(loss_D).backward()
        scaler.step(opt_D)
        scaler.update()

    nets = (G_A, G_B, D_A, D_B)
    return step, lambda: state_bytes(nets, (opt_G, opt_D))


def spade(
    size: int, steps: int, warmup: int, precision: str, device: str = "cpu", vgg: str = "random"
) -> dict:
    from underpainting.data.labels import one_hot

    dev = torch.device(device)
    torch.manual_seed(0)
    cfg = _model_cfg(
        ["model=spade", "data=synthetic_pairs", f"model.G.crop_size={size}", f"model.vgg.weights={vgg}"]
    )
    G, D = instantiate(cfg.G).to(dev), instantiate(cfg.D).to(dev)
    vgg_loss = instantiate(cfg.vgg)().to(dev)
    opt_G = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.0, 0.9))
    opt_D = torch.optim.Adam(D.parameters(), lr=4e-4, betas=(0.0, 0.9))
    label = torch.randint(0, cfg.G.semantic_nc, (1, size, size), device=dev)
    sem = one_hot(label, cfg.G.semantic_nc)
    real = torch.rand(1, 3, size, size, device=dev) * 2 - 1
    scaler = _scaler(precision, dev)

    def discriminate(fake: torch.Tensor):
        out = D(torch.cat([torch.cat([sem, fake], 1), torch.cat([sem, real], 1)], 0))
        return [[f[:1] for f in s] for s in out], [[f[1:] for f in s] for s in out]

    def step() -> None:
        opt_G.zero_grad()
        with _autocast(precision, dev, scaled=True):
            fake = G(sem)
            pred_fake, pred_real = discriminate(fake)
            loss = -sum(s[-1].float().mean() for s in pred_fake) / len(pred_fake)
            feat = sum(
                F.l1_loss(f.float(), r.detach().float())
                for sf, sr in zip(pred_fake, pred_real, strict=True)
                for f, r in zip(sf[:-1], sr[:-1], strict=True)
            )
            loss = loss + feat * cfg.lambda_feat / len(pred_fake) + vgg_loss(fake, real) * cfg.lambda_vgg
        scaler.scale(loss).backward()
        scaler.step(opt_G)
        scaler.update()
        opt_D.zero_grad()
        with _autocast(precision, dev, scaled=True):
            with torch.no_grad():
                fake = G(sem)
            pred_fake, pred_real = discriminate(fake.detach().requires_grad_())
            loss_D = sum(
                F.relu(1 + f[-1].float()).mean() + F.relu(1 - r[-1].float()).mean()
                for f, r in zip(pred_fake, pred_real, strict=True)
            ) / len(pred_fake)
        scaler.scale(loss_D).backward()
        scaler.step(opt_D)
        scaler.update()

    return timed(step, steps, warmup, dev, lambda: state_bytes((G, D, vgg_loss), (opt_G, opt_D)))


class _ContentLoss(nn.Module):
    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.target, self.loss = target.detach(), None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.loss = F.mse_loss(x.float(), self.target)
        return x


def _gram(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    f = x.float().reshape(b * c, h * w)
    return f @ f.t() / (b * c * h * w)


class _StyleLoss(nn.Module):
    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.target, self.loss = _gram(target).detach(), None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.loss = F.mse_loss(_gram(x), self.target)
        return x


TUTORIAL_LAYERS = {
    "tutorial": (4, (1, 2, 3, 4, 5)),
    "gatys": (10, (1, 3, 5, 9, 13)),
}  # conv numbers (content, style)


def nst(
    size: int, evals: int, warmup: int, precision: str, device: str = "cpu", layers: str = "tutorial"
) -> dict:
    """Seconds per L-BFGS evaluation (closure call) of the tutorial's loop, VGG19 with random weights."""
    content_conv, style_convs = TUTORIAL_LAYERS[layers]
    from torchvision.models import vgg19

    dev = torch.device(device)
    torch.manual_seed(0)
    features = vgg19(weights=None).features.to(dev).eval().requires_grad_(False)
    content = torch.rand(1, 3, size, size, device=dev)
    style = torch.rand(1, 3, size, size, device=dev)
    mean = torch.tensor([0.485, 0.456, 0.406], device=dev).view(-1, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=dev).view(-1, 1, 1)
    model, content_losses, style_losses, i = nn.Sequential(), [], [], 0
    for layer in features.children():  # the tutorial's get_style_model_and_losses
        if isinstance(layer, nn.Conv2d):
            i += 1
        name = f"{type(layer).__name__}_{i}"
        model.add_module(name, nn.ReLU(inplace=False) if isinstance(layer, nn.ReLU) else layer)
        if isinstance(layer, nn.Conv2d) and i == content_conv:
            content_losses.append(_ContentLoss(model((content - mean) / std)))
            model.add_module(f"content_loss_{i}", content_losses[-1])
        if isinstance(layer, nn.Conv2d) and i in style_convs:
            style_losses.append(_StyleLoss(model((style - mean) / std)))
            model.add_module(f"style_loss_{i}", style_losses[-1])
        if isinstance(layer, nn.Conv2d) and i == max(content_conv, *style_convs):
            break
    image = content.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([image], max_iter=1)

    def closure() -> torch.Tensor:
        with torch.no_grad():
            image.clamp_(0, 1)
        optimizer.zero_grad()
        with _autocast(precision, dev):
            model((image - mean) / std)
        loss = 1e6 * sum(s.loss for s in style_losses) + sum(c.loss for c in content_losses)
        loss.backward()
        return loss

    return timed(
        lambda: optimizer.step(closure), evals, warmup, dev, lambda: state_bytes([model], [optimizer])
    )
