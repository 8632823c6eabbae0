"""The reference architecture of Pu et al. 2022 (jjhuangcs/Mixed-X-Ray-Image-Separation `XraySepNet_model.py`), for
timing only (benchmarks/xray.py): 5 unrolled learned coupled-ISTA layers with 64-channel sparse codes and 5x5
filters at full resolution, a 5x5 linear synthesis and a 3 x 64-feature visible reconstruction. Re-written here,
with the reference's sizes and update order; not used by the library (see models/networks/xray.py for why)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def soft(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * F.relu(x.abs() - t)


class Haar(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        lo, hi = torch.tensor([1.0, 1.0]) / 2**0.5, torch.tensor([-1.0, 1.0]) / 2**0.5
        self.register_buffer(
            "bank", torch.stack([torch.outer(a, b) for a in (lo, hi) for b in (lo, hi)])[:, None]
        )

    def forward(self, x):
        return F.conv2d(F.pad(x, (0, 1, 0, 1), mode="replicate"), self.bank)

    def inverse(self, y):
        h, w = y.shape[-2:]
        return F.conv_transpose2d(y, self.bank)[..., :h, :w] / 4


class LCISTALayer(nn.Module):
    def __init__(self, codes: int = 64, k: int = 5) -> None:
        super().__init__()
        c = lambda i, o: nn.Conv2d(i, o, k, padding=k // 2, bias=False)  # noqa: E731
        self.phi1, self.phi2 = c(1, codes), c(codes, 1)
        self.theta1, self.theta2, self.gamma1, self.gamma2 = c(1, 1), c(1, 1), c(1, 1), c(1, 1)
        self.l1, self.l2 = (
            nn.Parameter(torch.full((1, codes, 1, 1), 0.1)),
            nn.Parameter(torch.full((1, codes, 1, 1), 0.1)),
        )
        self.thre = nn.Parameter(torch.tensor(0.4))
        self.sp, self.haar = nn.Softplus(beta=20), Haar()

    def forward(self, g, x, y1, y2, z1, z2):
        z1 = soft(z1 + self.phi1(y1 - self.phi2(z1)), self.sp(self.l1))
        z2 = soft(z2 + self.phi1(y2 - self.phi2(z2)), self.sp(self.l2))
        w1 = self.haar(y1)
        y2 = y2 + self.gamma1(x - self.gamma2(y1) - self.gamma2(y2)) + (y2 - self.phi2(z2))
        w2 = soft(self.haar(y2), (self.sp(self.thre) * w1).abs())
        y2 = self.haar.inverse(w2)
        y1 = (
            y1
            + self.gamma1(x - self.gamma2(y1) - self.gamma2(y2))
            + self.theta1(g - self.theta2(y1))
            + (y1 - self.phi2(z1))
        )
        y1 = self.haar.inverse(soft(self.haar(y1), (self.sp(self.thre) * w2).abs()))
        return g, x, y1, y2, z1, z2


class LCISTANet(nn.Module):
    def __init__(self, layers: int = 5, codes: int = 64, k: int = 5, rfeats: int = 64) -> None:
        super().__init__()
        self.codes = codes
        self.layers = nn.ModuleList(LCISTALayer(codes, k) for _ in range(layers))
        self.recon_xr = nn.Conv2d(1, 1, k, padding=k // 2)
        p = k // 2
        self.recon_vis = nn.Sequential(nn.Conv2d(1, rfeats, k, padding=p), nn.ReLU(), nn.Conv2d(rfeats, rfeats, k, padding=p),
                                       nn.ReLU(), nn.Conv2d(rfeats, rfeats, k, padding=p), nn.ReLU(),
                                       nn.Conv2d(rfeats, 1, k, padding=p, bias=False))  # fmt: skip

    def forward(self, x, g, r):
        z1 = z2 = x.new_zeros(x.shape[0], self.codes, *x.shape[-2:])
        y1, y2 = r, x - r
        for layer in self.layers:
            g, x, y1, y2, z1, z2 = layer(g, x, y1, y2, z1, z2)
        x1, x2 = self.recon_xr(y1), self.recon_xr(y2)
        return self.recon_vis(x1), x1 + x2, x1, x2
