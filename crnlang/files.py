"""Atomic file writes, written once: every file crnlang writes (results, plots, checkpoints,
generated kernels) goes to a temporary file beside its target and is renamed over it, so a
kill mid-write leaves the previous file whole. Files get the usual 0666 & ~umask mode."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path, write: Callable[[BinaryIO], None]) -> Path:
    """Write ``path`` through ``write(binary_file)``, atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path``, atomically; returns the path."""
    return write_atomic(path, lambda handle: handle.write(text.encode("utf-8")))
