"""Hypercolumns: several VGG layers stacked per position on one grid (Kolkin et al. 2022, "Neural Neighbor Style
Transfer", Sec. 3; reference code nkolkin13/NeuralNeighborStyleTransfer `utils/featureExtract.py` `phi_cat`).

NNST concatenates relu1_1 ... relu4_3 of VGG-16 (conv5 dropped: "dropping conv5 block increases speed without harming
quality"), each layer divided by its number of channels so that wide layers do not dominate the cosine distance, on
a grid of a quarter of the image's size. Here the layers finer than the grid are average-pooled over each cell
(NNST resizes them bilinearly) so that a cell is exactly a block of every fine layer: the painter copies those blocks
as its targets (`underpainting.models.losses.neighbours.block_targets`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

# NNST `extract_feats`: layer_l = [22, 20, 18, 15, 13, 11, 8, 6, 3, 1] of torchvision's vgg16.features
NNST_LAYERS = (
    "relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_2", "relu3_3", "relu4_1", "relu4_2", "relu4_3",
)  # fmt: skip
NNST_CELL = 4  # NNST `phi_cat`: hypercolumns at (h // 4, w // 4)


def layer_stride(name: str) -> int:
    """Pixels per position of a VGG layer (`relu3_1` -> 4): 2 ** (block - 1), max pooling halves each block."""
    if not (name.startswith(("relu", "conv")) and name[4:5].isdigit()):
        raise ValueError(f"{name!r} is not a VGG conv/relu layer name (e.g. relu3_1)")
    return 2 ** (int(name[4]) - 1)


def cell_grid(height: int, width: int, cell: int = NNST_CELL) -> tuple[int, int]:
    """The hypercolumn grid of an image: one position per `cell` x `cell` pixels."""
    if height < cell or width < cell:
        raise ValueError(f"a {width}x{height} image is smaller than one {cell}x{cell} hypercolumn cell")
    return height // cell, width // cell


def hypercolumns(
    features: Mapping[str, torch.Tensor], layers: Sequence[str], grid: tuple[int, int], cell: int = NNST_CELL
) -> torch.Tensor:
    """(1, ΣC, gh, gw) hypercolumns from {layer: (1, C, h, w)} features: each layer / C, pooled or upsampled to the grid."""
    out = []
    for name in layers:
        x = features[name].float() / features[name].shape[1]
        r = cell // layer_stride(name)
        if r >= 1:
            x = x[..., : grid[0] * r, : grid[1] * r]
            out.append(F.avg_pool2d(x, r) if r > 1 else x)
        else:
            out.append(F.interpolate(x, size=grid, mode="bilinear", align_corners=False))
    return torch.cat(out, dim=1)
