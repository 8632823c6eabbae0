"""Every load and save of weights the project makes: training checkpoints (resume, evaluation, inference, export,
the app), exported and published generators (the zoo) and the weight files of VGG, LPIPS and the metric networks.

- `io`: `read` (`weights_only=True`, one error naming the file: missing, unreadable, not a dictionary), `peek`
  (memory-mapped, None when unreadable), `write` (atomic), `AtomicCheckpointIO` (Lightning's), stale temp cleanup.
  The only module that calls `torch.load`.
- `checks`: the model kinds (`MODEL_CHOICES`), the embedded run config, non-finite weights, model class, label set
  and network fit.
- `modules`: `build_model` (a `train.py` checkpoint's LightningModule), `load_trained` (the same, checked for a
  stage), `load_exported` (a generator written by `python -m underpainting.export`), `suggest_checkpoints`.

It sits at the bottom of the layers, beside `config` and `runtime`: it imports only `underpainting.errors`. Models
are built from the `_target_` their files name; label sets and modules come from the caller.
"""

from underpainting.checkpoints.checks import (
    MODEL_CHOICES,
    architecture_differences,
    check_finite,
    check_labels,
    check_run_checkpoint,
    embedded_config,
    nonfinite_tensors,
)
from underpainting.checkpoints.io import AtomicCheckpointIO, peek, read, remove_stale_temp_files, write
from underpainting.checkpoints.modules import build_model, load_exported, load_trained, suggest_checkpoints

__all__ = [
    "MODEL_CHOICES",
    "AtomicCheckpointIO",
    "architecture_differences",
    "build_model",
    "check_finite",
    "check_labels",
    "check_run_checkpoint",
    "embedded_config",
    "load_exported",
    "load_trained",
    "nonfinite_tensors",
    "peek",
    "read",
    "remove_stale_temp_files",
    "suggest_checkpoints",
    "write",
]
