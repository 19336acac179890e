"""The linearly implicit projected step (integrator = implicit, runtime/implicit.py).

Against exact answers: its system at h -> 0 is TDVP's (O - mean O, h E); on a stiff
immigration-death process (exit rate 2000 per unit time, relaxation rate 100) it follows
the closed-form Poisson law with steps far beyond 1 / exit rate, where the explicit Euler
step at the same length diverges.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import crnlang
from crnlang.runtime.implicit import implicit_system
from crnlang.runtime.natgrad import dense_scores
from crnlang.runtime.networks import make_network
from crnlang.runtime.solver import run_neural
from crnlang.runtime.stepping import local_rate

from test_neural import hellinger, poisson_box

STIFF = Path(__file__).resolve().parent / "data" / "stiff_immigration_death.crn"
BIRTH, DEATH, START = 1000.0, 100.0, 2.0


def stiff_lambda(t: float) -> float:
    """The law stays Poisson: mean 10 + (2 - 10) exp(-100 t)."""
    stationary = BIRTH / DEATH
    return stationary + (START - stationary) * math.exp(-DEATH * t)


@pytest.fixture(scope="module")
def stiff():
    model = crnlang.load(STIFF)
    return model, crnlang.compile(model)


def test_the_system_at_small_h_is_tdvps(stiff):
    """rows -> O - mean O and values / h -> E(n) as h -> 0, at random states of a random net."""
    model, kernel = stiff
    net = make_network("nade", list(kernel.LOWER), list(kernel.UPPER), hidden=8,
                       generator=torch.Generator().manual_seed(3))
    x = torch.arange(0, 40).unsqueeze(1)
    w = torch.full((40,), 1 / 40, dtype=torch.float64)
    h = 1e-12
    rows, values, O = implicit_system(net, kernel, x, w, 0.0, h)
    assert torch.allclose(O, dense_scores(net, x))
    assert torch.allclose(rows, O - w @ O, atol=1e-6)
    E = local_rate(net, kernel, x, 0.0)
    assert torch.allclose(values / h, E, rtol=1e-4, atol=1e-2)
    # and at a real step length the rows differ: the neighbours' scores enter
    rows_long, _, _ = implicit_system(net, kernel, x, w, 0.0, 1e-2)
    assert not torch.allclose(rows_long, O - w @ O, atol=1e-3)


def test_implicit_follows_a_stiff_law_with_long_steps(stiff):
    model, kernel = stiff
    settings = model.settings.updated(method="tdvp", integrator="implicit", dt=0.001, t_end=0.05,
                                      batch=500, save_every=10, sampling="mixture")
    result = run_neural(kernel, settings, tol=3e-3)
    errors = [hellinger(result.marginals["X"][i], poisson_box(stiff_lambda(t), 40))
              for i, t in enumerate(result.times)]
    assert max(errors) < 0.02, errors
    assert result.mean("X")[-1] == pytest.approx(stiff_lambda(0.05), rel=0.01)
    steps = np.array([h for _, h in result.extra["adaptive_steps"]])
    exit_rate = BIRTH + DEATH * BIRTH / DEATH      # at the stationary mean
    assert len(steps) < 80                         # explicit steps are held near 1 / exit rate: 100
    assert steps.max() > 10 / exit_rate            # the longest are 10x beyond (measured: 5.3e-3)


def test_explicit_euler_at_that_step_length_fails(stiff):
    """The baseline the implicit step beats: euler at h = 0.002 (h * exit rate = 4). Its step
    guard splits the 25 steps into 156 substeps and it still ends off (Hellinger 0.047 with
    the guard of 0.05 per species; 0.135 with the earlier 0.1)."""
    model, kernel = stiff
    settings = model.settings.updated(method="tdvp", integrator="euler", dt=0.002, t_end=0.05,
                                      batch=500, save_every=5, sampling="mixture")
    try:
        result = run_neural(kernel, settings)
    except crnlang.CRNError:
        return                                     # stopped with a clear error: fine too
    errors = [hellinger(result.marginals["X"][i], poisson_box(stiff_lambda(t), 40))
              for i, t in enumerate(result.times)]
    assert max(errors) > 0.035, errors              # measured: 0.047
    assert result.extra["substeps"] > 100           # the implicit run: fewer than 80 steps
