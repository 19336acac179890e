"""The rules for declared names: ``check_name`` (the reserved words are ``vocabulary``'s).

Used by both lowering stages (``imports`` for modules, ``lower`` for every declaration).
"""
from __future__ import annotations

import unicodedata

from ..errors import CRNNameError
from ..syntax import ast
from ..vocabulary import BUILTIN_FUNCS, REDUCTIONS, RESERVED_WORDS
from .source import Source, error_at


MAX_NAME_LENGTH = 256


def check_name(name: str, what: str, src: Source, pos: ast.Pos) -> None:
    """Declared names must be plain identifiers, not reserved words or builtins."""
    if len(name) > MAX_NAME_LENGTH:
        raise error_at(CRNNameError, f"a {what} name of {len(name):,} characters "
                       f"('{name[:20]}...'): names are at most {MAX_NAME_LENGTH} characters",
                       src, pos, "use a shorter name")
    if name.startswith("__"):
        raise error_at(CRNNameError, f"the name '{name}' is reserved (names may not start with '__')",
                       src, pos, "rename it")
    if name in BUILTIN_FUNCS or name in REDUCTIONS:
        raise error_at(CRNNameError, f"{what} '{name}' has the name of a builtin function", src, pos,
                       f"rename it, e.g. '{name}_'")
    if name in RESERVED_WORDS:
        raise error_at(CRNNameError, f"'{name}' is a reserved word and cannot name a {what}", src, pos,
                       f"rename it, e.g. '{name}_'")
    if unicodedata.normalize("NFKC", name) != name:
        raise error_at(CRNNameError, f"the name '{name}' is not in normal form (NFKC)", src, pos,
                       f"write it as '{unicodedata.normalize('NFKC', name)}'")
    if not name.isidentifier():  # pragma: no cover - the grammar only produces identifiers
        raise error_at(CRNNameError, f"'{name}' is not a valid name", src, pos)
