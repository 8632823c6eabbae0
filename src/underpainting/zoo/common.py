"""What every published state dict needs before it meets the project's modules: a safe read, the DataParallel
prefix off, and a one-paragraph verdict when it does not fit (the reference's own loader prints a key dump)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from underpainting.checkpoints import read
from underpainting.errors import WeightsError

StateDict = dict[str, torch.Tensor]


def read_state_dict(path: Path) -> StateDict:
    """A published `.pth` (`torch.save(net.state_dict())`), read with `weights_only=True`."""
    fix = "fix the path, or (if it was downloaded) delete it and fetch it again with `python -m underpainting.zoo`"
    return read(path, "PyTorch state dict", fix)


def strip_data_parallel(sd: Mapping[str, torch.Tensor]) -> StateDict:
    """Drop `module.`, which `nn.DataParallel` puts before every key (files re-saved by third parties)."""
    if sd and all(k.startswith("module.") for k in sd):
        return {k[len("module.") :]: v for k, v in sd.items()}
    return dict(sd)


def check_tensors(sd: Mapping, where: str) -> None:
    bad = next((k for k, v in sd.items() if not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise WeightsError(
            f"{where}: entry {bad!r} is a {type(sd[bad]).__name__}, not a tensor; this is not a published "
            "generator state dict (a train.py checkpoint goes to the stage's checkpoint key as it is)"
        )


def _shape(t: torch.Tensor) -> list[int]:
    return list(t.shape)


def check_fit(
    expected: Mapping[str, torch.Tensor],
    got: Mapping[str, torch.Tensor],
    where: str,
    built: str,
    advice: Callable[[], str],
) -> None:
    """Every key of `expected` present with its shape and nothing else, or one paragraph: the first missing,
    unexpected or mis-shaped key, how many more there are, and `advice()` (the options that would fit)."""
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    wrong = [k for k in expected if k in got and got[k].shape != expected[k].shape]
    if not (missing or unexpected or wrong):
        return
    if wrong:
        k = wrong[0]
        first = f"its {k} has shape {_shape(got[k])} where that network's has {_shape(expected[k])}"
    elif missing:
        first = f"that network needs {missing[0]}, which the file lacks"
    else:
        first = f"the file has {unexpected[0]}, which that network does not"
    counts = f"{len(missing)} missing, {len(unexpected)} unexpected and {len(wrong)} mis-shaped keys in all"
    raise WeightsError(f"{where} does not fit the {built}: {first} ({counts}). {advice()}")


def describe(options: Mapping[str, object]) -> str:
    return " ".join(f"{k}={v}" for k, v in options.items())
