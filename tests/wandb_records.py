"""Reading an offline wandb run's ``run-<id>.wandb`` file (wandb ships no reader): its records by kind.

The file is a 7-byte header (``:W&B``, magic, version) and LevelDB-log chunks in 32 KiB blocks: each chunk a
CRC (4 bytes), a length (2) and a type (1: whole record, 2/3/4: first, middle, last piece); each record a
``wandb_internal_pb2.Record``.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

BLOCK = 32768
HEADER = 7


def records(path: Path) -> list[Any]:
    """Every protobuf record of the file, in order."""
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a wandb run file"
    out, pos, piece = [], HEADER, b""
    while pos + HEADER <= len(data):
        room = BLOCK - pos % BLOCK
        if room < HEADER:
            pos += room
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        chunk = data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        piece = chunk if kind in (1, 2) else piece + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(piece)
            out.append(record)
    return out


def contents(path: Path) -> dict[str, Any]:
    """{"run_id", "config": {key: value}, "summary": {key: value}, "history_keys": set}."""
    found: dict[str, Any] = {"run_id": None, "config": {}, "summary": {}, "history_keys": set()}
    for rec in records(path):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            found["run_id"] = rec.run.run_id
            found["config"].update({u.key: json.loads(u.value_json) for u in rec.run.config.update})
        elif kind == "config":
            found["config"].update({u.key: json.loads(u.value_json) for u in rec.config.update})
        elif kind == "summary":
            found["summary"].update({u.key: json.loads(u.value_json) for u in rec.summary.update if u.key})
        elif kind == "history":
            found["history_keys"] |= {i.key or "/".join(i.nested_key) for i in rec.history.item}
    return found
