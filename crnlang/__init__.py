"""crnlang: a language and compiler for stochastic chemical reaction networks.

    import crnlang
    model = crnlang.parse(text)            # or crnlang.load("model.crn")
    crnlang.analyze(model)                 # conservation laws, bounds, state-space size
    crnlang.emit(model)                    # generated solver module, as Python source
    crnlang.compile(model)                 # that module, imported
    res = crnlang.solve(model, method="fsp", t_end=5.0)

Nothing here runs at import time beyond defining these names; the heavy modules
(torch, scipy) load on first use.
"""
from __future__ import annotations

from .errors import (CRNAnalysisError, CRNError, CRNImportError, CRNMultipleErrors,  # noqa: F401
                     CRNNameError, CRNSemanticError, CRNSolverError, CRNSyntaxError, Loc)

from .version import __version__  # noqa: F401

__all__ = ["parse", "load", "analyze", "emit", "compile", "solve", "CRNError", "__version__"]


def parse(text: str, filename: str = "<string>"):
    """Parse and lower .crn text to a ``Model``. Raises ``CRNError`` on any problem."""
    from .model.lower import parse as _parse

    return _parse(text, filename=filename)


def load(path):
    """Read, parse and lower a .crn file."""
    from .model.lower import load as _load

    return _load(path)


def analyze(model, count_reachable: bool = True):
    """Conservation laws, bounds, elimination and graph facts of a ``Model``: an ``Analysis``
    (with the reachable-state count unless ``count_reachable=False``)."""
    from .dispatch import analyze as _analyze

    return _analyze(model, count_reachable=count_reachable)


def emit(model, analysis=None) -> str:
    """The generated solver module of ``model``, as Python source (the same text in every
    folder and on every machine)."""
    from .dispatch import emit as _emit

    return _emit(model, analysis)


def compile(model, analysis=None, cache_dir=None):  # noqa: A001 - the public name is the contract
    """The generated solver module of ``model``, imported (cached by source hash and version
    under ``cache_dir``, default $CRNLANG_CACHE or ~/.cache/crnlang)."""
    from .dispatch import compile as _compile

    return _compile(model, analysis, cache_dir)


def solve(model, method: str | None = None, **settings):
    """Solve ``model`` (a Model, .crn text or a path) and return a ``Result``.

    ``settings`` are ``@solve``/``@network``/``@sampling`` keys (``t_end``, ``dt``, ``batch``,
    ``seed``, ``lambda`` ...) and override the file; ``params={"c1": 3.0}`` overrides parameters.
    ``device="cpu" | "cuda" | "cuda:N" | "auto"`` (default auto: the GPU when torch sees one,
    for the neural methods and tau-leaping; FSP and, under auto, SSA run on the CPU).
    """
    from .dispatch import solve as _solve

    return _solve(model, method=method, **settings)
