"""`python -m underpainting.zoo download`: the reference scripts' URLs, an atomic download into the cache that is
checked to load (served here by a local HTTP server), and an immediate, complete message when offline."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
import time
from pathlib import Path

import pytest
import torch

from underpainting.errors import WeightsError
from underpainting.zoo import download, load_published, lookup
from underpainting.zoo.__main__ import main

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("UNDERPAINTING_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("UNDERPAINTING_ZOO_MIRROR", raising=False)
    return tmp_path / "home" / "zoo"


class Server:
    """http.server on 127.0.0.1 serving `root`, counting requests."""

    def __init__(self, root: Path) -> None:
        self.requests: list[str] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                server.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=root)
        )
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(tmp_path, shared_dir):
    """The CycleGAN fixture as a published file (a bare state dict) at the reference's URL path."""
    fx = torch.load(
        shared_dir / "fixtures/reference_checkpoints/cyclegan_resnet9_ngf8.pth", weights_only=True
    )
    root = tmp_path / "www"
    (root / "cyclegan/pretrained_models").mkdir(parents=True)
    torch.save(fx["state_dict"], root / "cyclegan/pretrained_models/style_vangogh.pth")
    (root / "pix2pix/models-pytorch").mkdir(parents=True)
    (root / "pix2pix/models-pytorch/edges2shoes.pth").write_text("<html>moved</html>")
    server = Server(root)
    yield server, fx
    server.close()


def test_urls_follow_the_reference_scripts():
    assert (
        lookup("style_vangogh").url()
        == "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/style_vangogh.pth"
    )
    assert lookup("style_vangogh_pretrained") == lookup("cyclegan/style_vangogh")
    assert (
        lookup("day2night").url() == "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/day2night.pth"
    )
    assert lookup("pix2pix/sat2map").family == "pix2pix" and lookup("my_own") is None
    with pytest.raises(WeightsError, match="cyclegan/sat2map and pix2pix/sat2map"):
        lookup("sat2map")


def test_download_is_atomic_verified_and_cached(served, cache):
    server, fx = served
    path = download("style_vangogh", host=server.url)
    assert path == cache / "cyclegan" / "style_vangogh.pth"
    assert server.requests == ["/cyclegan/pretrained_models/style_vangogh.pth"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["style_vangogh.pth"]  # no staging files left
    with torch.no_grad():
        assert (load_published(path)(fx["input"]) - fx["output_eval"]).abs().max() < 1e-5
    assert download("style_vangogh", host=server.url) == path and len(server.requests) == 1  # cached


def test_a_download_that_is_not_a_generator_is_not_kept(served, cache):
    server, _ = served
    with pytest.raises(WeightsError, match="edges2shoes.pth was downloaded but is not a usable generator"):
        download("edges2shoes", host=server.url)
    assert not any((cache / "pix2pix").iterdir())


def test_offline_stops_at_once_naming_url_file_and_place(cache):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    with pytest.raises(WeightsError) as e:
        download("style_monet", host=f"http://127.0.0.1:{port}")
    assert time.perf_counter() - start < 5
    msg = str(e.value)
    assert f"http://127.0.0.1:{port}/cyclegan/pretrained_models/style_monet.pth" in msg
    assert str(cache / "cyclegan" / "style_monet.pth") in msg and "\n" not in msg
    assert not (cache / "cyclegan" / "style_monet.pth").exists()


def test_spade_names_explain_the_manual_download(cache):
    with pytest.raises(WeightsError) as e:
        download("ade20k_pretrained")
    assert "checkpoints.tar.gz" in str(e.value) and str(cache / "spade" / "ade20k_pretrained") in str(e.value)


def test_cli(served, capsys):
    server, _ = served
    assert main(["download", "style_vangogh", "--mirror", server.url]) == 0
    assert capsys.readouterr().out.strip().endswith("cyclegan/style_vangogh.pth")
    assert main(["info", "style_vangogh"]) == 0  # a name in the cache
    assert "netG=resnet_9blocks ngf=8" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="^1$"):
        main(["download", "sat2map"])
    assert "name one of them" in capsys.readouterr().err


def test_infer_stage_takes_a_name_and_fetches_it(served, cache, monkeypatch):
    """`stage2.cyclegan.checkpoint=style_vangogh`: fetched into the cache on first use (or refused when downloads
    are off, naming the command that fetches it)."""
    from tests.conftest import ROOT
    from underpainting.data.labels import LabelSet
    from underpainting.inference.stages import CycleGANPainting

    server, fx = served
    labels = LabelSet.from_yaml(ROOT / "conf" / "labels" / "landscape.yaml")
    monkeypatch.setenv("UNDERPAINTING_ZOO_MIRROR", server.url)
    with pytest.raises(WeightsError, match="python -m underpainting.zoo download cyclegan/style_vangogh"):
        CycleGANPainting("style_vangogh", download=False).setup(labels, torch.device("cpu"))
    stage = CycleGANPainting("style_vangogh")
    stage.setup(labels, torch.device("cpu"))
    assert (cache / "cyclegan" / "style_vangogh.pth").is_file() and len(server.requests) == 1
    with torch.no_grad():
        assert (stage.net(fx["input"]) - fx["output_eval"]).abs().max() < 1e-5
