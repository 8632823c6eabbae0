"""`model.compile=true`: the networks are compiled in place, so compiled and plain runs share state-dict keys (no
`_orig_mod.`), resume from each other's checkpoints exactly, and export plain generators; the losses equal eager's.

Most checks use the `aot_eager` backend (dynamo + AOTAutograd, no C++ codegen: seconds, and numerically eager); one
test runs inductor itself on a tiny net. The inductor cache goes to a temporary folder."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import TINY_CYCLEGAN, RecordLosses
from tests.test_nst import TINY_NST
from tests.test_pix2pix import TINY_PIX2PIX
from tests.test_spade_training import TINY_SPADE
from tests.test_xray_separation import TINY as TINY_XRAY
from underpainting.checkpoints import build_model
from underpainting.errors import ConfigError
from underpainting.train import run

pytestmark = pytest.mark.usefixtures("one_thread")

AOT = ["model.compile=true", "model.compile_backend=aot_eager"]
# 4 items, batch 2: 2 batches an epoch, global_step 4 an epoch (two optimizers).
SHORT = TINY_CYCLEGAN + [
    "data.num_train=4",
    "trainer.max_epochs=2",
    "callbacks.sample_grid.every_n_steps=0",
    "trainer.log_every_n_steps=1",
    "model.scheduler.n_epochs=1",
    "model.scheduler.n_epochs_decay=1",
    "callbacks.model_checkpoint.every_n_train_steps=4",  # step0000004.ckpt: the end of epoch 1
    "callbacks.model_checkpoint.save_top_k=-1",
]


@pytest.fixture(autouse=True)
def _inductor_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    yield
    torch._dynamo.reset()


def _fit(make_cfg, overrides: list[str], subdir: str) -> tuple[RecordLosses, dict]:
    rec = RecordLosses()
    run(make_cfg(overrides, subdir), extra_callbacks=[rec])
    return rec, torch.load(
        make_cfg(overrides, subdir).paths.output_dir + "/checkpoints/last.ckpt", weights_only=True
    )


def _compiled(model: torch.nn.Module) -> list[str]:
    return [n for n, m in model.named_children() if getattr(m, "_compiled_call_impl", None) is not None]


def test_bad_compile_options_name_the_key(make_cfg):
    from hydra.utils import instantiate

    for key, value in (("compile_mode", "fastest"), ("compile_backend", "tvm_typo")):
        with pytest.raises(Exception) as info:
            instantiate(make_cfg([*TINY_CYCLEGAN, "model.compile=true", f"model.{key}={value}"]).model)
        err = info.value.__cause__ if not isinstance(info.value, ConfigError) else info.value
        assert isinstance(err, ConfigError) and f"model.{key}={value!r}" in str(err)


@pytest.mark.slow
def test_compiled_cyclegan_checkpoints_are_plain_and_resume_both_ways(make_cfg, tmp_path):
    eager, eager_ckpt = _fit(make_cfg, SHORT, "eager")
    comp, comp_ckpt = _fit(make_cfg, SHORT + AOT, "compiled")
    for step, losses in eager.losses.items():
        for name, value in losses.items():
            assert comp.losses[step][name] == pytest.approx(value, rel=1e-4, abs=1e-6), (step, name)
    keys = set(comp_ckpt["state_dict"])
    assert keys == set(eager_ckpt["state_dict"]) and not [k for k in keys if "_orig_mod" in k]
    for key in ("G_AB.model.1.weight", "D_B.model.0.weight"):
        assert not torch.equal(comp_ckpt["state_dict"][key], torch.zeros_like(comp_ckpt["state_dict"][key]))

    # One epoch, then the second from its checkpoint: compiled -> plain and plain -> compiled.
    one = [o for o in SHORT if not o.startswith("trainer.max_epochs")] + ["trainer.max_epochs=1"]
    _fit(make_cfg, one + AOT, "c1")
    _fit(make_cfg, one, "p1")
    plain_from_comp, a = _fit(make_cfg, SHORT + [f"ckpt_path={tmp_path}/c1/checkpoints/last.ckpt"], "pc")
    comp_from_plain, b = _fit(
        make_cfg, SHORT + AOT + [f"ckpt_path={tmp_path}/p1/checkpoints/last.ckpt"], "cp"
    )
    for resumed, final in ((plain_from_comp, a), (comp_from_plain, b)):
        assert min(resumed.losses) == 6, "the resumed run starts at epoch 2"
        for step in (6, 8):
            for name, value in eager.losses[step].items():
                assert resumed.losses[step][name] == pytest.approx(value, rel=1e-4, abs=1e-6), (step, name)
        for k, v in eager_ckpt["state_dict"].items():
            torch.testing.assert_close(final["state_dict"][k], v, rtol=1e-4, atol=1e-6)

    # Export from the compiled run's checkpoint: plain networks with the trained weights.
    model, _ = build_model(tmp_path / "compiled" / "checkpoints" / "last.ckpt")
    assert _compiled(model) == []
    torch.testing.assert_close(
        model.G_BA.state_dict()["model.1.weight"], comp_ckpt["state_dict"]["G_BA.model.1.weight"]
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [TINY_SPADE + ["model.lambda_vgg=10", "model.vgg.weights=random"], TINY_PIX2PIX, TINY_NST, TINY_XRAY],
    ids=["spade", "pix2pix", "nst", "xray"],
)
def test_every_model_compiles_its_networks_and_matches_eager(make_cfg, overrides):
    steps = ["trainer.max_steps=2"]
    if overrides is not TINY_NST:
        steps += ["+trainer.limit_val_batches=0", "callbacks.sample_grid.every_n_steps=0"]
    runs = {}
    for name, extra in (("eager", []), ("compiled", AOT)):
        runs[name] = KeepModel()
        run(make_cfg([*overrides, *steps, *extra], name), extra_callbacks=[runs[name]])
    nets = runs["compiled"].model.compiled_networks()
    assert nets and all(getattr(n, "_compiled_call_impl", None) is not None for n in nets.values()), list(
        nets
    )
    assert not _compiled(runs["eager"].model)
    assert runs["compiled"].losses.keys() == runs["eager"].losses.keys() and runs["eager"].losses
    for step, losses in runs["eager"].losses.items():
        for name, value in losses.items():
            assert runs["compiled"].losses[step][name] == pytest.approx(value, rel=1e-4, abs=1e-6), (
                step,
                name,
            )


class KeepModel(RecordLosses):
    def on_fit_end(self, trainer, pl_module) -> None:
        self.model = pl_module


@pytest.mark.slow
def test_inductor_generator_matches_eager_forward_and_backward():
    """What `model.compile=true` runs: inductor's C++ kernels for a (tiny) ResNet generator, the graph with reflection
    pads, instance norm and transposed convs; output and every weight gradient as eager's (float sums reordered)."""
    import copy

    from underpainting.models.networks.resnet import ResnetGenerator

    torch.manual_seed(0)
    eager = ResnetGenerator(ngf=8, n_blocks=1)
    compiled = copy.deepcopy(eager)
    compiled.compile()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    outs = []
    for net in (eager, compiled):
        y = net(x)
        (y.square().mean() + y.mean()).backward()
        outs.append((y.detach(), {k: p.grad for k, p in net.named_parameters()}))
    assert compiled._compiled_call_impl is not None
    torch.testing.assert_close(outs[1][0], outs[0][0], rtol=1e-4, atol=1e-5)
    assert outs[1][1].keys() == outs[0][1].keys()
    for k, g in outs[0][1].items():
        torch.testing.assert_close(outs[1][1][k], g, rtol=1e-3, atol=1e-5, msg=k)


def test_triton_needs_a_c_compiler(monkeypatch):
    """On a GPU inductor's kernels are Triton's, and Triton builds a C launcher for each (gcc/clang, or $CC): the
    check that named the missing compiler ran on the CPU only, so a GPU run died in its first step instead."""
    from underpainting.models.compile import _check_compiler

    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(ConfigError, match="on a GPU needs a C compiler: Triton .* gcc or clang"):
        _check_compiler("inductor", torch.device("cuda"))
    _check_compiler("aot_eager", torch.device("cuda"))  # no codegen, no compiler
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}" if name == "clang" else None)
    _check_compiler("inductor", torch.device("cuda"))


def test_a_network_past_the_recompile_limit_is_reported_in_the_run_log(make_cfg, monkeypatch, caplog):
    """After recompile_limit graphs for one function torch runs it eagerly, saying so on its own stderr handler
    only: the run log (and Hydra's train.log) must say it, with what to do. Limit 1: the D step's frozen generator
    (no grad) is a second graph already."""
    import logging

    torch._dynamo.reset()
    monkeypatch.setattr(torch._dynamo.config, "recompile_limit", 1)
    caplog.set_level(logging.WARNING, logger="underpainting.models.compile")
    run(make_cfg([*SHORT, "model.compile=true", "model.compile_backend=eager", "trainer.max_steps=4"]))
    reports = [r.getMessage() for r in caplog.records if r.name == "underpainting.models.compile"]
    assert reports and "runs eagerly from now on" in reports[0] and "TORCH_LOGS=recompiles" in reports[0]
    assert "recompile_limit (1)" in reports[0] and "'forward'" in reports[0], reports[0]
