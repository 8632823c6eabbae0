"""`trainer=ddp_multinode` on one machine as two "nodes" of one CPU process each: two `torchrun --nnodes=2` launches
meeting at a c10d rendezvous, gloo. Lightning takes ranks and world size from torchrun's environment; the test checks
the global step, that the two ranks trained on disjoint items, that every rank's image pools are checkpointed, and
that a resume continues on both nodes with each rank's own pool."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from tests.conftest import ROOT, TINY_CYCLEGAN


class RecordSeen(pl.Callback):
    """Written into each rank's file: a digest of every training item it got, and its pool after a resume."""

    def __init__(self, out: str) -> None:
        self.out, self.items, self.pool_at_start = Path(out), [], None

    def on_train_start(self, trainer, pl_module) -> None:
        self.pool_at_start = [_digest(im) for im in pl_module.pool_A.images]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.items += [_digest(x) for x in batch["A"]]

    def on_train_end(self, trainer, pl_module) -> None:
        record = {"rank": trainer.global_rank, "world": trainer.world_size, "items": self.items}
        record |= {"pool_at_start": self.pool_at_start, "nodes": trainer.num_nodes}
        (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha1(t.detach().float().cpu().numpy().tobytes()).hexdigest()[:12]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_nodes(args: list[str], seen: Path) -> None:
    seen.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
           "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", f"--rdzv-id=nodes{port}",
           "train.py", *args, "+callbacks.seen._target_=tests.test_multinode.RecordSeen",
           f"+callbacks.seen.out={seen}"]  # fmt: skip
    nodes = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]  # fmt: skip
    outs = [n.communicate(timeout=400)[0] for n in nodes]
    for n, out in zip(nodes, outs, strict=True):
        assert n.returncode == 0, out[-3000:]


def _seen(folder: Path) -> list[dict]:
    return [json.loads((folder / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.slow
def test_two_torchrun_nodes_shard_the_data_checkpoint_every_pool_and_resume(tmp_path):
    run_dir = tmp_path / "run"
    args = [
        *TINY_CYCLEGAN,
        "trainer=ddp_multinode",
        "trainer.accelerator=cpu",
        "trainer.devices=1",
        "trainer.num_nodes=2",
        "trainer.precision=32-true",
        "trainer.sync_batchnorm=false",
        "trainer.strategy.process_group_backend=gloo",
        "model.pool_size=2",
        "callbacks.sample_grid.every_n_steps=0",
        "+trainer.limit_val_batches=0",
        f"hydra.run.dir={run_dir}",
    ]
    _two_nodes([*args, "trainer.max_epochs=1"], tmp_path / "seen1")
    first = _seen(tmp_path / "seen1")
    assert [(r["rank"], r["world"], r["nodes"]) for r in first] == [(0, 2, 2), (1, 2, 2)]
    # 8 items over 2 ranks, batch 2: 2 batches each; global_step counts the G and D steps
    assert [len(r["items"]) for r in first] == [4, 4]
    assert not set(first[0]["items"]) & set(first[1]["items"]), "the ranks saw disjoint items"
    assert len(set(first[0]["items"]) | set(first[1]["items"])) == 8, "together, the whole epoch"
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 4
    pools = ckpt["image_pools_by_rank"]
    assert len(pools) == 2 and all(len(p["A"]["images"]) == 2 for p in pools)
    assert not torch.equal(pools[0]["A"]["images"], pools[1]["A"]["images"]), "each rank pools its own fakes"

    resume = [*args, "trainer.max_epochs=2", f"ckpt_path={run_dir}/checkpoints/last.ckpt"]
    _two_nodes(resume, tmp_path / "seen2")
    second = _seen(tmp_path / "seen2")
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 8
    assert [len(r["items"]) for r in second] == [4, 4]
    assert not set(second[0]["items"]) & set(second[1]["items"])
    for rank, rec in enumerate(second):
        assert rec["pool_at_start"] == [_digest(im) for im in pools[rank]["A"]["images"]], "its own pool back"
