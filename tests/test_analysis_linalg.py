"""Exact integer kernels and minimal semi-positive laws, against independent oracles:
Gauss-Jordan over Fractions (rank) and brute-force enumeration (semi-positive laws)."""
from __future__ import annotations

from itertools import product

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from crnlang.analysis.laws import conservation_basis, semi_positive_rays
from crnlang.analysis.linalg import PRIME, integer_kernel, kernel_exact, unique_rows
from kernels.oracles import rational_rank


def matrices(max_value: int):
    return st.integers(1, 7).flatmap(lambda n: st.lists(
        st.lists(st.integers(-max_value, max_value), min_size=n, max_size=n),
        min_size=1, max_size=8)).map(lambda rows: np.array(rows, dtype=object))


def check_kernel(A, kernel) -> None:
    n = A.shape[1]
    Y = np.array(kernel.vectors, dtype=object)
    assert Y.shape == (n, n - kernel.rank)
    assert kernel.rank == rational_rank(A.tolist())
    assert not np.any(A.dot(Y))                         # exact: object (Python int) arithmetic
    if Y.shape[1]:
        assert rational_rank(Y.T.tolist()) == Y.shape[1]
        free = list(kernel.free)
        assert all(Y[f, j] > 0 for j, f in enumerate(free))
        assert all(Y[f, j] == 0 for j in range(Y.shape[1]) for k, f in enumerate(free) if k != j)


@settings(max_examples=150, deadline=None)
@given(matrices(3))
def test_kernel_small_entries(A):
    check_kernel(A, integer_kernel(A.astype(np.int64)))
    check_kernel(A, kernel_exact(unique_rows(A.astype(np.int64))))


@settings(max_examples=60, deadline=None)
@given(matrices(10**6))
def test_kernel_large_entries_fall_back_exactly(A):
    # big entries defeat rational reconstruction mod p: the exact path must take over
    check_kernel(A, integer_kernel(A.astype(np.int64)))


def test_kernel_when_the_prime_divides_a_minor():
    # det [[1, 1], [1, 1 + p]] = p: rank 2 over Q, rank 1 mod p
    A = np.array([[1, 1], [1, 1 + PRIME]], dtype=np.int64)
    k = integer_kernel(A)
    assert k.rank == 2 and k.vectors.shape == (2, 0)


def test_unique_rows_merges_reversible_pairs():
    A = np.array([[1, -1, 0], [-1, 1, 0], [0, 0, 0], [0, 2, 1], [1, -1, 0]])
    assert unique_rows(A).tolist() == [[1, -1, 0], [0, 2, 1]]


def brute_force_semi_positive(N, top: int = 3):
    """Every nonzero y in {0..top}^n with y^T N = 0."""
    n = N.shape[0]
    return [y for y in product(range(top + 1), repeat=n) if any(y) and not np.any(np.array(y) @ N)]


def support(y) -> frozenset:
    return frozenset(i for i, v in enumerate(y) if v)


@settings(max_examples=80, deadline=None)
@given(st.integers(2, 5).flatmap(lambda n: st.lists(
    st.lists(st.integers(-2, 2), min_size=n, max_size=n), min_size=1, max_size=5)))
def test_semi_positive_rays_are_the_minimal_laws(columns):
    N = np.array(columns, dtype=np.int64).T                # species x reactions
    rays = semi_positive_rays(integer_kernel(N.T))
    found = brute_force_semi_positive(N)
    for ray in rays:
        assert all(v >= 0 for v in ray) and any(ray)
        assert not np.any(np.array(ray) @ N)
        assert not any(support(y) < support(ray) for y in found)   # minimal support
    for y in found:                                        # rays generate the cone
        assert any(support(ray) <= support(y) for ray in rays)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 6).flatmap(lambda n: st.lists(
    st.lists(st.integers(-2, 2), min_size=n, max_size=n), min_size=1, max_size=6)))
def test_conservation_basis_is_a_basis_with_semi_positive_first(columns):
    N = np.array(columns, dtype=np.int64).T
    laws, rank = conservation_basis(N)
    assert rank == rational_rank(N.T.tolist())
    assert len(laws) == N.shape[0] - rank
    for y in laws:
        assert not np.any(np.array(y, dtype=object).dot(np.array(N, dtype=object)))
    if laws:
        assert rational_rank(laws) == len(laws)
    signs = [all(v >= 0 for v in y) for y in laws]
    assert signs == sorted(signs, reverse=True)            # semi-positive ones come first


def test_ray_search_cap_falls_back_to_a_basis():
    # y_A + y_B + y_C = y_D + y_E + y_F: 9 minimal laws; with a tiny cap the search gives up
    N = np.array([[-1, -1, -1, 1, 1, 1]]).T
    kernel = integer_kernel(N.T)
    assert len(semi_positive_rays(kernel)) == 9
    assert semi_positive_rays(kernel, max_rays=3) is None
    laws, rank = conservation_basis(N)
    assert rank == 1 and len(laws) == 5
    assert all(all(v >= 0 for v in y) for y in laws)
