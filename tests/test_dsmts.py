"""The SBML Discrete Stochastic Model Test Suite (DSMTS) against FSP and SSA.

FSP must reproduce the analytic means and standard deviations to 1e-6 relative (or to the
CSV's printed precision, whichever is looser). SSA with 10^4 runs must pass the suite's own
criteria: Z = sqrt(n) (mean_sim - mean) / sd in (-3, 3) and Y = sqrt(n / 2) (var_sim / sd^2 - 1)
in (-5, 5) at every time, allowing the single rare failure a correct simulator shows now and
then (README-suite.md).

Y assumes the sample variance has the Gaussian standard error sd^2 sqrt(2/n), i.e. kurtosis 3.
Late in 00003 (birth-death heading for extinction) the kurtosis is about 100 and a correct
simulator fails Y at several times (checked against FSP: the variance is right to 2 robust
standard errors). So a Y failure is excused only where the sample kurtosis exceeds 5 AND the
kurtosis-corrected statistic (s^2 - sd^2) / sqrt((m4 - s^4) / n) lies in (-5, 5).
"""
from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest

import crnlang
from crnlang.dispatch import solve_fsp
from crnlang.dispatch import solve_ssa

DATA = Path(__file__).resolve().parent / "data" / "dsmts"
SUITE = DATA / "suite"   # the public suite (SBML, analytic tables), shipped with the tests
CASES = sorted(p.stem for p in DATA.glob("*.crn"))
SKIPPED = {   # crnlang has no events
    "00028": "event: X = 50 at t >= 25",
    "00029": "event: X = 20 at t >= 22.5",
    "00032": "event: P = 100, P2 = 0 at t >= 25",
    "00033": "event: P = 100, P2 = 0 when P2 > 30",
}
SLOW_FSP = {"00005", "00007", "00023", "00025"}       # 10^4-10^5 states with stiff rates
FAST_SSA = ["00001", "00020", "00030", "00037"]        # one per model family in the default run

pytestmark = pytest.mark.skipif(not SUITE.is_dir(), reason=f"DSMTS data not found at {SUITE}")


def analytic(case: str) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """times (51,), {variable: (mean, sd, printed precision of the values)}."""
    with open(SUITE / case / f"{case}-results.csv") as f:
        rows = list(csv.DictReader(f))
    times = np.array([float(r["time"]) for r in rows])
    table = {}
    for column in rows[0]:
        if column.endswith("-mean"):
            name = column[:-5]
            mean = np.array([float(r[column]) for r in rows])
            sd = np.array([float(r[f"{name}-sd"]) for r in rows])
            digits = [len(r[c].split(".")[1]) if "." in r[c] else 0
                      for r in rows for c in (column, f"{name}-sd")]
            table[name] = (mean, sd, 0.5 * 10.0 ** -min(digits))
    return times, table


def model_of(case: str):
    return crnlang.load(DATA / f"{case}.crn").with_settings(t_end=50.0, dt=1.0, save_every=1)


def test_every_case_is_translated_or_skipped_with_a_reason():
    suite = sorted(p.name for p in SUITE.iterdir() if p.is_dir())
    missing = [c for c in suite if c not in CASES and not SKIPPED.get(c)]
    assert not missing and len(CASES) == 35


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW_FSP else c
                                  for c in CASES])
def test_fsp_matches_analytic_mean_and_sd(case):
    times, table = analytic(case)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no truncation-edge warning
        res = solve_fsp(model_of(case))
    assert np.allclose(res.times, times)
    assert res.edge_mass.max() < 1e-12
    for name, (mean, sd, printed) in table.items():
        assert np.all(np.abs(res.mean(name) - mean) <= np.maximum(1e-6 * np.abs(mean), printed)), name
        assert np.all(np.abs(res.std(name) - sd) <= np.maximum(1e-6 * sd, printed)), name


@pytest.mark.parametrize("case", [c if c in FAST_SSA else pytest.param(c, marks=pytest.mark.slow)
                                  for c in CASES])
def test_ssa_passes_the_suite_criteria(case):
    runs = 10_000
    times, table = analytic(case)
    res = solve_ssa(model_of(case).with_settings(batch=runs, seed=int(case)))
    failures = 0
    for name, (mean, sd, _) in table.items():
        varying = sd > 0
        z = np.sqrt(runs) * (res.mean(name)[varying] - mean[varying]) / sd[varying]
        y = np.sqrt(runs / 2) * (res.var(name)[varying] / sd[varying] ** 2 - 1)
        var_se = res.stderr[f"var:{name}"][varying]          # sqrt((m4 - s^4) / n)
        kurtosis = (var_se ** 2 * runs + res.var(name)[varying] ** 2) / res.var(name)[varying] ** 2
        y_robust = (res.var(name)[varying] - sd[varying] ** 2) / var_se
        excused = (kurtosis > 5) & (np.abs(y_robust) < 5)
        failures += int(np.sum(np.abs(z) >= 3) + np.sum((np.abs(y) >= 5) & ~excused))
        # where the analytic sd is 0 the simulation must be exact
        assert np.array_equal(res.mean(name)[~varying], mean[~varying]), name
    assert failures <= 1, f"{case}: {failures} failed checks"
