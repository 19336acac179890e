"""The linearly implicit projected step: backward Euler on the network, stable at any h.

Backward Euler on the CME, P' = P + h A P', at a sample n reads P'(n) (1 - h E'(n)) = P(n),
with E' the local rate of the new distribution. Write the new network as theta' = theta +
delta and its log P as log P + u - c, u(n) = O(n) . delta (O the score, c the change of the
normaliser). The neighbour ratios then change by exp(u(n - nu_k) - u(n)) (c cancels), so

    exp(-(u(n) - c)) - 1 + h [sum_k r_k(n) exp(u(n - nu_k) - u(n)) - out(n)] = 0,

    r_k(n) = a_in_k(n) P(n - nu_k) / P(n)      (the in-flux terms of E(n) = sum_k r_k - out).

Linearised in u (one Newton step from theta, the Rosenbrock-Euler step of the projected flow):

    (O(n) - h G(n)) . delta - c = h E(n),    G(n) = sum_k r_k(n) (O(n - nu_k) - O(n)),

solved in the weighted least-squares sense over the samples (the free constant c is the
centring) with lambda damping, exactly as TDVP's O theta_dot = E. As h -> 0 it is h times the
TDVP velocity; for a model the network represents exactly it is linearised backward Euler,
L-stable, so the step is limited by accuracy (how fast the distribution moves), not by the
largest exit rate (how fast probability hops between neighbouring states).

Step control (``implicit_step``): each step is a whole step and two half steps, extrapolated
to second order (2 theta_halves - theta_whole); the gap between the two is backward Euler's
local error, measured in log P over plain samples of P_theta, and h grows or shrinks to keep
it near ``tol`` (a rejected step is redone with the same random numbers). The three solves
cost three TDVP solves with K + 1 score rows per sample; on the 2-site Schlögl chain the
step settles near h ~ 1.5e-2, about 1000 times the explicit limit 1 / (exit rate).

Shapes: B samples (U after merging repeats), K reactions, L species, P parameters.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import CRNSolverError
from .natgrad import dense_scores, merge_duplicates, solve_rows
from .networks import unique_row_index
from .stepping import (StepPlace, check_finite, get_theta, set_theta,
                       weighted_rms)

SCORE_CHUNK = 1 << 21          # entries of one block of shifted-state scores (16 MiB in float64)
IMPLICIT_TOL = 2e-2            # local error in log P (weighted rms) one step may make
GROWTH = (0.2, 3.0)            # the step size changes by at most these factors per step


@torch.no_grad()
def implicit_system(net, kernel, x: torch.Tensor, w: torch.Tensor, t: float,
                    h: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The scaled rows (B, P), values (B,) and scores O (B, P) of the linearised backward-Euler
    step of length h at the distinct states x (B, L) with normalised weights w (B,), rates at
    time t (the end of the step). See the module docstring: row_b = (O_b - Obar) -
    sum_k pi_bk (O(n_b - nu_k) - Obar), value_b = log(1 + h sum_k r_bk) - log(1 + h out_b)."""
    x_prev, a_in = kernel.shifted(x, t)
    log_p, log_p_prev = net.log_prob_shifted(x, x_prev)
    a_in = a_in.to(log_p.dtype)
    alive = (a_in > 0) & torch.isfinite(log_p_prev)
    log_hr = torch.where(alive, math.log(h) + torch.log(a_in.clamp(min=1e-300)) + log_p_prev - log_p[:, None],
                         torch.full_like(a_in, -math.inf))                       # log h r_k (B, K)
    log_in = torch.logsumexp(log_hr, dim=-1)                                    # log h sum_k r_k
    log_s = torch.logaddexp(log_in, torch.zeros_like(log_in))                  # log(1 + h sum_k r_k)
    pi = torch.exp(log_hr - log_s[:, None])                                     # (B, K), sum < 1
    out = kernel.out_rates(x, t).to(log_p.dtype).sum(-1)
    values = log_s - torch.log1p(h * out)
    O = dense_scores(net, x)
    O_bar = w @ O
    rows = O - (1 - pi.sum(-1))[:, None] * O_bar
    b_idx, k_idx = alive.nonzero(as_tuple=True)
    neighbours = x_prev[b_idx, k_idx]
    first, inverse = unique_row_index(neighbours)
    chunk = max(1, SCORE_CHUNK // O.shape[1])
    for start in range(0, first.shape[0], chunk):
        scores = dense_scores(net, neighbours[first[start:start + chunk]])       # (c, P)
        pick = (inverse >= start) & (inverse < start + chunk)
        rows.index_add_(0, b_idx[pick], scores[inverse[pick] - start] * -pi[b_idx[pick], k_idx[pick]][:, None])
    return rows, values, O


@dataclass
class ImplicitStepper:
    """What the step control carries from step to step."""

    tol: float
    misfit: float = 0.0          # unexplained fraction of the last solve (see natgrad.SolveInfo)


def backward_euler(tdvp, net, theta: torch.Tensor, t: float, h: float, generator, start,
                   place: StepPlace) -> tuple[torch.Tensor, float]:
    """One linearised backward-Euler step of length h from parameters theta at time t:
    delta (P,) and the solve's unexplained fraction (natgrad.solve_rows).
    Samples are drawn from P_theta with the generator state ``start`` (common random numbers)."""
    if start is not None:
        generator.set_state(start)
    set_theta(net, theta)
    x, w = tdvp.sampler.draw(net, tdvp.batch, generator)
    w = w.to(theta.dtype) / w.sum()
    x, w, _ = merge_duplicates(x, w, torch.zeros_like(w))
    rows, values, _ = implicit_system(net, tdvp.kernel, x, w, t + h, h)
    check_finite(values, "the implicit step's target", place)
    delta, misfit = solve_rows(rows, w, values, tdvp.lam)
    check_finite(delta, "the implicit step", place)
    return delta, misfit


def implicit_step(stepper: ImplicitStepper, tdvp, net, t: float, h: float, h_max: float, generator,
                  place: StepPlace) -> tuple[float, float]:
    """One accepted step from t (Richardson-extrapolated backward Euler); returns (h taken,
    next h). ``tdvp`` supplies the kernel, sampler, batch size and lambda (stepping.TDVP).

    A whole step and two half steps give theta_1 and theta_2; the result is
    2 theta_2 - theta_1 (second order, and still damping stiff modes). The local error of
    backward Euler is estimated by the rms of log P_theta_2 - log P_theta_1 (centred) over
    plain samples of P_theta: a P-weighted norm, so nearly empty states, whose log P a
    backward-Euler step moves by O(1) at any h (they fill from their neighbours at once),
    count by their mass. A step whose estimate exceeds 2 ``tol`` is redone shorter.
    """
    theta = get_theta(net)
    start = generator.get_state() if generator is not None else None
    while True:
        whole, misfit = backward_euler(tdvp, net, theta, t, h, generator, start, place)
        half, _ = backward_euler(tdvp, net, theta, t, h / 2, generator, start, place)
        second, _ = backward_euler(tdvp, net, theta + half, t + h / 2, h / 2, generator, start, place)
        err = _log_p_gap(net, theta, theta + whole, theta + half + second, tdvp.batch, generator)
        if not math.isfinite(err):
            raise CRNSolverError(f"the step-size error estimate is not finite at step {place.step} "
                                 f"(t = {t:.6g})", hint="try a smaller dt or a larger lambda")
        factor = GROWTH[1] if err == 0 else min(GROWTH[1], max(GROWTH[0], 0.9 * math.sqrt(stepper.tol / err)))
        if err <= 2 * stepper.tol or h <= 1e-12 * max(1.0, abs(t)):
            new = theta + 2 * (half + second) - whole
            check_finite(new, "the network parameters", place)
            set_theta(net, new)
            stepper.misfit = misfit
            return h, min(h * factor, h_max)
        h = h * factor


def _log_p_gap(net, theta, one, two, n: int, generator) -> float:
    """Centred rms of log P_two - log P_one over n plain samples of P_theta."""
    set_theta(net, theta)
    with torch.no_grad():
        x = net.sample(n, generator)
        set_theta(net, one)
        log_one = net.log_prob(x)
        set_theta(net, two)
        gap = net.log_prob(x) - log_one
    return weighted_rms(gap, torch.ones_like(gap))
