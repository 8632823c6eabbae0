"""The shared VGG feature extractor: layer names/shapes, input conventions, weights loading and its errors."""

from __future__ import annotations

import json
import urllib.error
from pathlib import Path

import pytest
import torch

from underpainting.features import vgg as vgg_mod
from underpainting.features.vgg import VGGFeatures, VGGWeightsError, layer_names

SHARED_VGG16 = Path(__file__).parents[2] / "shared" / "weights" / "vgg16_caffe_features.pth"


def random_vgg(**kw) -> VGGFeatures:
    with pytest.warns(UserWarning, match="RANDOM"):
        return VGGFeatures(weights="random", **kw)


def test_layer_names_follow_torchvision_modules():
    from torchvision.models.vgg import cfgs, make_layers

    for arch, cfg, n_conv in (("vgg16", "D", 13), ("vgg19", "E", 16)):
        names = layer_names(arch)
        assert len(names) == len(make_layers(cfgs[cfg]))
        assert sum(n.startswith("conv") for n in names) == n_conv
    names = layer_names("vgg19")
    assert names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert names.index("relu4_2") == 22 and names.index("relu5_1") == 29 and names[-1] == "pool5"
    assert "relu5_4" in names and "relu5_4" not in layer_names("vgg16")


def test_shapes_order_and_early_exit():
    layers = ["relu4_2", "relu1_1", "relu2_1", "relu3_1", "conv4_1"]
    net = random_vgg(layers=layers)
    out = net(torch.rand(2, 3, 64, 48) * 2 - 1)
    assert list(out) == layers
    assert out["relu1_1"].shape == (2, 64, 64, 48)
    assert out["relu2_1"].shape == (2, 128, 32, 24)
    assert out["relu3_1"].shape == (2, 256, 16, 12)
    assert out["relu4_2"].shape == (2, 512, 8, 6)
    assert (out["relu4_2"] >= 0).all() and (out["conv4_1"] < 0).any()  # conv output is not clobbered by ReLU
    assert list(net.body.named_children())[-1][0] == "relu4_2"  # truncated after the deepest layer
    assert not any(p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training


def test_avg_pooling_and_input_gradients():
    net = random_vgg(layers=["relu2_1"], pooling="avg")
    assert isinstance(net.body.pool1, torch.nn.AvgPool2d)
    x = torch.zeros(1, 3, 32, 32, requires_grad=True)
    net(x)["relu2_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_conventions_maths():
    img = torch.tensor([-1.0, 0.0, 1.0]).view(1, 3, 1, 1)  # R=-1 (0), G=0 (0.5), B=1 (1)
    tv = random_vgg(layers=["relu1_1"], convention="torchvision")
    expected = (torch.tensor([0.0, 0.5, 1.0]) - torch.tensor(vgg_mod.TORCHVISION_MEAN)) / torch.tensor(
        vgg_mod.TORCHVISION_STD
    )
    torch.testing.assert_close(tv.preprocess(img).flatten(), expected)
    caffe = random_vgg(layers=["relu1_1"], convention="caffe")
    # BGR order, 0..255, minus the BGR mean: B=255-103.939, G=127.5-116.779, R=0-123.68
    torch.testing.assert_close(
        caffe.preprocess(img).flatten(), torch.tensor([255 - 103.939, 127.5 - 116.779, -123.68])
    )


def test_bad_arguments_raise_clearly():
    with pytest.raises(ValueError, match="unknown vgg16 layer"):
        VGGFeatures(layers=["relu5_4"], arch="vgg16", weights="random")
    with pytest.raises(ValueError, match="arch"):
        VGGFeatures(layers=["relu1_1"], arch="vgg11", weights="random")
    with pytest.raises(ValueError, match="pooling"):
        VGGFeatures(layers=["relu1_1"], weights="random", pooling="mean")


def test_offline_missing_imagenet_weights_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    import torchvision.models._api as tv_api  # where the weights enum looks the function up

    monkeypatch.setattr(tv_api, "load_state_dict_from_url", offline)
    with pytest.raises(VGGWeightsError) as err:
        VGGFeatures(layers=["relu1_1"], weights="imagenet", config_key="model.vgg.weights")
    msg = str(err.value)
    assert str(tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth") in msg
    assert "model.vgg.weights" in msg and "URLError" in msg
    with pytest.raises(VGGWeightsError, match="download disabled"):
        VGGFeatures(layers=["relu1_1"], arch="vgg16", weights="imagenet", download=False)


def test_imagenet_weights_from_hub_cache(tmp_path, monkeypatch):
    """A full-model torchvision checkpoint in the hub cache is found and loaded without the network."""
    from torchvision.models.vgg import cfgs, make_layers

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    features = make_layers(cfgs["D"])
    full = {f"features.{k}": v for k, v in features.state_dict().items()}
    full["classifier.0.weight"] = torch.zeros(2, 2)  # stands in for the classifier, which must be ignored
    ckpt = tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth"
    ckpt.parent.mkdir(parents=True)
    torch.save(full, ckpt)
    net = VGGFeatures(layers=["conv1_1"], arch="vgg16", weights="imagenet", download=False)
    torch.testing.assert_close(net.body.conv1_1.weight, features[0].weight)
    assert net.convention == "torchvision"


def test_local_file_errors_and_sidecar(tmp_path):
    with pytest.raises(VGGWeightsError, match="does not exist"):
        VGGFeatures(layers=["relu1_1"], weights=tmp_path / "nope.pth")
    from torchvision.models.vgg import cfgs, make_layers

    path = tmp_path / "v16.pth"
    torch.save(make_layers(cfgs["D"]).state_dict(), path)
    with pytest.raises(VGGWeightsError, match="other VGG depth"):
        VGGFeatures(layers=["relu1_1"], arch="vgg19", weights=path)
    with pytest.warns(UserWarning, match="assuming 'torchvision'"):
        assert VGGFeatures(layers=["relu1_1"], arch="vgg16", weights=path).convention == "torchvision"
    path.with_suffix(".json").write_text(json.dumps({"preprocessing": {"channel_order": "BGR"}}))
    assert VGGFeatures(layers=["relu1_1"], arch="vgg16", weights=path).convention == "caffe"


@pytest.mark.shared
def test_shared_vgg16_caffe_weights_load_and_see_structure():
    if not SHARED_VGG16.is_file():
        pytest.skip("../shared/weights/vgg16_caffe_features.pth not present")
    net = VGGFeatures(layers=["relu1_1", "relu5_3"], arch="vgg16", weights=SHARED_VGG16)
    assert net.convention == "caffe"  # from vgg16_caffe_features.json
    assert sum(p.numel() for p in net.parameters()) == 14_714_688  # the README's count: all 13 conv layers
    # Pretrained first-layer filters respond to edges: a step edge excites relu1_1 far more than a flat image.
    flat = torch.zeros(1, 3, 32, 32)
    edge = flat.clone()
    edge[..., 16:] = 0.8
    a, b = net(flat)["relu1_1"], net(edge)["relu1_1"]
    assert (b[..., 14:18].std() > 5 * a.std()) and torch.isfinite(b).all()
