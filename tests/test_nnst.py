"""The painter (guided neural-neighbour style transfer, `underpainting.models.nnst`): exact chunked matching, block
targets, the NNST and moment losses, class restriction, several paintings, the borrow chain, seeds, the infer stage,
the tracked run, the region-style distance and bad input. Random VGG weights unless a test needs real features
(those use ../shared/weights and skip without it)."""

from __future__ import annotations

import functools
import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from PIL import Image

from tests.conftest import ROOT
from tests.test_infer import infer_cfg
from underpainting.data.labels import LabelSet
from underpainting.data.paintings import Painting, Source, load_paintings, region_sources, regions_start
from underpainting.errors import DataError, UserError
from underpainting.features.hypercolumns import cell_grid, hypercolumns, layer_stride
from underpainting.features.vgg import VGGFeatures, VGGWeightsError
from underpainting.infer import run
from underpainting.inference.nnst import NNSTPainting
from underpainting.metrics.region_style import REGION_STYLE_LAYERS, region_style_distance
from underpainting.models.losses.moments import RegionMomentLoss, weighted_moments
from underpainting.models.losses.neighbours import (
    CellBank,
    NeuralNeighbourLoss,
    block_targets,
    centred_unit,
    guided_nearest_neighbours,
    nearest_neighbours,
)
from underpainting.models.nnst import NeuralNeighbourStyleTransfer

LABELS = LabelSet.from_yaml(ROOT / "conf" / "labels" / "landscape.yaml")
SKY, CLOUD, MOUNTAIN, HILL, GRASS, FLOWER, PERSON = (
    LABELS.id(n) for n in ("sky", "cloud", "mountain", "hill", "grass", "flower", "person")
)
SHARED_VGG16 = ROOT.parent / "shared" / "weights" / "vgg16_caffe_features.pth"
RED, GREEN, BLUE = (
    torch.tensor([0.8, -0.6, -0.6]),
    torch.tensor([-0.6, 0.7, -0.6]),
    torch.tensor([-0.6, -0.5, 0.8]),
)
SMALL = ["relu1_1", "relu2_1", "relu3_1"]


def painter(**kw) -> NeuralNeighbourStyleTransfer:
    """A painter on a random VGG-16 cut at relu3_1 (wiring and routing, not looks), the same weights every time."""
    torch.manual_seed(0)
    vgg = functools.partial(VGGFeatures, arch="vgg16", weights=kw.pop("weights", "random"))
    lbfgs = functools.partial(torch.optim.LBFGS, lr=1.0, max_iter=1, history_size=10)
    kw = {"layers": SMALL, "moment_layers": SMALL[:2], "moment_samples": 256, "bf16": "off", **kw}
    return NeuralNeighbourStyleTransfer(vgg=vgg, optimizer=lbfgs, **kw)


def banded(classes_colours: list[tuple[int, torch.Tensor]], size: int = 48) -> Painting:
    """A painting of horizontal bands, one flat colour (+ a little texture) per class."""
    image, labels = torch.empty(1, 3, size, size), torch.empty(1, size, size, dtype=torch.long)
    step = size // len(classes_colours)
    g = torch.Generator().manual_seed(0)
    for i, (cls, colour) in enumerate(classes_colours):
        rows = slice(i * step, size if i == len(classes_colours) - 1 else (i + 1) * step)
        image[0, :, rows] = colour.view(3, 1, 1) + 0.1 * torch.randn(3, size, size, generator=g)[:, rows]
        labels[0, rows] = cls
    return Painting(image.clamp(-1, 1), labels, "bands")


# ------------------------------------------------------------------------------------------------ matching
def test_chunked_matching_equals_brute_force():
    g = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(53, 16, generator=g), dim=1)
    k = F.normalize(torch.randn(71, 16, generator=g), dim=1)
    brute = (1 - q @ k.T).argmin(1)
    assert torch.equal(nearest_neighbours(q, k, chunk_size=7), brute)
    cost = torch.rand(71, generator=g) + 0.5
    assert torch.equal(
        nearest_neighbours(q, k, chunk_size=5, key_cost=cost), ((1 - q @ k.T) * cost).argmin(1)
    )


def test_guided_matching_keeps_each_class_to_its_keys_and_weights():
    g = torch.Generator().manual_seed(1)
    queries, keys = torch.randn(40, 8, generator=g), torch.randn(60, 8, generator=g)
    q_lab = torch.arange(40) % 2
    k_lab = torch.arange(60) % 3
    weights = {0: (k_lab == 0).float(), 1: (k_lab > 0).float() * torch.where(k_lab == 1, 2.0, 0.5)}
    unit_keys = centred_unit(keys)
    assert torch.allclose(unit_keys.norm(dim=1), torch.ones(60)) and torch.allclose(
        unit_keys * (keys - keys.mean(0)).norm(dim=1, keepdim=True), keys - keys.mean(0), atol=1e-5
    )
    qn, kn = centred_unit(queries), unit_keys
    idx = guided_nearest_neighbours(qn, q_lab, kn, weights, chunk_size=3)
    assert (k_lab[idx[q_lab == 0]] == 0).all() and (k_lab[idx[q_lab == 1]] > 0).all()
    # brute force: centred cosine distance divided by the weight, excluded keys at infinity
    for cls, w in weights.items():
        d = (1 - qn @ kn.T).clamp_min(0) / w.clamp_min(1e-12)
        d[:, w == 0] = float("inf")
        assert torch.equal(idx[q_lab == cls], d[q_lab == cls].argmin(1))
    with pytest.raises(ValueError, match="weight 0"):
        guided_nearest_neighbours(qn, q_lab, kn, {0: torch.zeros(60), 1: torch.ones(60)})


def test_hypercolumns_and_block_targets_copy_each_matched_cell():
    f = {
        "relu1_1": torch.arange(2 * 8 * 8.0).view(1, 2, 8, 8),
        "relu2_1": torch.arange(3 * 4 * 4.0).view(1, 3, 4, 4),
        "relu3_1": torch.arange(2 * 2 * 2.0).view(1, 2, 2, 2),
        "relu4_1": torch.arange(5.0).view(1, 5, 1, 1),
    }
    layers = list(f)
    assert [layer_stride(n) for n in layers] == [1, 2, 4, 8] and cell_grid(8, 8) == (2, 2)
    hc = hypercolumns(f, layers, (2, 2))
    assert hc.shape == (1, 2 + 3 + 2 + 5, 2, 2)
    assert torch.allclose(hc[0, :2, 0, 1], f["relu1_1"][0, :, :4, 4:].mean((1, 2)) / 2)  # pooled, / channels
    assert torch.allclose(hc[0, 7:, 1, 1], f["relu4_1"][0, :, 0, 0] / 5)  # upsampled
    bank = CellBank([dict(f)], [(2, 2)], layers, release=True)
    same = block_targets(bank, torch.arange(4), (2, 2))
    for n in layers[:3]:
        assert torch.equal(same[n], f[n])
    swapped = block_targets(
        bank, torch.tensor([3, 2, 1, 0]), (2, 2)
    )  # the output's cell 0 matched cell 3 ...
    assert torch.equal(swapped["relu1_1"][..., :4, :4], f["relu1_1"][..., 4:, 4:])
    assert torch.equal(swapped["relu2_1"][..., 2:, 2:], f["relu2_1"][..., :2, :2])
    assert swapped["relu4_1"].shape == (1, 5, 1, 1)


def test_neighbour_loss_is_zero_at_its_targets_and_pulls_towards_them():
    t = {"relu1_1": torch.rand(1, 4, 6, 6) + 0.1, "relu2_1": torch.rand(1, 3, 3, 3) + 0.1}
    loss = NeuralNeighbourLoss(l2_weight=1.0)
    loss.set_target(t)
    assert float(loss({n: 2 * v for n, v in t.items()})) > 0.5  # the cosine is scale-free, the L2 term is not
    assert float(loss(t)) < 1e-3  # the unit targets are kept in bf16: a cosine off by ~1e-4
    cosine = NeuralNeighbourLoss()
    cosine.set_target(t)
    assert float(cosine({n: 2 * v for n, v in t.items()})) < 1e-3 and not cosine.targets  # units only
    assert float(cosine({n: v.flip(-1) for n, v in t.items()})) > 1e-2
    x = {n: torch.rand_like(v, requires_grad=True) for n, v in t.items()}
    loss(x).backward()
    assert all(float(v.grad.abs().sum()) > 0 for v in x.values())


def test_moments_are_weighted_and_zero_when_the_region_has_its_source_statistics():
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(3, 50, generator=g), torch.rand(50, generator=g)
    mu, cov = weighted_moments(x, w)
    assert torch.allclose(mu, (x * w).sum(1) / w.sum(), atol=1e-6)
    assert torch.allclose(cov, torch.cov(x, correction=0, aweights=w), atol=1e-5)
    f = {"relu1_1": torch.randn(1, 4, 8, 8, generator=g)}
    loss = RegionMomentLoss(["relu1_1"], samples=10_000)
    loss.set_target([f], {SKY: [torch.ones(1, 8, 8)]}, torch.full((1, 8, 8), SKY))
    assert float(loss(f)) < 1e-5 and float(loss({"relu1_1": 2 * f["relu1_1"]})) > 0.1


# ------------------------------------------------------------------------------------------------ routing
def test_each_class_draws_from_the_paintings_that_have_it_by_weight(caplog):
    a = banded([(SKY, BLUE), (GRASS, GREEN)])
    b = banded([(FLOWER, RED), (GRASS, GREEN)])
    b.name = "b"
    with caplog.at_level(logging.INFO, logger="underpainting.data.paintings"):
        both = region_sources([SKY, GRASS, FLOWER], [a, b], LABELS.borrow, LABELS.names)
    assert [s.index for s in both[SKY]] == [0] and [s.index for s in both[FLOWER]] == [1]
    assert [s.index for s in both[GRASS]] == [0, 1]  # the union of the paintings that have it
    a.class_weights = {GRASS: 0.0}
    assert [s.index for s in region_sources([GRASS], [a, b], LABELS.borrow)[GRASS]] == [1]
    assert "grass <- bands, b" in caplog.text


def test_the_borrow_chain_is_followed_and_logged_and_a_class_nobody_has_warns(caplog):
    p = banded([(SKY, BLUE), (GRASS, GREEN)])
    with caplog.at_level(logging.INFO, logger="underpainting.data.paintings"):
        sources = region_sources([SKY, MOUNTAIN, FLOWER, PERSON], [p], LABELS.borrow, LABELS.names)
    assert sources[FLOWER] == [Source(0, GRASS, 1.0)] and sources[MOUNTAIN] == [Source(0, GRASS, 1.0)]
    assert sources[PERSON] == [Source(0, None, 1.0)]  # nothing to borrow: the whole painting
    assert "flower (borrows grass) <- bands" in caplog.text
    assert "mountain (borrows grass) <- bands" in caplog.text  # mountain -> hill -> grass
    assert any(r.levelno == logging.WARNING and "no painting has person" in r.message for r in caplog.records)
    assert region_sources([FLOWER], [p], {}, LABELS.names)[FLOWER] == [
        Source(0, None, 1.0)
    ]  # region_fallback=global


# ------------------------------------------------------------------------------------------------ painting
def rearranged_sketch(size: int = 32) -> torch.Tensor:
    """The bands' classes in another layout: grass on top, a sky block at the bottom left, flowers at the right."""
    sketch = torch.full((1, size, size), GRASS)
    sketch[:, size // 2 :, : size // 2] = SKY
    sketch[:, :, 3 * size // 4 :] = FLOWER
    return sketch


def test_each_region_is_painted_from_its_own_class():
    style = banded([(SKY, BLUE), (FLOWER, RED), (GRASS, GREEN)])
    sketch = rearranged_sketch()
    grey = torch.zeros(1, 3, 32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = painter(init="content", margin=0.0)
        m.attach(grey, sketch, [style], LABELS, [{"edge": 32, "steps": 25}])
    # every output cell matched a style cell of its own class
    cells = F.interpolate(sketch[None].float(), size=m.grid, mode="nearest").long().flatten()
    assert torch.equal(m.key_classes[m.indices], cells)
    out = m.optimise()
    for cls in (SKY, FLOWER, GRASS):
        mean = out[0][:, sketch[0] == cls].mean(1)
        dists = {c: float((mean - col).norm()) for c, col in ((SKY, BLUE), (FLOWER, RED), (GRASS, GREEN))}
        assert min(dists, key=dists.get) == cls, (LABELS.names[cls], dists)


def test_several_paintings_route_each_class_and_a_fixed_seed_repeats():
    a = banded([(SKY, BLUE), (GRASS, GREEN)])
    b = banded([(FLOWER, RED), (GRASS, 0.5 * GREEN)])
    a.class_weights = {GRASS: 0.0}
    sketch = rearranged_sketch()
    outs = []
    for seed in (3, 3, 4):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = painter(seed=seed)
            m.attach(None, sketch, [a, b], LABELS, [{"edge": 16, "steps": 2}, {"edge": 32, "steps": 3}])
        cells = F.interpolate(sketch[None].float(), size=m.grid, mode="nearest").long().flatten()
        from_a = m.key_owners[m.indices] == 0
        assert (
            from_a[cells == SKY].all()
            and not from_a[cells == GRASS].any()
            and not from_a[cells == FLOWER].any()
        )
        outs.append(m.optimise())
    assert outs[0].shape == (1, 3, 32, 32) and torch.equal(outs[0], outs[1])
    assert not torch.equal(outs[0], outs[2])


def test_refresh_re_matches_at_the_finest_scale_and_only_it_keeps_the_style_cells():
    style = banded([(SKY, BLUE), (FLOWER, RED), (GRASS, GREEN)])
    sketch = rearranged_sketch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        coarse = painter(refresh_every=2)
        coarse.attach(None, sketch, [style], LABELS, [{"edge": 16, "steps": 2}, {"edge": 32, "steps": 2}])
        assert coarse.bank is None and coarse.keys is None  # scale 0 never matches again: its style cells go
        once, again = painter(), painter(refresh_every=2)
        for m in (once, again):
            m.attach(None, sketch, [style], LABELS, [{"edge": 32, "steps": 6}])
        assert once.bank is None and again.bank is not None and again.keys is not None
        first = again.indices.clone()
        again.optimise()  # steps 2 and 4 re-match against the output so far
    assert not torch.equal(first, again.indices)
    cells = F.interpolate(again.output_labels[None].float(), size=again.grid, mode="nearest").long().flatten()
    assert torch.equal(again.key_classes[again.indices], cells)  # the new matches keep to each cell's class


def test_turned_and_resized_copies_of_a_painting_join_its_bank():
    style = banded([(SKY, BLUE), (FLOWER, RED), (GRASS, GREEN)])
    sketch = rearranged_sketch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = painter(rotations=3, style_scales=[1.0, 0.5])
        m.attach(None, sketch, [style], LABELS, [{"edge": 32, "steps": 1}])
    assert len(m.style_inputs) == 8 and (m.key_owners == 0).all()
    cells = F.interpolate(m.output_labels[None].float(), size=m.grid, mode="nearest").long().flatten()
    assert torch.equal(m.key_classes[m.indices], cells)  # still only from its own class, in any copy
    with pytest.raises(UserError, match="rotations"):
        painter(rotations=1)


def test_regions_start_takes_each_region_from_its_sources():
    a = banded([(SKY, BLUE), (GRASS, GREEN)])
    sketch = rearranged_sketch()
    start = regions_start(sketch, [a], region_sources([SKY, GRASS, FLOWER], [a], LABELS.borrow), noise=0.0)
    assert float((start[0][:, sketch[0] == SKY].mean(1) - BLUE).norm()) < 0.05
    assert float((start[0][:, sketch[0] == FLOWER].mean(1) - GREEN).norm()) < 0.05  # flower borrows grass


def test_stage_levels_end_at_the_output_size():
    stage = NNSTPainting(
        None, [{"edge": 128, "steps": 60}, {"edge": 256, "steps": 30}, {"edge": 512, "steps": 10}]
    )
    assert stage.levels(384, 512) == [
        {"edge": 128, "steps": 60},
        {"edge": 256, "steps": 30},
        {"edge": 512, "steps": 10},
    ]
    assert stage.levels(256, 256) == [{"edge": 128, "steps": 60}, {"edge": 256, "steps": 30}]
    assert stage.levels(190, 250) == [{"edge": 128, "steps": 60}, {"edge": 250, "steps": 30}]
    assert stage.levels(64, 100) == [{"edge": 100, "steps": 60}]


# ------------------------------------------------------------------------------------------------ end to end
def write_painting(path: Path, painting: Painting) -> tuple[Path, Path]:
    image = ((painting.image[0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
    Image.fromarray(image).save(path.with_suffix(".png"))
    labels_path = path.with_name(f"{path.stem}_labels.png")
    Image.fromarray(painting.labels[0].byte().numpy(), mode="L").save(labels_path)
    return path.with_suffix(".png"), labels_path


TINY_STAGE = [
    "stage2.nnst.module.vgg.weights=random",
    f"stage2.nnst.module.layers=[{','.join(SMALL)}]",
    "stage2.nnst.module.moment_layers=[relu1_1]",
    "stage2.nnst.pyramid=[{edge:32,steps:2},{edge:48,steps:2}]",
]


def test_infer_paints_a_sketch_from_two_paintings(tmp_path, caplog):
    a, a_labels = write_painting(tmp_path / "a", banded([(SKY, BLUE), (GRASS, GREEN)]))
    b, b_labels = write_painting(tmp_path / "b", banded([(FLOWER, RED), (GRASS, GREEN)], size=40))
    Image.fromarray(np.asarray(Image.open(b_labels))[::2, ::2]).save(b_labels)  # half size: resized, warned
    sketch = tmp_path / "sketch.png"
    Image.fromarray(LABELS.palette[rearranged_sketch(48)[0]].numpy()).save(sketch)
    cfg = infer_cfg(tmp_path, [
        f"input={sketch}", "infer/stage1=none", "infer/stage2=[nnst]", *TINY_STAGE,
        f"style.paintings=[{a},{b}]", f"style.labels=[{a_labels},{b_labels}]", "style.weights=[{grass:0},1]",
    ])  # fmt: skip
    with warnings.catch_warnings(), caplog.at_level(logging.INFO):
        warnings.simplefilter("ignore")  # random weights
        (result,) = run(cfg)
    assert result.ok, result.error
    painting = np.asarray(Image.open(Path(cfg.paths.output_dir) / "sketch" / "nnst.png"))
    assert painting.shape == (48, 48, 3) and painting.std() > 5
    assert "painter" in result.columns and {"style: a", "style: b"} <= set(result.columns)  # a column each
    assert "grass <- b" in caplog.text and "sky <- a" in caplog.text
    assert "resized (nearest) to the painting" in caplog.text


def test_bad_painting_input_gets_one_clear_message(tmp_path):
    a, a_labels = write_painting(tmp_path / "a", banded([(SKY, BLUE), (GRASS, GREEN)]))
    tiny, tiny_labels = write_painting(tmp_path / "tiny", banded([(SKY, BLUE)], size=16))
    with pytest.raises(DataError, match=r"16x16 px, smaller than the painter's finest patch"):
        load_paintings([tiny], [tiny_labels], LABELS)
    with pytest.raises(DataError, match=r"2 painting\(s\) in `style.paintings` but 1 label map"):
        load_paintings([a, a], [a_labels], LABELS)
    with pytest.raises(DataError, match=r"style.weights"):
        load_paintings([a], [a_labels], LABELS, [1, 2])
    with pytest.raises(DataError, match="unknown class 'skyy'"):
        load_paintings([a], [a_labels], LABELS, [{"skyy": 0}])
    base = [f"input={ROOT / 'examples' / 'sketches' / 'wild_vegetation.png'}", "infer/stage1=none",
            "infer/stage2=[nnst]", *TINY_STAGE]  # fmt: skip
    cfg = infer_cfg(tmp_path / "r1", [*base, f"style.paintings=[{a}]", f"style.labels={a_labels}"])
    with pytest.raises(UserError, match="give `style.labels` as a list"):
        run(cfg)
    missing = tmp_path / "gone" / "vgg16.pth"
    cfg = infer_cfg(tmp_path / "r2", [*base, f"style.paintings=[{a}]", f"style.labels=[{a_labels}]",
                                      f"stage2.nnst.module.vgg.weights={missing}"])  # fmt: skip
    with pytest.raises(
        VGGWeightsError, match=r"gone/vgg16.pth does not exist; `stage2.nnst.module.vgg.weights` must point"
    ):
        run(cfg)  # at setup, before any sketch


def test_train_py_runs_the_painter_experiment_matches_after_the_move_and_resumes_exactly(
    make_cfg, monkeypatch
):
    from lightning.pytorch.strategies import SingleDeviceStrategy

    from underpainting.models.nnst import NeuralNeighbourStyleTransfer
    from underpainting.train import run as train_run

    # Lightning calls `setup` before it moves the module to the GPU: every scale must be entered (matched, its
    # targets built) after the move, or the targets stay on the CPU ("Expected all tensors to be on the same device")
    events = []
    move, enter = SingleDeviceStrategy.model_to_device, NeuralNeighbourStyleTransfer.enter_level
    monkeypatch.setattr(
        SingleDeviceStrategy, "model_to_device", lambda self: (events.append("move"), move(self))
    )
    monkeypatch.setattr(
        NeuralNeighbourStyleTransfer,
        "enter_level",
        lambda self, *a, **k: (events.append("enter"), enter(self, *a, **k)),
    )
    tiny = [
        "experiment=nnst", "model.vgg.weights=random", f"model.layers=[{','.join(SMALL)}]",
        "model.moment_layers=[relu1_1]", "data.pyramid=[{edge: 32, steps: 3}, {edge: 48, steps: 3}]", "logger=csv",
        "callbacks.progress_bar=null", "callbacks.sample_grid.every_n_steps=4",
        "callbacks.model_checkpoint.every_n_train_steps=4", "callbacks.model_checkpoint.save_top_k=-1",
    ]  # fmt: skip
    cfg = make_cfg(tiny, "straight")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metrics = train_run(cfg)
    assert events == ["move", "enter", "enter"], events  # scale 0 after the move, then scale 1
    out = Path(cfg.paths.output_dir)
    final = np.asarray(Image.open(out / "painter" / "final.png"))
    assert final.shape == (48, 48, 3)
    record = yaml.safe_load((out / "painter" / "final.yaml").read_text())  # how it was made, beside it
    assert record["model"]["class_weights"] == [{"grass": 0}, {"sky": 0}]
    assert record["painter_result"]["size"] == [48, 48]
    assert {"train/neighbours", "train/moments", "train/total"} <= set(metrics)
    assert (out / "samples" / "train_step0000004.png").is_file()

    # resumed mid-scale-1 from the step-4 checkpoint: entered after the move again, the same image at the end
    events.clear()
    ckpt = out / "checkpoints" / "step0000004.ckpt"
    cfg = make_cfg([*tiny, f"ckpt_path={ckpt}"], "resumed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_run(cfg)
    assert events == ["move", "enter"], events
    resumed = np.asarray(Image.open(Path(cfg.paths.output_dir) / "painter" / "final.png"))
    assert np.abs(resumed.astype(int) - final.astype(int)).max() <= 1


# ------------------------------------------------------------------------------------------------ metric
def test_region_style_distance_is_zero_for_the_painting_itself_and_grows_with_the_wrong_strokes():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vgg = VGGFeatures(REGION_STYLE_LAYERS, arch="vgg16", weights="random")
    p = banded([(SKY, BLUE), (GRASS, GREEN)], size=64)
    sources = region_sources([SKY, GRASS], [p], LABELS.borrow)
    same, per = region_style_distance(p.image, p.labels, [p], sources, vgg)
    assert same < 1e-6 * max(1.0, sum(per.values())) + 1e-3 and set(per) == {SKY, GRASS}
    swapped, _ = region_style_distance(
        p.image.flip(-2), p.labels, [p], sources, vgg
    )  # sky painted with grass
    assert swapped > 100 * (same + 1e-3)


# ------------------------------------------------------------------------------------------------ real VGG
def test_real_vgg_paints_the_example_sketch_from_its_regions(shared_dir):
    if not SHARED_VGG16.is_file():
        pytest.skip("../shared/weights/vgg16_caffe_features.pth is absent")
    styles = ROOT / "examples" / "styles"
    paintings = load_paintings([styles / "field_with_poppies_1889.jpg"], [styles / "field_with_poppies_1889_labels.png"],
                               LABELS)  # fmt: skip
    from underpainting.data.nst import load_label_map, resize_labels

    sketch = resize_labels(
        load_label_map(ROOT / "examples" / "sketches" / "wild_vegetation.png", LABELS), (96, 96)
    )
    m = painter(
        weights=str(SHARED_VGG16), layers=list(REGION_STYLE_LAYERS), moment_layers=list(REGION_STYLE_LAYERS)
    )
    m.attach(None, sketch, paintings, LABELS, [{"edge": 96, "steps": 20}])
    start = m.output().clone()
    out = m.optimise()
    vgg = VGGFeatures(REGION_STYLE_LAYERS, arch="vgg16", weights=str(SHARED_VGG16), pooling="avg")
    before, _ = region_style_distance(start, sketch, paintings, m.sources, vgg)
    after, _ = region_style_distance(out, sketch, paintings, m.sources, vgg)
    assert after < 0.6 * before  # the flat start has none of the strokes; 20 steps give them (0.41 measured)


def test_the_objective_adds_each_layer_as_the_vgg_reaches_it_and_equals_the_losses_on_all_features():
    style = banded([(SKY, BLUE), (FLOWER, RED), (GRASS, GREEN)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = painter()
        m.attach(None, rearranged_sketch(), [style], LABELS, [{"edge": 32, "steps": 1}])
    state = m.generator.get_state()
    terms = m.objective(m.image)
    m.generator.set_state(state)
    feats = m.features(m.image, list(dict.fromkeys([*m.loss_layers, *m.moment_layers])))
    assert torch.allclose(terms["neighbours"], m.nn_loss(feats))
    assert torch.allclose(terms["moments"], m.moment_loss(feats, m.generator))
    assert float(terms["moments"]) > 0 and float(terms["neighbours"]) > 0
