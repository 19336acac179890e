"""A box of integer states and its mixed-radix codes, written once.

A box is lower_i <= x_i <= upper_i per species; ``sizes`` are upper - lower + 1. A state's
code is sum_i (x_i - lower_i) * stride_i with the last species fastest, so sorting codes
sorts states lexicographically (the order of ``torch.unique(dim=0)`` and of
``torch.cartesian_prod``). The functions work on numpy arrays and torch tensors alike.
"""
from __future__ import annotations

import math

MAX_CODES = 2 ** 62          # codes must stay below this to fit an int64 with room to spare


def box_size(lower, upper) -> int:
    """The number of states of the box (a Python int, exact)."""
    return math.prod(int(b) - int(a) + 1 for a, b in zip(lower, upper))


def radix_strides(sizes) -> list[int] | None:
    """Strides of the code over a box of ``sizes`` (last fastest), or None when the box has
    ``MAX_CODES`` states or more."""
    sizes = [int(s) for s in sizes]
    if math.prod(sizes) >= MAX_CODES:
        return None
    strides = [1] * len(sizes)
    for i in range(len(sizes) - 2, -1, -1):
        strides[i] = strides[i + 1] * sizes[i + 1]
    return strides


def encode(x, lower, strides):
    """(..., L) states -> (...,) codes; ``lower`` and ``strides`` (L,) of x's array kind."""
    return ((x - lower) * strides).sum(-1)


def decode(codes, lower, sizes, strides):
    """(N,) codes -> (N, L) states (numpy or torch, as the arguments)."""
    return (codes[:, None] // strides) % sizes + lower
