"""Lattice geometry: sites, per-site names and nearest-neighbour edges.

Sites are tuples of 0-based indices, row-major: chain(N) -> (0,) .. (N-1,), grid(R, C) ->
(0, 0), (0, 1), ... A model without a lattice has one anonymous site, ``None``.
"""
from __future__ import annotations

import itertools

from ..errors import CRNSemanticError, did_you_mean
from ..syntax import ast
from .ir import Lattice
from .source import error_at

LATTICE_KINDS = {"chain": 1, "grid": 2}
MAX_SITES = 10_000


def sites_of(lattice: Lattice | None) -> list[tuple[int, ...] | None]:
    """All sites in row-major order (``[None]`` without a lattice)."""
    if lattice is None:
        return [None]
    return list(itertools.product(*(range(n) for n in lattice.shape)))


def site_label(name: str, site: tuple[int, ...] | None) -> str:
    """"X" -> "X[3]" on a chain, "X[1,2]" on a grid (no spaces); unchanged without a site."""
    if site is None:
        return name
    return f"{name}[{','.join(map(str, site))}]"


def hop_label(species: str, a: tuple[int, ...], b: tuple[int, ...]) -> str:
    """The label of ``diffuse``'s hop of ``species`` from site a to b: "X_hop_0_1_1_1"."""
    return f"{species}_hop_{'_'.join(map(str, a + b))}"


def site_number(lattice: Lattice, site: tuple[int, ...]) -> int:
    """The row-major position of ``site`` among ``sites_of(lattice)``."""
    number = 0
    for k, n in zip(site, lattice.shape):
        number = number * n + k
    return number


def neighbours(lattice: Lattice, site: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Nearest neighbours of ``site``, sorted, each once (wrap-around when periodic)."""
    out = set()
    for axis, n in enumerate(lattice.shape):
        for step in (-1, 1):
            k = site[axis] + step
            if lattice.periodic:
                k %= n
            if 0 <= k < n:
                other = site[:axis] + (k,) + site[axis + 1:]
                if other != site:
                    out.add(other)
    return sorted(out)


def directed_edges(lattice: Lattice) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Every directed nearest-neighbour edge (a, b), ordered by a then b.

    3x3 grid: 24 edges; chain(2, periodic): 2 edges (the wrap-around is the same edge).
    """
    return [(a, b) for a in sites_of(lattice) for b in neighbours(lattice, a)]


def lattice_from_args(stmt: ast.LatticeStmt, src, lowerer) -> Lattice:
    """``lattice chain(N [, periodic])`` / ``grid(R, C [, periodic])`` -> ``Lattice``."""
    if stmt.kind not in LATTICE_KINDS:
        raise error_at(CRNSemanticError, f"unknown lattice '{stmt.kind}'", src, stmt.kind_pos,
                       did_you_mean(stmt.kind, LATTICE_KINDS) or "use chain(N) or grid(R, C)")
    args = list(stmt.args)
    periodic = False
    if args and isinstance(args[-1], ast.Name) and args[-1].name == "periodic":
        periodic = True
        args.pop()
    want = LATTICE_KINDS[stmt.kind]
    if len(args) != want:
        usage = "chain(N [, periodic])" if want == 1 else "grid(R, C [, periodic])"
        raise error_at(CRNSemanticError, f"{stmt.kind}() takes {want} size(s), got {len(args)}", src,
                       stmt.kind_pos, f"write lattice {usage}")
    shape = tuple(lowerer.integer(a, src, "a lattice size", lo=1) for a in args)
    n_sites = 1
    for n in shape:
        n_sites *= n
    if n_sites > MAX_SITES:
        raise error_at(CRNSemanticError, f"a lattice of {n_sites} sites is too large (at most {MAX_SITES})",
                       src, stmt.kind_pos, "use a smaller lattice")
    return Lattice(stmt.kind, shape, periodic)
