"""Tau-leaping against FSP: means within 1 %, marginals within Hellinger 0.02 (beyond the
sampling floor of the run count), never a state outside the support."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import crnlang
from crnlang.dispatch import compile, solve_fsp, solve_tau
from crnlang.model.grid import save_times
from crnlang.reference.ssa import trajectory_statistics
from crnlang.reference.tau import Leaper


def padded(p, q):
    width = max(len(p), len(q))
    return np.pad(p, (0, width - len(p))), np.pad(q, (0, width - len(q)))


def hellinger(p, q) -> float:
    p, q = padded(p, q)
    return float(np.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)))


def sampling_floor(p, runs: int) -> float:
    """The Hellinger distance a histogram of ``runs`` exact samples of p shows on average:
    sqrt(1/2 sum_j min((1 - p_j) / (4 runs), p_j))."""
    return float(np.sqrt(0.5 * np.sum(np.minimum((1 - p) / (4 * runs), p))))


def coarse(p, width: int):
    """P(x = 0..M-1) summed over bins of ``width`` counts."""
    p = np.pad(p, (0, -len(p) % width))
    return p.reshape(-1, width).sum(axis=1)


def assert_close_to_fsp(result, exact, runs, mean_tol=0.01, sd_tol=0.03, hellinger_tol=0.02):
    """Means within ``mean_tol`` and standard deviations within ``sd_tol`` (relative) at every
    saved time after 0. Every marginal's Hellinger distance to FSP, beyond the sampling floor
    of ``runs`` (in quadrature), within ``hellinger_tol``. The marginals are compared on bins
    a quarter of a standard deviation wide, where the floor of a few thousand runs is small.
    Coarse bins can only lower the distance, so the raw-bin check with 200,000 runs is a
    ``slow`` test."""
    for name in exact.species:
        rel = np.abs(result.means[name][1:] / exact.means[name][1:] - 1)
        assert rel.max() < mean_tol, (name, rel)
        sd = np.sqrt(exact.variances[name][1:])
        sd_rel = np.abs(np.sqrt(result.variances[name][1:]) / sd - 1)
        assert sd_rel.max() < sd_tol, (name, sd_rel)
        for i in range(1, len(exact.times)):
            width = max(1, int(sd[i - 1] / 4))
            p, q = padded(result.marginals[name][i], exact.marginals[name][i])
            p, q = coarse(p, width), coarse(q, width)
            excess = hellinger(p, q) ** 2 - sampling_floor(q, runs) ** 2
            assert excess < hellinger_tol ** 2, (name, exact.times[i], hellinger(p, q))


IMMIGRATION_DEATH = """
species X <= 1500
0 -> X @ 1000
X -> 0 @ 1
@solve(t_end = 2, dt = 0.5, save_every = 1)
"""

DIMERISATION = """
species X <= 14000
0 -> X @ 50000
2 X -> 0 @ 0.001
init X = 8000
@solve(t_end = 0.3, dt = 0.1, save_every = 1)
"""


def test_large_immigration_death_leaps_and_matches_fsp():
    model = crnlang.parse(IMMIGRATION_DEATH)
    runs = 20000
    result = solve_tau(model.with_settings(batch=runs, seed=3))
    assert result.method == "tau" and result.extra["leaps"] > 0
    assert result.extra["events"] > 20 * result.extra["leaps"] // 10   # leaps carry many events
    assert_close_to_fsp(result, solve_fsp(model), runs)
    assert "mean:X" in result.stderr and result.stderr["mean:X"][-1] > 0


def test_second_order_dimerisation_leaps_and_matches_fsp():
    """2 X -> 0 under binomial kinetics: the g_i = 2 + 1/(x - 1) branch of the step selection."""
    model = crnlang.parse(DIMERISATION)
    runs = 10000
    result = solve_tau(model.with_settings(batch=runs, seed=5))
    assert result.extra["leaps"] > 10 * result.extra["exact_steps"] / 1000
    events_per_leap = result.extra["events"] / max(result.extra["leaps"], 1)
    assert events_per_leap > 50
    assert_close_to_fsp(result, solve_fsp(model), runs)


@pytest.mark.parametrize("text", [
    # a decay from 5000 to 0: leaps while counts are large, critical near 0
    "species X <= 5000\nX -> 0 @ 2\ninit X = 5000\n@solve(t_end = 3, dt = 0.25, save_every = 1)\n",
    # an inflow pressed against a declared bound 1.1 standard deviations above the mean
    "species X <= 2050\n0 -> X @ 20000\nX -> 0 @ 10\ninit X = 1500\n"
    "@solve(t_end = 0.5, dt = 0.05, save_every = 1)\n",
])
def test_no_state_ever_leaves_the_support(text):
    """Critical reactions and rejected leaps keep every recorded count inside its bounds,
    and the truncated law is still FSP's (means within 1 %, or 4 standard errors)."""
    model = crnlang.parse(text).with_settings(batch=2000)
    kernel = compile(model)
    times = save_times(model.settings)
    traj, counts = Leaper(kernel, model.settings.epsilon).run(times, 2000, seed=1)
    assert int(traj.min()) >= 0 and int(traj.max()) <= kernel.UPPER[0]
    assert counts["leaps"] > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)    # FSP: the bound is pressed on purpose
        exact = solve_fsp(model)
    result = trajectory_statistics(kernel, times, traj, model.settings)
    se = result.stderr["mean:X"][1:]
    gap = np.abs(result.means["X"][1:] - exact.means["X"][1:])
    assert np.all(gap < 4 * se + 0.01 * exact.means["X"][1:]), gap


def test_small_counts_fall_back_to_exact_steps():
    """Birth-death with a mean of 10: a leap would cover a few events, so every step is exact
    and tau gives the SSA's law (means within 4 standard errors of FSP)."""
    model = crnlang.parse("species X <= 40\n0 -> X @ 10\nX -> 0 @ 1\n"
                          "@solve(t_end = 3, dt = 0.5, save_every = 1)\n")
    result = solve_tau(model.with_settings(batch=4000, seed=2))
    assert result.extra["leaps"] == 0 and result.extra["exact_steps"] > 0
    exact = solve_fsp(model)
    z = (result.means["X"][1:] - exact.means["X"][1:]) / result.stderr["mean:X"][1:]
    assert np.all(np.abs(z) < 4)


def test_epsilon_is_a_checked_setting():
    with pytest.raises(crnlang.CRNError, match="epsilon"):
        crnlang.parse("species X <= 5\n0 -> X @ 1\n@solve(method = tau, epsilon = 0)\n")
    result = crnlang.solve("species X\n0 -> X @ 1\n@solve(method = tau, t_end = 1, dt = 0.5, batch = 50)\n")
    assert result.method == "tau"          # no bound needed, like ssa


@pytest.mark.slow
def test_schlogl_chain_with_tau_matches_fsp():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "examples" / "schlogl1d.crn").read_text()
    model = crnlang.parse(text).with_settings(t_end=0.5, dt=0.01, save_every=10)
    runs = 20000
    result = solve_tau(model.with_settings(batch=runs, seed=4))
    assert_close_to_fsp(result, solve_fsp(model), runs)


@pytest.mark.slow
def test_immigration_death_raw_hellinger_with_many_runs():
    model = crnlang.parse(IMMIGRATION_DEATH)
    runs = 200_000
    result = solve_tau(model.with_settings(batch=runs, seed=6))
    exact = solve_fsp(model)
    for i in range(1, len(exact.times)):
        assert hellinger(result.marginals["X"][i], exact.marginals["X"][i]) < 0.02
