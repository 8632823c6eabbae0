"""The other direction and the bridges: `export --format junyanz|nvlabs` writes what the references load (same keys,
order and shapes as their own files) and reads back identically; `zoo convert` files and published files run in
`infer.py` with the reference's input conventions."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.conftest import TINY_CYCLEGAN, compose_train
from underpainting.checkpoints import build_model, load_exported
from underpainting.errors import UserError, WeightsError
from underpainting.export import export_generators, export_reference
from underpainting.export import main as export_main
from underpainting.infer import run as infer_run
from underpainting.inference.stages import CycleGANPainting, GeneratorScene, Style
from underpainting.models.networks.spade import SPADEGenerator
from underpainting.models.networks.unet import UnetGenerator
from underpainting.models.pix2pix import run_with_protocol
from underpainting.train import run as train_run
from underpainting.zoo import convert, junyanz, load_published, nvlabs, read_published, semantics

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def cyclegan9_ckpt(tmp_path_factory) -> Path:
    """A train.py CycleGAN whose generators are resnet_9blocks at ngf 8: the CycleGAN fixture's layout."""
    out = tmp_path_factory.mktemp("cyclegan9")
    overrides = [*TINY_CYCLEGAN, "model.G_AB.n_blocks=9", "trainer=cpu", "trainer.max_steps=2",
                 "trainer.precision=32-true", "callbacks.sample_grid=null"]  # fmt: skip
    train_run(compose_train(overrides, out))
    return out / "checkpoints" / "last.ckpt"


def refs_fixture(shared_dir: Path, name: str) -> dict:
    return torch.load(shared_dir / "fixtures" / "reference_checkpoints" / f"{name}.pth", weights_only=True)


def layout(sd: dict) -> list[tuple[str, list[int], torch.dtype]]:
    return [(k, list(v.shape), v.dtype) for k, v in sd.items()]


# ------------------------------------------------------------------------------------------- export -> reference
def test_export_junyanz_round_trip(cyclegan9_ckpt, tmp_path, shared_dir, capsys):
    """`export --format junyanz` writes latest_net_G_A/_B.pth with exactly the keys, order, shapes and dtypes the
    reference's own state_dict() has (its strict load_state_dict accepts nothing else), and they read back here
    to the same outputs."""
    assert export_main([str(cyclegan9_ckpt), str(tmp_path), "--format", "junyanz"]) == 0
    printed = capsys.readouterr().out
    assert "--model test" in printed and "--no_dropout --model_suffix _B" in printed
    model, _ = build_model(cyclegan9_ckpt)
    reference = refs_fixture(shared_dir, "cyclegan_resnet9_ngf8")["state_dict"]
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    for ours, ref in (("G_AB", "G_A"), ("G_BA", "G_B")):
        path = tmp_path / "junyanz" / f"latest_net_{ref}.pth"
        sd = torch.load(path, weights_only=True)
        assert layout(sd) == layout(reference)
        with torch.no_grad():
            assert torch.equal(load_published(path)(x), getattr(model, ours)(x))


def test_unet_and_spade_write_the_reference_layout(shared_dir):
    """The same for pix2pix's unet_256 and SPADE (spectral norm as weight_orig/u/v), at the fixtures' sizes."""
    unet = UnetGenerator(num_downs=8, ngf=4)
    assert layout(junyanz.to_reference(unet)) == layout(
        refs_fixture(shared_dir, "pix2pix_unet256_ngf4")["state_dict"]
    )
    spade = SPADEGenerator(13, ngf=2, crop_size=128)
    spade_ref = refs_fixture(shared_dir, "spade_ngf2_label13")
    assert layout(nvlabs.to_reference(spade)) == layout(spade_ref["state_dict"])
    options = nvlabs.reference_options(spade, 12, True, False)
    assert options["norm_G"] == "spectralspadesyncbatch3x3" and options["no_instance"]
    unet.eval()
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    back = load_published(junyanz.to_reference(unet))
    with torch.no_grad():
        assert torch.equal(back(x), unet(x))
        assert torch.equal(run_with_protocol(back, x, "paper", 3), run_with_protocol(unet, x, "paper", 3))


def test_export_refuses_what_the_reference_cannot_build(tmp_path):
    """A 5-level U-Net (quick start) has no --netG in the reference: a clear error, no file."""
    out = tmp_path / "p2p"
    tiny = ["experiment=pix2pix_quickstart", "data.image_size=32", "data.num_train=4", "data.num_val=2",
            "data.batch_size=2", "model.G.ngf=4", "model.G.num_downs=5", "model.D.ndf=4", "trainer.max_steps=2",
            "trainer.precision=32-true", "logger=none", "callbacks.progress_bar=null", "callbacks.sample_grid=null"]  # fmt: skip
    train_run(compose_train(tiny, out))
    ckpt = out / "checkpoints" / "last.ckpt"
    with pytest.raises(WeightsError, match="unet_32, which the reference's define_G cannot build"):
        export_reference(ckpt, tmp_path / "x", "junyanz")
    (g,) = export_generators(ckpt, tmp_path / "plain")
    assert torch.load(g, weights_only=True)["test_protocol"] == "paper"  # the model's default, recorded
    (g,) = export_generators(ckpt, tmp_path / "plain", test_protocol="eval")
    assert torch.load(g, weights_only=True)["test_protocol"] == "eval"
    with pytest.raises(UserError, match="paper or eval"):
        export_generators(ckpt, tmp_path / "plain", test_protocol="train")


# ---------------------------------------------------------------------------------------- convert and infer
def test_convert_writes_an_exported_generator(shared_dir, tmp_path, labels):
    """`zoo convert` -> a file export's loader, infer's CycleGAN stage and the zoo all read, same outputs."""
    fx = refs_fixture(shared_dir, "cyclegan_resnet9_ngf8_legacy")
    torch.save(fx["state_dict"], tmp_path / "style_x.pth")
    out = convert(tmp_path / "style_x.pth", tmp_path / "style_x.ckpt")
    net, payload = load_exported(out)
    assert (
        payload["zoo"]["options"]["netG"] == "resnet_9blocks" and payload["zoo"]["test_protocol"] == "paper"
    )
    with torch.no_grad():
        assert (net(fx["input"]) - fx["output_eval"]).abs().max() < 1e-5
    assert read_published(out).options == read_published(tmp_path / "style_x.pth").options
    for checkpoint in (tmp_path / "style_x.pth", out):
        stage = CycleGANPainting(str(checkpoint))
        stage.setup(labels, CPU)
        scene = fx["input"][0]
        painted = stage(scene, torch.zeros(64, 64, dtype=torch.long), Style())
        assert (
            painted - fx["output_eval"][0]
        ).abs().max() < 1e-5  # one untiled pass, the reference's numbers
    with pytest.raises(WeightsError, match="its network is fixed"):
        read_published(out, netG="resnet_6blocks")


def published_ade20k(folder: Path) -> SPADEGenerator:
    """A small SPADE with ADE20K's 151 input channels, saved as the reference saves it (checkpoints/<name>/)."""
    torch.manual_seed(0)
    net = SPADEGenerator(151, ngf=2).eval()
    folder.mkdir(parents=True)
    torch.save(nvlabs.to_reference(net), folder / "latest_net_G.pth")
    return net


def test_published_spade_and_cyclegan_paint_a_sketch(shared_dir, tmp_path, labels):
    """infer.py with `stage1.checkpoint=<ade20k folder>` and `stage2.cyclegan.checkpoint=<published .pth>`: the
    scene is the generator on the ADE-remapped one-hot, and the painting the CycleGAN on that scene."""
    net = published_ade20k(tmp_path / "checkpoints" / "ade20k_pretrained")
    torch.save(
        refs_fixture(shared_dir, "cyclegan_resnet9_ngf8")["state_dict"], tmp_path / "style_vangogh.pth"
    )
    ids = torch.full((64, 64), labels.id("sky"))
    ids[40:] = labels.id("grass")
    ids[30:40, 10:50] = labels.id("mountain")
    Image.fromarray(labels.colourise(ids).add(1).mul(127.5).round().byte().permute(1, 2, 0).numpy()).save(
        tmp_path / "sketch.png"
    )
    cfg = compose_train(
        [
            "progress=false",
            "infer/stage1=spade",
            "infer/stage2=[cyclegan]",
            f"input={tmp_path / 'sketch.png'}",
            f"stage1.checkpoint={tmp_path / 'checkpoints' / 'ade20k_pretrained'}",
            f"stage2.cyclegan.checkpoint={tmp_path / 'style_vangogh.pth'}",
        ],
        tmp_path / "run",
        config_name="infer",
    )
    (result,) = infer_run(cfg)
    assert result.ok, result.error
    scene = result.columns["scene (spade)"]
    space = read_published(tmp_path / "checkpoints" / "ade20k_pretrained").label_space
    assert space.dataset_mode == "ade20k"  # from the 151 channels
    with torch.no_grad():
        expected = net(semantics(ids[None], labels, space))
    assert (scene - expected[0].clamp(-1, 1)).abs().max() < 1e-4
    assert (result.out_dir / "contact_sheet.png").is_file()
    converted = convert(tmp_path / "checkpoints" / "ade20k_pretrained", tmp_path / "ade20k.ckpt")
    stage = GeneratorScene(str(converted), ["underpainting.models.spade.SPADEModel"], "x")
    stage.setup(labels, CPU)
    assert (stage(ids, Style())[0] - scene).abs().max() < 1e-5  # the label space travels in the file


def test_published_spade_without_a_known_label_space_says_what_to_set(shared_dir, tmp_path, labels):
    torch.save(refs_fixture(shared_dir, "spade_ngf2_label13")["state_dict"], tmp_path / "latest_net_G.pth")
    stage = GeneratorScene(
        str(tmp_path / "latest_net_G.pth"), ["underpainting.models.spade.SPADEModel"], "train"
    )
    with pytest.raises(WeightsError, match="dataset_mode: custom, label_nc"):
        stage.setup(labels, CPU)
    wrong_stage = GeneratorScene(
        str(tmp_path / "latest_net_G.pth"), ["underpainting.models.pix2pix.Pix2Pix"], "x"
    )
    with pytest.raises(WeightsError, match="infer/stage1=spade"):
        wrong_stage.setup(labels, CPU)


def test_published_pix2pix_stage_protocols(shared_dir, tmp_path, labels):
    """A published pix2pix in stage 1 runs as the reference's test.py does (paper protocol, seeded), or in eval
    mode with `test_protocol=eval`."""
    torch.save(refs_fixture(shared_dir, "pix2pix_unet256_ngf4")["state_dict"], tmp_path / "facades.pth")
    ids = torch.full((64, 64), labels.id("sky"))
    ids[32:] = labels.id("grass")
    scenes = {}
    for protocol, seed in (("paper", 0), ("paper", 0), ("paper", 1), ("eval", 0)):
        stage = GeneratorScene(str(tmp_path / "facades.pth"), ["underpainting.models.pix2pix.Pix2Pix"], "x",
                               seed=seed, test_protocol=protocol if protocol == "eval" else None)  # fmt: skip
        stage.setup(labels, CPU)
        assert stage.protocol == protocol
        scenes.setdefault((protocol, seed), []).append(stage(ids, Style())[0])
    a, b = scenes[("paper", 0)]
    assert torch.equal(a, b)
    assert (a - scenes[("paper", 1)][0]).abs().max() > 0.05 and (
        a - scenes[("eval", 0)][0]
    ).abs().max() > 0.05


def test_paint_photos_writes_paintings_and_a_contact_sheet(shared_dir, tmp_path):
    """`python -m underpainting.zoo paint`: each photo through each painter (long side capped), one sheet."""
    from underpainting.data.images import load_rgb, pil_to_tensor, tensor_to_pil
    from underpainting.zoo.__main__ import main as zoo_main

    fx = refs_fixture(shared_dir, "cyclegan_resnet9_ngf8")
    torch.save(fx["state_dict"], tmp_path / "style_x.pth")
    photos = tmp_path / "photos"
    photos.mkdir()
    tensor_to_pil(fx["input"][0]).save(photos / "a.png")
    Image.new("RGB", (120, 80), (30, 120, 200)).save(photos / "b.png")
    out = tmp_path / "out"
    args = [
        "paint",
        str(photos),
        "--model",
        str(tmp_path / "style_x.pth"),
        "--out",
        str(out),
        "--max-side",
        "64",
    ]
    assert zoo_main(args) == 0
    assert Image.open(out / "contact_sheet.png").width > 2 * 256
    with torch.no_grad():
        expected = load_published(tmp_path / "style_x.pth")(pil_to_tensor(load_rgb(photos / "a.png"))[None])[
            0
        ]
    painted = pil_to_tensor(Image.open(out / "a" / "style_x.png"))
    assert (painted - expected).abs().max() <= 1 / 127.5 + 1e-4  # 8-bit PNG rounding only
    assert Image.open(out / "b" / "style_x.png").size == (64, 43)
