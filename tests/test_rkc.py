"""The Runge-Kutta-Chebyshev step (integrator = rkc) and the spectral-radius estimate that sets
its stages, on ODEs whose answer is known exactly."""
from __future__ import annotations

import math

import pytest
import torch

from crnlang.runtime.stepping import (rkc_coefficients, rkc_stages_for, rkc_step,
                                      spectral_radius)


def test_stability_bound_is_where_the_amplification_factor_leaves_the_unit_disc():
    """R(z) (one step of y' = z y, h = 1) has |R| < 1 on [-beta, 0) and |R| > 1 somewhere in
    (-1.2 beta, -beta); beta = (2/3)(s^2 - 1)(1 - 2 eps / 15), eps = 2/13 (the damping)."""
    for s in (2, 3, 5, 9, 16):
        beta = rkc_coefficients(s)[1]
        assert beta == pytest.approx(2 / 3 * (s * s - 1) * (1 - 2 / 13 * 2 / 15), rel=0.01)
        z = -beta * torch.linspace(1e-3, 1.2, 4000, dtype=torch.float64)
        amplification = rkc_step(lambda v, t: z * v, torch.ones_like(z), 0.0, 1.0, s).abs()
        inside = z >= -beta
        assert float(amplification[inside].max()) < 1.0
        assert float(amplification[~inside].max()) > 1.0


@pytest.mark.parametrize("stages", [2, 4, 9])
def test_second_order_on_a_nonlinear_time_dependent_ode(stages):
    """y' = -2 y + sin(t) y^2 against a fine rk4 reference: halving h quarters the error."""
    def f(y, t):
        return -2.0 * y + math.sin(t) * y * y

    def solve(n, step):
        y, h = torch.tensor([1.0], dtype=torch.float64), 1.0 / n
        for i in range(n):
            y = step(y, i * h, h)
        return float(y)

    def rk4(y, t, h):
        k1 = f(y, t); k2 = f(y + h / 2 * k1, t + h / 2); k3 = f(y + h / 2 * k2, t + h / 2)
        return y + h / 6 * (k1 + 2 * k2 + 2 * k3 + f(y + h * k3, t + h))

    exact = solve(4000, rk4)
    errors = [abs(solve(n, lambda y, t, h: rkc_step(f, y, t, h, stages)) - exact) for n in (10, 20, 40)]
    for coarse, fine in zip(errors, errors[1:]):
        assert 3.3 < coarse / fine < 4.8, errors


def test_stages_are_the_fewest_that_cover_h_rho():
    for h_rho in (0.0, 1.0, 5.0, 40.0, 700.0):
        s = rkc_stages_for(h_rho, safety=1.25)
        assert rkc_coefficients(s)[1] >= 1.25 * h_rho
        assert s == 2 or rkc_coefficients(s - 1)[1] < 1.25 * h_rho


def test_spectral_radius_of_a_linear_map_and_of_a_nonlinear_one():
    """The power method on difference quotients finds the largest |eigenvalue|."""
    gen = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(20, 20, dtype=torch.float64, generator=gen))
    eigenvalues = -torch.logspace(0, 3, 20, dtype=torch.float64)         # -1 .. -1000
    a = q @ torch.diag(eigenvalues) @ q.T
    y = torch.randn(20, dtype=torch.float64, generator=gen)
    rho, _ = spectral_radius(lambda v, t: a @ v, y, 0.0, None, 30, generator=gen)
    assert rho == pytest.approx(1000.0, rel=0.01)
    # f(y) = a y + y^3 / 10 near y: the Jacobian a + 3 diag(y^2) / 10 has rho within 1 % of 1000
    rho, direction = spectral_radius(lambda v, t: a @ v + v ** 3 / 10, y, 0.0, None, 30, generator=gen)
    jacobian = a + torch.diag(3 * y ** 2 / 10)
    assert rho == pytest.approx(float(torch.linalg.eigvalsh(jacobian).abs().max()), rel=0.02)
    # started from the last direction, 2 iterations suffice
    again, _ = spectral_radius(lambda v, t: a @ v, y, 0.0, direction, 2, generator=gen)
    assert again == pytest.approx(1000.0, rel=0.02)


def test_rkc_runs_the_stiff_linear_system_at_a_hundred_times_the_explicit_limit():
    """A diffusion-like system with rho = 1e4 run at h = 1e-2 (h rho = 100; heun would need
    h < 2e-4): the slow mode is followed to second-order accuracy."""
    eigenvalues = torch.tensor([-1.0, -10.0, -1e3, -1e4], dtype=torch.float64)
    y = torch.ones(4, dtype=torch.float64)
    h = 1e-2
    s = rkc_stages_for(h * 1e4)
    for i in range(100):
        y = rkc_step(lambda v, t: eigenvalues * v, y, i * h, h, s)
    assert float(y[0]) == pytest.approx(math.exp(-1.0), rel=1e-4)
    assert float(y[1]) == pytest.approx(math.exp(-10.0), rel=1e-2)
    assert abs(float(y[2])) < 1e-6 and abs(float(y[3])) < 1e-6
