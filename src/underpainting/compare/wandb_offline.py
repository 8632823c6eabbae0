"""Read a W&B run from its transaction log (`wandb/offline-run-*/run-*.wandb`), no account or network needed.

wandb >= 0.31 no longer ships a Python reader, and an offline run writes no `wandb-summary.json`: everything is in
the `.wandb` file, a LevelDB-style log (a 7-byte file header, then 32 KiB blocks of records, each with a 7-byte
header: CRC32C, length, type FULL/FIRST/MIDDLE/LAST) of protobuf `Record`s (wandb's own `wandb_internal_pb2`). A run
killed mid-write leaves a truncated last record: reading stops there and keeps everything before it.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_FILE_HEADER = struct.Struct("<4sHB")  # ":W&B", magic 0xBEE1, version
_RECORD_HEADER = struct.Struct("<IHB")  # checksum, length, type
_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


@dataclass
class WandbRun:
    path: Path
    run_id: str = ""
    name: str = ""
    group: str = ""
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None  # None: the run never finished (crashed, killed, or still running)


def _records(data: bytes):
    ident, magic, _ = _FILE_HEADER.unpack_from(data, 0)
    if ident != b":W&B" or magic != 0xBEE1:
        raise ValueError("not a W&B transaction log")
    pos, pending = _FILE_HEADER.size, b""
    while pos + _RECORD_HEADER.size <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _RECORD_HEADER.size:  # block trailer: zero padding
            pos += left
            continue
        _, length, kind = _RECORD_HEADER.unpack_from(data, pos)
        pos += _RECORD_HEADER.size
        if pos + length > len(data):
            return  # truncated by a crash
        chunk, pos = data[pos : pos + length], pos + length
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            yield pending + chunk
            pending = b""
        elif kind == 0 and length == 0:
            continue
        else:
            return  # garbage: stop rather than guess


def _put(target: dict, item) -> None:
    """`nested_key` [a, b] is target[a][b] (an image's width inside its media dict), `key` a top-level entry."""
    keys = list(item.nested_key) or [item.key]
    try:
        value = json.loads(item.value_json)
    except ValueError:
        return
    for k in keys[:-1]:
        node = target.get(k)
        target = target.setdefault(k, {}) if isinstance(node, dict) or node is None else {}
    target[keys[-1]] = value


def read_wandb_run(path: str | Path) -> WandbRun:
    """Everything useful in one `.wandb` file: run info, config, summary, history rows, exit code."""
    from wandb.proto import wandb_internal_pb2 as pb

    path = Path(path)
    run = WandbRun(path=path)
    for raw in _records(path.read_bytes()):
        rec = pb.Record()
        try:
            rec.ParseFromString(raw)
        except Exception:  # noqa: BLE001 - a corrupt record: skip it, keep the rest
            continue
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            run.run_id, run.name, run.group, run.job_type = r.run_id, r.display_name, r.run_group, r.job_type
            run.tags = list(r.tags)
            for item in r.config.update:
                _put(run.config, item)
        elif kind == "config":
            for item in rec.config.update:
                _put(run.config, item)
        elif kind == "summary":
            for item in rec.summary.update:
                _put(run.summary, item)
        elif kind == "history":
            row: dict[str, Any] = {}
            for item in rec.history.item:
                _put(row, item)
            run.history.append(row)
        elif kind == "exit":
            run.exit_code = rec.exit.exit_code
    run.config.pop("_wandb", None)
    return run


def find_wandb_runs(run_dir: Path) -> list[Path]:
    """The transaction logs under a run folder (offline and online runs both write one)."""
    return sorted(run_dir.glob("wandb/*run-*/run-*.wandb"))
