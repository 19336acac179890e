"""SBML import/export (crnlang.io.sbml), checked against the DSMTS analytic results and by
round trips of every example."""
from __future__ import annotations

import csv
import math
import random
from dataclasses import replace
from pathlib import Path

import libsbml
import numpy as np
import pytest

import crnlang
from crnlang.errors import CRNError
from crnlang.io.mathml import canonical
from crnlang.io.sbml import NAMESPACE, export_sbml, import_sbml, read_sbml_model
from crnlang.model.semantics import propensity

REPO = Path(__file__).resolve().parents[1]
DSMTS = REPO / "tests" / "data" / "dsmts" / "suite"   # the public suite, shipped with the tests
EXAMPLES = sorted((REPO / "examples").glob("*.crn"))

CASES = [f"{i:05d}" for i in range(1, 40)]
EVENT_CASES = {"00028", "00029", "00032", "00033"}
RULE_CASES = {"00019"}
PLAIN_CASES = [c for c in CASES if c not in EVENT_CASES | RULE_CASES]
# FSP of these needs 10^4..4*10^5 states (initial 10^4 copies, or two unbounded species): slow
SLOW_CASES = {"00005", "00007", "00023", "00025"}


def sbml_path(case: str) -> Path:
    return DSMTS / case / f"{case}-sbml-l3v2.xml"


def _solve_fsp(model, **settings):
    return crnlang.solve(model, method="fsp", **settings)


def read_results(case: str) -> tuple[dict[str, list[str]], list[float]]:
    """column -> the csv cells as text (their printed precision matters), and the times."""
    with open(DSMTS / case / f"{case}-results.csv") as f:
        rows = list(csv.DictReader(f))
    columns = {k: [r[k] for r in rows] for k in rows[0] if k != "time"}
    return columns, [float(r["time"]) for r in rows]


def printed_half_unit(cell: str) -> float:
    """Half a unit in the last printed digit of a csv cell: '61.26264' -> 5e-6."""
    text = cell.strip().lower().split("e")[0]
    decimals = len(text.split(".")[1]) if "." in text else 0
    return 0.5 * 10.0 ** -decimals


def bounds_from_results(columns: dict[str, list[str]], species: str, start: int) -> tuple[int, int]:
    """A truncation box holding mean +- 25 sd at every time (and the start)."""
    mean = np.array([float(v) for v in columns[f"{species}-mean"]])
    sd = np.array([float(v) for v in columns[f"{species}-sd"]])
    lo = max(0, int(math.floor(min((mean - 25 * sd).min(), start))) - 5)
    hi = int(math.ceil(max((mean + 25 * sd).max(), start))) + 5
    return lo, hi


def _with_bounds(model, columns):
    species = []
    for s in model.species:
        if f"{s.name}-mean" in columns:
            lo, hi = bounds_from_results(columns, s.name, int(model.init_of(s.name).args[0]))
            s = replace(s, lo=lo, hi=hi)
        species.append(s)
    return replace(model, species=tuple(species))


# ---------------------------------------------------------------- DSMTS
@pytest.mark.parametrize("case", PLAIN_CASES)
def test_dsmts_case_imports_and_parses(case):
    text, warnings = import_sbml(sbml_path(case), default_bound=100)
    model = crnlang.parse(text)
    columns, _ = read_results(case)
    for name in {c.rsplit("-", 1)[0] for c in columns}:
        assert name in model.species_names or name in model.param_values, name
    # every DSMTS law is mass action under the chosen convention
    assert all(r.mass_action for r in model.reactions), text


def _check_against_results(case: str) -> None:
    text, _ = import_sbml(sbml_path(case))
    columns, times = read_results(case)
    model = _with_bounds(crnlang.parse(text), columns)
    res = _solve_fsp(model, t_end=times[-1], dt=times[1] - times[0], save_every=1)
    assert np.allclose(res.times, times)
    assert res.edge_mass is None or res.edge_mass.max() < 1e-12
    checked = 0
    for column, cells in columns.items():
        name, what = column.rsplit("-", 1)
        if name not in res.species:
            continue          # a boundary species (a parameter here): constant, sd 0
        ours = res.mean(name) if what == "mean" else res.std(name)
        for t, cell, value in zip(times, cells, ours):
            expected = float(cell)
            tol = 1e-6 * abs(expected) + printed_half_unit(cell)
            assert abs(value - expected) <= tol, (case, column, t, value, expected)
        checked += 1
    assert checked >= 2


@pytest.mark.parametrize("case", [c for c in PLAIN_CASES if c not in SLOW_CASES])
def test_dsmts_fsp_matches_analytic_mean_and_sd(case):
    """FSP of the imported model agrees with the analytic mean and sd at t = 0..50 to 1e-6
    relative, plus half a unit of the csv's last printed digit (the csv's own precision)."""
    _check_against_results(case)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(SLOW_CASES))
def test_dsmts_fsp_matches_analytic_large_cases(case):
    _check_against_results(case)


def test_dsmts_dimerisation_law_is_binomial():
    model, _, _ = read_sbml_model(sbml_path("00030"))
    assert model.kinetics == "binomial"
    dimer = next(r for r in model.reactions if r.label == "Dimerisation")
    assert dimer.mass_action and dimer.rate == crnlang.model.ir.ParamRef("k1")
    # propensity k1 * P * (P - 1) / 2 exactly
    assert propensity(model, dimer, {"P": 7, "P2": 0}) == pytest.approx(0.001 * 7 * 6 / 2)


def test_dsmts_concentration_species_read_per_volume():
    """00011: X has hasOnlySubstanceUnits=false in a compartment of size 2: Lambda*X is
    Lambda * amount / 2 (the analytic mean decays as exp(-0.005 t))."""
    text, _ = import_sbml(sbml_path("00011"))
    assert "concentration" in text
    model = crnlang.parse(text)
    birth = next(r for r in model.reactions if r.label == "Birth")
    assert propensity(model, birth, {"X": 10}) == pytest.approx(0.1 * 10 / 2)


def test_dsmts_local_parameter_shadowing_a_global_is_renamed():
    """00022: Immigration has a local Alpha = 5 shadowing the global Alpha = 10."""
    text, _ = import_sbml(sbml_path("00022"))
    model = crnlang.parse(text)
    assert model.param_values["Alpha"] == 10
    immigration = next(r for r in model.reactions if r.label == "Immigration")
    assert propensity(model, immigration, {"X": 3}) == 5
    assert "Immigration_Alpha" in model.param_values


@pytest.mark.parametrize("case", sorted(EVENT_CASES))
def test_dsmts_events_give_a_clear_error(case):
    with pytest.raises(CRNError) as err:
        import_sbml(sbml_path(case))
    assert "event 'reset'" in str(err.value)
    assert "lenient" in str(err.value)


def test_dsmts_rule_gives_a_clear_error():
    with pytest.raises(CRNError, match="assignment rule for 'y'"):
        import_sbml(sbml_path("00019"))


def test_lenient_import_warns_and_comments():
    text, warnings = import_sbml(sbml_path("00019"), lenient=True)
    assert any("assignment rule for 'y'" in w for w in warnings)
    assert "# warning: left out: assignment rule for 'y'" in text
    model = crnlang.parse(text)
    assert "X" in model.species_names
    text, warnings = import_sbml(sbml_path("00033"), lenient=True)
    assert any("event 'reset'" in w for w in warnings)
    crnlang.parse(text)


# ---------------------------------------------------------------- hand-made SBML
def _doc(level=3, version=2):
    doc = libsbml.SBMLDocument(level, version)
    m = doc.createModel()
    m.setId("hand")
    c = m.createCompartment()
    c.setId("cell")
    c.setSize(2.0)
    c.setConstant(True)
    return doc, m


def _species(m, sid, amount=None, conc=None, only_substance=True, boundary=False):
    s = m.createSpecies()
    s.setId(sid)
    s.setCompartment("cell")
    if amount is not None:
        s.setInitialAmount(amount)
    if conc is not None:
        s.setInitialConcentration(conc)
    s.setHasOnlySubstanceUnits(only_substance)
    s.setBoundaryCondition(boundary)
    s.setConstant(False)
    return s


def _param(m, pid, value):
    p = m.createParameter()
    p.setId(pid)
    p.setValue(value)
    p.setConstant(True)


def _reaction(m, rid, reactants, products, formula, reversible=False, local=()):
    r = m.createReaction()
    r.setId(rid)
    r.setReversible(reversible)
    for sid, s in reactants:
        ref = r.createReactant()
        ref.setSpecies(sid)
        ref.setStoichiometry(s)
        ref.setConstant(True)
    for sid, s in products:
        ref = r.createProduct()
        ref.setSpecies(sid)
        ref.setStoichiometry(s)
        ref.setConstant(True)
    kl = r.createKineticLaw()
    for pid, value in local:
        lp = kl.createLocalParameter()
        lp.setId(pid)
        lp.setValue(value)
    kl.setMath(libsbml.parseL3Formula(formula))  # test input only; the importer walks the AST
    return r


def _text(doc) -> str:
    return libsbml.writeSBMLToString(doc)


def test_falling_and_power_conventions_are_recognised():
    doc, m = _doc()
    _species(m, "P", amount=10)
    _species(m, "Q", amount=0)
    _param(m, "k", 0.5)
    _reaction(m, "dimer", [("P", 2)], [("Q", 1)], "k * P * (P - 1)")
    model, _, _ = read_sbml_model(_text(doc))
    assert model.kinetics == "falling"
    assert model.reactions[0].rate == crnlang.model.ir.ParamRef("k")
    doc, m = _doc()
    _species(m, "P", amount=10)
    _species(m, "Q", amount=0)
    _param(m, "k", 0.5)
    _reaction(m, "dimer", [("P", 2)], [("Q", 1)], "k * P^2")
    model, _, _ = read_sbml_model(_text(doc))
    assert model.kinetics == "power"
    assert propensity(model, model.reactions[0], {"P": 3, "Q": 0}) == pytest.approx(4.5)


def test_non_mass_action_law_becomes_whole_propensity():
    doc, m = _doc()
    _species(m, "S", amount=10)
    _species(m, "P", amount=0)
    _param(m, "V", 2.0)
    _param(m, "Km", 5.0)
    _reaction(m, "mm", [("S", 1)], [("P", 1)], "V * S / (Km + S)")
    text, _ = import_sbml(_text(doc))
    assert "=>" in text
    model = crnlang.parse(text)
    r = model.reactions[0]
    assert not r.mass_action
    assert propensity(model, r, {"S": 5, "P": 0}) == pytest.approx(2.0 * 5 / 10)


def test_reversible_law_is_split_into_two_reactions():
    doc, m = _doc()
    for sid, a in (("A", 5), ("B", 3), ("C", 0)):
        _species(m, sid, amount=a)
    _param(m, "kf", 0.1)
    _param(m, "kr", 2.0)
    _reaction(m, "bind", [("A", 1), ("B", 1)], [("C", 1)], "kf * A * B - kr * C", reversible=True)
    model = crnlang.parse(import_sbml(_text(doc))[0])
    fwd, rev = model.reactions
    assert (fwd.label, rev.label) == ("bind_fwd", "bind_rev")
    state = {"A": 5, "B": 3, "C": 2}
    assert propensity(model, fwd, state) == pytest.approx(0.1 * 15)
    assert propensity(model, rev, state) == pytest.approx(4.0)
    assert rev.reactants == (("C", 1),)


def test_function_definitions_are_inlined_and_names_sanitised():
    doc, m = _doc()
    fd = m.createFunctionDefinition()
    fd.setId("hill")
    fd.setMath(libsbml.parseL3Formula("lambda(x, n, K, x^n / (K^n + x^n))"))
    _species(m, "t", amount=4)      # 't' is crnlang's time: renamed
    _species(m, "P", amount=0)
    _param(m, "sum", 3.0)           # a crnlang builtin name: renamed
    _reaction(m, "make", [], [("P", 1)], "sum * hill(t, 2, 2)")
    text, _ = import_sbml(_text(doc))
    model = crnlang.parse(text)
    assert "t_" in model.species_names and "sum_" in model.param_values
    r = model.reactions[0]
    assert propensity(model, r, {"t_": 4, "P": 0}) == pytest.approx(3.0 * 16 / 20)


def test_initial_concentration_is_converted_to_an_amount():
    doc, m = _doc()
    _species(m, "X", conc=5.0, only_substance=False)
    _param(m, "k", 1.0)
    _reaction(m, "decay", [("X", 1)], [], "k * X")
    text, _ = import_sbml(_text(doc))
    assert "concentration 5 x volume 2" in text
    model = crnlang.parse(text)
    assert model.init_of("X").args == (10,)
    assert propensity(model, model.reactions[0], {"X": 4}) == pytest.approx(2.0)


def test_boundary_species_become_parameters():
    doc, m = _doc()
    _species(m, "Src", amount=7, boundary=True)
    _species(m, "X", amount=0)
    _param(m, "k", 0.5)
    _reaction(m, "feed", [("Src", 1)], [("X", 1)], "k * Src")
    model = crnlang.parse(import_sbml(_text(doc))[0])
    assert model.species_names == ("X",)
    assert model.param_values["Src"] == 7
    assert model.reactions[0].reactants == ()
    assert propensity(model, model.reactions[0], {"X": 0}) == pytest.approx(3.5)


def test_every_unsupported_feature_is_listed_by_id():
    doc, m = _doc()
    _species(m, "X", amount=1)
    _species(m, "Y", amount=1)
    _param(m, "k", 1.0)
    _param(m, "q", 1.0)
    p = m.getParameter("q")
    p.setConstant(False)
    rr = m.createRateRule()
    rr.setVariable("q")
    rr.setMath(libsbml.parseL3Formula("1"))
    ar = m.createAlgebraicRule()
    ar.setMath(libsbml.parseL3Formula("X - Y"))
    _reaction(m, "half", [("X", 1)], [("Y", 1.5)], "k * X")
    _reaction(m, "late", [("Y", 1)], [], "k * delay(Y, 2)")
    _reaction(m, "step", [], [("X", 1)], "piecewise(1, X < 3, 0)")
    with pytest.raises(CRNError) as err:
        import_sbml(_text(doc))
    msg = str(err.value)
    for needle in ("rate rule for 'q'", "algebraic rule", "non-integer stoichiometry 1.5",
                   "'half'", "reaction 'late'", "delay", "reaction 'step'", "piecewise"):
        assert needle in msg, needle
    text, warnings = import_sbml(_text(doc), lenient=True)
    assert len(warnings) >= 5
    crnlang.parse(text)


def test_bad_file_is_a_crn_error(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<sbml><model></sbml")
    with pytest.raises(CRNError):
        import_sbml(bad)
    with pytest.raises(CRNError, match="no such SBML file"):
        import_sbml(tmp_path / "missing.xml")


# ---------------------------------------------------------------- export and round trips
def _canonical_model(model):
    return replace(model, source="<x>",
                   reactions=tuple(replace(r, rate=canonical(r.rate)) for r in model.reactions),
                   observables=tuple(replace(o, expr=canonical(o.expr)) for o in model.observables),
                   params=tuple(replace(p, expr=canonical(p.expr)) for p in model.params))


def _random_states(model, n, seed=0):
    rng = random.Random(seed)
    for _ in range(n):
        yield {s.name: rng.randint(s.lo, s.hi if s.hi is not None else s.lo + 50) for s in model.species}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_sbml_round_trip(path):
    model = crnlang.load(path)
    xml = export_sbml(model)
    doc = libsbml.readSBMLFromString(xml)
    assert (doc.getLevel(), doc.getVersion()) == (3, 2)
    doc.checkConsistency()
    errors = [doc.getError(i).getMessage() for i in range(doc.getNumErrors())
              if doc.getError(i).getSeverity() >= libsbml.LIBSBML_SEV_ERROR]
    assert not errors
    assert NAMESPACE in xml
    for s in doc.getModel().getListOfSpecies():
        assert s.getHasOnlySubstanceUnits()
    text, warnings = import_sbml(xml)
    assert not warnings
    back = crnlang.parse(text)
    # equal up to the associativity of + and * (MathML writes nested products n-ary)
    assert _canonical_model(back) == _canonical_model(model)
    for state in _random_states(model, 20):
        for r1, r2 in zip(model.reactions, back.reactions):
            assert propensity(back, r2, state, 1.3) == pytest.approx(propensity(model, r1, state, 1.3),
                                                                     rel=1e-14, abs=0)


def test_export_writes_mass_action_convention_out():
    model = crnlang.parse("""
        kinetics binomial
        param k = 0.5
        species P <= 10, P2 <= 5
        dimer: 2 P -> P2 @ k
        init P = 10
    """)
    xml = export_sbml(model)
    doc = libsbml.readSBMLFromString(xml)   # keep the document alive while using its parts
    law = doc.getModel().getReaction("dimer").getKineticLaw().getMath()
    assert libsbml.formulaToL3String(law).replace(" ", "") == "k*(P*(P-1)/2)"
    # another tool reading the law without our annotation gets the same propensity
    plain = xml.replace(NAMESPACE, "https://example.org/other")
    other = crnlang.parse(import_sbml(plain, default_bound=10)[0])
    assert other.kinetics == "binomial"
    assert propensity(other, other.reactions[0], {"P": 6, "P2": 0}) == pytest.approx(0.5 * 15)


def test_round_trip_keeps_non_fixed_init_settings_and_exact_values():
    text = """
        model odd
        kinetics falling
        param a = 1 / 3, b = a * 2 + pi
        species X <= 20, Y in 2..9
        X -> Y @ a * (b * t)
        2 Y => X @ b * Y / (1 + Y)
        init X ~ poisson(3.5)
        init Y ~ uniform(2, 5)
        observe big = X > 10 or not Y <= 3
        absorb big
        @solve(method = ssa, t_end = 7.5, seed = 3)
        @network(gru, hidden = 8)
        @sampling(alpha, alpha = 0.4, reweight = false)
    """
    model = crnlang.parse(text)
    back = crnlang.parse(import_sbml(export_sbml(model))[0])
    assert _canonical_model(back) == _canonical_model(model)
    assert back.param_values["a"] == 1 / 3


def test_round_trip_fsp_result_is_the_same():
    model = crnlang.load(REPO / "examples" / "birth_death.crn")
    back = crnlang.parse(import_sbml(export_sbml(model))[0])
    a = _solve_fsp(model, t_end=2.0, dt=0.5, save_every=1)
    b = _solve_fsp(back, t_end=2.0, dt=0.5, save_every=1)
    for name in a.species:
        np.testing.assert_array_equal(a.mean(name), b.mean(name))
        np.testing.assert_array_equal(a.var(name), b.var(name))


def test_level2_documents_import():
    doc = libsbml.readSBMLFromFile(str(sbml_path("00022")))
    assert doc.setLevelAndVersion(2, 4, False)
    model = crnlang.parse(import_sbml(libsbml.writeSBMLToString(doc))[0])
    immigration = next(r for r in model.reactions if r.label == "Immigration")
    assert propensity(model, immigration, {"X": 3}) == 5     # the local Alpha, renamed


def test_reserved_and_odd_ids_are_renamed_and_stated():
    doc, m = _doc()
    _species(m, "lambda", amount=2)     # a Python keyword
    _species(m, "__x", amount=1)        # leading '__' is reserved in crnlang
    _param(m, "init", 0.5)              # a crnlang keyword
    _reaction(m, "r", [("lambda", 1)], [("__x", 1)], "init * lambda")
    text, _ = import_sbml(_text(doc))
    model = crnlang.parse(text)
    assert set(model.species_names) == {"lambda_", "n__x"}
    assert "SBML id 'lambda' is 'lambda_' here" in text
    assert propensity(model, model.reactions[0], {"lambda_": 4, "n__x": 0}) == pytest.approx(2.0)


def test_law_reading_a_reaction_id_is_unsupported():
    doc, m = _doc()
    _species(m, "X", amount=2)
    _param(m, "k", 1.0)
    _reaction(m, "first", [("X", 1)], [], "k * X")
    _reaction(m, "second", [], [("X", 1)], "first")    # the rate of another reaction
    with pytest.raises(CRNError, match="reaction 'second': a reference to 'first'"):
        import_sbml(_text(doc))


# ---------------------------------------------------------------- random models
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_rate_atoms = st.sampled_from(["a", "b", "0.5", "2", "1e-3", "A", "t", "(1 + B)"])
_rates = st.recursive(_rate_atoms, lambda inner: st.one_of(
    st.tuples(inner, st.sampled_from(["+", "*"]), inner).map(lambda x: f"({x[0]} {x[1]} {x[2]})"),
    st.tuples(inner, st.sampled_from(["2", "(1 + B)", "b"])).map(lambda x: f"({x[0]} / {x[1]})"),
    inner.map(lambda x: f"exp({x} / 100)"),
    st.tuples(inner, inner).map(lambda x: f"max({x[0]}, {x[1]})")), max_leaves=5)
_side = st.lists(st.tuples(st.integers(1, 3), st.sampled_from(["A", "B", "C"])), max_size=2,
                 unique_by=lambda x: x[1]).map(
    lambda terms: " + ".join(f"{s} {n}" for s, n in terms) if terms else "0")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinetics=st.sampled_from(["binomial", "falling", "power"]),
       reactions=st.lists(st.tuples(_side, _side, st.booleans(), _rates), min_size=1, max_size=4))
def test_random_models_survive_the_sbml_round_trip(kinetics, reactions):
    lines = [f"kinetics {kinetics}", "param a = 0.7, b = 3", "species A <= 6, B <= 4, C <= 5"]
    lines += [f"{lhs} {'->' if ma else '=>'} {rhs} @ {rate}" for lhs, rhs, ma, rate in reactions]
    lines += ["init A = 2, C = 1"]
    model = crnlang.parse("\n".join(lines) + "\n")
    back = crnlang.parse(import_sbml(export_sbml(model))[0])
    assert _canonical_model(back) == _canonical_model(model)
    # a tool that ignores our annotation still reads the same propensities
    foreign = crnlang.parse(import_sbml(export_sbml(model).replace(NAMESPACE, "urn:other"),
                                        default_bound=6)[0])
    assert len(foreign.reactions) == len(model.reactions)
    for state in _random_states(model, 6, seed=len(reactions)):
        for t in (0.0, 0.9):
            for r1, r2 in zip(model.reactions, foreign.reactions):
                assert propensity(foreign, r2, state, t) == pytest.approx(propensity(model, r1, state, t),
                                                                          rel=1e-12, abs=1e-300)
