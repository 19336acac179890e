"""Exact integer linear algebra for stoichiometric matrices.

The one question the analysis asks is: which integer vectors ``y`` satisfy ``A y = 0`` for an
integer matrix ``A`` (rows = reaction change vectors, columns = species)? The answer is never
decided in floating point:

* fast path: Gaussian elimination modulo a prime with numpy (whole rows at a time), the
  kernel lifted to the rationals by rational reconstruction, then *verified exactly* on the
  integers. ``rank_p(A) <= rank_Q(A)``, so ``n - rank_p`` verified independent kernel vectors
  are the whole kernel: the result is exact, not probable.
* fallback (when reconstruction or verification fails): fraction-free Gauss-Jordan on Python
  ints, row by row, with sparse dict rows.

Both return a ``Kernel``: integer basis vectors, each with a "free" coordinate where it is
positive and every other basis vector is zero (the identity pattern of a reduced row echelon
form), plus the rank.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PRIME = 2_147_483_629          # a prime below 2**31: products of two residues fit in int64
_RECON_BOUND = math.isqrt(PRIME // 2)


@dataclass(frozen=True)
class Kernel:
    """An exact basis of ``{y : A y = 0}``.

    ``vectors``: (n, d) int64 array (column j is basis vector j); ``free``: the d free
    coordinates, ``vectors[free[j], j] > 0`` and ``vectors[free[k], j] == 0`` for k != j;
    ``rank``: rank of A over the rationals (n - d).
    """

    vectors: np.ndarray
    free: tuple[int, ...]
    rank: int


def unique_rows(A: np.ndarray) -> np.ndarray:
    """Nonzero rows of A up to sign (reversible pairs, repeated reactions), int64, in order
    of first appearance."""
    A = np.asarray(A, dtype=np.int64)
    A = A[np.any(A != 0, axis=1)]
    if A.shape[0] == 0:
        return A
    first = A[np.arange(A.shape[0]), np.argmax(A != 0, axis=1)]
    A = np.ascontiguousarray(A * np.where(first < 0, -1, 1)[:, None])
    keys = A.view(np.dtype((np.void, A.dtype.itemsize * A.shape[1]))).ravel()
    _, index = np.unique(keys, return_index=True)
    return A[np.sort(index)]


def integer_kernel(A: np.ndarray) -> Kernel:
    """Exact kernel of the integer matrix ``A`` (m, n): see the module docstring."""
    A = unique_rows(A)
    n = A.shape[1]
    if A.shape[0] == 0:
        return Kernel(np.eye(n, dtype=np.int64), tuple(range(n)), 0)
    found = _kernel_modular(A)
    if found is None:
        found = kernel_exact(A)
    return found


# ------------------------------------------------------------------ modular fast path
def _echelon_mod_p(A: np.ndarray, p: int) -> tuple[np.ndarray, list[int]]:
    """Row echelon form of A mod p with unit pivots: (U (r, n), pivot columns)."""
    M = np.mod(A, p)
    m, n = M.shape
    pivots: list[int] = []
    r = 0
    for c in range(n):
        if r == m:
            break
        below = np.flatnonzero(M[r:, c])
        if below.size == 0:
            continue
        piv = r + int(below[0])
        if piv != r:
            M[[r, piv]] = M[[piv, r]]
        inv = pow(int(M[r, c]), p - 2, p)
        M[r, c:] = (M[r, c:] * inv) % p
        rows = r + 1 + np.flatnonzero(M[r + 1:, c])
        if rows.size:
            factors = M[rows, c][:, None]
            M[rows, c:] = (M[rows, c:] - (factors * M[r, c:][None, :]) % p) % p
        pivots.append(c)
        r += 1
    return M[:r], pivots


def _kernel_mod_p(A: np.ndarray, p: int) -> tuple[np.ndarray, list[int], int]:
    """Kernel of A mod p: (K (n, d) residues with K[free] = I, free columns, rank_p)."""
    n = A.shape[1]
    U, pivots = _echelon_mod_p(A, p)
    pivot_set = set(pivots)
    free = [c for c in range(n) if c not in pivot_set]
    K = np.zeros((n, len(free)), dtype=np.int64)
    K[free, np.arange(len(free))] = 1
    for i in range(len(pivots) - 1, -1, -1):
        c = pivots[i]
        cols = c + 1 + np.flatnonzero(U[i, c + 1:])
        if cols.size == 0:
            continue
        acc = ((U[i, cols][:, None] * K[cols, :]) % p).sum(axis=0) % p
        K[c, :] = (-acc) % p
    return K, free, len(pivots)


def _reconstruct(a: int, p: int, bound: int) -> tuple[int, int] | None:
    """Rational num/den with |num|, den <= bound and num = a*den (mod p), or None."""
    r0, r1, s0, s1 = p, a % p, 0, 1
    while r1 > bound:
        q = r0 // r1
        r0, r1 = r1, r0 - q * r1
        s0, s1 = s1, s0 - q * s1
    if s1 == 0 or abs(s1) > bound:
        return None
    if s1 < 0:
        r1, s1 = -r1, -s1
    return r1, s1


def _lift_column(col: np.ndarray, p: int) -> list[int] | None:
    """Integer vector proportional to the rational lift of a residue vector (or None)."""
    small = np.where(col > p // 2, col - p, col)
    easy = np.abs(small) <= _RECON_BOUND
    if easy.all():
        return [int(v) for v in small]
    nums = [int(v) for v in small]
    dens = [1] * len(nums)
    for i in np.flatnonzero(~easy):
        frac = _reconstruct(int(col[i]), p, _RECON_BOUND)
        if frac is None:
            return None
        nums[i], dens[i] = frac
    lcm = math.lcm(*dens)
    return [num * (lcm // den) for num, den in zip(nums, dens)]


def _kernel_modular(A: np.ndarray) -> Kernel | None:
    n = A.shape[1]
    K, free, rank = _kernel_mod_p(A, PRIME)
    columns = []
    for j in range(K.shape[1]):
        vec = _lift_column(K[:, j], PRIME)
        if vec is None:
            return None
        columns.append(_primitive(vec))
    if not columns:
        return Kernel(np.zeros((n, 0), dtype=np.int64), (), rank)
    if max(max(abs(v) for v in col) for col in columns) >= 2**31:
        return None
    Y = np.array(columns, dtype=np.int64).T
    if not _is_kernel(A, Y):
        return None
    return Kernel(Y, tuple(free), rank)


def _is_kernel(A: np.ndarray, Y: np.ndarray) -> bool:
    """A @ Y == 0 exactly (int64 is exact here: |A| |Y| nnz stays far below 2**63)."""
    bound = int(np.abs(A).max()) * int(np.abs(Y).max()) * A.shape[1]
    if bound >= 2**62:
        cols = [[int(v) for v in Y[:, j]] for j in range(Y.shape[1])]
        return all(sum(int(a) * y for a, y in zip(row, col)) == 0 for row in A for col in cols)
    import scipy.sparse as sp

    return not np.any(sp.csr_matrix(A) @ Y)


# ------------------------------------------------------------------ exact fallback
def _primitive(vec: list[int]) -> list[int]:
    """vec divided by the gcd of its entries."""
    g = math.gcd(*vec)
    return [v // g for v in vec] if g > 1 else list(vec)


def kernel_exact(A: np.ndarray) -> Kernel:
    """Fraction-free Gauss-Jordan on Python ints (sparse dict rows); slow but always exact."""
    m, n = A.shape
    rows = [{j: int(v) for j, v in enumerate(row) if v} for row in A]
    rows = [r for r in rows if r]
    pivot_rows: list[tuple[int, dict[int, int]]] = []
    for c in range(n):
        candidates = [i for i, r in enumerate(rows) if c in r]
        if not candidates:
            continue
        best = min(candidates, key=lambda i: (len(rows[i]), i))
        prow = rows.pop(best)
        a = prow[c]
        others = [r for _, r in pivot_rows] + rows
        for r in others:
            b = r.get(c)
            if b:
                _combine(r, a, prow, b)
        rows = [r for r in rows if r]
        pivot_rows.append((c, prow))
    pivot_cols = {c for c, _ in pivot_rows}
    free = [c for c in range(n) if c not in pivot_cols]
    vectors = np.zeros((n, len(free)), dtype=object)
    for j, f in enumerate(free):
        lcm = math.lcm(1, *(r[c] for c, r in pivot_rows if f in r))
        vec = [0] * n
        vec[f] = lcm
        for c, r in pivot_rows:
            if f in r:
                vec[c] = -r[f] * lcm // r[c]
        vectors[:, j] = _primitive(vec)
    if vectors.size and max(abs(int(v)) for v in vectors.ravel()) < 2**62:
        vectors = vectors.astype(np.int64)
    return Kernel(vectors, tuple(free), n - len(free))


def _combine(row: dict[int, int], a: int, prow: dict[int, int], b: int) -> None:
    """row <- (a*row - b*prow) / gcd, in place; keeps row's own pivot sign when a < 0."""
    for k in list(row):
        row[k] *= a
    for k, v in prow.items():
        new = row.get(k, 0) - b * v
        if new:
            row[k] = new
        else:
            row.pop(k, None)
    if row:
        g = math.gcd(*row.values())
        if a < 0:
            g = -g
        if g != 1:
            for k in row:
                row[k] //= g


def reduce_against(vec: dict[int, int], basis: dict[int, dict[int, int]]) -> bool:
    """Reduce ``vec`` by an echelon ``basis`` (pivot -> row); if something is left, add it to
    the basis and return True (``vec`` was independent), else return False."""
    while vec:
        lead = min(vec)
        prow = basis.get(lead)
        if prow is None:
            basis[lead] = vec
            return True
        a, b = prow[lead], vec[lead]
        for k in list(vec):
            vec[k] *= a
        for k, v in prow.items():
            new = vec.get(k, 0) - b * v
            if new:
                vec[k] = new
            else:
                vec.pop(k, None)
        if vec:
            g = math.gcd(*vec.values())
            if g > 1:
                for k in vec:
                    vec[k] //= g
    return False
