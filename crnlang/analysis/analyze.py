"""``analyze(model) -> Analysis``: stoichiometry, conservation laws, bounds, elimination,
graph facts and state-space sizes, in that order."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from ..errors import CRNAnalysisError
from ..model.ir import Model
from .graph import graph_facts
from .laws import conservation_basis
from .report import law_text
from .states import count_reachable_states, init_support, log10_box, total_range
from .types import Analysis, ConservationLaw, Elimination


def stoichiometric_matrix(model: Model) -> np.ndarray:
    """Net change of each species in each reaction: (n_species, n_reactions) int64."""
    index = {name: i for i, name in enumerate(model.species_names)}
    N = np.zeros((len(model.species), len(model.reactions)), dtype=np.int64)
    for k, r in enumerate(model.reactions):
        for name, s in r.reactants:
            N[index[name], k] -= s
        for name, s in r.products:
            N[index[name], k] += s
    return N


def analyze(model: Model, count_reachable: bool = True) -> Analysis:
    """All the facts a backend needs about ``model`` (see ``Analysis``).

    ``count_reachable=False`` skips the breadth-first count of reachable states (up to a few
    seconds for boxes near 10^7); ``reachable_states`` is then None."""
    names = model.species_names
    N = stoichiometric_matrix(model)
    vectors, rank = conservation_basis(N)
    laws = tuple(_law(model, names, vec) for vec in vectors)
    bounds = derive_bounds(model, laws)
    initial = {n: init_support(model.init_of(n))[0] for n in names}
    eliminations = choose_eliminations(names, laws, bounds, initial)
    eliminated = {e.species for e in eliminations}
    reduced = tuple(n for n in names if n not in eliminated)
    return Analysis(
        model=model,
        species=names,
        stoichiometry=N,
        rank=rank,
        conservation_laws=laws,
        eliminations=eliminations,
        reduced_species=reduced,
        bounds=bounds,
        log10_box=log10_box(names, bounds),
        log10_reduced=log10_box(reduced, bounds),
        reachable_states=(count_reachable_states(model, N, bounds, reduced, eliminations)
                          if count_reachable else None),
        graph=graph_facts(model, rank),
    )


# ------------------------------------------------------------------ laws and totals
def _law(model: Model, names: Sequence[str], vec: Sequence[int]) -> ConservationLaw:
    coefficients = {names[i]: int(c) for i, c in enumerate(vec) if c}
    low, high = total_range(model, coefficients)
    return ConservationLaw(coefficients, low if low == high else None)


# ------------------------------------------------------------------ bounds
def derive_bounds(model: Model, laws: Sequence[ConservationLaw]) -> dict[str, tuple[int, int | None]]:
    """Every species -> (lo, hi): hi is the tightest of the declared bound and floor(T / c)
    over the semi-positive laws containing it, T the law's largest possible total (its
    total when fixed); None when neither bounds it."""
    bounds: dict[str, tuple[int, int | None]] = {}
    for sp in model.species:
        hi = sp.hi
        for law in laws:
            c = law.coefficients.get(sp.name, 0)
            if c <= 0 or not law.semi_positive:
                continue
            top = law.total if law.total is not None else total_range(model, law.coefficients)[1]
            if top is not None and (hi is None or top // c < hi):
                hi = top // c
        if hi is not None and hi < sp.lo:
            raise CRNAnalysisError(
                f"species '{sp.name}' has lower bound {sp.lo} but can never exceed {hi}",
                loc=sp.loc, hint=f"lower the bound of '{sp.name}' or change its initial value")
        bounds[sp.name] = (sp.lo, hi)
    return bounds


# ------------------------------------------------------------------ elimination
def choose_eliminations(names: Sequence[str], laws: Sequence[ConservationLaw],
                        bounds: Mapping[str, tuple[int, int | None]],
                        initial: Mapping[str, int] | None = None) -> tuple[Elimination, ...]:
    """One species per law with a fixed total, so that no eliminated species appears in
    another elimination's law. Choice per law, in order: coefficient +-1 (the rebuild is then
    an integer), then the largest bound (unbounded first), then a species no other law
    contains (the laws stay as reported), then the largest initial count, then model order.
    When the chosen species is also in another fixed law, that law is replaced by an integer
    combination without it.

    The initial count matters to the neural solver: the species left are its variables. In
    early life (S0 + S1 + S2 = 100 from [2, 49, 49]) keeping S0 and S2 leaves a conditional
    P(S2 | S0) that barely depends on S0; keeping S1 and S2 would ask P(S2 | S1) to follow
    S2 = 100 - S0 - S1 unit by unit (Hellinger to FSP 0.008 against 0.25 at t = 0.05)."""
    initial = initial or {}
    order = {n: i for i, n in enumerate(names)}
    fixed = [law for law in laws if law.total is not None]
    rows = [(dict(law.coefficients), int(law.total)) for law in fixed]
    laws_with: dict[str, set[int]] = {}                 # species -> rows that contain it
    for k, (coeffs, _) in enumerate(rows):
        for n in coeffs:
            laws_with.setdefault(n, set()).add(k)
    chosen: list[tuple[int, str, str]] = []
    for i in range(len(rows)):
        coeffs, _ = rows[i]

        def key(n: str) -> tuple:
            hi = bounds[n][1]
            shared = len(laws_with[n]) > 1
            return (abs(coeffs[n]) != 1, -(math.inf if hi is None else hi), shared,
                    -initial.get(n, 0), order[n])

        candidates = list(coeffs)                       # earlier choices are cancelled out
        best = min(candidates, key=key)
        chosen.append((i, best, _reason(best, coeffs, candidates, key)))
        for k in sorted(laws_with[best] - {i}):
            old = rows[k][0]
            rows[k] = _cancel(rows[k], rows[i], best, order)
            for n in old:
                laws_with[n].discard(k)
            for n in rows[k][0]:
                laws_with.setdefault(n, set()).add(k)
    out = []
    for i, name, why in sorted(chosen, key=lambda c: order[c[1]]):
        dropped = [n for n in fixed[i].coefficients if n not in rows[i][0]]
        if dropped:
            why += (f"; the law {law_text(fixed[i].coefficients, fixed[i].total)} is used "
                    f"without {', '.join(dropped)} (eliminated by another law)")
        out.append(Elimination(species=name, law=ConservationLaw(rows[i][0], rows[i][1]), reason=why))
    return tuple(out)


def _cancel(row: tuple[dict[str, int], int], pivot: tuple[dict[str, int], int],
            name: str, order: Mapping[str, int]) -> tuple[dict[str, int], int]:
    """row with ``name`` cancelled by a multiple of ``pivot``: primitive, mostly positive,
    species in model order."""
    (c, t), (pc, pt) = row, pivot
    a, b = pc[name], c[name]
    coeffs = {k: a * c.get(k, 0) - b * pc.get(k, 0) for k in sorted({**c, **pc}, key=order.get)}
    coeffs = {k: v for k, v in coeffs.items() if v}
    total = a * t - b * pt
    g = math.gcd(*coeffs.values())
    if sum(coeffs.values()) < 0:
        g = -g
    return {k: v // g for k, v in coeffs.items()}, total // g


def _reason(best: str, coeffs: Mapping[str, int], candidates: Sequence[str], key) -> str:
    """Why ``best`` was chosen among ``candidates`` (ranked by ``key``), in words."""
    mine = key(best)
    unit = "so the rebuild is an integer" if not mine[0] else "no species in the law has +-1"
    words = f"coefficient {coeffs[best]}, {unit}"
    rivals = [n for n in candidates if n != best and key(n)[0] == mine[0]]
    if not rivals:
        return words + ("" if len(candidates) > 1 else "; the only species left in the law")
    bound = "unbounded" if mine[1] == -math.inf else f"bound {int(-mine[1])}"
    tied = [n for n in rivals if key(n)[1] == mine[1]]
    if not tied:
        return f"{words}; largest bound in the law ({bound})"
    words += f"; {bound}, tied with {', '.join(tied)}"
    if any(key(n)[2] != mine[2] for n in tied):
        return words + "; in no other law"
    tied = [n for n in tied if key(n)[2] == mine[2]]
    if any(key(n)[3] != mine[3] for n in tied):
        return words + f"; largest initial count ({int(-mine[3])})"
    return words + "; first in model order"
