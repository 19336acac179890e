"""One time step of the CME on an autoregressive network (METHOD.md, "One time step").

The local rate of the frozen distribution P_t at a state n,

    E(n) = sum_k a_in_k(n) P_t(n - nu_k) / P_t(n) - sum_k out_rate_k(n),

is what every method reads: ``adam`` and ``ngd`` fit the Euler target T P_t = P_t (1 + dt E)
over several epochs; ``tdvp`` solves for theta_dot with d log P_theta / dt = E(n) in the
least-squares sense (one linear solve per stage) and integrates it with euler, heun, rk4 or
an adaptive heun/euler pair.

P_t at the K shifted states of every sample comes from one ``net.log_prob_shifted(x, x - nu)``
call on the (B, K, L) shifted states; kernel.shifted gives a_in = 0 where n - nu_k is outside
the support.

Shapes: B batch, K reactions, L reduced species, P network parameters.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from ..errors import CRNSolverError
from ..vocabulary import INTEGRATORS
MAX_STEP_RATE = 2.0            # dt * out(n) above this on most samples: dt is absurd
MAX_LOG_RATIO = 600.0          # P_t(n - nu)/P_t(n) is capped at e^600 (finite in float64)


# ------------------------------------------------------------------ the local rate
def shifted_log_probs(net, kernel, x: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
    """log P_t(n - nu_k) and a_in_k(n): ((B, K), (B, K)); log P is -inf where a_in is 0."""
    x_prev, a_in = kernel.shifted(x, t)
    with torch.no_grad():
        # (the network's own shifted evaluation: repeated samples once, and NADE reuses x's
        # conditionals up to the first changed species: 1.8x faster than a log_prob of the
        # distinct B K neighbours on a 3x3 lattice, 2x on the toggle switch)
        _, log_p_prev = net.log_prob_shifted(x, x_prev)
    a_in = a_in.to(log_p_prev.dtype)
    log_p_prev = log_p_prev.masked_fill(a_in <= 0, -math.inf)
    return log_p_prev, a_in


def local_rate(net, kernel, x: torch.Tensor, t: float,
               log_p: torch.Tensor | None = None) -> torch.Tensor:
    """(B, L) states -> (B,) E(n) of the distribution ``net`` (treated as frozen)."""
    with torch.no_grad():
        if log_p is None:
            log_p = net.log_prob(x)
        log_p_prev, a_in = shifted_log_probs(net, kernel, x, t)
        ratio = torch.exp((log_p_prev - log_p[:, None]).clamp(max=MAX_LOG_RATIO))
        in_flux = torch.where(a_in > 0, a_in * ratio, torch.zeros_like(ratio)).sum(-1)
        out = kernel.out_rates(x, t).to(log_p.dtype).sum(-1)
    return in_flux - out


def log_target(net, kernel, x: torch.Tensor, t: float, dt: float,
               log_p: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) log T P_t(n) = log[P_t(n) stay(n) + dt sum_k a_in_k P_t(n - nu_k)].

    stay(n) = 1 - dt out(n), the Euler step, where that is at least 1/2; where dt is too
    large for it (dt out(n) > 1/2: states far out in the box, e.g. the uniform part of a
    mixture proposal on a stiff model) it is exp(-dt out(n)), the same to first order and
    never negative. Computed as one logsumexp so tiny P_t cannot overflow.
    """
    with torch.no_grad():
        if log_p is None:
            log_p = net.log_prob(x)
        log_p_prev, a_in = shifted_log_probs(net, kernel, x, t)
        out = kernel.out_rates(x, t).to(log_p.dtype).sum(-1)
        too_large = dt * out > MAX_STEP_RATE
        if float(too_large.to(torch.float64).mean()) > 0.5:
            raise CRNSolverError(
                f"dt = {dt:g} is far too large: dt * (total out-rate) exceeds {MAX_STEP_RATE:g} on "
                f"{float(too_large.double().mean()):.1%} of the samples (out-rate up to {float(out.max()):.4g})",
                hint=f"use dt below {MAX_STEP_RATE / float(out.median()):.3g}, or the tdvp method")
        euler = 1.0 - dt * out
        log_stay = torch.where(euler >= 0.5, torch.log(euler.clamp(min=0.5)), -dt * out)
        terms = torch.cat([(log_p + log_stay)[:, None],
                           torch.log(dt * a_in.clamp(min=0)) + log_p_prev], dim=1)
        return torch.logsumexp(terms, dim=1)


def limit_rate(E: torch.Tensor, h: float, kappa: float = 1.0) -> torch.Tensor:
    """(B,) E with its stiff positive tail softened: E where h E <= kappa, else
    (kappa + log(h E / kappa)) / h.

    A state far below its in-flux (P_t(n) tiny next to a populated neighbour) has an
    enormous E, which would throw theta far in one explicit step; the softened value still
    raises log P there by kappa + log(h E / kappa) per step. Where h E <= kappa (all of the
    smooth part of the distribution) E is untouched, so the integrator keeps its order.
    """
    stiff = h * E > kappa
    if not bool(stiff.any()):
        return E
    soft = (kappa + torch.log(torch.where(stiff, h * E / kappa, torch.ones_like(E)))) / h
    return torch.where(stiff, soft, E)


# ------------------------------------------------------------------ guards
def check_finite(value: torch.Tensor, quantity: str, where: "StepPlace") -> None:
    """Raise CRNSolverError naming the step, time and quantity when ``value`` has NaN/Inf."""
    if not bool(torch.isfinite(value).all()):
        raise CRNSolverError(
            f"{quantity} is not finite at step {where.step} (t = {where.t:.6g})",
            hint=f"try a smaller dt (now {where.dt:g}), a larger lambda (now {where.lam:g}), "
                 f"or dtype = float64 (now {where.dtype})")


@dataclass
class StepPlace:
    """Where the solver is, for error messages."""

    step: int
    t: float
    dt: float
    lam: float
    dtype: str


# ------------------------------------------------------------------ parameters as one vector
def get_theta(net) -> torch.Tensor:
    """(P,) copy of the parameters (in ``net.parameters()`` order)."""
    return parameters_to_vector(net.parameters()).detach().clone()


def set_theta(net, theta: torch.Tensor) -> None:
    with torch.no_grad():
        vector_to_parameters(theta, net.parameters())


# ------------------------------------------------------------------ TDVP
@dataclass
class TDVP:
    """theta_dot = argmin sum_b w_b (O_b theta_dot - E_b)^2 + lam |theta_dot|^2 (centred).

    ``solve_sr(net, x, weights, values, lam)`` is the linear solver (natgrad.solve_sr).
    ``log_euler``: use values log(1 + dt E)/dt (the reference's Euler form, robust where
    P_t is tiny) instead of E; only meaningful for the euler integrator.
    """

    kernel: object
    sampler: object
    solve_sr: object
    batch: int
    lam: float
    log_euler: bool = False

    def velocity(self, net, t: float, generator, place: StepPlace, dt: float | None = None):
        """theta_dot (P,), and the samples it used: x (B, L), w (B,), their log P (B,)."""
        x, w = self.sampler.draw(net, self.batch, generator)
        with torch.no_grad():
            log_p = net.log_prob(x)
            if self.log_euler and dt is not None:
                values = (log_target(net, self.kernel, x, t, dt, log_p) - log_p) / dt
            else:
                values = local_rate(net, self.kernel, x, t, log_p)
                if dt is not None:
                    values = limit_rate(values, dt)
        check_finite(values, "the local rate E(n)", place)
        theta_dot = self.solve_sr(net, x, w, values, self.lam)
        check_finite(theta_dot, "theta_dot", place)
        return theta_dot.detach(), x, w, log_p


def integrate(tdvp: TDVP, net, t: float, h: float, integrator: str, generator,
              place: StepPlace) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Advance ``net`` from t to t + h with one step of ``integrator`` (euler, heun, rk4);
    returns the first stage's samples, weights and log P before the step ((B, L), (B,), (B,)).

    Every stage draws its samples with the same random numbers (common random numbers), so
    the stages differ by the change of theta, not by sampling noise.
    """
    theta = get_theta(net)
    start = generator.get_state() if generator is not None else None
    first = []

    def f(th: torch.Tensor, s: float) -> torch.Tensor:
        if start is not None:
            generator.set_state(start)
        set_theta(net, th)
        theta_dot, x, w, log_p = tdvp.velocity(net, s, generator, place, dt=h)
        if not first:
            first.append((x, w, log_p))
        return theta_dot

    if integrator == "euler":
        new = theta + h * f(theta, t)
    elif integrator == "heun":
        k1 = f(theta, t)
        k2 = f(theta + h * k1, t + h)
        new = theta + 0.5 * h * (k1 + k2)
    elif integrator == "rk4":
        k1 = f(theta, t)
        k2 = f(theta + 0.5 * h * k1, t + 0.5 * h)
        k3 = f(theta + 0.5 * h * k2, t + 0.5 * h)
        k4 = f(theta + h * k3, t + h)
        new = theta + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)
    else:
        raise CRNSolverError(f"unknown integrator '{integrator}'", hint=f"use one of {', '.join(INTEGRATORS)}")
    check_finite(new, "the network parameters", place)
    set_theta(net, new)
    return first[0]


MAX_STEP_CHANGE = 0.1     # rms change of log P (centred, weighted) one fixed step may make
MIN_SUBSTEP = 1e-9        # substeps are never shorter than this fraction of dt


def weighted_rms(values: torch.Tensor, w: torch.Tensor, centred: bool = True) -> float:
    """sqrt(sum w v^2 / sum w) of (B,) values and weights, after subtracting the weighted
    mean when ``centred`` (a change of log P by a constant is no change of P)."""
    w = w / w.sum()
    if centred:
        values = values - (w * values).sum()
    return float(torch.sqrt((w * values * values).sum()))


def log_p_change(net, x: torch.Tensor, w: torch.Tensor, log_p_before: torch.Tensor) -> float:
    """Weighted rms of the centred change of log P on the samples x (B, L), weights w (B,),
    from ``log_p_before`` (B,) to the network's current parameters."""
    with torch.no_grad():
        return weighted_rms(net.log_prob(x) - log_p_before, w)


def fixed_step(tdvp: TDVP, net, t: float, dt: float, h: float, integrator: str, generator,
               place: StepPlace) -> tuple[float, int]:
    """Advance ``net`` from t to t + dt with ``integrator``, in substeps where one step of
    dt would move log P too far; returns (the substep length to try next, substeps taken).

    A step that changes log P by more than MAX_STEP_CHANGE (weighted rms over its samples,
    centred) is undone and retried with a shorter h (same random numbers). That happens
    where the explicit step is unstable, e.g. the first steps from a single-state start,
    where mass leaves the state at its full out-rate; once the distribution is smooth every
    step is one step of dt. ``h`` carries the substep length from step to step (grows x2
    per accepted substep, up to dt).
    """
    remaining, substeps = dt, 0
    while remaining > 1e-12 * dt:
        h = min(h, remaining)
        theta = get_theta(net)
        start = generator.get_state() if generator is not None else None
        x, w, log_p = integrate(tdvp, net, t, h, integrator, generator, place)
        change = log_p_change(net, x, w, log_p)
        if not math.isfinite(change):
            raise CRNSolverError(f"the change of log P is not finite at step {place.step} (t = {t:.6g})",
                                 hint="try a smaller dt or a larger lambda")
        if change > MAX_STEP_CHANGE and h > MIN_SUBSTEP * dt:
            set_theta(net, theta)
            if start is not None:
                generator.set_state(start)
            h = max(h * max(0.1, 0.9 * MAX_STEP_CHANGE / change), MIN_SUBSTEP * dt)
            continue
        t += h
        remaining -= h
        substeps += 1
        h = min(2.0 * h, dt)
    return h, substeps


def adaptive_step(tdvp: TDVP, net, t: float, h: float, h_max: float, tol: float, generator,
                  place: StepPlace) -> tuple[float, float]:
    """One accepted heun step with an euler error estimate; returns (h taken, next h).

    The error is the weighted rms difference of log P between the heun and the euler
    result on the step's samples; a step whose error exceeds ``tol`` is retried with a
    smaller h (same random numbers).
    """
    theta = get_theta(net)
    start = generator.get_state() if generator is not None else None
    while True:
        if start is not None:
            generator.set_state(start)
        set_theta(net, theta)
        k1, x, w, _ = tdvp.velocity(net, t, generator, place, dt=h)
        euler = theta + h * k1
        if start is not None:
            generator.set_state(start)
        set_theta(net, euler)
        k2 = tdvp.velocity(net, t + h, generator, place, dt=h)[0]
        heun = theta + 0.5 * h * (k1 + k2)
        check_finite(heun, "the network parameters", place)
        with torch.no_grad():
            log_euler = net.log_prob(x)
            set_theta(net, heun)
            err = weighted_rms(net.log_prob(x) - log_euler, w, centred=False)
        if not math.isfinite(err):
            raise CRNSolverError(f"the step-size error estimate is not finite at step {place.step} "
                                 f"(t = {t:.6g})", hint="try a smaller dt or a larger lambda")
        factor = 2.0 if err == 0 else min(2.0, max(0.2, 0.9 * math.sqrt(tol / err)))
        if err <= tol or h <= 1e-12 * max(1.0, abs(t)):
            return h, min(h * factor, h_max)
        h = h * factor
