"""Checkpoints of a neural run: written atomically, read back to resume a killed run.

A checkpoint holds everything the run needs to continue exactly where it stopped: the
network's and optimiser's state, t, the step counter, the adaptive step size, the RNG state
and every snapshot saved so far. It is written atomically (``crnlang.files``), so a
kill mid-write leaves the previous checkpoint.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..files import write_atomic

FILENAME = "neural_checkpoint.pt"


def checkpoint_path(directory) -> Path:
    return Path(directory) / FILENAME


def save_checkpoint(directory, state: dict[str, Any]) -> Path:
    """Write ``state`` (tensors, dicts, lists, numbers) atomically; returns the path."""
    return write_atomic(checkpoint_path(directory), lambda handle: torch.save(state, handle))


def load_checkpoint(directory) -> dict[str, Any] | None:
    """The saved state, or None when there is no checkpoint."""
    path = checkpoint_path(directory)
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)
