"""Network analysis: conservation laws, bounds, elimination, graph facts, state-space sizes.

Every law is checked against the stoichiometry (y^T N = 0 exactly, total = y . x(0)) and the
number of laws against an independent rational rank; reachable counts against a plain
state-by-state search that uses the reference propensity interpreter.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crnlang
from crnlang.analysis.analyze import stoichiometric_matrix
from crnlang.errors import CRNAnalysisError
from crnlang.model.semantics import propensity
from kernels.oracles import rational_rank

TOGGLE = """
model toggle_switch
kinetics power
param sx = 50, sy = 50
param dx = 1,  dy = 1
param bx = 1e-4, by = 1e-4
param ux = 0.1,  uy = 0.1
species Gx, Gy, Gx_off, Gy_off
species Px <= 79, Py <= 79
Gx -> Gx + Px            @ sx
Gy -> Gy + Py            @ sy
Px -> 0                  @ dx
Py -> 0                  @ dy
bind_y: Gy + 2 Px <-> Gy_off @ by, uy
bind_x: Gx + 2 Py <-> Gx_off @ bx, ux
init Gx = 1, Gy = 1
"""

MAPK = """
model mapk
species S0, S1, S2, S3, S4, S5, S6, S7, S8, S9, S10, S11, S12, S13, S14, S15
0 -> S0 @ 0.001
S0 -> 0 @ 0.15
S5 -> S0 + S5 @ 0.005
0 -> S2 @ 0.00024
S2 -> 0 @ 1e-4
S3 -> 0 @ 1e-4
S4 -> 0 @ 1e-4
S5 -> 0 @ 1e-4
S0 + S2 <-> S6 @ 0.375, 1
S6 -> S0 + S3 @ 0.06
S0 + S3 <-> S8 @ 0.375, 1
S8 -> S0 + S5 @ 4.5
S0 + S2 <-> S7 @ 0.375, 1
S7 -> S0 + S4 @ 0.06
S0 + S4 <-> S9 @ 0.375, 1
S9 -> S0 + S5 @ 4.5
S1 + S5 <-> S10 @ 0.015, 1
S10 -> S12 @ 0.032
S12 -> S1 + S4 @ 0.31
S1 + S4 -> S12 @ 0.01
S1 + S4 <-> S13 @ 0.01, 1
S13 -> S14 @ 0.5
S14 -> S1 + S2 @ 0.086
S1 + S2 -> S14 @ 0.0011
S1 + S3 <-> S11 @ 0.01, 1
S11 -> S15 @ 0.47
S15 -> S1 + S2 @ 0.14
S1 + S2 -> S15 @ 0.0018
init S1 = 1, S2 = 3
"""

EARLY_LIFE = """
param ka = 1, V = 1
species S0, S1, S2
S0 + S1 -> 2 S1 @ ka / V
S0 + S2 -> 2 S2 @ ka / V
S0 -> S1 @ 1
S0 -> S2 @ 1
S1 -> S0 @ 1
S2 -> S0 @ 1
init S0 = 2, S1 = 49, S2 = 49
"""

SCHLOGL = """
kinetics power
species X <= 84
2 X -> 3 X @ 2.676
3 X -> 2 X @ 0.040
0 -> X     @ 108.102
X -> 0     @ 37.881
init X = 50
"""

ENZYME_CYCLE = """
species E, S, ES, P
bind: E + S <-> ES @ 1, 0.5
ES -> E + P @ 2
P -> S @ 0.3
init E = 3, S = 10
"""

DIMER = """
species P, P2
2 P <-> P2 @ 0.01, 1
init P = 100
"""


def analyze(text: str):
    return crnlang.analyze(crnlang.parse(text))


def initial_vector(model) -> np.ndarray:
    return np.array([int(model.init_of(n).args[0]) if model.init_of(n).is_fixed else 0
                     for n in model.species_names], dtype=object)


def law_vector(names, coefficients) -> np.ndarray:
    return np.array([coefficients.get(n, 0) for n in names], dtype=np.int64)


def check_laws(a) -> None:
    """Laws (reported and those used for elimination) are exact, complete and independent;
    eliminated species appear in no other elimination law."""
    names, N = a.species, a.stoichiometry
    vectors = [law_vector(names, law.coefficients) for law in a.conservation_laws]
    for law, y in zip(a.conservation_laws, vectors):
        assert not np.any(y @ N), law
        if law.total is not None:
            assert law.total == int(y @ initial_vector(a.model))
    assert a.rank == rational_rank(N.T.tolist()) if N.size else a.rank == 0
    assert len(vectors) == len(names) - a.rank
    if vectors:
        assert rational_rank(vectors) == len(vectors)
    for e in a.eliminations:
        y = law_vector(names, e.law.coefficients)
        assert not np.any(y @ N)
        assert e.law.total == int(y @ initial_vector(a.model))
        for other in a.eliminations:
            if other is not e:
                assert e.species not in other.law.coefficients
    assert a.reduced_species == tuple(n for n in names if n not in a.eliminated)


# ------------------------------------------------------------------ the issue's cases
def test_toggle_switch_two_laws_two_eliminated():
    a = analyze(TOGGLE)
    check_laws(a)
    laws = {frozenset(l.coefficients.items()): l.total for l in a.conservation_laws}
    assert laws == {frozenset({("Gx", 1), ("Gx_off", 1)}): 1,
                    frozenset({("Gy", 1), ("Gy_off", 1)}): 1}
    assert len(a.eliminated) == 2
    assert {frozenset(e.law.coefficients) for e in a.eliminations} == {
        frozenset({"Gx", "Gx_off"}), frozenset({"Gy", "Gy_off"})}
    for g in ("Gx", "Gy", "Gx_off", "Gy_off"):
        assert a.bounds[g] == (0, 1)
    assert a.bounds["Px"] == (0, 79) and a.bounds["Py"] == (0, 79)
    assert a.log10_box == pytest.approx(np.log10(2**4 * 80**2))
    assert a.log10_reduced == pytest.approx(np.log10(2**2 * 80**2))
    assert a.unbounded() == ()


def test_mapk_phosphatase_law():
    a = analyze(MAPK)
    check_laws(a)
    assert len(a.species) == 16 and len(a.model.reactions) == 35
    phosphatase = {"S1": 1, "S10": 1, "S11": 1, "S12": 1, "S13": 1, "S14": 1, "S15": 1}
    assert [(dict(l.coefficients), l.total) for l in a.conservation_laws] == [(phosphatase, 1)]
    assert a.eliminated == ("S1",)
    for name in phosphatase:
        assert a.bounds[name] == (0, 1)
    assert a.bounds["S0"] == (0, None)
    assert "S0" in a.unbounded()


def test_early_life_total_100():
    a = analyze(EARLY_LIFE)
    check_laws(a)
    assert [(dict(l.coefficients), l.total) for l in a.conservation_laws] == [
        ({"S0": 1, "S1": 1, "S2": 1}, 100)]
    assert all(a.bounds[s] == (0, 100) for s in ("S0", "S1", "S2"))
    # all tie on bound: the largest initial count (S1 = S2 = 49 against S0 = 2), then model order
    assert a.eliminated == ("S1",)
    assert "largest initial count (49)" in a.eliminations[0].reason
    assert a.log10_reduced == pytest.approx(2 * np.log10(101))
    assert a.reachable_states == 101 * 102 // 2          # S0 + S2 <= 100


def test_schlogl_no_law_deficiency_one():
    a = analyze(SCHLOGL)
    check_laws(a)
    assert a.conservation_laws == () and a.eliminated == ()
    assert a.rank == 1
    g = a.graph
    assert g["n_complexes"] == 4 and g["n_linkage_classes"] == 2 and g["deficiency"] == 1
    assert sorted(g["complexes"]) == ["0", "2 X", "3 X", "X"]
    assert g["weakly_reversible"] is True
    assert a.reachable_states == 85


def test_enzyme_cycle_enzyme_and_substrate_totals():
    a = analyze(ENZYME_CYCLE)
    check_laws(a)
    laws = {frozenset(l.coefficients.items()): l.total for l in a.conservation_laws}
    assert laws == {frozenset({("E", 1), ("ES", 1)}): 3,
                    frozenset({("S", 1), ("ES", 1), ("P", 1)}): 10}
    assert a.bounds == {"E": (0, 3), "S": (0, 10), "ES": (0, 3), "P": (0, 10)}
    assert len(a.eliminated) == 2
    assert a.graph["weakly_reversible"] is False
    # E + ES = 3, S + ES + P = 10: ES in 0..3, then P in 0..10-ES; all reachable
    assert a.reachable_states == sum(11 - es for es in range(4))


def test_lattice_law_only_over_the_whole_lattice():
    a = analyze("""
        lattice chain(3)
        species A, B
        A <-> B @ 1, 2
        diffuse A @ 0.5
        init A = 2
    """)
    check_laws(a)
    assert a.species == ("A[0]", "A[1]", "A[2]", "B[0]", "B[1]", "B[2]")
    assert [(dict(l.coefficients), l.total) for l in a.conservation_laws] == [
        ({name: 1 for name in a.species}, 6)]
    assert all(a.bounds[n] == (0, 6) for n in a.species)
    assert len(a.eliminated) == 1
    # 6 particles among 6 boxes: C(6 + 5, 5)
    assert a.reachable_states == 462


def test_two_independent_subnetworks():
    a = analyze("""
        species A, B, C, D, E
        A <-> B @ 1, 1
        0 -> C @ 1
        C + D -> 0 @ 1
        init A = 4, D = 2
    """)
    check_laws(a)
    assert a.graph["components"] == [["A", "B"], ["C", "D"], ["E"]]
    laws = {frozenset(l.coefficients.items()): l.total for l in a.conservation_laws}
    assert laws == {frozenset({("A", 1), ("B", 1)}): 4, frozenset({("E", 1)}): 0}
    assert a.bounds["C"] == (0, None) and a.bounds["D"] == (0, None)
    assert a.reachable_states is None


def test_rate_reading_a_species_couples_components():
    a = analyze("""
        species A, B
        0 => A @ 1 + B
        A -> 0 @ 1
        0 -> B @ 1
        B -> 0 @ 1
    """)
    assert a.graph["components"] == [["A", "B"]]


def test_dimerisation_bounds_and_elimination():
    a = analyze(DIMER)
    check_laws(a)
    assert [(dict(l.coefficients), l.total) for l in a.conservation_laws] == [
        ({"P": 1, "P2": 2}, 100)]
    assert a.bounds == {"P": (0, 100), "P2": (0, 50)}
    assert a.eliminated == ("P",)
    assert a.reduced_species == ("P2",)
    assert a.eliminations[0].rebuild_terms() == (100, {"P2": 2}, 1)
    assert a.reachable_states == 51
    assert "P + 2 P2 = 100" in a.report()


def test_random_initial_total_is_reported_not_eliminated():
    a = analyze("""
        species A, B, C, D
        A <-> B @ 1, 1
        C <-> D @ 1, 1
        init A ~ poisson(3), C ~ uniform(2, 5), D = 1
    """)
    check_laws(a)
    laws = {frozenset(l.coefficients.items()): l.total for l in a.conservation_laws}
    assert laws == {frozenset({("A", 1), ("B", 1)}): None, frozenset({("C", 1), ("D", 1)}): None}
    assert a.eliminated == ()
    assert a.bounds["A"] == (0, None)           # a Poisson total has no largest value
    assert a.bounds["C"] == (0, 6) and a.bounds["D"] == (0, 6)   # at most 5 + 1
    assert "C + D = random" in a.report() and "(3..6)" in a.report()
    assert json.loads(json.dumps(a.to_dict()))["conservation_laws"][0]["total"] is None


def test_declared_bound_tighter_than_law_wins():
    a = analyze("""
        species A <= 3, B
        A <-> B @ 1, 1
        init B = 10
    """)
    assert a.bounds == {"A": (0, 3), "B": (0, 10)}
    assert a.eliminated == ("B",)                 # the larger bound
    assert a.reachable_states == 4                # A in 0..3, B = 10 - A


def test_lower_bound_above_law_bound_is_an_error():
    # the front end keeps init inside the bounds; a hand-built IR may not
    from dataclasses import replace

    model = crnlang.parse("""
        species A in 0..9, B
        A <-> B @ 1, 1
        init A = 1, B = 2
    """)
    model = replace(model, species=(replace(model.species[0], lo=5), model.species[1]))
    with pytest.raises(CRNAnalysisError, match="'A'"):
        crnlang.analyze(model)


def test_mixed_sign_law_gives_no_bound():
    a = analyze("""
        species A, B
        0 -> A + B @ 1
        A -> 0 @ 1
        B -> 0 @ 1
        A + B -> 0 @ 1
        2 A -> A @ 1
        2 B -> B @ 1
        A -> B @ 0
    """)
    check_laws(a)
    assert a.conservation_laws == ()            # A -> 0 and B -> 0 kill everything
    b = analyze("""
        species A, B
        0 -> A + B @ 1
        A + B -> 0 @ 1
        init A = 3
    """)
    check_laws(b)
    assert [(dict(l.coefficients), l.total) for l in b.conservation_laws] == [({"A": 1, "B": -1}, 3)]
    assert not b.conservation_laws[0].semi_positive
    assert b.bounds == {"A": (0, None), "B": (0, None)}
    assert b.eliminated == ("A",)
    assert b.unbounded() == ("B",)


def test_unbounded_eliminated_species_rebuilt_from_a_bounded_one():
    a = analyze("""
        species A, B <= 10
        0 -> A + B @ 1
        A + B -> 0 @ 1
        init A = 3
    """)
    check_laws(a)
    assert a.eliminated == ("A",)                # unbounded goes first
    assert a.bounds == {"A": (0, None), "B": (0, 10)}
    assert a.log10_box is None and a.log10_reduced == pytest.approx(np.log10(11))
    assert a.unbounded() == ()
    assert a.reachable_states == 11              # B in 0..10, A = 3 + B


def test_semi_positive_basis_when_rays_outnumber_dimensions():
    # y_A + y_B = y_C + y_D: four minimal semi-positive laws in a 3-dimensional space
    from crnlang.analysis.laws import semi_positive_rays
    from crnlang.analysis.linalg import integer_kernel

    a = analyze("""
        species A, B, C, D
        A + B -> C + D @ 1
        init A = 2, B = 3
    """)
    check_laws(a)
    assert all(l.semi_positive for l in a.conservation_laws)
    assert sorted(sorted(l.coefficients) for l in a.conservation_laws) == [
        ["A", "C"], ["A", "D"], ["B", "C"]]
    rays = semi_positive_rays(integer_kernel(a.stoichiometry.T))
    assert sorted(rays) == [[0, 1, 0, 1], [0, 1, 1, 0], [1, 0, 0, 1], [1, 0, 1, 0]]


def test_elimination_of_shared_species_rewrites_the_other_law():
    # ES has the largest bound in E + ES = 3 and is also in S + ES + P = 10
    a = analyze("""
        species E <= 2, S, ES, P
        E + S <-> ES @ 1, 1
        ES -> E + P @ 1
        P -> S @ 1
        init E = 1, ES = 2, S = 8
    """)
    check_laws(a)
    assert a.bounds == {"E": (0, 2), "S": (0, 10), "ES": (0, 3), "P": (0, 10)}
    assert a.eliminated == ("S", "ES")
    by_species = {e.species: e for e in a.eliminations}
    assert dict(by_species["ES"].law.coefficients) == {"E": 1, "ES": 1}
    assert dict(by_species["S"].law.coefficients) == {"E": -1, "S": 1, "P": 1}
    assert by_species["S"].law.total == 7
    assert "largest bound" in by_species["ES"].reason
    assert a.reachable_states == brute_force_reachable(a.model, a.bounds)


# ------------------------------------------------------------------ reachable states
def brute_force_reachable(model, bounds) -> int:
    """State-by-state search; a reaction fires where the reference propensity is > 0."""
    names = model.species_names
    N = stoichiometric_matrix(model)
    starts = [tuple(int(model.init_of(n).args[0]) for n in names)]
    seen = set(starts)
    todo = list(starts)
    while todo:
        x = todo.pop()
        state = dict(zip(names, x))
        for k, r in enumerate(model.reactions):
            if propensity(model, r, state) <= 0:
                continue
            y = tuple(int(v) for v in np.array(x) + N[:, k])
            if all(bounds[n][0] <= v <= bounds[n][1] for n, v in zip(names, y)) and y not in seen:
                seen.add(y)
                todo.append(y)
    return len(seen)


@pytest.mark.parametrize("text", [
    TOGGLE.replace("<= 79", "<= 6"),
    TOGGLE.replace("kinetics power", "kinetics binomial").replace("<= 79", "<= 5"),
    DIMER.replace("100", "17"),
    ENZYME_CYCLE,
    EARLY_LIFE.replace("S0 = 2, S1 = 49, S2 = 49", "S0 = 2, S1 = 5, S2 = 4"),
    """
    kinetics power
    species X <= 7, Y <= 4
    3 X -> Y @ 1
    Y -> 0 @ 1
    0 -> X @ 1
    init X = 0
    """,
    """
    species X <= 7, Y <= 4
    3 X -> Y @ 1
    Y -> 0 @ 1
    0 -> X @ 1
    init X = 0
    """,
])
def test_reachable_count_matches_brute_force(text):
    a = analyze(text)
    assert a.reachable_states == brute_force_reachable(a.model, a.bounds)


def test_reachable_respects_eliminated_species_bounds():
    # B is eliminated (B = 10 - A) and declared B <= 4, so A >= 6: A in 6..10
    a = analyze("""
        species A, B <= 4
        A <-> B @ 1, 1
        init A = 10
    """)
    assert a.eliminated == ("A",) or a.eliminated == ("B",)
    assert a.reachable_states == brute_force_reachable(a.model, a.bounds) == 5


def test_reachable_count_can_be_skipped():
    from crnlang.analysis.analyze import analyze as analyze_model

    model = crnlang.parse(DIMER)
    assert analyze_model(model, count_reachable=False).reachable_states is None
    assert analyze_model(model).reachable_states == 51


def test_reachable_from_random_initial_support():
    a = analyze("""
        species X <= 5
        X -> 0 @ 1
        init X ~ uniform(2, 3)
    """)
    assert a.reachable_states == 4               # 0..3


# ------------------------------------------------------------------ output
def test_to_dict_fields_and_json():
    a = analyze(TOGGLE)
    d = json.loads(json.dumps(a.to_dict()))
    for key in ("species", "reactions", "conservation_laws", "eliminated", "bounds", "log10_states"):
        assert key in d
    assert d["species"] == ["Gx", "Gy", "Gx_off", "Gy_off", "Px", "Py"]
    assert d["reactions"] == 8
    assert d["bounds"]["Px"] == [0, 79]
    assert d["conservation_laws"][0] == {"coefficients": {"Gx": 1, "Gx_off": 1}, "total": 1}
    assert set(d["log10_states"]) == {"box", "reduced"}
    assert d["eliminated"] == list(a.eliminated)
    m = analyze(MAPK).to_dict()
    assert m["bounds"]["S0"] == [0, None] and m["log10_states"] == {"box": None, "reduced": None}


def test_report_reads_well():
    text = analyze(TOGGLE).report()
    assert "Gx + Gx_off = 1" in text and "Gy + Gy_off = 1" in text
    assert "eliminated (2)" in text
    assert "25,600 states" in text                 # 2 * 2 * 80 * 80
    assert "deficiency" in text
    assert "unbounded" in analyze(MAPK).report()


def test_deterministic():
    assert analyze(MAPK).to_dict() == analyze(MAPK).to_dict()


def test_grid_lattice_graph_facts():
    a = analyze("""
        kinetics power
        lattice grid(2, 2)
        species X <= 10
        2 X -> 3 X @ 1
        3 X -> 2 X @ 1
        0 -> X @ 1
        X -> 0 @ 1
        diffuse X @ 1
        init X = 1
    """)
    assert a.rank == 4 and a.conservation_laws == ()
    g = a.graph
    # per site 2X, 3X, X, plus the shared 0; {2X, 3X} per site and one class for 0 and all X
    assert g["n_complexes"] == 13 and g["n_linkage_classes"] == 5 and g["deficiency"] == 4
    assert len(g["components"]) == 1


# ------------------------------------------------------------------ the shipped examples
EXAMPLE_FILES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.crn"))


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.stem for p in EXAMPLE_FILES])
def test_examples_analyze(path):
    a = crnlang.analyze(crnlang.load(path))
    check_laws(a)
    json.dumps(a.to_dict())
    assert a.report()


def test_mapk_example_file_has_the_phosphatase_law(examples_dir):
    path = examples_dir / "mapk.crn"
    if not path.exists():
        pytest.skip("examples/mapk.crn not there yet")
    a = crnlang.analyze(crnlang.load(path))
    phosphatase = {"S1": 1, "S10": 1, "S11": 1, "S12": 1, "S13": 1, "S14": 1, "S15": 1}
    assert [(dict(l.coefficients), l.total) for l in a.conservation_laws] == [(phosphatase, 1)]


# ------------------------------------------------------------------ small cases and random models
def test_no_reactions_every_species_is_constant():
    a = analyze("species A, B\ninit A = 2")
    assert [(dict(l.coefficients), l.total) for l in a.conservation_laws] == [
        ({"A": 1}, 2), ({"B": 1}, 0)]
    assert a.eliminated == ("A", "B") and a.reduced_species == ()
    assert a.reachable_states == 1 and a.log10_reduced == 0.0


def test_pure_catalyst_is_conserved():
    a = analyze("species G, P\nG -> G + P @ 1\ninit G = 1")
    assert [(dict(l.coefficients), l.total) for l in a.conservation_laws] == [({"G": 1}, 1)]
    assert a.eliminated == ("G",) and a.unbounded() == ("P",)


def random_model_text(draw) -> str:
    names = ["A", "B", "C", "D"][:draw(st.integers(1, 4))]
    complexes = st.lists(st.tuples(st.sampled_from(names), st.integers(1, 2)),
                         max_size=2, unique_by=lambda t: t[0])

    def side(terms):
        return " + ".join(f"{s} {n}" for n, s in terms) or "0"

    lines = [f"kinetics {draw(st.sampled_from(['binomial', 'falling', 'power']))}",
             "species " + ", ".join(f"{n} <= {draw(st.integers(1, 4))}" for n in names)]
    for _ in range(draw(st.integers(1, 5))):
        lhs, rhs = draw(complexes), draw(complexes)
        lines.append(f"{side(lhs)} -> {side(rhs)} @ 1")
    lines.append("init " + ", ".join(f"{n} = {draw(st.integers(0, 1))}" for n in names))
    return "\n".join(lines)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_random_models_laws_exact_and_reachable_brute_force(data):
    text = random_model_text(data.draw)
    a = analyze(text)
    check_laws(a)
    assert a.reachable_states == brute_force_reachable(a.model, a.bounds), text


@pytest.mark.slow
def test_large_networks_analyze_within_five_seconds():
    import sys
    import time

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_analysis import SCHLOGL_GRID, random_network, sparse_random_network

    for model in (crnlang.parse(SCHLOGL_GRID), random_network(), sparse_random_network()):
        t0 = time.perf_counter()
        a = crnlang.analyze(model)
        assert time.perf_counter() - t0 < 5.0
        assert len(a.conservation_laws) == len(a.species) - a.rank
