"""Rebuild the lattice form of an expanded lattice model, for ``write_crn``.

Lowering expands ``lattice grid(R, C)``: every species into one species per site
(``X[r,c]``), every reaction statement into one copy per site (label ``L[r,c]``, and for
``<->`` the pair ``L_fwd[..]``, ``L_rev[..]`` site by site), every ``diffuse X @ D`` into one
hop ``X_hop_...`` per directed edge, and ``sum/mean/all/any`` into chains over the sites.
This module recognises exactly those shapes and writes the statements that produce them;
anything else (a reaction that differs between sites, say) makes ``lattice_body`` return
None and the writer falls back to plain per-site species.
"""
from __future__ import annotations

import re
from dataclasses import replace

from ..model.ir import (Binary, Call, Const, Expr, Logic, Model, Reaction, SpeciesRef, Unary,
                        Compare)
from ..model.lattice import directed_edges, hop_label, site_label, sites_of
from .crn_format import (SITE_NAME, format_expr, format_reaction, init_text, observable_lines,
                         side_text, species_line)


def _split(name: str):
    m = SITE_NAME.match(name)
    return (m.group(1), tuple(int(v) for v in m.group(2).split(","))) if m else (name, None)


def _map_species(expr: Expr, fn) -> Expr:
    """``expr`` with every SpeciesRef name replaced by ``fn(name)``."""
    if isinstance(expr, SpeciesRef):
        return SpeciesRef(fn(expr.name))
    if isinstance(expr, Unary):
        return replace(expr, arg=_map_species(expr.arg, fn))
    if isinstance(expr, (Binary, Compare)):
        return replace(expr, left=_map_species(expr.left, fn), right=_map_species(expr.right, fn))
    if isinstance(expr, (Logic, Call)):
        return replace(expr, args=tuple(_map_species(a, fn) for a in expr.args))
    return expr


def _unsite(expr: Expr, site) -> Expr:
    def fn(name):
        base, s = _split(name)
        return base if s == site else name
    return _map_species(expr, fn)


def _resite(expr: Expr, site) -> Expr:
    def fn(name):
        base, s = _split(name)
        return site_label(base, site) if s is None else name
    return _map_species(expr, fn)


def _template(reaction: Reaction, site) -> Reaction | None:
    """The site-free statement form of a per-site reaction copy at ``site``, or None."""
    base, s = _split(reaction.label)
    if s != site:
        return None
    sides = []
    for side in (reaction.reactants, reaction.products):
        out = []
        for name, k in side:
            b, ss = _split(name)
            if ss != site:
                return None
            out.append((b, k))
        sides.append(tuple(out))
    return Reaction(base, sides[0], sides[1], _unsite(reaction.rate, site), reaction.mass_action)


def _copy(template: Reaction, site) -> Reaction:
    return Reaction(site_label(template.label, site),
                    tuple((site_label(n, site), k) for n, k in template.reactants),
                    tuple((site_label(n, site), k) for n, k in template.products),
                    _resite(template.rate, site), template.mass_action)


def _reaction_blocks(model: Model, sites) -> list[tuple[str, object]] | None:
    """[("reaction", [templates...]) | ("diffuse", (base, rate))] covering model.reactions in order."""
    lattice = model.lattice
    edges = directed_edges(lattice)
    reactions = list(model.reactions)
    blocks = []
    i = 0
    while i < len(reactions):
        r = reactions[i]
        hop = re.match(r"^(\w+)_hop_[\d_]+$", r.label)
        if hop and _is_diffuse(reactions[i:i + len(edges)], hop.group(1), edges):
            blocks.append(("diffuse", (hop.group(1), r.rate)))
            i += len(edges)
            continue
        for k in (2, 1):
            chunk = reactions[i:i + k * len(sites)]
            if len(chunk) != k * len(sites):
                continue
            templates = [_template(chunk[f], sites[0]) for f in range(k)]
            if any(t is None for t in templates):
                continue
            if all(_copy(templates[f], s) == chunk[j * k + f] for j, s in enumerate(sites) for f in range(k)):
                blocks.append(("reaction", templates))
                i += k * len(sites)
                break
        else:
            return None
    return blocks


def _is_diffuse(chunk: list[Reaction], base: str, edges) -> bool:
    if len(chunk) != len(edges):
        return False
    rate = chunk[0].rate
    for r, (a, b) in zip(chunk, edges):
        want = Reaction(hop_label(base, a, b), ((site_label(base, a), 1),),
                        ((site_label(base, b), 1),), rate, True)
        if r != want:
            return False
    return True


def _fold_reductions(expr: Expr, sites) -> Expr:
    """Replace expanded ``sum/mean/all/any`` chains by Call("sum", (template,)) etc."""
    n = len(sites)

    def template_of(terms: list[Expr]) -> Expr | None:
        if len(terms) != n:
            return None
        t = _unsite(terms[0], sites[0])
        return t if all(_resite(t, s) == term for s, term in zip(sites, terms)) else None

    def sum_terms(e: Expr) -> list[Expr]:
        """Operands of a '+' tree of any shape (lowering builds balanced sums)."""
        if isinstance(e, Binary) and e.op == "+":
            return sum_terms(e.left) + sum_terms(e.right)
        return [e]

    def go(e: Expr) -> Expr:
        if n > 1 and isinstance(e, Logic):
            t = template_of(list(e.args))
            if t is not None:
                return Call("all" if e.op == "and" else "any", (t,))
        if n > 1 and isinstance(e, Binary) and e.op == "/" and e.right == Const(float(n)):
            t = template_of(sum_terms(e.left))
            if t is not None:
                return Call("mean", (t,))
        if n > 1 and isinstance(e, Binary) and e.op == "+":
            t = template_of(sum_terms(e))
            if t is not None:
                return Call("sum", (t,))
        if isinstance(e, Unary):
            return replace(e, arg=go(e.arg))
        if isinstance(e, (Binary, Compare)):
            return replace(e, left=go(e.left), right=go(e.right))
        if isinstance(e, (Logic, Call)):
            return replace(e, args=tuple(go(a) for a in e.args))
        return e

    return go(expr)


def lattice_body(model: Model) -> list[str] | None:
    """Lines for the lattice, species, reactions, init and observables in lattice form, or None
    when the expanded model is not a plain lattice copy of its statements."""
    lattice = model.lattice
    sites = sites_of(lattice)
    bases: list[tuple[str, int, int | None]] = []
    for i in range(0, len(model.species), len(sites)):
        group = model.species[i:i + len(sites)]
        first = group[0]
        if len(group) != len(sites) or any(
                s.name != site_label(first.base, site) or (s.lo, s.hi) != (first.lo, first.hi)
                for s, site in zip(group, sites)):
            return None
        bases.append((first.base, first.lo, first.hi))
    blocks = _reaction_blocks(model, sites)
    if blocks is None:
        return None
    shape = ", ".join(map(str, lattice.shape))
    lines = [f"lattice {lattice.kind}({shape}{', periodic' if lattice.periodic else ''})"]
    for base, lo, hi in bases:
        lines.append(species_line(base, lo, hi))
    for kind, what in blocks:
        if kind == "diffuse":
            base, rate = what
            lines.append(f"diffuse {base} @ {format_expr(rate)}")
            continue
        templates = what
        if len(templates) == 2 and _is_pair(*templates):
            fwd, rev = templates
            same = lambda n: n  # noqa: E731
            lines.append(f"{fwd.label[:-4]}: {side_text(fwd.reactants, same)} <-> {side_text(fwd.products, same)}"
                         f" @ {format_expr(fwd.rate)}, {format_expr(rev.rate)}")
        else:
            lines += [format_reaction(t) for t in templates]
    lines += _init_lines(model, bases, sites)
    lines += observable_lines(model.observables,
                              lambda expr: format_expr(_fold_reductions(expr, sites)))
    return lines


def _is_pair(fwd: Reaction, rev: Reaction) -> bool:
    return (fwd.label.endswith("_fwd") and rev.label == fwd.label[:-4] + "_rev"
            and fwd.mass_action and rev.mass_action
            and fwd.reactants == rev.products and fwd.products == rev.reactants)


def _init_lines(model: Model, bases, sites) -> list[str]:
    lines = []
    done = set()
    for base, _, _ in bases:
        names = [site_label(base, s) for s in sites]
        dists = [model.init.get(n) for n in names]
        if all(d is not None for d in dists) and all(d == dists[0] for d in dists):
            lines.append(init_text(base, dists[0]))
            done.update(names)
    for name, dist in model.init.items():
        if name not in done:
            lines.append(init_text(name.replace(",", ", "), dist))
    return lines
