"""Where lowering's errors point: a file's text and positions in it, and the error builder.

``Source`` turns a syntax position (line, column) into a ``Loc`` with the line's text;
``error_at`` builds an error there. ``suggest`` and ``with_article`` word the messages.
Read by every stage of lowering (``lower``, ``lattice``, ``settings``).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from ..errors import CRNError, Loc, did_you_mean
from ..syntax import ast


@dataclass
class Source:
    """One file's text, for building ``Loc``s."""

    path: str
    text: str
    lines: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.lines = self.text.splitlines()

    def loc(self, pos: ast.Pos) -> Loc:
        line, col = pos
        text = self.lines[line - 1] if 1 <= line <= len(self.lines) else None
        return Loc(self.path, line, col, text)


def error_at(cls, message: str, src: Source, pos: ast.Pos, hint: str | None = None) -> CRNError:
    """An error of class ``cls`` located at ``pos`` in ``src``."""
    return cls(message, src.loc(pos), hint)


def suggest(name: str, candidates) -> str | None:
    """did-you-mean, a little more eager than ``did_you_mean`` for short names ('Pz' -> 'Px')."""
    candidates = list(candidates)
    hint = did_you_mean(name, candidates)
    if hint:
        return hint
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.5)
    if not close:
        close = [c for c in candidates if c.lower() == name.lower()][:1]
    return f"did you mean '{close[0]}'?" if close else None


def with_article(kind: str) -> str:
    """"an observable", "a species"."""
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"
