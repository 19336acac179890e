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


MAX_SOURCE_BYTES = 16 * 2 ** 20      # a .crn file (or an imported one) is read up to this size


def read_source(path) -> str:
    """The UTF-8 text of a model file. Raises OSError (with a readable ``strerror``) for a
    file that is not a regular file or is larger than ``MAX_SOURCE_BYTES`` (``/dev/zero``,
    a FIFO, a huge data file imported by mistake), before reading it whole."""
    import os
    import stat
    from pathlib import Path

    path = Path(path)
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise OSError(0, "not a regular file (a device, a pipe or a folder)")
    if info.st_size > MAX_SOURCE_BYTES:
        raise OSError(0, f"{info.st_size / 2 ** 20:.0f} MiB, larger than the "
                         f"{MAX_SOURCE_BYTES // 2 ** 20} MiB a model file may have")
    with open(path, "rb") as handle:
        data = handle.read(MAX_SOURCE_BYTES + 1)
    if len(data) > MAX_SOURCE_BYTES:
        raise OSError(0, f"larger than the {MAX_SOURCE_BYTES // 2 ** 20} MiB a model file may have")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise not_utf8(path, data, err) from None


def not_utf8(path, data: bytes, err: UnicodeDecodeError) -> CRNError:
    """A positioned error for the first byte that is not UTF-8 (e.g. a Latin-1 'é')."""
    from ..errors import CRNSyntaxError

    before = data[:err.start]
    line = before.count(b"\n") + 1
    line_start = before.rfind(b"\n") + 1
    col = len(data[line_start:err.start].decode("utf-8", errors="replace")) + 1
    end = data.find(b"\n", err.start)
    text = data[line_start:end if end >= 0 else len(data)].decode("utf-8", errors="replace")
    return CRNSyntaxError(f"byte 0x{data[err.start]:02X} is not UTF-8", Loc(str(path), line, col, text),
                          hint="save the file as UTF-8 (it looks like Latin-1 or another 8-bit encoding)")
