"""State-space sizes: the box of the bounds, and the exact reachable set by breadth-first search.

The search works on whole frontiers with numpy: every state is a row of copy numbers (all
species, eliminated ones included, so their bounds are honoured too), and a visited bitmap is
indexed by the mixed-radix code of the reduced species (which determine the rest).
"""
from __future__ import annotations

import itertools
import math
from typing import Mapping, Sequence

import numpy as np

from ..model.ir import InitDist, Model, species_in, uses_time
from ..model.semantics import evaluate

MAX_REACHABLE_BOX = 10**7         # search only boxes at most this big (reduced species)
MAX_INITIAL_STATES = 10**6        # and initial supports at most this big


def log10_box(names: Sequence[str], bounds: Mapping[str, tuple[int, int | None]]) -> float | None:
    """log10 of prod (hi - lo + 1) over ``names``; None if one of them is unbounded."""
    total = 0.0
    for name in names:
        lo, hi = bounds[name]
        if hi is None:
            return None
        total += math.log10(hi - lo + 1)
    return total


def init_support(dist: InitDist) -> tuple[int, int | None]:
    """Smallest and largest value an initial distribution can take (None: no upper end)."""
    if dist.kind == "fixed":
        return int(dist.args[0]), int(dist.args[0])
    if dist.kind == "poisson":
        return 0, (0 if dist.args[0] == 0 else None)
    if dist.kind == "uniform":
        return int(dist.args[0]), int(dist.args[1])
    if dist.kind == "binomial":
        n, p = int(dist.args[0]), float(dist.args[1])
        return (n if p >= 1 else 0), (0 if p <= 0 else n)
    raise ValueError(f"unknown initial distribution {dist.kind!r}")


def _initial_states(model: Model, names: Sequence[str],
                    bounds: Mapping[str, tuple[int, int | None]]) -> np.ndarray | None:
    """All initial states with positive probability inside the bounds, (s, n) int64."""
    ranges = []
    for name in names:
        lo, hi = bounds[name]
        first, last = init_support(model.init_of(name))
        last = hi if last is None else min(last, hi)
        first = max(first, lo)
        if last < first:
            return np.zeros((0, len(names)), dtype=np.int64)
        ranges.append(range(first, last + 1))
    if math.prod(len(r) for r in ranges) > MAX_INITIAL_STATES:
        return None
    return np.array(list(itertools.product(*ranges)), dtype=np.int64).reshape(-1, len(names))


def _never_fires(model: Model, reaction) -> bool:
    """True when the rate is a constant expression equal to zero."""
    if species_in(reaction.rate) or uses_time(reaction.rate):
        return False
    try:
        return evaluate(reaction.rate, model.param_values) == 0
    except (ArithmeticError, ValueError, KeyError):
        return False


def reachable_states(model: Model, stoichiometry: np.ndarray,
                     bounds: Mapping[str, tuple[int, int | None]],
                     reduced: Sequence[str]) -> int | None:
    """Exact number of states reachable from the initial support inside the bounds, or None
    when the reduced box is unbounded, larger than MAX_REACHABLE_BOX, or the initial support is
    too big. A reaction fires from a state when its propensity can be positive there (its
    mass-action reactants are present: x >= s, or x >= 1 under power kinetics; ``=>`` rates
    are assumed positive) and the new state is inside the bounds of every species."""
    names = [s.name for s in model.species]
    if not names:
        return 1
    box = log10_box(reduced, bounds)
    if box is None or box > math.log10(MAX_REACHABLE_BOX) + 1e-9:
        return None
    lo = np.array([bounds[n][0] for n in names], dtype=np.int64)
    hi = np.array([bounds[n][1] for n in names], dtype=np.int64)
    start = _initial_states(model, names, bounds)
    if start is None:
        return None
    index = {n: i for i, n in enumerate(names)}
    ridx = np.array([index[n] for n in reduced], dtype=np.int64)
    radix = hi[ridx] - lo[ridx] + 1
    stride = np.ones(len(ridx), dtype=np.int64)
    if len(ridx) > 1:
        stride[1:] = np.cumprod(radix[:-1])
    size = int(np.prod(radix)) if len(ridx) else 1

    def encode(states: np.ndarray) -> np.ndarray:
        return (states[:, ridx] - lo[ridx]) @ stride

    moves = []
    for k, r in enumerate(model.reactions):
        change = stoichiometry[:, k]
        if not change.any() or _never_fires(model, r):
            continue
        if r.mass_action:
            need = [(index[n], 1 if model.kinetics == "power" else s) for n, s in r.reactants]
        else:
            need = []
        moved = np.flatnonzero(change)
        moves.append((np.array([i for i, _ in need], dtype=np.int64),
                      np.array([s for _, s in need], dtype=np.int64), change, moved))

    visited = np.zeros(size, dtype=bool)
    codes, first = np.unique(encode(start), return_index=True)
    visited[codes] = True
    frontier = start[first]
    while len(frontier):
        found = []
        for gate, need, change, moved in moves:
            ok = np.all(frontier[:, gate] >= need, axis=1) if len(gate) else slice(None)
            nxt = frontier[ok] + change
            inside = np.all((nxt[:, moved] >= lo[moved]) & (nxt[:, moved] <= hi[moved]), axis=1)
            nxt = nxt[inside]
            c = encode(nxt)
            fresh = ~visited[c]
            c, first = np.unique(c[fresh], return_index=True)
            visited[c] = True
            found.append(nxt[fresh][first])
        frontier = np.concatenate(found) if found else frontier[:0]
    return int(visited.sum())
