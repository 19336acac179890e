"""How the parts of a model are spelled in .crn text, for both writers (``crn_writer`` and
``lattice_form``): numbers, expressions, reaction statements, species declarations, init lines.

Expressions are printed with the fewest parentheses the grammar (grammar/crn.lark) needs:
loosest first ``or`` < ``and`` < ``not`` < comparisons < ``+ -`` < ``* /`` < unary ``-``
< ``^`` (right-associative; its left operand is an atom) < atoms.
"""
from __future__ import annotations

import math
import re

from ..errors import CRNError
from ..model.ir import (Binary, Call, Compare, Const, Expr, Logic, ParamRef, Reaction, SpeciesRef,
                        TimeRef, Unary)

# precedence levels, loosest first (see the module docstring)
_OR, _AND, _NOT, _CMP, _SUM, _PROD, _UNARY, _POW, _ATOM = range(1, 10)
_BINARY_PREC = {"+": _SUM, "-": _SUM, "*": _PROD, "/": _PROD, "^": _POW}

# a lattice site's species or reaction name: X[1,2]
SITE_NAME = re.compile(r"^(\w+)\[([\d,]+)\]$")


# ---------------------------------------------------------------- numbers and site names
def format_number(value: float) -> str:
    """Shortest text that reads back as the same float: ``5``, ``0.1``, ``1e-05``.

    Negative numbers keep their sign here; the expression printer treats them as a unary minus.
    """
    if isinstance(value, bool):
        value = int(value)
    v = float(value)
    if math.isnan(v) or math.isinf(v):
        raise CRNError(f"cannot write the number {value!r} in a .crn file")
    if v.is_integer() and abs(v) < 1e16:
        return str(int(v))
    text = repr(v)
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def _site_text(name: str) -> str:
    """``X[1,2]`` -> ``X[1, 2]`` (index syntax of lattice expressions)."""
    m = SITE_NAME.match(name)
    if not m:
        return name
    return f"{m.group(1)}[{', '.join(m.group(2).split(','))}]"


# ---------------------------------------------------------------- expressions
def _prec(expr: Expr) -> int:
    if isinstance(expr, Const):
        return _UNARY if expr.value < 0 else _ATOM
    if isinstance(expr, Unary):
        return _NOT if expr.op == "not" else _UNARY
    if isinstance(expr, Binary):
        return _BINARY_PREC[expr.op]
    if isinstance(expr, Compare):
        return _CMP
    if isinstance(expr, Logic):
        return _OR if expr.op == "or" else _AND
    return _ATOM


def format_expr(expr: Expr, rename=None) -> str:
    """``expr`` as .crn source text. ``rename(name) -> text`` maps species names (default:
    site names print as ``X[1, 2]``)."""
    rename = rename or _site_text

    def sub(child: Expr, need: int) -> str:
        text = go(child)
        return f"({text})" if _prec(child) < need else text

    def go(e: Expr) -> str:
        if isinstance(e, Const):
            return format_number(e.value)
        if isinstance(e, ParamRef):
            return e.name
        if isinstance(e, SpeciesRef):
            return rename(e.name)
        if isinstance(e, TimeRef):
            return "t"
        if isinstance(e, Unary):
            if e.op == "not":
                return "not " + sub(e.arg, _NOT)
            return "-" + sub(e.arg, _UNARY + 1 if _is_negative(e.arg) else _UNARY)
        if isinstance(e, Binary):
            p = _BINARY_PREC[e.op]
            if e.op == "^":
                return f"{sub(e.left, _ATOM)} ^ {sub(e.right, _UNARY)}"
            return f"{sub(e.left, p)} {e.op} {sub(e.right, p + 1)}"
        if isinstance(e, Compare):
            return f"{sub(e.left, _SUM)} {e.op} {sub(e.right, _SUM)}"
        if isinstance(e, Logic):
            p = _prec(e)
            return f" {e.op} ".join(sub(a, p + 1) for a in e.args)
        if isinstance(e, Call):
            return f"{e.func}({', '.join(go(a) for a in e.args)})"
        raise TypeError(f"not an expression node: {e!r}")

    return go(expr)


def _is_negative(expr: Expr) -> bool:
    """A node that prints with a leading minus (so ``- -x`` becomes ``-(-x)``)."""
    return (isinstance(expr, Unary) and expr.op == "-") or (isinstance(expr, Const) and expr.value < 0)


# ---------------------------------------------------------------- statements
def side_text(terms: tuple[tuple[str, int], ...], rename) -> str:
    """``A + 2 B`` (``0`` for the empty side), names through ``rename``."""
    if not terms:
        return "0"
    return " + ".join(name if s == 1 else f"{s} {name}" for name, s in ((rename(n), s) for n, s in terms))


def format_reaction(reaction: Reaction, rename=lambda n: n, label: str | None = None) -> str:
    """``label: A + 2 B -> C @ rate`` (or ``=> expr`` when not mass action)."""
    label = reaction.label if label is None else label
    arrow, at = ("->", "@") if reaction.mass_action else ("=>", "@")
    head = f"{label}: " if label else ""
    return (f"{head}{side_text(reaction.reactants, rename)} {arrow} {side_text(reaction.products, rename)}"
            f" {at} {format_expr(reaction.rate, rename)}")


def species_line(name: str, lo: int, hi: int | None) -> str:
    """``species X <= 10`` / ``species X in 2..10``; a comment says what cannot be written."""
    decl, note = _species_decl(name, lo, hi)
    return f"species {decl}" + (f"    # {note}" if note else "")


def _species_decl(name: str, lo: int, hi: int | None) -> tuple[str, str | None]:
    """(declaration text, comment or None)."""
    if hi is None:
        if lo:
            return name, f"lower bound {lo} of '{name}' cannot be written without an upper bound"
        return name, None
    if lo:
        return f"{name} in {lo}..{hi}", None
    return f"{name} <= {hi}", None


def init_text(target: str, dist) -> str:
    """``init X = 5`` / ``init X ~ poisson(3)``."""
    if dist.kind == "fixed":
        return f"init {target} = {format_number(dist.args[0])}"
    return f"init {target} ~ {dist.kind}({', '.join(format_number(a) for a in dist.args)})"


def observable_lines(observables, expr_text) -> list[str]:
    """``observe name = ...`` per observable (``expr_text(expr) -> str``), then one ``absorb``
    line naming the absorbing ones."""
    lines = [f"observe {ob.name} = {expr_text(ob.expr)}" for ob in observables]
    absorbing = [ob.name for ob in observables if ob.absorbing]
    if absorbing:
        lines.append(f"absorb {', '.join(absorbing)}")
    return lines
