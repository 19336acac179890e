"""Write a ``Model`` (the IR) back out as .crn text.

``write_crn(model)`` gives text that ``crnlang.parse`` turns back into an equal model
(same params, species and bounds, reactions with their labels, init, observables,
annotations). Lattice models are written in lattice form (``lattice``, one template
reaction per site-local reaction, ``diffuse``) when the per-site reactions are copies of one
template; otherwise their sites are written as plain species renamed ``X[1,2]`` -> ``X_1_2``
(a comment in the output says so) and the round trip holds up to that renaming.

Expressions are printed with the fewest parentheses the grammar (grammar/crn.lark) needs:
loosest first ``or`` < ``and`` < ``not`` < comparisons < ``+ -`` < ``* /`` < unary ``-``
< ``^`` (right-associative; its left operand is an atom) < atoms.
"""
from __future__ import annotations

import keyword
import math
import re
from dataclasses import fields
from typing import Iterable

from ..errors import CRNError
from ..model.ir import (Binary, Call, Compare, Const, Expr, Logic, Model, ParamRef, Reaction,
                        Settings, SpeciesRef, TimeRef, Unary)
from ..model.semantics import evaluate

# precedence levels, loosest first (see the module docstring)
_OR, _AND, _NOT, _CMP, _SUM, _PROD, _UNARY, _POW, _ATOM = range(1, 10)
_BINARY_PREC = {"+": _SUM, "-": _SUM, "*": _PROD, "/": _PROD, "^": _POW}

_SITE_NAME = re.compile(r"^(\w+)\[([\d,]+)\]$")

# words the front end refuses as names (statement keywords, constants, builtins, reductions)
RESERVED = frozenset("""
model kinetics param func species use import module lattice diffuse init observe absorb and or
not in t pi true false exp log sqrt sin cos abs min max sum mean all any
""".split()) | frozenset(keyword.kwlist)


def is_identifier(name: str) -> bool:
    """True when ``name`` can name something in a .crn file as it is."""
    return (re.fullmatch(r"[^\W\d]\w*", name) is not None and name not in RESERVED
            and not name.startswith("__"))


def safe_identifier(name: str, taken: set[str] | None = None) -> str:
    """A name the front end accepts, close to ``name``: other characters become ``_``, a
    leading digit or ``__`` gets an ``n`` in front, a reserved word a ``_`` behind; then a
    ``_2``, ``_3`` ... suffix until it is not in ``taken`` (which it is added to)."""
    taken = set() if taken is None else taken
    safe = re.sub(r"[^A-Za-z0-9_]", "_", name) or "x"
    if safe[0].isdigit() or safe.startswith("__"):
        safe = "n" + safe
    if safe in RESERVED:
        safe += "_"
    out, n = safe, 2
    while out in taken:
        out, n = f"{safe}_{n}", n + 1
    taken.add(out)
    return out


# ---------------------------------------------------------------- numbers and names
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


def site_safe_name(name: str) -> str:
    """``X[1,2]`` -> ``X_1_2``; other names unchanged."""
    m = _SITE_NAME.match(name)
    if not m:
        return name
    return m.group(1) + "_" + m.group(2).replace(",", "_")


def _site_text(name: str) -> str:
    """``X[1,2]`` -> ``X[1, 2]`` (index syntax of lattice expressions)."""
    m = _SITE_NAME.match(name)
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
def _side(terms: tuple[tuple[str, int], ...], rename) -> str:
    if not terms:
        return "0"
    return " + ".join(name if s == 1 else f"{s} {name}" for name, s in ((rename(n), s) for n, s in terms))


def format_reaction(reaction: Reaction, rename=lambda n: n, label: str | None = None) -> str:
    """``label: A + 2 B -> C @ rate`` (or ``=> expr`` when not mass action)."""
    label = reaction.label if label is None else label
    arrow, at = ("->", "@") if reaction.mass_action else ("=>", "@")
    head = f"{label}: " if label else ""
    return (f"{head}{_side(reaction.reactants, rename)} {arrow} {_side(reaction.products, rename)}"
            f" {at} {format_expr(reaction.rate, rename)}")


def _species_decl(name: str, lo: int, hi: int | None) -> tuple[str, str | None]:
    """(declaration text, comment or None)."""
    if hi is None:
        if lo:
            return name, f"lower bound {lo} of '{name}' cannot be written without an upper bound"
        return name, None
    if lo:
        return f"{name} in {lo}..{hi}", None
    return f"{name} <= {hi}", None


def format_settings(settings: Settings) -> list[str]:
    """Annotation lines for the settings that differ from the defaults."""
    default = Settings()
    changed = {f.name: getattr(settings, f.name) for f in fields(Settings)
               if getattr(settings, f.name) != getattr(default, f.name)}

    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return format_number(v)
        return str(v)

    lines = []
    solve_keys = ["method", "dt", "t_end", "batch", "lr", "lam", "integrator", "dtype", "seed",
                  "save_every", "epochs"]
    solve = [f"{'lambda' if k == 'lam' else k} = {value(changed[k])}" for k in solve_keys
             if k in changed and changed[k] is not None]
    if solve:
        lines.append(f"@solve({', '.join(solve)})")
    network = [f"{k} = {value(changed[k])}" for k in ("hidden", "layers") if k in changed]
    if "network" in changed or network:
        lines.append(f"@network({', '.join([settings.network] + network)})")
    sampling = [f"{k} = {value(changed[k])}" for k in ("alpha", "kernel", "uniform", "reweight")
                if k in changed]
    if "sampling" in changed or sampling:
        lines.append(f"@sampling({', '.join([settings.sampling] + sampling)})")
    for name in settings.rare:
        lines.append(f"@rare({name})")
    return lines


def _param_lines(model: Model) -> list[str]:
    lines = []
    known: dict[str, float] = {}
    for p in model.params:
        text = format_expr(p.expr)
        try:
            same = float(evaluate(p.expr, known)) == float(p.value)
        except Exception:  # noqa: BLE001 - an expression we cannot check: write the value
            same = False
        if not same:
            text = format_number(p.value)
        lines.append(f"param {p.name} = {text}")
        known[p.name] = p.value
    return lines


def _init_text(target: str, dist) -> str:
    if dist.kind == "fixed":
        return f"init {target} = {format_number(dist.args[0])}"
    return f"init {target} ~ {dist.kind}({', '.join(format_number(a) for a in dist.args)})"


def write_crn(model: Model, comments: Iterable[str] = ()) -> str:
    """``model`` as .crn text; ``comments`` go first, one ``# `` line each."""
    lines = [f"# {c}".rstrip() for c in _comment_lines(comments)]
    if is_identifier(model.name):
        lines.append(f"model {model.name}")
    else:
        lines.append(f"# model name {model.name!r} not written (a reserved word or not an identifier)")
    lines.append(f"kinetics {model.kinetics}")
    lines += _param_lines(model)
    body = None
    if model.lattice is not None:
        from .lattice_form import lattice_body

        body = lattice_body(model)
    if body is None:
        body = _flat_body(model)
    lines += body
    lines += format_settings(model.settings)
    return "\n".join(lines) + "\n"


def _comment_lines(comments: Iterable[str]) -> list[str]:
    out = []
    for c in comments:
        out += str(c).replace("\r", "").split("\n")
    return out


def _flat_body(model: Model) -> list[str]:
    """Species, reactions, init and observables with every species as a plain name."""
    lines = []
    lattice = model.lattice is not None
    rename = site_safe_name if lattice else (lambda n: n)
    if lattice:
        lines.append("# lattice sites written as plain species: X[1,2] is X_1_2 here")
    for s in model.species:
        decl, note = _species_decl(rename(s.name), s.lo, s.hi)
        lines.append(f"species {decl}" + (f"    # {note}" if note else ""))
    for r in model.reactions:
        lines.append(format_reaction(r, rename, _label(r.label)))
    for name, dist in model.init.items():
        lines.append(_init_text(rename(name), dist))
    for ob in model.observables:
        lines.append(f"observe {ob.name} = {format_expr(ob.expr, rename)}")
    absorbing = [ob.name for ob in model.observables if ob.absorbing]
    if absorbing:
        lines.append(f"absorb {', '.join(absorbing)}")
    return lines


def _label(label: str) -> str:
    return re.sub(r"\W", "_", label)
