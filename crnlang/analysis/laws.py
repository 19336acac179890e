"""Conservation laws: a small, non-negative where possible, integer basis of the left null
space of the stoichiometric matrix.

1. ``integer_kernel`` gives an exact basis of ``{y : y^T N = 0}`` (species x reactions N).
2. The semi-positive laws (``y >= 0``) form a pointed cone; its extreme rays are the minimal
   semi-positive laws (P-invariants). They are found with the double-description step of the
   "nullspace algorithm" (start from the kernel basis, which is non-negative on its free
   coordinates, and intersect with ``y_i >= 0`` one species at a time), capped in size.
3. The basis: extreme rays, smallest first (support size, largest coefficient, total weight,
   model order), kept when they are independent of those kept before; completed by kernel
   basis vectors (mixed signs) if the semi-positive laws do not span the whole space.

Everything is integer arithmetic; every choice is deterministic.
"""
from __future__ import annotations

import math

import numpy as np

from .linalg import Kernel, integer_kernel, reduce_against

MAX_RAYS = 2000          # give up the semi-positive search above this many candidate rays


def conservation_basis(N: np.ndarray) -> tuple[list[list[int]], int]:
    """(laws, rank): an integer basis of the left null space of ``N`` (n_species, n_reactions)
    as lists of n_species ints (semi-positive ones first, each primitive), and rank(N)."""
    n = N.shape[0]
    kernel = integer_kernel(N.T)
    if kernel.vectors.shape[1] == 0:
        return [], kernel.rank
    rays = semi_positive_rays(kernel)
    laws: list[list[int]] = []
    echelon: dict[int, dict[int, int]] = {}
    for ray in sorted(rays or [], key=_law_size):
        if reduce_against(_sparse(ray), echelon):
            laws.append(ray)
    if len(laws) < kernel.vectors.shape[1]:
        fill = [_signed(_primitive([int(v) for v in kernel.vectors[:, j]]))
                for j in range(kernel.vectors.shape[1])]
        for vec in sorted(fill, key=_law_size):
            if reduce_against(_sparse(vec), echelon):
                laws.append(vec)
    assert len(laws) == kernel.vectors.shape[1] == n - kernel.rank
    return laws, kernel.rank


def _law_size(vec: list[int]) -> tuple:
    support = [i for i, v in enumerate(vec) if v]
    return (len(support), max(abs(v) for v in vec), sum(abs(v) for v in vec), support)


def _sparse(vec: list[int]) -> dict[int, int]:
    return {i: v for i, v in enumerate(vec) if v}


def _primitive(vec: list[int]) -> list[int]:
    g = math.gcd(*vec)
    return [v // g for v in vec] if g > 1 else vec


def _signed(vec: list[int]) -> list[int]:
    """Mixed-sign law with more positive weight than negative (ties: first entry positive)."""
    total = sum(vec)
    first = next(v for v in vec if v)
    return [-v for v in vec] if total < 0 or (total == 0 and first < 0) else vec


def semi_positive_rays(kernel: Kernel, max_rays: int = MAX_RAYS) -> list[list[int]] | None:
    """Extreme rays of {y in kernel : y >= 0} as primitive int lists, or None if the search
    grew past ``max_rays`` candidates (then only basis vectors are reported)."""
    K = kernel.vectors
    n, d = K.shape
    active = np.flatnonzero(np.any(K != 0, axis=1))
    R = np.array(K[active, :], dtype=object)           # (n_active, n_rays), Python ints
    position = {int(s): i for i, s in enumerate(active)}
    processed = [position[f] for f in kernel.free]
    todo = [i for i in range(len(active)) if i not in set(processed)]
    while todo:
        signs = np.sign(R[todo].astype(float)) if R.shape[1] else np.zeros((len(todo), 0))
        n_pos, n_neg = (signs > 0).sum(axis=1), (signs < 0).sum(axis=1)
        todo = [i for i, k in zip(todo, n_neg) if k]      # rows already >= 0 stay so
        if not todo:
            break
        work = [int(p) * int(q) for p, q in zip(n_pos, n_neg) if q]
        row = todo[int(np.argmin(work))]
        todo.remove(row)
        processed.append(row)
        values = R[row]
        pos = [j for j, v in enumerate(values) if v > 0]
        neg = [j for j, v in enumerate(values) if v < 0]
        if not neg:
            continue
        zero = [j for j, v in enumerate(values) if v == 0]
        if len(pos) * len(neg) + len(pos) + len(zero) > max_rays:
            return None
        new = [R[:, j] for j in zero + pos]
        for i in pos:
            for j in neg:
                new.append(_primitive_col(values[i] * R[:, j] - values[j] * R[:, i]))
        if not new:
            return []
        R = _minimal_support(new, processed)
    rays = []
    for j in range(R.shape[1]):
        full = [0] * n
        for i, s in enumerate(active):
            full[int(s)] = int(R[i, j])
        rays.append(full)
    return rays


def _primitive_col(col: np.ndarray) -> np.ndarray:
    g = math.gcd(*(int(v) for v in col))
    return col // g if g > 1 else col


def _minimal_support(columns: list[np.ndarray], processed: list[int]) -> np.ndarray:
    """Keep the columns whose support on ``processed`` rows contains no other column's
    support (the extreme rays); duplicates collapse to one."""
    seen: dict[tuple, np.ndarray] = {}
    for col in columns:
        seen.setdefault(tuple(int(v) for v in col), col)
    cols = list(seen.values())
    S = np.array([[col[i] != 0 for i in processed] for col in cols], dtype=np.float32)
    size = S.sum(axis=1)
    inter = S @ S.T                                     # |supp_a & supp_b|, exact in float32
    contains = inter == size[None, :]                   # [a, b]: supp_b is inside supp_a
    np.fill_diagonal(contains, False)
    kept = [cols[i] for i in np.flatnonzero(~contains.any(axis=1))]
    out = np.zeros((len(cols[0]), len(kept)), dtype=object)
    for j, col in enumerate(kept):
        out[:, j] = col
    return out
