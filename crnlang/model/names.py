"""The rules for declared names: ``check_name`` and the words no declaration may take.

Used by both lowering stages (``imports`` for modules, ``lower`` for every declaration).
"""
from __future__ import annotations

import keyword
import unicodedata

from ..errors import CRNNameError
from ..syntax import ast
from . import ir
from .source import Source, error_at

REDUCTIONS = ("sum", "mean", "all", "any")
KEYWORDS = frozenset({"model", "kinetics", "param", "func", "species", "use", "import", "module",
                      "lattice", "diffuse", "init", "observe", "absorb", "and", "or", "not", "in"})
RESERVED = KEYWORDS | {"t", "pi", "true", "false"} | set(ir.BUILTIN_FUNCS) | set(REDUCTIONS)


def check_name(name: str, what: str, src: Source, pos: ast.Pos) -> None:
    """Declared names must be plain identifiers, not reserved words or builtins."""
    if name.startswith("__"):
        raise error_at(CRNNameError, f"the name '{name}' is reserved (names may not start with '__')",
                       src, pos, "rename it")
    if name in ir.BUILTIN_FUNCS or name in REDUCTIONS:
        raise error_at(CRNNameError, f"{what} '{name}' has the name of a builtin function", src, pos,
                       f"rename it, e.g. '{name}_'")
    if name in RESERVED or keyword.iskeyword(name):
        raise error_at(CRNNameError, f"'{name}' is a reserved word and cannot name a {what}", src, pos,
                       f"rename it, e.g. '{name}_'")
    if unicodedata.normalize("NFKC", name) != name:
        raise error_at(CRNNameError, f"the name '{name}' is not in normal form (NFKC)", src, pos,
                       f"write it as '{unicodedata.normalize('NFKC', name)}'")
    if not name.isidentifier():  # pragma: no cover - the grammar only produces identifiers
        raise error_at(CRNNameError, f"'{name}' is not a valid name", src, pos)
