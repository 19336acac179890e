"""State-space sizes: the box of the bounds, and the exact reachable set by breadth-first search;
the range of the initial distribution (of one species, of a conservation law's total).

The search works on whole frontiers with numpy: every state is a row of copy numbers (all
species, eliminated ones included, so their bounds are honoured too), and a visited bitmap is
indexed by the mixed-radix code of the reduced species (which determine the rest).
"""
from __future__ import annotations

import itertools
import math
from typing import Mapping, Sequence

import numpy as np

from .. import boxes
from ..model.ir import InitDist, Model, species_in, uses_time
from ..model.semantics import evaluate

MAX_REACHABLE_BOX = 10**7         # search only boxes at most this big (reduced species)
MAX_INITIAL_STATES = 10**6        # and initial supports at most this big
UNBOUNDED = 2**40                 # stands for "no upper bound" in integer arrays


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


def total_range(model: Model, coefficients: Mapping[str, int]) -> tuple[int | None, int | None]:
    """Smallest and largest value of sum c_i x_i(0) over the initial distribution
    (None: no finite end). Equal ends: the total is fixed."""
    low: int | None = 0
    high: int | None = 0
    for name, c in coefficients.items():
        first, last = init_support(model.init_of(name))
        ends = (c * first, None if last is None else c * last)
        lo_end, hi_end = (ends if c > 0 else (ends[1], ends[0]))
        low = None if low is None or lo_end is None else low + lo_end
        high = None if high is None or hi_end is None else high + hi_end
    return low, high


def _initial_states(model: Model, names: Sequence[str],
                    bounds: Mapping[str, tuple[int, int | None]]) -> np.ndarray | None:
    """All initial states with positive probability inside the bounds, (s, n) int64."""
    ranges = []
    for name in names:
        lo, hi = bounds[name]
        first, last = init_support(model.init_of(name))
        last = hi if last is None else (last if hi is None else min(last, hi))
        if last is None:
            return None
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


def count_reachable_states(model: Model, stoichiometry: np.ndarray,
                     bounds: Mapping[str, tuple[int, int | None]],
                     reduced: Sequence[str], eliminations: Sequence = ()) -> int | None:
    """Exact number of states reachable from the initial support inside the bounds, or None
    when the reduced box is unbounded, larger than MAX_REACHABLE_BOX, or the initial support is
    too big. A reaction fires from a state when its propensity can be positive there (its
    mass-action reactants are present: x >= s, or x >= 1 under power kinetics; ``=>`` rates
    are assumed positive) and the new state is inside the bounds of every species, the
    eliminated ones (rebuilt from ``eliminations``) included.

    States are kept as mixed-radix codes of the reduced species; a reaction adds a constant
    to the code, so a whole frontier moves with a few array operations per level."""
    names = [s.name for s in model.species]
    if not names:
        return 1                                  # the empty state
    box = log10_box(reduced, bounds)
    if box is None or box > math.log10(MAX_REACHABLE_BOX) + 1e-9:
        return None
    start = _initial_states(model, names, bounds)
    if start is None:
        return None
    index = {n: i for i, n in enumerate(names)}
    lo = np.array([bounds[n][0] for n in names], dtype=np.int64)
    hi = np.array([UNBOUNDED if bounds[n][1] is None else bounds[n][1] for n in names],
                  dtype=np.int64)             # only eliminated species can be unbounded here
    ridx = np.array([index[n] for n in reduced], dtype=np.int64)
    radix = hi[ridx] - lo[ridx] + 1
    stride = np.asarray(boxes.radix_strides(radix), dtype=np.int64)
    size = boxes.box_size(lo[ridx], hi[ridx])

    # x_e = (total - sum_j c_j x_j) / own for each eliminated species e
    elim_idx = np.array([index[e.species] for e in eliminations], dtype=np.int64)
    rebuild = np.zeros((len(ridx), len(eliminations)), dtype=np.int64)
    totals = np.zeros(len(eliminations), dtype=np.int64)
    owns = np.ones(len(eliminations), dtype=np.int64)
    rpos = {int(i): k for k, i in enumerate(ridx)}
    for j, e in enumerate(eliminations):
        totals[j], others, owns[j] = e.rebuild_terms()
        for name, c in others.items():
            rebuild[rpos[index[name]], j] = c

    def decode(codes: np.ndarray) -> np.ndarray:
        x = np.empty((len(codes), len(names)), dtype=np.int64)
        xr = boxes.decode(codes, lo[ridx], radix, stride)
        x[:, ridx] = xr
        if len(elim_idx):
            x[:, elim_idx] = (totals[None, :] - xr @ rebuild) // owns[None, :]
        return x

    # reaction k fires from x (and stays in bounds) iff least[k] <= x <= most[k]
    least, most, delta = [], [], []
    for k, r in enumerate(model.reactions):
        change = stoichiometry[:, k]
        if not change.any() or _never_fires(model, r):
            continue
        need = np.zeros(len(names), dtype=np.int64)
        if r.mass_action:
            for n, s in r.reactants:
                need[index[n]] = 1 if model.kinetics == "power" else s
        least.append(np.maximum(need, lo - change))
        most.append(hi - change)
        delta.append(int(change[ridx] @ stride) if len(ridx) else 0)
    least = np.array(least, dtype=np.int64).reshape(-1, len(names))   # (K, n)
    most = np.array(most, dtype=np.int64).reshape(-1, len(names))     # (K, n)
    delta = np.array(delta, dtype=np.int64)                           # (K,)
    checked = np.flatnonzero(np.any(least > lo, axis=0) | np.any(most < hi, axis=0))
    chunk = max(1, 4_000_000 // max(1, least.shape[0] * len(names)))

    visited = np.zeros(size, dtype=bool)
    slot = np.zeros(size, dtype=np.int32)
    start = start[np.all((start >= lo) & (start <= hi), axis=1)]
    frontier = np.unique(boxes.encode(start[:, ridx], lo[ridx], stride).astype(np.int64))
    visited[frontier] = True
    while len(frontier):
        found = []
        for i in range(0, len(frontier), chunk):
            part = frontier[i:i + chunk]
            x = decode(part)[:, None, checked]
            fires = np.all((x >= least[None, :, checked]) & (x <= most[None, :, checked]),
                           axis=2)                                            # (f, K)
            rows, moves = np.nonzero(fires)
            c = part[rows] + delta[moves]
            c = c[~visited[c]]
            visited[c] = True
            slot[c] = np.arange(len(c), dtype=np.int32)       # keep one copy of each code
            found.append(c[slot[c] == np.arange(len(c), dtype=np.int32)])
        frontier = np.concatenate(found)
    return int(visited.sum())
