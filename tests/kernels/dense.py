"""An independent dense CME for small models: plain-Python BFS over full states, propensities
from the slow reference interpreter (crnlang.model.semantics), reflecting truncation at the
declared bounds, zero out-rates in absorbing regions. Test oracle for FSP."""
from __future__ import annotations

import numpy as np

from crnlang.model.ir import Model
from crnlang.model.semantics import evaluate, propensity


def dense_cme(model: Model, start: dict[str, int]):
    """(states: list of tuples in model species order, A: dense (N, N) generator)."""
    names = model.species_names
    hi = [s.hi for s in model.species]
    lo = [s.lo for s in model.species]
    changes = [r.change() for r in model.reactions]
    absorbing = [o for o in model.observables if o.absorbing]
    first = tuple(start.get(n, 0) for n in names)
    index, order, edges = {first: 0}, [first], []
    i = 0
    while i < len(order):
        x = order[i]
        state = dict(zip(names, x))
        stuck = any(evaluate(o.expr, model.param_values, state) for o in absorbing)
        for r, ch in zip(model.reactions, changes):
            y = list(x)
            for name, d in ch.items():
                y[names.index(name)] += d
            inside = all(l <= v and (h is None or v <= h) for v, l, h in zip(y, lo, hi))
            a = propensity(model, r, state)
            if stuck or not inside or a <= 0:
                continue
            y = tuple(y)
            if y not in index:
                index[y] = len(order)
                order.append(y)
            edges.append((index[y], i, a))
        i += 1
    A = np.zeros((len(order), len(order)))
    for j, src, a in edges:
        A[j, src] += a
        A[src, src] -= a
    return order, A
