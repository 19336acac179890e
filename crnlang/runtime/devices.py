"""Where a solve runs (``--device cpu|cuda|auto``) and how often it reads back from there.

``resolve_device("auto")`` is the GPU when torch sees one, else the CPU; under torchrun a
CUDA run takes the GPU of its local rank (LOCAL_RANK). ``HostReads`` counts the host reads
of tensor values (``float()``, ``bool()``, ``.item()``, ``.tolist()`` ...) made inside it,
by source line: each is a synchronisation with a GPU, and the count is the same on the CPU,
so it can be measured (benchmarks/bench_device.py) and tested without one.
"""
from __future__ import annotations

import collections
import os
import traceback

import torch
from torch.overrides import TorchFunctionMode

from ..errors import CRNSolverError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name) -> torch.device:
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' (or a torch.device) -> torch.device; a GPU that is
    not there is a CRNSolverError with the fix."""
    if isinstance(name, torch.device):
        name = str(name)
    text = "auto" if name is None else str(name).strip().lower()
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise CRNSolverError(f"device {name}: this torch ({torch.__version__}) sees no CUDA GPU",
                                 hint="use --device cpu (or auto, which falls back to the CPU)")
        if text == "cuda":
            index = int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count()
            return torch.device("cuda", index)
        try:
            device = torch.device(text)
        except RuntimeError:
            device = None
        if device is None or device.index is None or device.index >= torch.cuda.device_count():
            raise CRNSolverError(f"device {name}: no such GPU (this machine has "
                                 f"{torch.cuda.device_count()})", hint="use cuda, cuda:0, ... or auto")
        return device
    raise CRNSolverError(f"unknown device '{name}'", hint="use cpu, cuda, cuda:N or auto")


HOST_READS = frozenset({"__bool__", "__float__", "__int__", "__index__", "item", "tolist", "numpy"})


class HostReads(TorchFunctionMode):
    """Counts the host reads of tensor values made inside ``with HostReads() as reads:``,
    by the crnlang source line that made them (``reads.sites``: Counter of 'file:line
    kind'; ``reads.total``)."""

    def __init__(self):
        super().__init__()
        self.sites: collections.Counter = collections.Counter()

    @property
    def total(self) -> int:
        return sum(self.sites.values())

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in HOST_READS:
            ours = [f for f in traceback.extract_stack()[:-1] if f"{os.sep}crnlang{os.sep}" in f.filename]
            where = (f"{ours[-1].filename.rsplit(os.sep + 'crnlang' + os.sep, 1)[-1]}:{ours[-1].lineno}"
                     if ours else "elsewhere")
            self.sites[f"{where} {name}"] += 1
        return func(*args, **(kwargs or {}))
