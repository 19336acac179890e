"""Errors are values with positions until the CLI prints them.

Every problem a user can cause is a ``CRNError`` (or subclass) carrying a ``Loc``
(file, line, column), the offending source line and a hint that says what would fix it.
``str(err)`` is the full multi-line diagnostic::

    model.crn:7:12: error: unknown name 'Pz'
        Px -> Pz @ 1
                ^
    hint: did you mean 'Px'?
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Loc:
    """A position in a source file: 1-based line and column."""

    file: str = "<string>"
    line: int = 0
    col: int = 0
    source_line: str | None = None  # the text of that line, for the caret display

    def __str__(self) -> str:
        if self.line <= 0:           # a whole-file problem (cannot read it, ...)
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


class CRNError(Exception):
    """Base of every error crnlang raises on bad user input."""

    kind = "error"

    def __init__(self, message: str, loc: Loc | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.hint = hint

    def format(self) -> str:
        head = f"{self.loc}: " if self.loc else ""
        lines = [f"{head}{self.kind}: {self.message}"]
        if self.loc and self.loc.source_line is not None and self.loc.line > 0:
            text, caret = echo_line(self.loc.source_line.rstrip("\n"), self.loc.col)
            lines.append(f"    {text}")
            lines.append("    " + " " * caret + "^")
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


ECHO_WIDTH = 100          # characters of a source line shown under a message


def echo_line(text: str, col: int, width: int = ECHO_WIDTH) -> tuple[str, int]:
    """A source line as shown under a message, and the caret's offset in it: invisible
    characters (BOM, NUL, other controls, a tab shown as one space) by code point, e.g.
    ``<U+FEFF>``, and a long line cut to ``width`` characters around column ``col``."""
    shown: list[str] = []
    caret = 0
    for i, char in enumerate(text):
        if i == col - 1:
            caret = sum(len(piece) for piece in shown)
        if char == "\t":
            shown.append(" ")
        elif char.isprintable():
            shown.append(char)
        else:
            shown.append(f"<U+{ord(char):04X}>")
    if col - 1 >= len(text):
        caret = sum(len(piece) for piece in shown)
    line = "".join(shown)
    if len(line) <= width:
        return line, caret
    start = min(max(caret - width // 2, 0), len(line) - width)
    cut = line[start:start + width]
    prefix = "..." if start > 0 else ""
    suffix = "..." if start + width < len(line) else ""
    return prefix + cut + suffix, caret - start + len(prefix)


class CRNSyntaxError(CRNError):
    """The text does not match the grammar."""


class CRNNameError(CRNError):
    """An unknown, duplicate or reserved name."""


class CRNSemanticError(CRNError):
    """Well-formed text that means something impossible (bad bounds, negative rate, ...)."""


class CRNImportError(CRNError):
    """A `use`/`import` that cannot be resolved, or an import cycle."""


class CRNAnalysisError(CRNError):
    """A model the requested analysis or backend cannot handle (e.g. an unbounded species for FSP)."""


class CRNSolverError(CRNError):
    """A solver failed in a way the user can fix (NaN, too many states, bad settings)."""


class CRNMultipleErrors(CRNError):
    """Several independent problems found in one pass; ``errors`` holds them in source order."""

    def __init__(self, errors: Iterable[CRNError]):
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(first.message, first.loc, first.hint)

    def format(self) -> str:
        return "\n".join(e.format() for e in self.errors)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A hint like "did you mean 'Px'?" for the closest candidate, or None."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
