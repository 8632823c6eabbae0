"""Neural style transfer module: losses fall, semantic control keeps styles in their regions, colour and scale
control do what they claim, and the Trainer path (`train.py experiment=nst_quickstart`) runs and writes its result."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from underpainting.data.colour import rgb_to_yiq
from underpainting.data.labels import LabelSet, one_hot
from underpainting.data.nst import NSTDataModule, NSTProblem, load_label_map
from underpainting.errors import DataError, UserError
from underpainting.features.vgg import VGGFeatures
from underpainting.models.losses.nst import NSTObjective, semantic_targets
from underpainting.models.nst import NeuralStyleTransfer

ROOT = Path(__file__).resolve().parents[1]
SHARED_VGG16 = ROOT.parent / "shared" / "weights" / "vgg16_caffe_features.pth"
LABELS = LabelSet.from_yaml(ROOT / "conf" / "labels" / "landscape.yaml")
# Small and fast: VGG16 cut after relu3_1, random weights unless stated.
FAST = {"content_layers": ["relu3_1"], "style_layers": ["relu1_1", "relu2_1", "relu3_1"]}


def make(weights: str = "random", objective: dict | None = None, **kw) -> NeuralStyleTransfer:
    """The module on a small VGG16; `objective`: `NSTObjective` settings over FAST, `kw`: the module's."""
    torch.manual_seed(0)
    vgg = functools.partial(VGGFeatures, arch="vgg16", weights=weights, pooling="avg")
    optimizer = functools.partial(
        torch.optim.LBFGS, lr=1.0, max_iter=1, history_size=100, tolerance_grad=0.0, tolerance_change=0.0
    )
    terms = functools.partial(NSTObjective, **{**FAST, **(objective or {})})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the random-weights warning
        return NeuralStyleTransfer(vgg=vgg, optimizer=optimizer, objective=terms, **kw)


def synthetic(size: int = 32) -> NSTProblem:
    dm = NSTDataModule(labels=LABELS, synthetic={"content_seed": 0, "style_seed": 3, "size": size})
    dm.setup()
    return dm.problem


def test_losses_fall_over_a_short_seeded_run():
    m = make()
    m.attach(synthetic(32), [{"edge": 32, "steps": 15}])
    history = []
    m.optimise(callback=lambda step, losses: history.append(losses))
    assert history[0]["content"] == 0  # starts from the content image
    # L-BFGS without line search overshoots now and then (as in the reference implementations) and recovers, so
    # compare the best of the last steps with the start
    assert min(h["total"] for h in history[-3:]) < 0.85 * history[0]["total"]
    assert min(h["style"] for h in history[-3:]) < history[0]["style"]
    # Adam: every term weighted the same way, a smooth descent
    adam = make()
    adam.optimizer_factory = functools.partial(torch.optim.Adam, lr=0.02)
    adam.attach(synthetic(32), [{"edge": 32, "steps": 15}])
    hist_adam = []
    adam.optimise(callback=lambda step, losses: hist_adam.append(losses["total"]))
    assert hist_adam[-1] < 0.7 * hist_adam[0]


def two_region_problem(size: int = 32) -> NSTProblem:
    """Content: grey top (class 1) and grey bottom (class 2). Style: red stripes on top, blue checks below."""
    g = torch.Generator().manual_seed(0)
    content = (torch.randn(1, 3, size, size, generator=g) * 0.05).clamp(-1, 1)
    style = torch.empty(1, 3, size, size)
    h = size // 2
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(size), indexing="ij")
    stripes = ((yy // 2) % 2).float()
    checks = (((yy // 4) + (xx // 4)) % 2).float()
    style[0, :, :h] = torch.stack([0.3 + 0.6 * stripes, -0.8 + 0 * stripes, -0.8 + 0 * stripes])
    style[0, :, h:] = torch.stack([-0.8 + 0 * checks, -0.6 + 0.3 * checks, 0.2 + 0.7 * checks])
    labels = torch.full((1, size, size), 2, dtype=torch.long)
    labels[:, :h] = 1
    return NSTProblem(content, [style], [1.0], labels, [labels.clone()], LABELS)


def region_distance(image: torch.Tensor, style: torch.Tensor, labels: torch.Tensor) -> float:
    """Summed distance between each output region's mean colour and the matching style region's mean colour."""
    total = 0.0
    for k in (1, 2):
        mask = labels[0] == k
        total += float((image[0][:, mask].mean(1) - style[0][:, mask].mean(1)).norm())
    return total


@pytest.mark.parametrize("guide_mode", ["simple", "inside"])
def test_semantic_control_moves_region_statistics_to_the_matching_style_region(guide_mode):
    # Adam: from this flat grey start L-BFGS finds almost no positive curvature pairs and crawls for the first
    # dozens of steps (on real photos it does not: see docs/nst.md); the guided loss is what is under test here
    problem = two_region_problem(32)
    results = {}
    for semantic in (False, True):
        m = make(semantic=semantic, objective={"guide_mode": guide_mode, "content_weight": 1e-3})
        m.optimizer_factory = functools.partial(torch.optim.Adam, lr=0.05)
        m.attach(problem, [{"edge": 32, "steps": 30}])
        results[semantic] = m.optimise()
    plain = region_distance(results[False], problem.styles[0], problem.content_labels)
    guided = region_distance(results[True], problem.styles[0], problem.content_labels)
    start = region_distance(problem.content, problem.styles[0], problem.content_labels)
    # plain transfer paints the average of both styles everywhere; guided transfer gets each region's own colours
    assert guided < 0.5 * plain, (guided, plain, start)
    assert guided < 0.5 * start


def test_semantic_regions_fall_back_to_the_global_style():
    problem = two_region_problem(32)
    problem.style_labels = [torch.full_like(problem.content_labels, 1)]  # the style has no class 2
    m = make(semantic=True, region_fallback="global")
    m.attach(problem, [{"edge": 32, "steps": 1}])
    assert m.objective.regions == ["class 1", "global"]


def test_semantic_without_label_maps_is_a_clear_error():
    problem = synthetic(32)
    problem.content_labels = None
    m = make(semantic=True)
    with pytest.raises(UserError, match="data.content_labels"):
        m.attach(problem, [{"edge": 32, "steps": 1}])


def test_label_guides_use_the_one_one_hot_and_refuse_ids_outside_the_label_set():
    ids = torch.tensor([[[0, 2], [1, 2]]])
    guides = one_hot(ids, 3)
    assert guides.shape == (1, 3, 2, 2) and torch.equal(guides.argmax(1), ids)
    assert torch.all(guides.sum(1) == 1)
    with pytest.raises(DataError, match=r"\[5\] in a.png outside 0..2"):
        one_hot(torch.tensor([[[0, 5]]]), 3, paths=["a.png"])
    # a style label map with an id the label set lacks used to be clamped into the last class without a word
    feats = [{"relu1_1": torch.rand(1, 4, 8, 8)}]
    content = torch.zeros(1, 8, 8, dtype=torch.long)
    style = torch.full((1, 8, 8), 3)
    with pytest.raises(DataError, match="outside 0..2"):
        semantic_targets(feats, [1.0], content, [style], ["relu1_1"], "vgg16", "simple", num_classes=3)


def test_luminance_only_transfer_keeps_the_content_chroma():
    problem = synthetic(32)
    m = make(colour="luminance")
    m.attach(problem, [{"edge": 32, "steps": 4}])
    out = m.optimise()
    # away from clamping at the gamut edge, the output's chroma (I, Q) is the content's
    yiq_out, yiq_c = rgb_to_yiq(out), rgb_to_yiq(problem.content)
    ok = (out.abs() < 0.98).all(dim=1)
    assert ok.float().mean() > 0.8
    assert (yiq_out[:, 1:] - yiq_c[:, 1:]).abs().amax(dim=1)[ok].max() < 0.02
    assert not torch.allclose(yiq_out[:, 0], yiq_c[:, 0], atol=1e-3)  # the luminance did change
    # plain transfer does change the chroma
    plain = make()
    plain.attach(problem, [{"edge": 32, "steps": 4}])
    assert (rgb_to_yiq(plain.optimise())[:, 1:] - yiq_c[:, 1:]).abs().max() > 0.05


def test_colour_matching_recolours_the_style_before_transfer():
    problem = synthetic(32)
    m = make(colour="match", colour_match="pca")
    m.attach(problem, [{"edge": 32, "steps": 1}])
    style_in = m._inputs[1][0]
    torch.testing.assert_close(style_in.mean(dim=(2, 3)), problem.content.mean(dim=(2, 3)), atol=0.02, rtol=0)


def test_coarse_to_fine_produces_the_requested_size_and_starts_from_the_previous_level():
    problem = synthetic(32)
    problem.content = torch.nn.functional.interpolate(problem.content, size=(24, 36), mode="bilinear")
    problem.content_labels = None
    m = make()
    m.attach(problem, [{"edge": 18, "steps": 3}, {"edge": 45, "steps": 2}])
    seen = []
    m.optimise(callback=lambda step, losses: seen.append(tuple(m.image.shape[-2:])))
    assert seen == [(12, 18)] * 3 + [(30, 45)] * 2
    assert m.output().shape == (1, 3, 30, 45)
    # entering level 1 upsamples level 0's result
    m.level = 0
    m.image = torch.nn.Parameter(torch.full((1, 3, 12, 18), 0.25))
    m.enter_level(1)
    torch.testing.assert_close(m.image.detach(), torch.full((1, 3, 30, 45), 0.25), atol=1e-5, rtol=0)


def test_several_styles_blend():
    problem = synthetic(32)
    other = -problem.styles[0]
    problem.styles, problem.style_weights, problem.style_labels = (
        [problem.styles[0], other],
        [3.0, 1.0],
        [None] * 2,
    )
    m = make()
    m.attach(problem, [{"edge": 32, "steps": 1}])
    assert m.objective.style_loss.targets["relu1_1"].shape == (1, 64, 64)
    with pytest.raises(DataError, match="style_weights"):
        NSTProblem(problem.content, [problem.styles[0]], [1.0, 2.0])


def test_label_maps_from_id_pngs_and_sketches(tmp_path):
    ids = np.zeros((8, 12), dtype=np.uint8)
    ids[:4] = 1
    ids[4:, 6:] = 14
    Image.fromarray(ids, "L").save(tmp_path / "ids.png")
    Image.fromarray(LABELS.palette[torch.from_numpy(ids).long()].numpy(), "RGB").save(tmp_path / "sketch.png")
    a = load_label_map(tmp_path / "ids.png", LABELS)
    b = load_label_map(tmp_path / "sketch.png", LABELS)
    assert torch.equal(a, b) and a.shape == (1, 8, 12)
    assert load_label_map(tmp_path / "ids.png", LABELS, size=(16, 24)).shape == (1, 16, 24)
    bad = ids.copy()
    bad[0, 0] = 40
    Image.fromarray(bad, "L").save(tmp_path / "bad.png")
    with pytest.raises(DataError, match=r"bad.png.*outside the label set"):
        load_label_map(tmp_path / "bad.png", LABELS)
    with pytest.raises(DataError, match="does not exist"):
        load_label_map(tmp_path / "nope.png", LABELS)


def test_datamodule_yields_one_item_per_step_and_clear_errors(tmp_path):
    dm = NSTDataModule(
        labels=LABELS, synthetic={"size": 32}, pyramid=[{"edge": 16, "steps": 3}, {"edge": 32, "steps": 2}]
    )
    dm.setup()
    items = list(dm.train_dataloader())
    assert len(items) == dm.total_steps == 5
    assert [i["level"] for i in items] == [0, 0, 0, 1, 1] and items[-1]["edge"] == 32
    with pytest.raises(DataError, match="data.content"):
        NSTDataModule(style="x.jpg").setup()
    with pytest.raises(DataError, match="does not exist"):
        NSTDataModule(content=str(tmp_path / "missing.jpg"), style="x.jpg").setup()


def test_the_result_is_written_by_a_callback_with_the_config_it_is_given(tmp_path):
    """`train.py` hands the resolved config to `SaveResult`; the module never looks for it among the callbacks."""
    from types import SimpleNamespace

    import yaml

    from underpainting.callbacks.result import SaveResult

    m = make()
    m.attach(synthetic(32), [{"edge": 24, "steps": 1}])
    m.optimise()
    trainer = SimpleNamespace(is_global_zero=True, default_root_dir=str(tmp_path))
    SaveResult({"data": {"pyramid": [{"edge": 24, "steps": 1}]}}).on_train_end(trainer, m)
    saved = yaml.safe_load((tmp_path / "nst" / "final.yaml").read_text())
    assert saved["data"]["pyramid"][0]["edge"] == 24 and saved["nst_result"]["size"] == [24, 24]
    assert np.asarray(Image.open(tmp_path / "nst" / "final.png")).shape == (24, 24, 3)
    bare = m.save_result(tmp_path / "bare")  # no config: the module's own hyperparameters
    assert yaml.safe_load(bare.with_suffix(".yaml").read_text())["model"]["semantic"] is False


TINY_NST = [
    "experiment=nst_quickstart",
    "data.synthetic.size=32",
    "data.pyramid=[{edge: 24, steps: 4}, {edge: 32, steps: 3}]",
    "model.vgg.arch=vgg16",
    "model.objective.content_layers=[relu3_1]",
    "model.objective.style_layers=[relu1_1,relu2_1,relu3_1]",
    "logger=csv",
    "callbacks.progress_bar=null",
    "callbacks.sample_grid.every_n_steps=3",
    "callbacks.model_checkpoint.every_n_train_steps=5",
    "callbacks.model_checkpoint.save_top_k=-1",
]


def test_train_py_runs_nst_quickstart_writes_the_result_and_resumes_exactly(make_cfg):
    from underpainting.train import run

    cfg = make_cfg(TINY_NST, "straight")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metrics = run(cfg)
    out = Path(cfg.paths.output_dir)
    final = np.asarray(Image.open(out / "nst" / "final.png"))
    assert final.shape == (32, 32, 3)
    import yaml

    saved = yaml.safe_load((out / "nst" / "final.yaml").read_text())
    assert saved["model"]["semantic"] is True and saved["data"]["pyramid"][1]["edge"] == 32
    assert (out / "samples" / "train_step0000003.png").is_file()
    assert "train/style" in metrics and "lr/image" in metrics
    ckpt_path = out / "checkpoints" / "step0000005.ckpt"
    ckpt = torch.load(ckpt_path, weights_only=True, map_location="cpu")
    assert list(ckpt["state_dict"]) == ["image"] and ckpt["nst_level"] == 1  # no VGG weights in checkpoints

    # resuming mid-level-1 from the step-5 checkpoint ends on the same image as the uninterrupted run
    cfg = make_cfg([*TINY_NST, f"ckpt_path={ckpt_path}"], "resumed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run(cfg)
    resumed = np.asarray(Image.open(Path(cfg.paths.output_dir) / "nst" / "final.png"))
    assert np.abs(resumed.astype(int) - final.astype(int)).max() <= 1


@pytest.mark.shared
def test_shared_vgg16_semantic_control():
    """Real (shared VGG16, Caffe convention) features: the same two-region check as above."""
    if not SHARED_VGG16.is_file():
        pytest.skip("../shared/weights/vgg16_caffe_features.pth not present")
    problem = two_region_problem(32)
    dists = {}
    for semantic in (False, True):
        m = make(weights=str(SHARED_VGG16), semantic=semantic, objective={"content_weight": 1e-3})
        m.optimizer_factory = functools.partial(torch.optim.Adam, lr=0.05)
        m.attach(problem, [{"edge": 32, "steps": 30}])
        dists[semantic] = region_distance(m.optimise(), problem.styles[0], problem.content_labels)
    assert dists[True] < 0.8 * dists[False], dists


def _held_tensors(module: torch.nn.Module):
    """Every tensor a module or one of its submodules holds, directly or in a dict (parameters, buffers, targets)."""
    for prefix, sub in module.named_modules():
        for attr, value in vars(sub).items():
            for key, v in value.items() if isinstance(value, dict) else [(None, value)]:
                if torch.is_tensor(v):
                    yield f"{prefix}.{attr}[{key}]", v


@pytest.mark.parametrize("style_loss", ["gram", "both"])
def test_targets_and_level_images_move_with_the_module(style_loss):
    """Lightning calls `setup` (which builds every target and level image) before it moves the module to the GPU:
    everything a step reads must move with it. The meta device stands in for CUDA."""
    m = make(semantic=True, objective={"style_loss": style_loss})
    m.attach(synthetic(32), [{"edge": 32, "steps": 2}])
    held = dict(_held_tensors(m))
    assert any("targets" in k for k in held) and any("_level_images" in k for k in held)
    if style_loss == "both":
        assert any("patches" in k for k in held) and any("content_guide" in k for k in held)
    m.to("meta")
    left = [name for name, t in _held_tensors(m) if t.device.type != "meta"]
    assert not left, f"left on the CPU after the move: {left}"
    kept = [
        k for k in m.state_dict() if any(w in k for w in ("targets", "_level_images", "patches", "guide"))
    ]
    assert not kept, "targets are recomputed from the inputs, not checkpointed"
