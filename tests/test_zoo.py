"""Published checkpoints: the reference-written fixtures reproduce the reference's outputs through `load_published`,
every full-size manifest converts completely, bad files give one clear paragraph, and the SPADE label bridge follows
the reference's released test path."""

from __future__ import annotations

import json
from collections import OrderedDict

import pytest
import torch

from underpainting.data.labels import LabelSet, one_hot
from underpainting.errors import WeightsError
from underpainting.models.networks.resnet import ResnetGenerator
from underpainting.models.pix2pix import protocol_mode, run_with_protocol
from underpainting.zoo import LabelSpace, junyanz, load_published, read_published, semantics

pytestmark = pytest.mark.usefixtures("one_thread")
FIXTURES = (
    "cyclegan_resnet9_ngf8",
    "cyclegan_resnet9_ngf8_legacy",
    "pix2pix_unet256_ngf4",
    "spade_ngf2_label13",
)


@pytest.fixture(scope="module")
def refs(shared_dir):
    return shared_dir / "fixtures" / "reference_checkpoints"


def fixture(refs, name: str) -> dict:
    return torch.load(refs / f"{name}.pth", weights_only=True)


def one_paragraph(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 900, msg
    return msg


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_reproduces_the_reference_output(refs, name):
    """The mode each README entry names: eval (junyanz test.py --eval; SPADE's test.py calls model.eval())."""
    fx = fixture(refs, name)
    net = load_published(fx["state_dict"])
    assert not net.training
    with torch.no_grad():
        out = net(fx["input"])
    diff = (out - fx["output_eval"]).abs().max().item()
    assert diff < 1e-5, f"{name}: max abs diff {diff:.3g}"


def test_pix2pix_paper_protocol_uses_test_batch_statistics(refs):
    """Isola et al. Sec. 3.3 / junyanz test.py without --eval: batch norm with the test image's statistics. The
    fixture's deterministic part (dropout off) matches; with dropout the draws are seeded and the network's
    running statistics and modes are left as they were."""
    fx = fixture(refs, "pix2pix_unet256_ngf4")
    net = load_published(fx["state_dict"])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad(), protocol_mode(net, "paper"):
        for m in net.modules():
            if isinstance(m, torch.nn.Dropout):
                m.eval()
        out = net(fx["input"])
    assert (out - fx["output_bn_batchstats_nodropout"]).abs().max().item() < 1e-5
    with torch.no_grad():
        a, b = (run_with_protocol(net, fx["input"], "paper", seed=1) for _ in range(2))
        c = run_with_protocol(net, fx["input"], "paper", seed=2)
        eval_out = run_with_protocol(net, fx["input"], "eval")
    assert torch.equal(a, b) and (a - c).abs().max() > 0.1  # dropout active, seeded
    assert (a - fx["output_bn_batchstats_nodropout"]).abs().max() > 0.1
    assert (eval_out - fx["output_eval"]).abs().max().item() < 1e-5
    assert not any(m.training for m in net.modules())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_legacy_instance_norm_keys_are_dropped_not_used(refs):
    """The 69 stale InstanceNorm statistics make a plain strict load fail; the loader deletes them, as the
    reference's `__patch_instance_norm_state_dict` does, and says it found a resnet_9blocks."""
    fx = fixture(refs, "cyclegan_resnet9_ngf8_legacy")
    renamed = {junyanz.to_project_key(k): v for k, v in fx["state_dict"].items()}
    with pytest.raises(RuntimeError, match="num_batches_tracked"):
        ResnetGenerator(ngf=8).load_state_dict(renamed)
    pub = read_published(fx["state_dict"])
    assert pub.options == {
        "netG": "resnet_9blocks", "ngf": 8, "norm": "instance", "no_dropout": True, "input_nc": 3, "output_nc": 3,
    }  # fmt: skip
    assert pub.test_protocol == "paper" and len(pub.net.state_dict()) == 48


def test_real_file_with_metadata_and_data_parallel_prefix(refs, tmp_path):
    """Real files are `torch.save(OrderedDict)` with `_metadata`; third-party re-saves may add `module.`."""
    fx = fixture(refs, "spade_ngf2_label13")
    sd = OrderedDict((f"module.{k}", v) for k, v in fx["state_dict"].items())
    sd._metadata = OrderedDict((f"module.{k.rsplit('.', 1)[0]}", {"version": 1}) for k in fx["state_dict"])
    torch.save(sd, tmp_path / "latest_net_G.pth")
    pub = read_published(tmp_path / "latest_net_G.pth", "nvlabs")
    with torch.no_grad():
        assert (pub.net(fx["input"]) - fx["output_eval"]).abs().max().item() < 1e-5
    assert pub.label_space is None  # 13 channels: no pretrained dataset; infer.py asks for the label options
    assert pub.options["norm_G"] == "spectralspadesyncbatch3x3" and pub.test_protocol == "eval"


def test_spade_folder_reads_opt_txt(refs, tmp_path):
    """A checkpoints folder: latest_net_G.pth plus the reference's opt.txt (the pickle twin is never read)."""
    fx = fixture(refs, "spade_ngf2_label13")
    folder = tmp_path / "label13_run"
    folder.mkdir()
    torch.save(fx["state_dict"], folder / "latest_net_G.pth")
    (folder / "opt.pkl").write_bytes(b"not read")
    lines = {
        "dataset_mode": "custom",
        "label_nc": "12",
        "contain_dontcare_label": "True",
        "no_instance": "True",
    }
    (folder / "opt.txt").write_text(
        "".join(f"{k:>25}: {v:<30}\t[default: x]\n" for k, v in lines.items()) + f"{'ngf':>25}: 2\n"
    )
    pub = read_published(folder)
    assert pub.label_space == LabelSpace("custom", 12, True, True)
    assert pub.options["ngf"] == 2


# ------------------------------------------------------------------------------------------------ manifests
def manifest_state_dict(entry: dict, extra: list | None = None) -> dict:
    dtypes = {"float32": torch.float32, "int64": torch.int64}
    return {k: torch.empty(s, dtype=dtypes[d], device="meta") for k, s, d in entry["keys"] + (extra or [])}


@pytest.fixture(scope="module")
def manifests(refs) -> dict:
    return json.loads((refs / "manifests.json").read_text())["manifests"]


@pytest.mark.parametrize(
    "name, space, up",
    [
        ("nvlabs_spade_ade20k_pretrained", LabelSpace("ade20k", 150, True, True), "normal"),
        ("nvlabs_spade_coco_pretrained", LabelSpace("coco", 182, True, False), "normal"),
        ("nvlabs_spade_cityscapes_pretrained", LabelSpace("cityscapes", 35, False, False), "more"),
    ],
)
def test_spade_manifest_converts_completely(manifests, name, space, up):
    """All 234 keys used, every shape equal (the fit check raises otherwise), the reference's parameter count;
    the label space and `more` upsampling come from the channel count (cityscapes' option setter)."""
    entry = manifests[name]
    pub = read_published(manifest_state_dict(entry), device="meta")
    assert len(pub.net.state_dict()) == entry["num_keys"] == 234
    assert sum(p.numel() for p in pub.net.parameters()) == entry["num_parameters"]
    assert pub.label_space == space and pub.net.num_upsampling_layers == up
    assert (pub.net.sh, pub.net.sw) == (entry["latent_sw_sh"][1], entry["latent_sw_sh"][0])


def test_spade_vae_variant_is_inferred(manifests):
    entry = dict(manifests["nvlabs_spade_ade20k_pretrained"])
    entry["keys"] = [
        ["fc.weight", [65536, 256], "float32"], ["fc.bias", [65536], "float32"], *entry["keys"][2:],
    ]  # fmt: skip
    pub = read_published(manifest_state_dict(entry), device="meta")
    assert pub.net.use_vae and pub.net.z_dim == 256 and pub.net.crop_size == (256, 256)


def test_spade_vae_crop_that_does_not_fit_says_the_latent_size():
    """The one size a VAE file's shapes cannot say (sh x sw of fc's projection): the error gives sh*sw."""
    from underpainting.models.networks.spade import SPADEGenerator
    from underpainting.zoo import nvlabs

    net = SPADEGenerator(13, ngf=2, use_vae=True, z_dim=8, crop_size=128)  # latent 4x4
    with pytest.raises(WeightsError) as e:
        read_published(nvlabs.to_reference(net), crop_size=256)
    msg = one_paragraph(e)
    assert "fc.weight has shape [512, 8]" in msg and "sh*sw = 16" in msg
    assert read_published(nvlabs.to_reference(net), crop_size=128).net.crop_size == (128, 128)


@pytest.mark.parametrize("legacy", [False, True])
def test_cyclegan_manifest_converts_completely(manifests, legacy):
    entry = manifests["junyanz_cyclegan_resnet_9blocks_ngf64"]
    sd = manifest_state_dict(entry, entry["legacy_extra_keys"] if legacy else None)
    pub = read_published(sd, device="meta")
    assert len(pub.net.state_dict()) == 48 and pub.options["netG"] == "resnet_9blocks"
    assert sum(p.numel() for p in pub.net.parameters()) == entry["num_parameters"] == 11_378_179


@pytest.mark.parametrize("optional", [True, False])
def test_pix2pix_manifest_converts_completely(manifests, optional):
    """With and without the num_batches_tracked keys that files saved before PyTorch 0.4.1 lack."""
    entry = dict(manifests["junyanz_pix2pix_unet_256_ngf64"])
    if not optional:
        entry["keys"] = [k for k in entry["keys"] if k[0] not in set(entry["optional_keys"])]
    pub = read_published(manifest_state_dict(entry), device="meta")
    assert len(pub.net.state_dict()) == 82 and pub.options["netG"] == "unet_256"
    assert sum(p.numel() for p in pub.net.parameters()) == entry["num_parameters"] == 54_413_955


# -------------------------------------------------------------------------------------------- bad files
def test_wrong_option_names_the_first_key_and_the_fitting_option(refs):
    fx = fixture(refs, "cyclegan_resnet9_ngf8")
    with pytest.raises(WeightsError) as e:
        load_published(fx["state_dict"], "junyanz", netG="resnet_6blocks")
    msg = one_paragraph(e)
    assert "model.19.weight has shape [32, 16, 3, 3]" in msg and "netG=resnet_9blocks" in msg


def test_file_of_the_other_source_says_which(refs):
    fx = fixture(refs, "spade_ngf2_label13")
    with pytest.raises(WeightsError) as e:
        load_published(fx["state_dict"], "junyanz")
    assert "source=nvlabs" in one_paragraph(e)


def test_spade_label_options_that_do_not_fit(refs):
    fx = fixture(refs, "spade_ngf2_label13")
    with pytest.raises(WeightsError) as e:
        load_published(fx["state_dict"], dataset_mode="ade20k")
    msg = one_paragraph(e)
    assert "fc.weight has shape [32, 13, 3, 3]" in msg and "13 input channels" in msg


def test_discriminator_and_junk_files(refs, tmp_path):
    d = {"model.0.weight": torch.zeros(8, 3, 4, 4), "model.0.bias": torch.zeros(8)}
    with pytest.raises(WeightsError) as e:
        load_published(d)
    assert "model.0.weight" in one_paragraph(e)
    (tmp_path / "page.pth").write_text("<html>404 Not Found</html>")
    with pytest.raises(WeightsError, match="page.pth is not a readable"):
        load_published(tmp_path / "page.pth")
    with pytest.raises(WeightsError, match="unknown junyanz option"):
        load_published(fixture(refs, "cyclegan_resnet9_ngf8")["state_dict"], n_blocks=9)
    with pytest.raises(WeightsError, match="'epoch' is a int"):
        load_published({"epoch": 3, "model.1.weight": torch.zeros(1)})


# ----------------------------------------------------------------------------------------------- label bridge
def sketch(labels: LabelSet) -> torch.Tensor:
    """4x6: sky over a mountain, a cloud (no ADE20K id) and `other` (id 0) in the corner."""
    ids = torch.full((1, 4, 6), labels.id("sky"))
    ids[:, 2:, :] = labels.id("mountain")
    ids[:, 0, 4:] = labels.id("cloud")
    ids[:, 3, 0] = labels.id("other")
    return ids


def test_ade20k_remap_keeps_the_raw_ids(labels):
    """ade20k_pretrained gets raw ADE ids (channel k = id k, 0 = other): sky 3, mountain 17; a class without an ADE
    id goes to 0. 151 channels, no instance channel."""
    sem = semantics(sketch(labels), labels, LabelSpace("ade20k", 150, True, True))
    assert sem.shape == (1, 151, 4, 6) and torch.equal(sem.sum(1), torch.ones(1, 4, 6))
    assert sem[0, 3, 0, :4].all() and sem[0, 3, 1].all() and sem[0, 17, 2].all() and sem[0, 17, 3, 1:].all()
    assert sem[0, 0, 0, 4:].all() and sem[0, 0, 3, 0] == 1  # cloud, other -> "other objects"
    assert sem[0, 2].sum() == 0  # not the intended-but-inactive shift (sky would be channel 2)


def test_coco_remap_dontcare_and_label_edges(labels):
    """COCO-Stuff: id k -> channel k (sky 156, mountain 134, cloud 105), `other` -> 255 -> channel 182; channel 183
    is the boundary map of the label map, on both sides of each boundary (the reference's get_edges)."""
    sem = semantics(sketch(labels), labels, LabelSpace("coco", 182, True, False))
    assert sem.shape == (1, 184, 4, 6)
    assert sem[0, 156, :2, :4].all() and sem[0, 105, 0, 4:].all() and sem[0, 134, 2:, 1:].all()
    assert sem[0, 182, 3, 0] == 1 and sem[0, 182].sum() == 1
    expected = torch.tensor(
        [[0, 0, 0, 1, 1, 1], [1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0]], dtype=torch.float32
    )
    assert torch.equal(sem[0, 183], expected), sem[0, 183]


def test_cityscapes_and_custom_spaces(labels):
    with pytest.raises(WeightsError, match="no cityscapes ids"):
        semantics(sketch(labels), labels, LabelSpace("cityscapes", 35, False, False))
    own = semantics(sketch(labels), labels, LabelSpace("custom", len(labels), False, True))
    assert torch.equal(own, one_hot(sketch(labels), len(labels)))
    with pytest.raises(WeightsError, match="12 custom classes"):
        semantics(sketch(labels), labels, LabelSpace("custom", 12, True, True))


def test_norm_none_generator_round_trips_through_the_reference_layout():
    """Before: norm=none was refused both ways (bias mismatch with the reference); now it loads exactly."""
    from underpainting.zoo.junyanz import reference_options, to_reference
    from underpainting.zoo.loader import load_published

    net = ResnetGenerator(ngf=8, n_blocks=6, norm="none").eval()
    assert reference_options(net)["norm"] == "none"
    loaded = load_published(to_reference(net), source="junyanz", netG="resnet_6blocks")
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(loaded(x), net(x))
