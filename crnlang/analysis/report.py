"""The readable report of ``crnlang analyze FILE``, and conservation laws in words.

It reads an ``Analysis`` and its ``ConservationLaw``s by their fields and imports neither
(``types.Analysis.report`` and ``analyze`` import this module).
"""
from __future__ import annotations

from typing import Mapping

from .states import total_range

MAX_LISTED = 40          # longer lists (lattices) are cut with "... and N more"


def law_text(law, total: int | None = None) -> str:
    """"Gx + Gx_off = 1", "P + 2 P2 = 100", "A - B = 0"; "= random" when the total is.

    ``law``: a ``ConservationLaw`` (its own total is used), or coefficients {name: c} with
    ``total``."""
    if isinstance(law, Mapping):
        coefficients = law
    else:
        coefficients, total = law.coefficients, law.total
    lhs = linear_text(coefficients)
    return f"{lhs} = {'random' if total is None else total}"


def linear_text(coefficients: Mapping[str, int], constant: int = 0) -> str:
    """"P + 2 P2 - Q" for {P: 1, P2: 2, Q: -1}; with ``constant`` 5: "5 + P + 2 P2 - Q"."""
    terms = [(constant, "")] if constant or not any(coefficients.values()) else []
    terms += [(c, name) for name, c in coefficients.items() if c]
    out = ""
    for c, name in terms:
        term = str(abs(c)) if not name else (name if abs(c) == 1 else f"{abs(c)} {name}")
        if not out:
            out = f"-{term}" if c < 0 else term
        else:
            out += f" - {term}" if c < 0 else f" + {term}"
    return out


def _states(log10: float | None) -> str:
    if log10 is None:
        return "unbounded"
    if log10 < 15:
        return f"{round(10 ** log10):,} states (10^{log10:.2f})"
    return f"10^{log10:.2f} states"


def _reachable(a) -> str:
    if a.reachable_states is not None:
        return f"{a.reachable_states:,} states"
    if a.log10_reduced is None:
        return "not counted (unbounded species)"
    if a.log10_reduced > 7:
        return "not counted (reduced box above 10^7 states)"
    return "not counted"


def _cut(items: list[str]) -> list[str]:
    if len(items) <= MAX_LISTED:
        return items
    return items[:MAX_LISTED] + [f"... and {len(items) - MAX_LISTED} more"]


def report(a) -> str:
    """Species with bounds, laws, eliminations with reasons, state-space sizes, graph facts
    of the ``Analysis`` ``a``."""
    m = a.model
    eliminated = {e.species: e for e in a.eliminations}
    lines = [f"model {m.name}: {len(a.species)} species, {len(m.reactions)} reactions, "
             f"stoichiometric rank {a.rank}", "", "species (bounds)"]
    declared = {s.name: s.hi for s in m.species}
    width = max((len(n) for n in a.species), default=0)
    rows = []
    span_width = max((len(f"{lo}..{hi}") for lo, hi in a.bounds.values()), default=0)
    for name in a.species:
        lo, hi = a.bounds[name]
        span = f"{lo}..{hi}" if hi is not None else f"{lo}..(unbounded)"
        notes = []
        if hi is not None and declared[name] != hi:
            notes.append("from a conservation law")
        if name in eliminated:
            notes.append("eliminated")
        note = f"  [{', '.join(notes)}]" if notes else ""
        rows.append(f"  {name:<{width}}  {span:<{span_width}}{note}".rstrip())
    lines += _cut(rows)

    lines += ["", f"conservation laws ({len(a.conservation_laws)})"]
    if not a.conservation_laws:
        lines.append("  none")
    laws = []
    for law in a.conservation_laws:
        note = "" if law.semi_positive else "   [mixed signs: gives no bound]"
        if law.total is None:
            low, high = total_range(m, law.coefficients)
            span = (f"{low}..{high}" if low is not None and high is not None
                    else f">= {low}" if low is not None else f"<= {high}" if high is not None
                    else "unbounded")
            note += f"   [the initial state makes the total random ({span}): not eliminated]"
        laws.append(f"  {law_text(law)}{note}")
    lines += _cut(laws)

    lines += ["", f"eliminated ({len(a.eliminations)})"]
    if not a.eliminations:
        lines.append("  none")
    for k, e in enumerate(a.eliminations):
        if k == MAX_LISTED:
            lines.append(f"  ... and {len(a.eliminations) - MAX_LISTED} more")
            break
        total, others, own = e.rebuild_terms()
        expr = linear_text({n: -v for n, v in others.items()}, total)
        if own != 1:
            expr = f"({expr}) / {own}"
        lines.append(f"  {e.species} = {expr}")
        lines.append(f"      from {law_text(e.law)}: {e.reason}")

    lines += ["", "state space",
              f"  box, all species:    {_states(a.log10_box)}",
              f"  box, reduced:        {_states(a.log10_reduced)}",
              f"  reachable:           {_reachable(a)}"]
    unbounded = a.unbounded()
    if unbounded:
        lines.append(f"  unbounded: {', '.join(unbounded)} (FSP and the neural solvers need "
                     f"a bound, e.g. 'species {unbounded[0]} <= 100')")

    g = a.graph
    comps = g.get("components", [])
    lines += ["", "network",
              f"  independent subnetworks: {len(comps)}"]
    if len(comps) > 1:
        lines += _cut([f"    {{{', '.join(c)}}}" for c in comps])
    lines.append(f"  complexes: {g.get('n_complexes')}, linkage classes: {g.get('n_linkage_classes')}, "
                 f"deficiency: {g.get('deficiency')}, weakly reversible: "
                 f"{'yes' if g.get('weakly_reversible') else 'no'}")
    return "\n".join(lines)
