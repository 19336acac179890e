"""FSP against closed forms and an independent dense matrix exponential."""
from __future__ import annotations

import math
import numpy as np
import pytest
from scipy.integrate import quad
from scipy.linalg import expm
from scipy.stats import poisson

import crnlang
from crnlang.errors import CRNAnalysisError, CRNSolverError
from crnlang.model.grid import save_times
from crnlang.dispatch import solve_fsp
from kernels.dense import dense_cme
from kernels.models import immigration_death, schlogl_chain, toggle_switch


def fsp(model, **kw):
    return solve_fsp(model, **kw)


def test_save_grid():
    from crnlang.model.ir import Settings

    assert np.allclose(save_times(Settings(t_end=1.0, dt=0.1, save_every=2)), np.arange(6) * 0.2)
    assert np.allclose(save_times(Settings(t_end=1.0, dt=0.3, save_every=2)), [0, 0.6, 0.9])
    assert save_times(Settings(t_end=40.0, dt=0.005, save_every=10))[-1] == 40.0


def test_immigration_death_poisson_start_is_poisson_at_all_times():
    """0 -> X @ k, X -> 0 @ g from Poisson(3): P(t) = Poisson(3 e^-gt + k/g (1 - e^-gt))."""
    model = immigration_death(k=10, g=1, hi=80, init="X ~ poisson(3)", t_end=5, dt=0.01,
                              save_every=25)
    res = fsp(model)
    lam = 3 * np.exp(-res.times) + 10 * (1 - np.exp(-res.times))
    assert res.times[0] == 0 and res.times[-1] == 5
    assert np.max(np.abs(res.mean("X") - lam)) < 1e-8
    assert np.max(np.abs(res.var("X") - lam)) < 1e-8
    exact = poisson.pmf(np.arange(81)[None, :], lam[:, None])
    assert res.marginals["X"].shape == (len(res.times), 81)
    assert np.max(np.abs(res.marginals["X"] - exact)) < 1e-8
    assert res.edge_mass.max() < 1e-12 and not res.warnings
    assert res.method == "fsp" and res.settings["t_end"] == 5


def test_time_dependent_immigration_matches_its_ode():
    """k(t) = 10 (1 + 0.5 sin 2t): from X = 0 the law stays Poisson with m' = k(t) - m."""
    model = immigration_death(k="10 * (1 + 0.5 * sin(2 * t))", g=1, hi=60, t_end=3, dt=0.01,
                              save_every=50)
    res = fsp(model)
    m = [quad(lambda s: 10 * (1 + 0.5 * math.sin(2 * s)) * math.exp(-(t - s)), 0, t,
              epsabs=1e-13, epsrel=1e-13)[0] for t in res.times]
    assert np.max(np.abs(res.mean("X") - m)) < 1e-6
    exact = poisson.pmf(np.arange(61)[None, :], np.array(m)[:, None])
    assert np.max(np.abs(res.marginals["X"] - exact)) < 1e-7


def _dense_solution(model, start, times):
    """P at uniformly spaced ``times`` by one dense expm of the step, applied repeatedly."""
    states, A = dense_cme(model, start)
    step = expm(A * (times[1] - times[0]))
    p = np.zeros(len(states))
    p[0] = 1.0
    out = [p]
    for _ in times[1:]:
        out.append(step @ out[-1])
    return states, out


def test_toggle_switch_matches_dense_expm_at_M20():
    model = toggle_switch(M=20, t_end=2.0, dt=0.5, save_every=1)
    with pytest.warns(UserWarning, match="truncation edge"):
        res = fsp(model)
    states, dense = _dense_solution(model, {"Gx": 1, "Gy": 1}, res.times)
    states = np.array(states)
    names = model.species_names
    for i, t in enumerate(res.times):
        p = dense[i]
        for j, name in enumerate(names):
            assert abs(res.mean(name)[i] - p @ states[:, j]) < 1e-9
            marg = np.bincount(states[:, j], weights=p, minlength=len(res.marginal(name, t)))
            assert np.max(np.abs(res.marginal(name, t) - marg)) < 1e-10
        assert abs(res.prob("x_wins")[i] - p[states[:, 4] > states[:, 5]].sum()) < 1e-10
    assert res.edge_mass[-1] > 1e-2          # M = 20 is far too tight for this model ...
    assert "truncation edge" in res.warnings[0]     # ... and FSP says so, naming the bounds
    assert "Px <= 19" in res.warnings[0] and "Gx <= 1" not in res.warnings[0]


def test_schlogl_one_site_absorption_curve_matches_dense_expm():
    model = schlogl_chain(1, hi=84, absorb_low=True, t_end=1.0, dt=0.05, save_every=2)
    res = fsp(model)
    states, dense = _dense_solution(model, {"X[0]": 50}, res.times)
    low = np.array([s[0] <= 15 for s in states])
    curve = np.array([p[low].sum() for p in dense])
    assert np.all(np.diff(res.prob("low")) >= -1e-14)     # first passage: never decreases
    assert curve[-1] > 1e-3
    assert np.max(np.abs(res.prob("low") - curve)) < 1e-10
    # absorbed mass stays put: the mean inside the region is frozen states' mean
    mean = np.array([p @ np.array(states)[:, 0] for p in dense])
    assert np.max(np.abs(res.mean("X[0]") - mean)) < 1e-8


def test_numeric_observable_mean_and_variance():
    model = immigration_death(k=4, g=1, hi=40, t_end=2, dt=0.1, save_every=5)
    model = crnlang.parse(model.source_text + "\nobserve twice = 2 * X\n")
    res = fsp(model)
    assert np.allclose(res.mean("twice"), 2 * res.mean("X"), atol=1e-12)
    assert np.allclose(res.var("twice"), 4 * res.var("X"), atol=1e-12)


def test_edge_mass_warning_fires_when_bound_too_tight():
    model = immigration_death(k=10, g=1, hi=12, t_end=3, dt=0.1, save_every=10)
    with pytest.warns(UserWarning, match="truncation edge"):
        res = fsp(model)
    assert res.edge_mass[-1] > 1e-2
    assert "X <= 12" in res.warnings[0]
    # the truncated system is still solved exactly: mass is conserved
    assert np.allclose(res.marginals["X"].sum(axis=1), 1.0, atol=1e-12)


def test_memory_guard(monkeypatch):
    model = toggle_switch(M=40, t_end=1.0, dt=0.1, save_every=10)
    with pytest.raises(CRNSolverError, match=r"reachable states.*limit of 1,000") as err:
        fsp(model, max_states=1000)
    assert "ssa" in err.value.hint
    monkeypatch.setenv("CRNLANG_FSP_MAX_STATES", "500")
    with pytest.raises(CRNSolverError, match="limit of 500"):
        fsp(model)


def test_unbounded_species_is_refused_with_a_hint():
    model = immigration_death(hi=None, t_end=1)
    with pytest.raises(CRNAnalysisError, match="'X'") as err:
        fsp(model)
    assert "X <= " in err.value.hint


def test_memory_guard_on_a_wide_initial_distribution():
    """init_support() gives up above 1e6 states; FSP then refuses a box above its limit."""
    model = crnlang.parse("""
        species X <= 1999, Y <= 1999
        X -> 0 @ 1
        init X ~ uniform(0, 1999), Y ~ uniform(0, 1999)
    """)
    with pytest.raises(CRNSolverError, match="initial distribution is spread over a box of 4,000,000"):
        fsp(model, max_states=100_000)


def test_two_site_schlogl_reproduces_the_published_exact_numbers():
    """METHOD.md: for 2 sites at t = 1 an exact solve gives P(low) ~ 7.5e-2, P(high) ~ 0.77."""
    res = fsp(schlogl_chain(2, t_end=1.0, dt=0.01, save_every=50))
    assert res.extra["states"] == 85 * 85
    assert abs(res.prob("low")[-1] - 0.0751) < 1e-4
    assert abs(res.prob("high")[-1] - 0.771) < 1e-3
    assert res.edge_mass.max() < 1e-4
    assert np.allclose(res.mean("total"), res.mean("X[0]") + res.mean("X[1]"))
