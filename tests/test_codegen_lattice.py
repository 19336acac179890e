"""Lattice kernels: one line of code per reaction template, checked against the interpreter.

A lattice model's reactions are grouped (a reaction at every site, a reversible pair at every
site, a hop along every edge) and each group is one line over blocks of rows; ``all``, ``any``
and ``sum`` over the sites are one reduction. The reference interpreter stays the oracle: the
same brute-force checks as tests/test_codegen.py (propensities, the support rule, absorbing
regions, observables, ``shifted`` against a loop over reactions and against the interpreter).
"""
from __future__ import annotations

import pytest
import torch

import crnlang
from crnlang.dispatch import compile as compile_model
from crnlang.dispatch import emit
from tests.test_codegen import (check_against_interpreter, check_with_the_real_analysis,
                                plain_analysis)

MODELS = {
    # Schlögl on a periodic ring: per-site templates, hops, an absorbing all(...), sum/mean/any
    "ring": """
        model ring
        kinetics power
        param c1 = 2.676, c2 = 0.040, c3 = 108.102, c4 = 37.881, d = 8.2207
        lattice chain(5, periodic)
        species X <= 30
        2 X -> 3 X @ c1
        3 X -> 2 X @ c2
        0 -> X     @ c3
        X -> 0     @ c4
        diffuse X @ d
        init X = 5
        observe total = sum(X)
        observe avg = mean(X)
        observe low  = all(X <= 6)
        observe some = any(X >= 20)
        absorb low
    """,
    # two species on a grid: a bimolecular reaction, a reversible pair (interleaved groups),
    # a non-mass-action rate with t, two diffusions, a lower bound, a site-specific observable
    "grid": """
        model grid
        kinetics binomial
        param k = 0.3, g = 1.5, v = 4, K = 3
        lattice grid(2, 3)
        species A <= 6, B in 1..7
        A + B -> 2 B @ k
        B <-> A @ g, 0.5
        0 => A @ v * B / (K + B) + t
        diffuse A @ 1.2
        diffuse B @ 0.7
        init A = 2, B ~ uniform(1, 3)
        observe ab = sum(A) - sum(B)
        observe mixed = all(A <= 3) and any(B >= 5)
        observe corner = A[0, 0] + B[1, 2]
        observe lowB = all(B <= 2)
        absorb lowB
    """,
    # a rate that reads one site from every site (site 0 breaks its group), a region whose
    # terms read two species (absorbing_prev falls back to a line per reaction)
    "coupled": """
        model coupled
        lattice chain(4)
        species X <= 12, Y <= 5
        X -> 0 @ 0.2 * (1 + X[0])
        0 -> X @ 3
        X + Y <-> 2 Y @ 0.1, 0.3
        diffuse X @ 1
        observe s = sum(X * Y)
        observe s2 = sum(X) + 1
        observe far = any(X + Y >= 14)
        absorb far
    """,
}

# a conservation law across the lattice (A + B in total): one species eliminated and rebuilt
CONSERVED = """
    model conserved
    lattice chain(4)
    species A, B
    A <-> B @ 1, 2
    diffuse A @ 0.5
    diffuse B @ 0.3
    init A = 3
    observe anyB = any(B >= 2)
    absorb anyB
"""


@pytest.mark.parametrize("name", sorted(MODELS))
def test_lattice_kernels_match_the_interpreter(name):
    model = crnlang.parse(MODELS[name])
    for seed in range(4):
        check_against_interpreter(model, seed, 0.7)


def test_lattice_conservation_law_matches_the_interpreter():
    model = crnlang.parse(CONSERVED)
    assert crnlang.analyze(model).eliminations
    for seed in range(3):
        check_with_the_real_analysis(model, seed, 0.3)


def schlogl_on(lattice: str):
    from tests.conftest import EXAMPLES
    text = (EXAMPLES / "schlogl2d.crn").read_text().replace("grid(3, 3)", lattice)
    return crnlang.parse(text)


def test_an_8x8_grid_compiles_to_a_module_as_long_as_a_2x2_one():
    small, large = schlogl_on("grid(2, 2)"), schlogl_on("grid(8, 8)")
    assert (len(small.reactions), len(large.reactions)) == (4 * 4 + 8, 64 * 4 + 224)
    src_small = emit(small, crnlang.analyze(small))
    src_large = emit(large, crnlang.analyze(large))
    assert src_large.count("\n") == src_small.count("\n")
    # what grows is one line of species names and bounds each, not a line per reaction
    assert len(src_large) < 2 * len(src_small)
    body = src_large[src_large.index("def propensities"):src_large.index("def fires")]
    assert body.count("\n    a[") == 5                       # 4 site templates and the hops


def test_groups_read_slices_and_edge_tables():
    model = schlogl_on("grid(3, 3)")
    src = emit(model, crnlang.analyze(model))
    assert "a[0:9] = 2.676 * (f[0:9] ** 2.0)" in src
    assert "_ks.edge_rows(MODEL.lattice, 0, 0)" in src
    assert "((f[0:9] <= 15.0)).all(0)" in src
    kernel = compile_model(model, plain_analysis(model))
    assert kernel.REACTIONS[:2] == ("r1[0,0]", "r1[0,1]")
    assert kernel.REACTIONS[36] == "X_hop_0_0_0_1"
    assert kernel.RATE_CONSTANTS[35:37] == (37.881, 8.2207)
    hop = kernel.CHANGE_FULL[36].tolist()
    assert hop == [-1, 1] + [0] * 7


def test_interleaved_reversible_pairs_keep_the_reaction_order():
    model = crnlang.parse(CONSERVED)
    kernel = compile_model(model, plain_analysis(model))
    assert kernel.REACTIONS[:4] == ("r1_fwd[0]", "r1_rev[0]", "r1_fwd[1]", "r1_rev[1]")
    for k, reaction in enumerate(model.reactions):
        want = [reaction.change().get(n, 0) for n in kernel.ALL_SPECIES]
        assert kernel.CHANGE_FULL[k].tolist() == want, reaction.label
        reactants = dict(reaction.reactants)
        assert kernel.REACTANTS[k].tolist() == [reactants.get(n, 0) for n in kernel.ALL_SPECIES]
    x = torch.tensor([[3, 0, 0, 0, 1, 0, 0, 0]])
    assert kernel.propensities(x, 0.0)[0, :2].tolist() == [3.0, 2.0]


@pytest.mark.parametrize("name", ["ring", "grid", "coupled", "schlogl 4x4"])
def test_groups_equal_the_per_reaction_kernel(name, tmp_path):
    """Bit for bit: every function of the grouped kernel against the line-per-reaction one."""
    from crnlang.codegen.emit import emit as emit_kernel
    from crnlang.codegen.loader import load_kernel

    model = schlogl_on("grid(4, 4)") if name == "schlogl 4x4" else crnlang.parse(MODELS[name])
    analysis = crnlang.analyze(model)
    grouped = load_kernel(emit_kernel(model, analysis), tmp_path)
    lines = load_kernel(emit_kernel(model, analysis, grouped=False), tmp_path)
    for attr in ("REACTIONS", "RATE_CONSTANTS"):
        assert getattr(grouped, attr) == getattr(lines, attr)
    for attr in ("CHANGE", "CHANGE_FULL", "REACTANTS"):
        assert torch.equal(getattr(grouped, attr), getattr(lines, attr))
    hi = torch.tensor([h if h is not None else 40 for h in grouped.UPPER])
    x = (torch.rand((500, len(hi)), generator=torch.Generator().manual_seed(1)) * (hi + 2)).long()
    for t in (0.0, 0.4):
        for fn in ("propensities", "out_rates"):
            assert torch.equal(getattr(grouped, fn)(x, t), getattr(lines, fn)(x, t)), fn
        for fn in ("fires", "absorbing", "in_support"):
            assert torch.equal(getattr(grouped, fn)(x), getattr(lines, fn)(x)), fn
        (pg, ig), (pl, il) = grouped.shifted(x, t), lines.shifted(x, t)
        assert torch.equal(pg, pl) and torch.equal(ig, il)
        og, ol = grouped.observables(x, t), lines.observables(x, t)
        for key in og:
            torch.testing.assert_close(og[key], ol[key], rtol=1e-15, atol=0)
