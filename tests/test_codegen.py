"""The generated kernels against the reference interpreter (crnlang.model.semantics) and
brute force: propensities, the support rule, shifted in-fluxes, observables, the initial
distribution, the compile cache, and hostile names that must not become code."""
from __future__ import annotations

import io
import math
import py_compile
import tokenize

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crnlang
from crnlang.analysis.types import Analysis, ConservationLaw, Elimination
from crnlang.codegen import loader as loader_mod
from crnlang.dispatch import compile as compile_model
from crnlang.dispatch import emit
from crnlang.errors import CRNSemanticError
from crnlang.model.ir import (Binary, Call, Compare, Const, InitDist, Lattice, Logic, Model,
                              Observable, Param, ParamRef, Reaction, Species, SpeciesRef,
                              TimeRef, Unary)
from crnlang.model.semantics import evaluate, propensity


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("CRNLANG_CACHE", str(tmp_path_factory.getbasetemp() / "crn_cache"))


# ---------------------------------------------------------------- helpers
def plain_analysis(model: Model) -> Analysis:
    """No conservation laws, declared bounds: the reduced state is the full state (so the
    propensity tests do not depend on what the analysis eliminates)."""
    names = tuple(s.name for s in model.species)
    return Analysis(model=model, species=names, stoichiometry=np.zeros((len(names), 0), int),
                    rank=0, conservation_laws=(), eliminations=(), reduced_species=names,
                    bounds={s.name: (s.lo, s.hi) for s in model.species},
                    log10_box=None, log10_reduced=None)


def with_laws(model: Model, eliminations, bounds) -> Analysis:
    names = tuple(s.name for s in model.species)
    gone = {e.species for e in eliminations}
    return Analysis(model=model, species=names, stoichiometry=np.zeros((len(names), 0), int),
                    rank=0, conservation_laws=tuple(e.law for e in eliminations),
                    eliminations=tuple(eliminations),
                    reduced_species=tuple(n for n in names if n not in gone),
                    bounds=bounds, log10_box=None, log10_reduced=None)


def oracle_propensities(model, full_states, t):
    names = [s.name for s in model.species]
    out = np.zeros((len(full_states), len(model.reactions)))
    for b, row in enumerate(full_states):
        state = {n: int(v) for n, v in zip(names, row)}
        for k, r in enumerate(model.reactions):
            out[b, k] = propensity(model, r, state, t)
    return out


def box_states(bounds, names, rng, n, margin=0):
    """(n, L) random int states, each species uniform in [lo - margin, hi + margin]."""
    cols = []
    for name in names:
        lo, hi = bounds[name]
        hi = lo + 12 if hi is None else hi
        cols.append(rng.integers(max(lo - margin, 0) if margin == 0 else lo - margin,
                                 hi + margin + 1, size=n))
    return np.stack(cols, axis=1) if cols else np.zeros((n, 0), dtype=np.int64)


def in_box(row, names, bounds):
    for name, v in zip(names, row):
        lo, hi = bounds[name]
        if v < lo or (hi is not None and v > hi):
            return False
    return True


def toggle_model(kinetics="power") -> Model:
    """A gene switch with Gx + Gx_off = 1 (Gx eliminated), a hill-type `=>` rate and t."""
    return Model(
        name="toggle", kinetics=kinetics,
        params=(Param("sx", Const(50.0), 50.0), Param("b", Const(1e-2), 1e-2),
                Param("u", Const(0.1), 0.1)),
        species=(Species("Gx", 0, 1, "Gx"), Species("Px", 0, 30, "Px"),
                 Species("Gx_off", 0, 1, "Gx_off")),
        reactions=(
            Reaction("make", (("Gx", 1),), (("Gx", 1), ("Px", 1)), ParamRef("sx")),
            Reaction("bind", (("Gx", 1), ("Px", 2)), (("Gx_off", 1),), ParamRef("b")),
            Reaction("unbind", (("Gx_off", 1),), (("Gx", 1), ("Px", 2)), ParamRef("u")),
            Reaction("decay", (("Px", 1),), (), Const(1.0)),
            Reaction("leak", (), (("Px", 1),),
                     Binary("/", Binary("*", Const(3.0), SpeciesRef("Gx")),
                            Binary("+", Const(2.0), TimeRef())), mass_action=False)),
        init={"Gx": InitDist("fixed", (1,)), "Px": InitDist("poisson", (3.0,))},
        observables=(Observable("high", Compare(">", SpeciesRef("Px"), Const(20.0)), True, True),
                     Observable("total", Binary("+", SpeciesRef("Px"), SpeciesRef("Gx")), False)))


def toggle_analysis(model):
    law = ConservationLaw({"Gx": 1, "Gx_off": 1}, 1)
    return with_laws(model, [Elimination("Gx", law)],
                     {"Gx": (0, 1), "Px": (0, 30), "Gx_off": (0, 1)})


# ---------------------------------------------------------------- random models
NAMES = ["A", "B", "C", "D"]


@st.composite
def rate_exprs(draw, species, params, depth=2):
    leaves = [st.builds(Const, st.floats(0.1, 5.0)), st.sampled_from([TimeRef()])]
    if species:
        leaves.append(st.sampled_from([SpeciesRef(s) for s in species]))
    if params:
        leaves.append(st.sampled_from([ParamRef(p) for p in params]))
    if depth == 0 or draw(st.integers(0, 2)) == 0:
        return draw(st.one_of(leaves))
    sub = rate_exprs(species, params, depth - 1)
    kind = draw(st.sampled_from(["+", "*", "/", "^", "call", "minmax", "cmp", "neg"]))
    a, b = draw(sub), draw(sub)
    if kind in ("+", "*"):
        return Binary(kind, a, b)
    if kind == "/":
        return Binary("/", a, Binary("+", Const(1.0), Binary("*", b, b)))
    if kind == "^":
        return Binary("^", Binary("+", Const(1.0), Binary("*", a, a)),
                      Const(draw(st.sampled_from([0.5, 2.0, 1.5]))))
    if kind == "call":
        func = draw(st.sampled_from(["exp", "log", "sqrt", "sin", "cos", "abs"]))
        if func == "exp":
            return Call("exp", (Unary("-", Binary("*", a, a)),))
        if func in ("log", "sqrt"):
            return Call(func, (Binary("+", Const(1.0), Binary("*", a, a)),))
        return Call(func, (a,))
    if kind == "minmax":
        extra = draw(st.lists(sub, max_size=2))
        return Call(draw(st.sampled_from(["min", "max"])), (a, b, *extra))
    if kind == "cmp":
        cond = Compare(draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="])), a, b)
        if draw(st.booleans()):
            cond = Logic(draw(st.sampled_from(["and", "or"])),
                         (cond, Compare(">", b, Const(1.0))))
        if draw(st.booleans()):
            cond = Unary("not", cond)
        return Binary("*", cond, Const(2.0))
    return Binary("+", Const(5.0), Unary("-", Call("min", (a, Const(4.0)))))


@st.composite
def random_models(draw):
    n = draw(st.integers(1, 4))
    names = NAMES[:n]
    species = []
    for name in names:
        lo = draw(st.integers(0, 2))
        hi = draw(st.one_of(st.none(), st.integers(lo + 3, lo + 25)))
        species.append(Species(name, lo, hi, name))
    params = tuple(Param(f"k{i}", Const(v), v)
                   for i, v in enumerate(draw(st.lists(st.floats(0.01, 10.0), max_size=3))))
    pnames = [p.name for p in params]
    stoich = st.lists(st.tuples(st.sampled_from(names), st.integers(1, 3)), max_size=3,
                      unique_by=lambda t: t[0])
    reactions = []
    for k in range(draw(st.integers(1, 5))):
        mass_action = draw(st.booleans())
        simple = draw(st.booleans())
        if simple:
            rate = draw(st.one_of(st.builds(Const, st.floats(0.01, 10.0)),
                                  st.sampled_from([ParamRef(p) for p in pnames] or [Const(2.5)])))
        else:
            rate = draw(rate_exprs(names, pnames))
        reactions.append(Reaction(f"r{k}", tuple(draw(stoich)), tuple(draw(stoich)), rate,
                                  mass_action))
    observables = []
    for i in range(draw(st.integers(0, 2))):
        terms = tuple(Compare(draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="])),
                              SpeciesRef(draw(st.sampled_from(names))),
                              Const(float(draw(st.integers(0, 6)))))
                      for _ in range(draw(st.integers(1, 3))))
        expr = terms[0] if len(terms) == 1 else Logic(draw(st.sampled_from(["and", "or"])), terms)
        if draw(st.booleans()):
            expr = Logic("and", (expr, Unary("not", Compare(">", SpeciesRef(names[0]),
                                                            Const(9.0)))))
        observables.append(Observable(f"region{i}", expr, True, draw(st.booleans())))
    return Model(name="random", kinetics=draw(st.sampled_from(["binomial", "falling", "power"])),
                 params=params, species=tuple(species), reactions=tuple(reactions),
                 init={s.name: InitDist("fixed", (s.lo,)) for s in species},
                 observables=tuple(observables))


def absorbed(model, state):
    return any(evaluate(o.expr, model.param_values, state) for o in model.observables
               if o.absorbing)


def is_integer_valued(reaction, params):
    """Rate folds to a constant: the propensity is a constant times an integer."""
    from crnlang.model.ir import species_in, uses_time
    return not species_in(reaction.rate) and not uses_time(reaction.rate)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=random_models(), seed=st.integers(0, 2 ** 31), t=st.floats(0.0, 5.0))
def test_random_models_match_the_interpreter(model, seed, t):
    check_against_interpreter(model, seed, t)


@pytest.mark.slow
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=random_models(), seed=st.integers(0, 2 ** 31), t=st.floats(0.0, 5.0))
def test_random_models_match_the_interpreter_long(model, seed, t):
    check_against_interpreter(model, seed, t)


def check_against_interpreter(model, seed, t):
    """Propensities (exact where the rate is a constant), fires and in_support (brute force),
    shifted (a loop over reactions, and the interpreter at x - CHANGE[k])."""
    analysis = plain_analysis(model)
    kernel = compile_model(model, analysis)
    names = [s.name for s in model.species]
    bounds = analysis.bounds
    rng = np.random.default_rng(seed)
    states = box_states(bounds, names, rng, 40)
    x = torch.as_tensor(states)
    got = kernel.propensities(x, t).numpy()
    want = oracle_propensities(model, states, t)
    for k, r in enumerate(model.reactions):
        if is_integer_valued(r, model.param_values):
            np.testing.assert_array_equal(got[:, k], want[:, k], err_msg=r.label)
        else:
            np.testing.assert_allclose(got[:, k], want[:, k], rtol=1e-12, atol=1e-300,
                                       err_msg=r.label)
    # the support rule, brute force (states also outside the box)
    wide = box_states(bounds, names, rng, 60, margin=2)
    fires = kernel.fires(torch.as_tensor(wide)).numpy()
    support = kernel.in_support(torch.as_tensor(wide)).numpy()
    for b, row in enumerate(wide):
        assert support[b] == in_box(row, names, bounds)
        for k, r in enumerate(model.reactions):
            nxt = row + np.array([r.change().get(n, 0) for n in names])
            assert fires[b, k] == (in_box(row, names, bounds) and in_box(nxt, names, bounds))
    # out_rates = propensity where the reaction fires and x is not absorbed; observables
    out = kernel.out_rates(x, t).numpy()
    absorbing = kernel.absorbing(x).numpy()
    obs = kernel.observables(x, t)
    for b, row in enumerate(states):
        state = dict(zip(names, map(int, row)))
        assert absorbing[b] == absorbed(model, state)
        for o in model.observables:
            assert obs[o.name][b].item() == evaluate(o.expr, model.param_values, state, t)
        for k, r in enumerate(model.reactions):
            nxt = row + np.array([r.change().get(n, 0) for n in names])
            moves = in_box(nxt, names, bounds) and not absorbing[b]
            assert out[b, k] == (got[b, k] if moves else 0.0)
    # shifted against a loop over reactions, and against the oracle
    x_prev, a_in = kernel.shifted(x, t)
    for k in range(len(model.reactions)):
        prev_k = x - kernel.CHANGE[k]
        assert torch.equal(x_prev[:, k], prev_k)
        loop = torch.where(kernel.in_support(prev_k), kernel.out_rates(prev_k, t)[:, k], 0.0)
        np.testing.assert_allclose(a_in[:, k].numpy(), loop.numpy(), rtol=1e-14, atol=0)
    prev_np = x_prev.numpy()
    for b in range(len(states)):
        for k, r in enumerate(model.reactions):
            row = prev_np[b, k]
            state = dict(zip(names, map(int, row)))
            if in_box(row, names, bounds) and not absorbed(model, state):
                want_k = propensity(model, r, state, t)
                assert a_in[b, k].item() == pytest.approx(want_k, rel=1e-12, abs=1e-300)
            else:
                assert a_in[b, k].item() == 0.0


def random_walk(kernel, n_walkers, steps, seed):
    """(n_walkers * (steps + 1), L) states visited by walks from the initial distribution that
    take a uniformly chosen firing reaction each step (states stay in the support)."""
    gen = torch.Generator().manual_seed(seed)
    x = kernel.init_sample(n_walkers, gen)
    seen = [x]
    for _ in range(steps):
        can = kernel.fires(x).double()
        stuck = can.sum(1) == 0
        can[stuck] = 1.0
        k = torch.multinomial(can, 1, generator=gen)[:, 0]
        x = torch.where(stuck[:, None], x, x + kernel.CHANGE[k])
        seen.append(x)
    return torch.cat(seen)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=random_models(), seed=st.integers(0, 2 ** 31), t=st.floats(0.0, 5.0))
def test_random_models_with_the_real_analysis(model, seed, t):
    check_with_the_real_analysis(model, seed, t)


@pytest.mark.slow
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=random_models(), seed=st.integers(0, 2 ** 31), t=st.floats(0.0, 5.0))
def test_random_models_with_the_real_analysis_long(model, seed, t):
    check_with_the_real_analysis(model, seed, t)


def check_with_the_real_analysis(model, seed, t):
    """Through crnlang.analyze (eliminations included): along random walks every state is in
    the support, every conservation law holds for full_state, and the propensities equal the
    interpreter's at the full state."""
    analysis = crnlang.analyze(model)
    kernel = compile_model(model, analysis)
    x = random_walk(kernel, 8, 15, seed)
    assert torch.all(kernel.in_support(x))
    full = kernel.full_state(x)
    names = list(kernel.ALL_SPECIES)
    for law in analysis.conservation_laws:
        if law.total is None:
            continue
        coeffs = torch.tensor([law.coefficients.get(n, 0) for n in names])
        assert torch.all(full @ coeffs == law.total)
    np.testing.assert_allclose(kernel.propensities(x, t).numpy(),
                               oracle_propensities(model, full.numpy(), t), rtol=1e-12,
                               atol=1e-300)


# ---------------------------------------------------------------- conservation laws
def test_eliminated_species_rebuilt_everywhere():
    model = toggle_model()
    kernel = compile_model(model, toggle_analysis(model))
    assert kernel.SPECIES == ("Px", "Gx_off")
    assert kernel.ALL_SPECIES == ("Gx", "Px", "Gx_off")
    assert kernel.ELIMINATED == {"Gx": (1, {"Gx_off": 1}, 1)}
    assert kernel.CHANGE.tolist() == [[1, 0], [-2, 1], [2, -1], [-1, 0], [1, 0]]
    # every reduced state of the box; full states satisfy Gx = 1 - Gx_off
    px, off = torch.meshgrid(torch.arange(-1, 33), torch.arange(-1, 3), indexing="ij")
    x = torch.stack([px.reshape(-1), off.reshape(-1)], dim=1)
    full = kernel.full_state(x)
    assert torch.equal(full[:, 0], 1 - x[:, 1])
    bounds = {"Gx": (0, 1), "Px": (0, 30), "Gx_off": (0, 1)}
    names = list(kernel.ALL_SPECIES)
    support = kernel.in_support(x)
    fires = kernel.fires(x)
    t = 0.7
    a = kernel.propensities(x.clamp(min=0), t).numpy()
    want = oracle_propensities(model, kernel.full_state(x.clamp(min=0)).numpy(), t)
    np.testing.assert_allclose(a, want, rtol=1e-12)
    for b, row in enumerate(full.numpy()):
        assert support[b] == in_box(row, names, bounds)
        for k, r in enumerate(model.reactions):
            nxt = row + np.array([r.change().get(n, 0) for n in names])
            assert fires[b, k] == (in_box(row, names, bounds) and in_box(nxt, names, bounds))
    out = kernel.out_rates(x, t)
    high = x[:, 0] > 20
    assert torch.all(out[high] == 0)                      # absorbing region: no out-flux
    assert torch.equal(kernel.absorbing(x), high)


def test_non_unit_coefficient_elimination():
    """2 A + B = 10 with A eliminated: A = (10 - B) / 2, and odd B is outside the support."""
    model = Model(name="dimer", kinetics="binomial", params=(),
                  species=(Species("A", 0, None, "A"), Species("B", 0, 10, "B")),
                  reactions=(Reaction("r", (("A", 2),), (("B", 2),), Const(1.5)),
                             Reaction("s", (("B", 2),), (("A", 1),), SpeciesRef("A"))),
                  init={"A": InitDist("fixed", (5,))})
    law = ConservationLaw({"A": 2, "B": 1}, 10)
    kernel = compile_model(model, with_laws(model, [Elimination("A", law)],
                                            {"A": (0, 5), "B": (0, 10)}))
    x = torch.arange(-1, 12)[:, None]
    assert kernel.in_support(x).tolist() == [v % 2 == 0 and 0 <= v <= 10 for v in range(-1, 12)]
    even = torch.arange(0, 11, 2)[:, None]
    full = kernel.full_state(even)
    assert full[:, 0].tolist() == [5, 4, 3, 2, 1, 0]
    np.testing.assert_array_equal(kernel.propensities(even, 0.0).numpy(),
                                  oracle_propensities(model, full.numpy(), 0.0))
    assert kernel.init_support().tolist() == [[0]]
    assert kernel.init_log_prob(torch.tensor([[0], [2]])).tolist() == [0.0, -math.inf]


# ---------------------------------------------------------------- kinetics conventions
@pytest.mark.parametrize("kinetics, want", [
    ("binomial", lambda x: 2.0 * math.comb(x, 3)),
    ("falling", lambda x: 2.0 * x * (x - 1) * (x - 2)),
    ("power", lambda x: 2.0 * x ** 3),
])
def test_kinetics_conventions_closed_form(kinetics, want):
    model = Model(name="k", kinetics=kinetics, params=(),
                  species=(Species("X", 0, 50, "X"),),
                  reactions=(Reaction("r", (("X", 3),), (("X", 1),), Const(2.0)),), init={})
    kernel = compile_model(model, plain_analysis(model))
    x = torch.arange(0, 51)[:, None]
    got = kernel.propensities(x, 0.0)[:, 0].tolist()
    assert got == [want(v) for v in range(51)]


# ---------------------------------------------------------------- dtypes, devices
def test_float32_and_device_agnostic():
    model = toggle_model("binomial")
    kernel = compile_model(model, toggle_analysis(model))
    x = torch.tensor([[3, 0], [10, 1], [0, 0], [30, 0]])
    a64 = kernel.propensities(x, 0.5)
    a32 = kernel.propensities(x.float(), 0.5)
    assert a64.dtype == torch.float64 and a32.dtype == torch.float32
    torch.testing.assert_close(a32.double(), a64, rtol=1e-6, atol=0)
    assert kernel.out_rates(x.float(), 0.5).dtype == torch.float32
    x_prev, a_in = kernel.shifted(x.float(), torch.tensor(0.5))
    assert x_prev.dtype == torch.int64 and a_in.dtype == torch.float32
    obs = kernel.observables(x.float(), 0.5)
    assert obs["high"].dtype == torch.bool and obs["total"].dtype == torch.float32
    # no device is hard-coded: everything runs on the "meta" device (shapes only)
    xm = x.to("meta")
    assert kernel.propensities(xm, 0.5).device.type == "meta"
    assert kernel.fires(xm).shape == (4, 5)
    assert kernel.out_rates(xm, 0.5).device.type == "meta"
    assert kernel.shifted(xm, 0.5)[1].shape == (4, 5)


# ---------------------------------------------------------------- initial distribution
def test_initial_distribution_exact():
    model = Model(name="init", kinetics="binomial", params=(),
                  species=(Species("P", 0, None, "P"), Species("Q", 0, 6, "Q"),
                           Species("U", 0, 10, "U"), Species("N", 0, 20, "N"),
                           Species("F", 0, 9, "F")),
                  reactions=(), init={"P": InitDist("poisson", (2.5,)),
                                      "Q": InitDist("poisson", (4.0,)),
                                      "U": InitDist("uniform", (3, 7)),
                                      "N": InitDist("binomial", (20, 0.3)),
                                      "F": InitDist("fixed", (4,))})
    kernel = compile_model(model, plain_analysis(model))
    support = kernel.init_support()
    assert support is not None
    log_p = kernel.init_log_prob(support)
    assert torch.all(torch.isfinite(log_p))
    assert torch.logsumexp(log_p, 0).item() == pytest.approx(0.0, abs=1e-11)
    assert support[:, 0].max().item() >= 15                   # Poisson tail < 1e-12
    assert set(support[:, 2].tolist()) == set(range(3, 8))
    assert set(support[:, 4].tolist()) == {4}
    from scipy.stats import binom, poisson
    x = torch.tensor([[2, 3, 5, 6, 4]])
    q_trunc = poisson.pmf(3, 4.0) / poisson.cdf(6, 4.0)        # Q truncated to 0..6
    want = poisson.logpmf(2, 2.5) + math.log(q_trunc) + math.log(1 / 5) + binom.logpmf(6, 20, 0.3)
    assert kernel.init_log_prob(x).item() == pytest.approx(want, rel=1e-12)
    assert kernel.init_log_prob(torch.tensor([[2, 3, 5, 6, 5]])).item() == -math.inf
    assert kernel.init_log_prob(torch.tensor([[2, 7, 5, 6, 4]])).item() == -math.inf
    g = torch.Generator().manual_seed(0)
    s = kernel.init_sample(200_000, generator=g)
    assert s.dtype == torch.int64 and s.shape == (200_000, 5)
    assert torch.all(torch.isfinite(kernel.init_log_prob(s)))
    means = s.double().mean(0).tolist()
    q = np.arange(7)
    q_mean = float((q * poisson.pmf(q, 4.0)).sum() / poisson.cdf(6, 4.0))
    want_means = [2.5, q_mean, 5.0, 6.0, 4.0]
    sds = [math.sqrt(2.5), 2.0, math.sqrt(2.0), math.sqrt(20 * 0.21), 0.0]
    for got, w, sd in zip(means, want_means, sds):
        assert abs(got - w) <= 5 * sd / math.sqrt(200_000) + 1e-12
    # the same generator seed gives the same samples
    again = kernel.init_sample(1000, generator=torch.Generator().manual_seed(3))
    assert torch.equal(again, kernel.init_sample(1000, generator=torch.Generator().manual_seed(3)))


def test_initial_distribution_with_elimination():
    model = toggle_model()
    kernel = compile_model(model, toggle_analysis(model))
    support = kernel.init_support()
    assert torch.all(support[:, 1] == 0)                       # Gx_off = 0, so Gx = 1
    assert torch.logsumexp(kernel.init_log_prob(support), 0).item() == pytest.approx(0, abs=1e-11)
    assert kernel.init_log_prob(torch.tensor([[3, 1]])).item() == -math.inf
    s = kernel.init_sample(500, torch.Generator().manual_seed(1))
    assert torch.all(s[:, 1] == 0) and s[:, 0].max() <= 30


def test_init_outside_the_bounds_is_an_error():
    model = Model(name="bad", kinetics="binomial", params=(), species=(Species("X", 0, 5, "X"),),
                  reactions=(), init={"X": InitDist("fixed", (9,))})
    with pytest.raises(CRNSemanticError, match="X"):
        emit(model, plain_analysis(model))


# ---------------------------------------------------------------- the generated file
def test_generated_source_compiles_and_reads(tmp_path):
    model = toggle_model()
    src = emit(model, toggle_analysis(model))
    path = tmp_path / "kernel.py"
    path.write_text(src)
    py_compile.compile(str(path), doraise=True)
    assert src.startswith("# Generated by crnlang " + crnlang.__version__)
    assert "a[1] = 0.01 * (f[0] * (f[1] ** 2.0))" in src   # folded, power kinetics
    kernel = compile_model(model, toggle_analysis(model))
    for name in ["NAME", "SPECIES", "ALL_SPECIES", "ELIMINATED", "LOWER", "UPPER", "FULL_LOWER",
                 "FULL_UPPER", "DECLARED_UPPER", "REACTIONS", "CHANGE", "CHANGE_FULL", "REACTANTS", "TIME_DEPENDENT",
                 "OBSERVABLES", "BOOLEAN", "ABSORBING", "INTERVALS", "MODEL", "full_state", "in_support",
                 "propensities", "fires", "out_rates", "shifted", "observables", "absorbing",
                 "init_log_prob", "init_sample", "init_support"]:
        assert hasattr(kernel, name), name
    assert kernel.LOWER == (0, 0) and kernel.UPPER == (30, 1)
    assert kernel.ABSORBING == ("high",) and kernel.BOOLEAN == (True, False)
    assert kernel.TIME_DEPENDENT is True
    assert kernel.MODEL.name == "toggle" and kernel.MODEL.kinetics == "power"
    assert kernel.DECLARED_UPPER == {s.name: s.hi for s in model.species if s.hi is not None}
    assert not hasattr(kernel.MODEL, "settings")      # solver settings are not the kernel's


def test_compile_cache_hits_and_recompiles(tmp_path, monkeypatch):
    monkeypatch.setenv("CRNLANG_CACHE", str(tmp_path))
    monkeypatch.setattr(loader_mod, "_LOADED", {})
    model = toggle_model()
    analysis = toggle_analysis(model)
    first = compile_model(model, analysis)
    assert compile_model(model, analysis) is first
    files = list(tmp_path.glob("kernel_*.py"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    monkeypatch.setattr(loader_mod, "_LOADED", {})                # a fresh process
    again = compile_model(model, analysis)
    assert again is not first and again.__name__ == first.__name__
    assert files[0].stat().st_mtime_ns == stamp                 # read from the cache, not rewritten
    changed = Model(**{**model.__dict__, "params": (Param("sx", Const(7.0), 7.0),) + model.params[1:]})
    other = compile_model(changed, toggle_analysis(changed))
    assert other.__name__ != first.__name__
    assert other.propensities(torch.tensor([[0, 0]]), 0.0)[0, 0].item() == 7.0
    monkeypatch.setattr(crnlang.version, "__version__", "9.9.9")
    newer = compile_model(model, analysis)
    assert newer.__name__ != first.__name__ and newer.MODEL.crnlang_version == "9.9.9"
    assert len(list(tmp_path.glob("kernel_*.py"))) == 3
    assert not list(tmp_path.glob(".*.tmp"))      # no temporary file left


# ---------------------------------------------------------------- hostile input
HOSTILE = [
    "__import__", "os.system('touch MARKER')", "Ωμέγα", "x\u2028import os", "__builtins__",
    "a\nimport os\nos.system('touch MARKER')", "'''", '"; touch MARKER; "', "x\r\nos.system('y')",
]


def test_hostile_names_cannot_inject_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = HOSTILE[:5] + ["e0", "f", "r", "a", "t", "torch", "_ks", "math"]
    species = tuple(Species(n, 0, 9, n) for n in names)
    evil_path = f"{tmp_path}/m.crn\nimport os; os.system('touch MARKER')  # \u2028 \x00"
    reactions = tuple(
        Reaction(HOSTILE[i % len(HOSTILE)] + f" {i}", ((n, 1),), ((names[(i + 1) % len(names)], 2),),
                 Binary("*", SpeciesRef(names[(i + 2) % len(names)]), ParamRef("__class__")))
        for i, n in enumerate(names))
    model = Model(name="evil\nimport os; os.system('touch MARKER')", kinetics="binomial",
                  params=(Param("__class__", Const(2.0), 2.0),), species=species,
                  reactions=reactions, init={names[0]: InitDist("poisson", (1.0,))},
                  observables=(Observable("os.system('touch MARKER')",
                                          Compare(">", SpeciesRef(names[1]), Const(3.0)), True),),
                  source=evil_path)
    analysis = plain_analysis(model)
    src = emit(model, analysis)
    code_text = " ".join(tok.string for tok in tokenize.generate_tokens(io.StringIO(src).readline)
                         if tok.type not in (tokenize.COMMENT, tokenize.STRING))
    for needle in ["MARKER", "system", "Ωμέγα", "__import__", "__builtins__", "__class__"]:
        assert needle not in code_text, needle
    kernel = compile_model(model, analysis)
    assert not (tmp_path / "MARKER").exists()
    assert kernel.SPECIES == tuple(names)
    assert kernel.REACTIONS == tuple(r.label for r in reactions)
    assert str(tmp_path) not in src and kernel.NAME == model.name   # the path stays out
    assert set(kernel.OBSERVABLES) == {"os.system('touch MARKER')"}
    x = torch.as_tensor(box_states(analysis.bounds, names, np.random.default_rng(0), 20))
    np.testing.assert_allclose(kernel.propensities(x, 0.0).numpy(),
                               oracle_propensities(model, x.numpy(), 0.0), rtol=1e-12)


def test_folding_around_species():
    """`and`/`or` can fold to a constant although they read a species; what wraps them folds."""
    x_gt_1 = Compare(">", SpeciesRef("X"), Const(1.0))
    always = Compare("<", Const(1.0), Const(2.0))
    rates = [Binary("*", Unary("not", Logic("or", (x_gt_1, always))), Const(3.0)),
             Binary("+", Logic("and", (x_gt_1, always)), Const(0.5)),
             Call("max", (Logic("or", (x_gt_1, always)), Const(0.25), SpeciesRef("X"))),
             Compare("==", Logic("and", (x_gt_1, Unary("not", always))), Const(0.0))]
    model = Model(name="fold", kinetics="binomial", params=(),
                  species=(Species("X", 0, 9, "X"),),
                  reactions=tuple(Reaction(f"r{i}", (), (("X", 1),), r, False)
                                  for i, r in enumerate(rates)), init={})
    kernel = compile_model(model, plain_analysis(model))
    states = np.arange(10)[:, None]
    np.testing.assert_array_equal(kernel.propensities(torch.as_tensor(states), 0.0).numpy(),
                                  oracle_propensities(model, states, 0.0))


def test_hostile_file_through_the_front_end(tmp_path, monkeypatch):
    """A real file whose path (and so default model name) holds a newline and code, with
    unicode names: the kernel imports, creates nothing, and keeps the names as data."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "m\nimport os; os.system('touch MARKER')\n.crn"
    path.write_text("species Ωμέγα <= 5, X_1 <= 3\n"
                    "bind: Ωμέγα + X_1 -> 0 @ 2\n0 -> Ωμέγα @ 1\ninit X_1 = 3\n"
                    "observe sys = Ωμέγα > 2\n", encoding="utf-8")
    model = crnlang.load(path)
    src = emit(model)
    code_text = " ".join(tok.string for tok in tokenize.generate_tokens(io.StringIO(src).readline)
                         if tok.type not in (tokenize.COMMENT, tokenize.STRING))
    assert "MARKER" not in code_text and "Ωμέγα" not in code_text
    kernel = compile_model(model)
    assert not (tmp_path / "MARKER").exists()
    assert str(tmp_path) not in src and "Ωμέγα" in kernel.ALL_SPECIES
    x = torch.tensor([[0, 3], [4, 1]])[:, :len(kernel.SPECIES)]
    full = kernel.full_state(x)
    np.testing.assert_array_equal(kernel.propensities(x, 0.0).numpy(),
                                  oracle_propensities(model, full.numpy(), 0.0))


def test_parsed_model_with_funcs_stdlib_time_and_all_kinetics():
    """Text through the front end: a user func, stdlib rate laws, t, min/max and a
    conservation law, in each kinetics convention, against the interpreter."""
    for kinetics in ("binomial", "falling", "power"):
        model = crnlang.parse(f"""
            kinetics {kinetics}
            use ratelaws
            param k = 0.3, K = 4
            func pulse(a) = 1 + sin(a * t) ^ 2
            species G in 0..1, G_on in 0..1, R <= 12, P <= 15
            G + 2 R <-> G_on @ k, 2
            0 => R @ 3 * hillr(P, K, 2) * pulse(0.5)
            G_on => G_on + P @ mm(R, 5, K) + min(P, 2, t)
            3 P -> P + R @ k / 10
            R -> 0 @ max(1, R / 4)
            init G = 1, R ~ poisson(2), P ~ binomial(6, 0.5)
            observe active = G_on > 0 and P >= 2
            observe load = R + 2 * G_on
        """)
        kernel = compile_model(model)
        assert kernel.ELIMINATED and kernel.TIME_DEPENDENT
        x = random_walk(kernel, 20, 25, seed=1)
        full = kernel.full_state(x)
        for t in (0.0, 1.7):
            np.testing.assert_allclose(kernel.propensities(x, t).numpy(),
                                       oracle_propensities(model, full.numpy(), t),
                                       rtol=1e-12, atol=1e-300)
        support = kernel.init_support()
        assert torch.logsumexp(kernel.init_log_prob(support), 0).item() == pytest.approx(0, abs=1e-9)


def test_literals_roundtrip():
    from crnlang.codegen.exprs import float_literal
    for v in [0.1, 1e-300, -2.5, 1 / 3, 1e22, -0.0]:
        text = float_literal(v)
        assert float(text.strip("()")) == v
    assert evaluate(Binary("^", Const(2.0), Const(0.5)), {}) == 2.0 ** 0.5


# ---------------------------------------------------------------- lattice and examples
def schlogl_grid(rows=3, cols=3) -> Model:
    c1, c2, c3, c4, d = 2.676, 0.040, 108.102, 37.881, 8.2207
    params = tuple(Param(n, Const(v), v) for n, v in
                   [("c1", c1), ("c2", c2), ("c3", c3), ("c4", c4), ("d", d)])
    sites = [(r, c) for r in range(rows) for c in range(cols)]
    species = tuple(Species(f"X[{r},{c}]", 0, 84, "X", (r, c)) for r, c in sites)
    reactions = []
    for r, c in sites:
        x = f"X[{r},{c}]"
        reactions += [Reaction(f"r1_{r}_{c}", ((x, 2),), ((x, 3),), ParamRef("c1")),
                      Reaction(f"r2_{r}_{c}", ((x, 3),), ((x, 2),), ParamRef("c2")),
                      Reaction(f"r3_{r}_{c}", (), ((x, 1),), ParamRef("c3")),
                      Reaction(f"r4_{r}_{c}", ((x, 1),), (), ParamRef("c4"))]
    for r, c in sites:
        for dr, dc in [(0, 1), (1, 0), (0, -1), (-1, 0)]:
            if 0 <= r + dr < rows and 0 <= c + dc < cols:
                reactions.append(Reaction(f"X_hop_{r}_{c}_{r + dr}_{c + dc}",
                                          ((f"X[{r},{c}]", 1),), ((f"X[{r + dr},{c + dc}]", 1),),
                                          ParamRef("d")))
    low = Logic("and", tuple(Compare("<=", SpeciesRef(s.name), Const(15.0)) for s in species))
    return Model(name="schlogl2d", kinetics="power", params=params, species=species,
                 reactions=tuple(reactions), init={s.name: InitDist("fixed", (50,)) for s in species},
                 observables=(Observable("low", low, True),),
                 lattice=Lattice("grid", (rows, cols)))


def test_schlogl_grid_exact():
    model = schlogl_grid()
    kernel = compile_model(model, plain_analysis(model))
    assert len(kernel.REACTIONS) == 36 + 24 and kernel.MODEL.lattice["shape"] == [3, 3]
    rng = np.random.default_rng(5)
    states = rng.integers(0, 85, size=(300, 9))
    got = kernel.propensities(torch.as_tensor(states), 0.0).numpy()
    np.testing.assert_array_equal(got, oracle_propensities(model, states, 0.0))
    low = kernel.observables(torch.as_tensor(states), 0.0)["low"].numpy()
    np.testing.assert_array_equal(low, (states <= 15).all(axis=1))
    assert kernel.init_support().tolist() == [[50] * 9]


def example_files():
    from tests.conftest import EXAMPLES
    return sorted(EXAMPLES.glob("*.crn"))


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.stem)
def test_examples_match_the_interpreter(path):
    """Every example through the real front end and analysis: propensities, observables and
    the support rule against the interpreter and brute force, on random supported states."""
    model = crnlang.load(path)
    kernel = compile_model(model, crnlang.analyze(model))
    full_bounds = dict(zip(kernel.ALL_SPECIES, zip(kernel.FULL_LOWER, kernel.FULL_UPPER)))
    rng = np.random.default_rng(0)
    x = torch.as_tensor(box_states(full_bounds, kernel.SPECIES, rng, 3000))
    x = torch.cat([x[kernel.in_support(x)][:300], random_walk(kernel, 10, 20, 0)])
    full = kernel.full_state(x)
    names = list(kernel.ALL_SPECIES)
    t = 0.3
    np.testing.assert_allclose(kernel.propensities(x, t).numpy(),
                               oracle_propensities(model, full.numpy(), t), rtol=1e-12,
                               atol=1e-300)
    obs = kernel.observables(x, t)
    fires = kernel.fires(x).numpy()
    absorbing = kernel.absorbing(x).numpy()
    for b, row in enumerate(full.numpy()):
        state = dict(zip(names, map(int, row)))
        for o in model.observables:
            want = evaluate(o.expr, model.param_values, state, t)
            assert obs[o.name][b].item() == pytest.approx(want, rel=1e-12), o.name
        for k, r in enumerate(model.reactions):
            nxt = row + np.array([r.change().get(n, 0) for n in names])
            assert fires[b, k] == in_box(nxt, names, full_bounds)
        assert absorbing[b] == any(evaluate(o.expr, model.param_values, state)
                                   for o in model.observables if o.absorbing)
    support = kernel.init_support()
    if support is not None:
        lp = kernel.init_log_prob(support)
        assert torch.logsumexp(lp, 0).item() == pytest.approx(0.0, abs=1e-9)
