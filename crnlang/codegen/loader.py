"""Import a generated kernel's source as a module, through a cache folder given by the caller.

The file is ``cache_dir/kernel_<key>.py`` (key: sha256 of the crnlang version and the source),
so an unchanged model imports the cached file, and any change to the model, the generator or
the version gives a new file and a new module name.
"""
from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from ..files import write_text_atomic
from .. import version

_LOADED: dict[str, ModuleType] = {}


def source_key(source: str) -> str:
    """sha256 of the crnlang version and the generated source."""
    return hashlib.sha256(f"{version.__version__}\0{source}".encode("utf-8")).hexdigest()


def load_kernel(source: str, cache_dir) -> ModuleType:
    """The module whose text is ``source``, written under ``cache_dir`` and imported once."""
    key = source_key(source)
    if key in _LOADED:
        return _LOADED[key]
    name = f"crnlang_kernel_{key[:32]}"
    path = Path(cache_dir) / f"kernel_{key[:32]}.py"
    if not path.exists() or path.read_text(encoding="utf-8") != source:
        write_text_atomic(path, source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    _LOADED[key] = module
    return module
