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
MAX_WORK = 10**10        # ... or when the support tests have cost this much (sum of c * c * k)


def conservation_basis(N: np.ndarray) -> tuple[list[list[int]], int]:
    """(laws, rank): an integer basis of the left null space of ``N`` (n_species, n_reactions)
    as lists of n_species ints (semi-positive ones first, each primitive), and rank(N).

    Species that no reaction links (blocks of N) have independent laws: each block is solved
    on its own, which keeps the semi-positive search small."""
    n = N.shape[0]
    laws: list[dict[int, int]] = []
    rank = 0
    for species in species_blocks(N):
        reactions = np.flatnonzero(np.any(N[species] != 0, axis=0))
        block_laws, block_rank = _block_basis(N[np.ix_(species, reactions)])
        rank += block_rank
        laws += [{int(species[i]): v for i, v in law.items()} for law in block_laws]
    laws.sort(key=lambda y: (min(y.values()) < 0, _law_size(y)))
    return [_dense(law, n) for law in laws], rank


def _dense(law: dict[int, int], n: int) -> list[int]:
    full = [0] * n
    for i, v in law.items():
        full[i] = v
    return full


def species_blocks(N: np.ndarray) -> list[np.ndarray]:
    """Species index sets linked by the nonzero pattern of N, each sorted, by first index."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    if N.shape[0] == 0:
        return []
    B = sp.csr_matrix((N != 0).astype(np.int8))
    _, label = connected_components(B @ B.T, directed=False)
    order = np.argsort(label, kind="stable")
    blocks = np.split(order, np.flatnonzero(np.diff(label[order])) + 1)
    return sorted(blocks, key=lambda b: int(b[0]))


def _block_basis(N: np.ndarray) -> tuple[list[dict[int, int]], int]:
    """conservation_basis of one block, laws as sparse dicts {species index: coefficient}."""
    kernel = integer_kernel(N.T)
    if kernel.vectors.shape[1] == 0:
        return [], kernel.rank
    rays = [_sparse(ray) for ray in semi_positive_rays(kernel) or []]
    laws: list[dict[int, int]] = []
    echelon: dict[int, dict[int, int]] = {}
    for ray in sorted(rays, key=_law_size):
        if reduce_against(dict(ray), echelon):
            laws.append(ray)
    if len(laws) < kernel.vectors.shape[1]:
        fill = [_signed(_sparse(_primitive([int(v) for v in kernel.vectors[:, j]])))
                for j in range(kernel.vectors.shape[1])]
        for vec in sorted(fill, key=_law_size):
            if reduce_against(dict(vec), echelon):
                laws.append(vec)
    assert len(laws) == kernel.vectors.shape[1] == N.shape[0] - kernel.rank
    return laws, kernel.rank


def _law_size(law: dict[int, int]) -> tuple:
    """Smaller laws first: support size, largest and summed |coefficient|, species order."""
    return (len(law), max(abs(v) for v in law.values()), sum(abs(v) for v in law.values()),
            sorted(law))


def _sparse(vec: list[int]) -> dict[int, int]:
    return {i: int(v) for i, v in enumerate(vec) if v}


def _primitive(vec: list[int]) -> list[int]:
    g = math.gcd(*vec)
    return [v // g for v in vec] if g > 1 else vec


def _signed(law: dict[int, int]) -> dict[int, int]:
    """Mixed-sign law with more positive weight than negative (ties: first entry positive)."""
    total = sum(law.values())
    first = law[min(law)]
    return {i: -v for i, v in law.items()} if total < 0 or (total == 0 and first < 0) else law


def semi_positive_rays(kernel: Kernel, max_rays: int = MAX_RAYS) -> list[list[int]] | None:
    """Extreme rays of {y in kernel : y >= 0} as primitive int lists, or None when the search
    grows past ``max_rays`` candidates, past MAX_WORK, or its numbers past 2**31 (then the
    caller reports basis vectors instead)."""
    K = kernel.vectors
    n = K.shape[0]
    if K.size and int(np.abs(K).max()) >= 2**31:
        return None
    active = np.flatnonzero(np.any(K != 0, axis=1))
    R = np.array(K[active, :], dtype=np.int64)          # (n_active, n_rays)
    position = {int(s): i for i, s in enumerate(active)}
    processed = [position[f] for f in kernel.free]
    todo = np.array([i for i in range(len(active)) if i not in set(processed)], dtype=np.int64)
    work = 0
    while len(todo):
        n_pos, n_neg = (R[todo] > 0).sum(axis=1), (R[todo] < 0).sum(axis=1)
        todo, n_pos, n_neg = todo[n_neg > 0], n_pos[n_neg > 0], n_neg[n_neg > 0]
        if not len(todo):
            break                                        # rows already >= 0 stay so
        best = int(np.argmin(n_pos * n_neg))
        row = int(todo[best])
        todo = np.delete(todo, best)
        processed.append(row)
        values = R[row]
        pos, neg, zero = (np.flatnonzero(values > 0), np.flatnonzero(values < 0),
                          np.flatnonzero(values == 0))
        n_candidates = len(pos) * len(neg) + len(pos) + len(zero)
        work += len(pos) * len(neg) * (n_candidates * len(processed) + R.shape[0])
        if n_candidates > max_rays or work > MAX_WORK:
            return None
        # a_i r_j - a_j r_i for a_i > 0 > a_j: zero at ``row``, non-negative where both are
        combos = (values[pos][None, :, None] * R[:, neg][:, None, :]
                  - values[neg][None, None, :] * R[:, pos][:, :, None]).reshape(R.shape[0], -1)
        combos = _primitive_columns(combos)
        if combos.size and np.abs(combos).max() >= 2**31:
            return None
        R = _minimal_support(R[:, np.concatenate([zero, pos])], combos, processed)
        if R.shape[1] == 0:
            return []
    rays = []
    for j in range(R.shape[1]):
        full = [0] * n
        for i, s in enumerate(active):
            full[int(s)] = int(R[i, j])
        rays.append(full)
    return rays


def _primitive_columns(M: np.ndarray) -> np.ndarray:
    """Each column divided by the gcd of its entries."""
    if M.shape[1] == 0:
        return M
    g = np.gcd.reduce(M, axis=0)
    return M // np.where(g == 0, 1, g)[None, :]


def _minimal_support(kept: np.ndarray, new: np.ndarray, processed: list[int]) -> np.ndarray:
    """``kept`` (rays of the old cone still in the new one: extreme there too) followed by the
    ``new`` combinations whose support on ``processed`` rows contains no other column's
    support (the extreme rays among them); equal new columns collapse to their first copy."""
    R = np.concatenate([kept, new], axis=1)
    c_old, c_new = kept.shape[1], new.shape[1]
    if c_new == 0:
        return R
    S = (R[processed] != 0).astype(np.float32)          # (k, c)
    size = S.sum(axis=0)
    inter = S[:, c_old:].T @ S                          # (c_new, c): |supp_a & supp_b|
    contains = inter == size[None, :]                   # [a, b]: supp_b is inside supp_a
    contains[np.arange(c_new), c_old + np.arange(c_new)] = False
    duplicate = np.zeros(c_new, dtype=bool)
    for a, b in np.argwhere(contains[:, c_old:] & contains[:, c_old:].T):
        if a < b and not duplicate[a] and np.array_equal(new[:, a], new[:, b]):
            duplicate[b] = True
    contains[:, c_old:][:, duplicate] = False
    return np.concatenate([kept, new[:, ~duplicate & ~contains.any(axis=1)]], axis=1)
