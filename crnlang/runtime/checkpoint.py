"""Checkpoints of a neural run: written atomically, read back to resume a killed run.

A checkpoint holds everything the run needs to continue exactly where it stopped: the
network's and optimiser's state, t, the step counter, the adaptive step size, the RNG state
and every snapshot saved so far. It is written to a temporary file in the same folder and
moved into place with ``os.replace``, so a kill mid-write leaves the previous checkpoint.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

FILENAME = "neural_checkpoint.pt"


def checkpoint_path(directory) -> Path:
    return Path(directory) / FILENAME


def save_checkpoint(directory, state: dict[str, Any]) -> Path:
    """Write ``state`` (tensors, dicts, lists, numbers) atomically; returns the path."""
    path = checkpoint_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(directory) -> dict[str, Any] | None:
    """The saved state, or None when there is no checkpoint."""
    path = checkpoint_path(directory)
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)
