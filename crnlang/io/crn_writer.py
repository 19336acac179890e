"""Write a ``Model`` (the IR) back out as .crn text.

``write_crn(model)`` gives text that ``crnlang.parse`` turns back into an equal model
(same params, species and bounds, reactions with their labels, init, observables,
annotations). Lattice models are written in lattice form (``lattice``, one template
reaction per site-local reaction, ``diffuse``) when the per-site reactions are copies of one
template; otherwise their sites are written as plain species renamed ``X[1,2]`` -> ``X_1_2``
(a comment in the output says so) and the round trip holds up to that renaming.

How numbers, expressions and statements are spelled is ``crn_format``'s (shared with
``lattice_form``); this module holds the names the front end accepts, the settings and param
lines, and the flat (per-site) body.
"""
from __future__ import annotations

import re
from dataclasses import fields
from typing import Iterable

from ..model.ir import Model, Settings
from ..model.semantics import evaluate
from ..vocabulary import RESERVED_WORDS
from .crn_format import (SITE_NAME, format_expr, format_number, format_reaction, init_text,
                         observable_lines, species_line)
from .lattice_form import lattice_body

def is_identifier(name: str) -> bool:
    """True when ``name`` can name something in a .crn file as it is."""
    return (re.fullmatch(r"[^\W\d]\w*", name) is not None and name not in RESERVED_WORDS
            and not name.startswith("__"))


def safe_identifier(name: str, taken: set[str] | None = None) -> str:
    """A name the front end accepts, close to ``name``: other characters become ``_``, a
    leading digit or ``__`` gets an ``n`` in front, a reserved word a ``_`` behind; then a
    ``_2``, ``_3`` ... suffix until it is not in ``taken`` (which it is added to)."""
    taken = set() if taken is None else taken
    safe = re.sub(r"[^A-Za-z0-9_]", "_", name) or "x"
    if safe[0].isdigit() or safe.startswith("__"):
        safe = "n" + safe
    if safe in RESERVED_WORDS:
        safe += "_"
    out, n = safe, 2
    while out in taken:
        out, n = f"{safe}_{n}", n + 1
    taken.add(out)
    return out


def site_safe_name(name: str) -> str:
    """``X[1,2]`` -> ``X_1_2``; other names unchanged."""
    m = SITE_NAME.match(name)
    if not m:
        return name
    return m.group(1) + "_" + m.group(2).replace(",", "_")


# ---------------------------------------------------------------- statements
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
                  "save_every", "epochs", "epsilon"]
    solve = [f"{'lambda' if k == 'lam' else k} = {value(changed[k])}" for k in solve_keys
             if k in changed and changed[k] is not None]
    if solve:
        lines.append(f"@solve({', '.join(solve)})")
    network = [f"{k} = {value(changed[k])}" for k in ("hidden", "layers", "head") if k in changed]
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
        lines.append(species_line(rename(s.name), s.lo, s.hi))
    for r in model.reactions:
        lines.append(format_reaction(r, rename, _label(r.label)))
    for name, dist in model.init.items():
        lines.append(init_text(rename(name), dist))
    lines += observable_lines(model.observables, lambda expr: format_expr(expr, rename))
    return lines


def _label(label: str) -> str:
    return re.sub(r"\W", "_", label)
