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

import functools
import math
from dataclasses import dataclass

import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from ..distributed import by_rows
from ..errors import CRNSolverError
from ..vocabulary import INTEGRATORS
from .guards import read, require
from .networks import unique_row_index

MAX_STEP_RATE = 2.0            # dt * out(n) above this on most samples: dt is absurd
MAX_LOG_RATIO = 600.0          # P_t(n - nu)/P_t(n) is capped at e^600 (finite in float64) ...
FAST_NEIGHBOURS = True         # neighbours' log P with float32 conditionals (NADE; see shifted_log_probs)


def max_log_ratio(dtype: torch.dtype) -> float:
    """... and at e^60 in float32 (whose largest number is e^88), so that K such ratios times
    the rates still sum to a finite E(n)."""
    return MAX_LOG_RATIO if dtype == torch.float64 else 60.0


# ------------------------------------------------------------------ the local rate
@functools.lru_cache(maxsize=64)
def distinct_changes(kernel) -> tuple[torch.Tensor, torch.Tensor]:
    """(first (U,), inverse (K,)): CHANGE[first] are the distinct change vectors and reaction
    k has CHANGE[first[inverse[k]]] (``unique_row_index``). Reactions with the same change (on
    a Schlögl site 2X -> 3X and 0 -> X, 3X -> 2X and X -> 0) share their neighbour n - nu."""
    return unique_row_index(kernel.CHANGE)


def shifted_log_probs(net, kernel, x: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
    """log P_t(n - nu_k) and a_in_k(n): ((B, K), (B, K)); log P is -inf where a_in is 0."""
    x_prev, a_in = kernel.shifted(x, t)
    first, inverse = distinct_changes(kernel)
    with torch.no_grad():
        # (the network's own shifted evaluation: repeated samples once, and NADE reuses x's
        # conditionals up to the first changed species: 1.8x faster than a log_prob of the
        # distinct B K neighbours on a 3x3 lattice, 2x on the toggle switch; each distinct
        # change vector once: 42 neighbours instead of 60 on the 3x3 Schlögl grid)
        # FAST_NEIGHBOURS: NADE recomputes the neighbours' conditionals in float32 (2.7x
        # faster); log P(n - nu) is then off by ~1e-6, a relative error of 1e-6 in each
        # in-flux term, far below the sampling noise of E(n)
        repeated = first.numel() < x_prev.shape[1]
        neighbours = x_prev.index_select(1, first.to(x.device)) if repeated else x_prev
        _, log_p_prev = net.log_prob_shifted(x, neighbours, fast=FAST_NEIGHBOURS)
        if repeated:
            log_p_prev = log_p_prev.index_select(1, inverse.to(x.device))
    a_in = a_in.to(log_p_prev.dtype)
    log_p_prev = log_p_prev.masked_fill(a_in <= 0, -math.inf)
    return log_p_prev, a_in


def local_rate(net, kernel, x: torch.Tensor, t: float,
               log_p: torch.Tensor | None = None) -> torch.Tensor:
    """(B, L) states -> (B,) E(n) of the distribution ``net`` (treated as frozen); in a
    distributed run each process computes its own rows (``distributed.by_rows``)."""
    return by_rows(_local_rate_rows, x, log_p, net=net, kernel=kernel, t=t)


def _local_rate_rows(x, log_p, *, net, kernel, t):
    with torch.no_grad():
        if log_p is None:
            log_p = net.log_prob(x)
        log_p_prev, a_in = shifted_log_probs(net, kernel, x, t)
        ratio = torch.exp((log_p_prev - log_p[:, None]).clamp(max=max_log_ratio(log_p.dtype)))
        in_flux = torch.where(a_in > 0, a_in * ratio, torch.zeros_like(ratio)).sum(-1)
        out = kernel.out_rates(x, t).to(log_p.dtype).sum(-1)
    return in_flux - out


def log_target(net, kernel, x: torch.Tensor, t: float, dt: float,
               log_p: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) log T P_t(n) = log[P_t(n) stay(n) + dt sum_k a_in_k P_t(n - nu_k)].

    stay(n) = 1 - dt out(n), the Euler step, where that is at least 1/2; where dt is too
    large for it (dt out(n) > 1/2: states far out in the box, e.g. the uniform part of a
    mixture proposal on a stiff model) it is exp(-dt out(n)), the same to first order and
    never negative. Computed as one logsumexp so tiny P_t cannot overflow. In a
    distributed run each process computes its own rows (``distributed.by_rows``).
    """
    with torch.no_grad():
        out = kernel.out_rates(x, t).to(next(net.parameters()).dtype).sum(-1)
        too_large = (dt * out > MAX_STEP_RATE).to(torch.float64).mean()

    def step_too_large():
        return CRNSolverError(
            f"dt = {dt:g} is far too large: dt * (total out-rate) exceeds {MAX_STEP_RATE:g} on "
            f"{float(too_large):.1%} of the samples (out-rate up to {float(out.max()):.4g})",
            hint=f"use dt below {MAX_STEP_RATE / float(out.median()):.3g}, or the tdvp method")
    require(too_large <= 0.5, step_too_large)
    return by_rows(_log_target_rows, x, log_p, out, net=net, kernel=kernel, t=t, dt=dt)


def _log_target_rows(x, log_p, out, *, net, kernel, t, dt):
    with torch.no_grad():
        if log_p is None:
            log_p = net.log_prob(x)
        log_p_prev, a_in = shifted_log_probs(net, kernel, x, t)
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
    stiff = h * E > kappa                     # (no early return when none is: no host read)
    soft = (kappa + torch.log(torch.where(stiff, h * E / kappa, torch.ones_like(E)))) / h
    return torch.where(stiff, soft, E)


# ------------------------------------------------------------------ guards
def check_finite(value: torch.Tensor, quantity: str, where: "StepPlace") -> None:
    """Raise CRNSolverError naming the step, time and quantity when ``value`` has NaN/Inf
    (at the next host read inside ``guards.deferred()``)."""
    require(torch.isfinite(value).all(), lambda: CRNSolverError(
        f"{quantity} is not finite at step {where.step} (t = {where.t:.6g})",
        hint=f"try a smaller dt (now {where.dt:g}), a larger lambda (now {where.lam:g}), "
             f"or dtype = float64 (now {where.dtype})"))


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
    evaluations: int = 0          # velocities computed so far (the cost unit of every integrator)

    def velocity(self, net, t: float, generator, place: StepPlace, dt: float | None = None):
        """theta_dot (P,), and the samples it used: x (B, L), w (B,), their log P (B,)."""
        self.evaluations += 1
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


def velocity_map(tdvp: TDVP, net, generator, place: StepPlace, h: float, first: list | None = None):
    """f(theta, s) -> theta_dot (P,): the TDVP velocity at parameters theta and time s.

    Every call draws its samples with the same random numbers (common random numbers: the
    generator is reset to its state now), so two calls differ by the change of theta, not by
    sampling noise. ``first`` (a list) receives the first call's samples, weights and log P.
    Leaves ``net`` at the last theta it was called with.
    """
    start = generator.get_state() if generator is not None else None

    def f(th: torch.Tensor, s: float) -> torch.Tensor:
        if start is not None:
            generator.set_state(start)
        set_theta(net, th)
        theta_dot, x, w, log_p = tdvp.velocity(net, s, generator, place, dt=h)
        if first is not None and not first:
            first.append((x, w, log_p))
        return theta_dot

    return f


def integrate(tdvp: TDVP, net, t: float, h: float, integrator: str, generator,
              place: StepPlace, stages: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Advance ``net`` from t to t + h with one step of ``integrator`` (euler, heun, rk4, or
    rkc with ``stages`` stages); returns the first stage's samples, weights and log P before
    the step ((B, L), (B,), (B,)). The stages share their random numbers (``velocity_map``).
    """
    theta = get_theta(net)
    first: list = []
    f = velocity_map(tdvp, net, generator, place, h, first)
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
    elif integrator == "rkc":
        new = rkc_step(f, theta, t, h, stages)
    else:
        raise CRNSolverError(f"unknown integrator '{integrator}'", hint=f"use one of {', '.join(INTEGRATORS)}")
    check_finite(new, "the network parameters", place)
    set_theta(net, new)
    return first[0]


# ------------------------------------------------------------------ RKC (stabilised explicit)
RKC_DAMPING = 2.0 / 13.0   # Sommeijer, Shampine & Verwer (1997): damping eps of the Chebyshev polynomial
RKC_SAFETY = 1.25          # stages chosen so that the stability bound is this times h * rho
RKC_MAX_STAGES = 64
RKC_REESTIMATE = 20        # steps between estimates of the spectral radius


@dataclass(frozen=True)
class RKCStage:
    """Y_j = (1 - mu - nu) Y_0 + mu Y_{j-1} + nu Y_{j-2} + mu_t h F(Y_{j-1}) + gamma_t h F(Y_0),
    F(Y_{j-1}) evaluated at t + c h (``c`` the internal time of Y_{j-1})."""

    mu: float
    nu: float
    mu_t: float
    gamma_t: float
    c: float


def _chebyshev(s: int, x: float) -> tuple[list, list, list]:
    """T_j(x), T_j'(x), T_j''(x) for j = 0..s."""
    T, dT, ddT = [1.0, x], [0.0, 1.0], [0.0, 0.0]
    for j in range(2, s + 1):
        T.append(2 * x * T[j - 1] - T[j - 2])
        dT.append(2 * T[j - 1] + 2 * x * dT[j - 1] - dT[j - 2])
        ddT.append(4 * dT[j - 1] + 2 * x * ddT[j - 1] - ddT[j - 2])
    return T, dT, ddT


@functools.lru_cache(maxsize=None)
def rkc_coefficients(s: int, damping: float = RKC_DAMPING) -> tuple[tuple[RKCStage, ...], float]:
    """The s >= 2 stages of the second-order Runge-Kutta-Chebyshev method, and its real
    stability bound beta(s) ~ 0.65 s^2 (stable for h * rho <= beta: the interval grows with
    the square of the stages, while the cost grows with the stages)."""
    if s < 2:
        raise ValueError("RKC needs at least 2 stages")
    w0 = 1.0 + damping / s ** 2
    T, dT, ddT = _chebyshev(s, w0)
    w1 = dT[s] / ddT[s]
    b = [0.0] * (s + 1)
    for j in range(2, s + 1):
        b[j] = ddT[j] / dT[j] ** 2
    b[0] = b[1] = b[2]
    a = [1.0 - b[j] * T[j] for j in range(s + 1)]
    c = [0.0] * (s + 1)
    for j in range(2, s + 1):
        c[j] = dT[s] * ddT[j] / (ddT[s] * dT[j])
    c[1] = c[2] / dT[2]
    stages = [RKCStage(0.0, 0.0, b[1] * w1, 0.0, 0.0)]
    for j in range(2, s + 1):
        mu_t = 2 * b[j] * w1 / b[j - 1]
        stages.append(RKCStage(2 * b[j] * w0 / b[j - 1], -b[j] / b[j - 2], mu_t, -a[j - 1] * mu_t, c[j - 1]))
    return tuple(stages), (1.0 + w0) / w1


def rkc_stages_for(h_rho: float, safety: float = RKC_SAFETY) -> int:
    """The fewest stages (>= 2, at most RKC_MAX_STAGES) whose stability bound covers
    safety * h * rho."""
    s = 2
    while s < RKC_MAX_STAGES and rkc_coefficients(s)[1] < safety * h_rho:
        s += 1
    return s


def rkc_step(f, y: torch.Tensor, t: float, h: float, s: int) -> torch.Tensor:
    """One RKC step of y' = f(y, t) from t to t + h with s stages (s velocity evaluations)."""
    stages, _ = rkc_coefficients(s)
    f0 = f(y, t)
    prev2, prev = y, y + stages[0].mu_t * h * f0
    for st in stages[1:]:
        new = ((1.0 - st.mu - st.nu) * y + st.mu * prev + st.nu * prev2
               + st.mu_t * h * f(prev, t + st.c * h) + st.gamma_t * h * f0)
        prev2, prev = prev, new
    return prev


def spectral_radius(f, y: torch.Tensor, t: float, v: torch.Tensor | None, iterations: int,
                    relative: float = 1e-3, generator=None) -> tuple[float, torch.Tensor]:
    """(rho, direction): the largest |eigenvalue| of the Jacobian of f at (y, t), by the
    nonlinear power method (difference quotients of f along a perturbation of norm
    ``relative`` * |y|), started from ``v`` (the previous direction) or a random one."""
    if v is None or not bool(torch.isfinite(v).all()) or float(v.norm()) == 0.0:
        # (drawn on the CPU, where ``generator`` is: the same direction on every device)
        v = torch.randn(y.shape, dtype=y.dtype, generator=generator, device="cpu")
    v = v.to(y.device)
    scale = relative * max(float(y.norm()), 1.0)
    f0 = f(y, t)
    rho = 0.0
    for _ in range(iterations):
        v = v * (scale / float(v.norm()))
        change = f(y + v, t) - f0
        rho = float(change.norm()) / scale
        if rho == 0.0 or not math.isfinite(rho):
            break
        v = change
    return rho, v


@dataclass
class RKCControl:
    """The spectral-radius estimate that sets RKC's stages, refreshed every ``every`` steps
    (first with ``first_iterations`` power iterations, then ``iterations`` from the last
    direction)."""

    rho: float | None = None
    direction: torch.Tensor | None = None
    since: int = 0
    every: int = RKC_REESTIMATE
    first_iterations: int = 8
    iterations: int = 3
    estimates: int = 0
    most_stages: int = 0
    refreshes: int = 0

    def to_state(self) -> dict:
        return {"rho": self.rho, "direction": self.direction, "since": self.since,
                "estimates": self.estimates, "most_stages": self.most_stages,
                "refreshes": self.refreshes}

    def load_state(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)

    def refresh(self, tdvp: TDVP, net, t: float, h: float, generator, place: StepPlace) -> bool:
        """Re-estimate rho now (after a step blew up); True when it grew by more than 20 %,
        i.e. the blow-up was the stale estimate's instability. False, without estimating,
        when rho was estimated for this very step."""
        if self.rho is None or self.since <= 1:
            return False
        old = self.rho
        self.since = self.every
        self.stages(tdvp, net, t, h, generator, place)
        self.refreshes += 1
        return self.rho > 1.2 * old

    def stages(self, tdvp: TDVP, net, t: float, h: float, generator, place: StepPlace) -> int:
        """The stages for a step of h at the network's parameters (refreshing rho when due)."""
        if self.rho is None or self.since >= self.every:
            theta = get_theta(net)
            saved = generator.get_state() if generator is not None else None
            f = velocity_map(tdvp, net, generator, place, h)
            # the direction is drawn from its own stream, so the run's samples do not depend on it
            gen = torch.Generator().manual_seed(place.step + 1)
            self.rho, self.direction = spectral_radius(
                f, theta, t, self.direction,
                self.first_iterations if self.rho is None else self.iterations, generator=gen)
            set_theta(net, theta)
            if saved is not None:
                generator.set_state(saved)
            self.since, self.estimates = 0, self.estimates + 1
        self.since += 1
        stages = rkc_stages_for(h * self.rho)
        self.most_stages = max(self.most_stages, stages)
        return stages


MAX_STEP_CHANGE = 0.05    # rms change of log P (centred, weighted) one fixed step may make,
                          # times sqrt(species) (step_bound)
MIN_SUBSTEP = 1e-9        # substeps are never shorter than this fraction of dt
UNSTABLE_CHANGE = 1.0     # an RKC substep changing log P (rms) by more: rho is re-estimated


def weighted_rms(values: torch.Tensor, w: torch.Tensor, centred: bool = True) -> float:
    """sqrt(sum w v^2 / sum w) of (B,) values and weights, after subtracting the weighted
    mean when ``centred`` (a change of log P by a constant is no change of P); read to the
    host (``guards.read``: the queued checks with it)."""
    return read(rms_change(values, w, centred))


def rms_change(values: torch.Tensor, w: torch.Tensor, centred: bool = True) -> torch.Tensor:
    """``weighted_rms`` as a 0-dim tensor, not read."""
    w = w / w.sum()
    if centred:
        values = values - (w * values).sum()
    return torch.sqrt((w * values * values).sum())


def log_p_change(net, x: torch.Tensor, w: torch.Tensor, log_p_before: torch.Tensor) -> float:
    """Weighted rms of the centred change of log P on the samples x (B, L), weights w (B,),
    from ``log_p_before`` (B,) to the network's current parameters."""
    with torch.no_grad():
        return weighted_rms(net.log_prob(x) - log_p_before, w)


def fixed_step(tdvp: TDVP, net, t: float, dt: float, h: float, integrator: str, generator,
               place: StepPlace, rkc: RKCControl | None = None) -> tuple[float, int]:
    """Advance ``net`` from t to t + dt with ``integrator``, in substeps where one step of
    dt would move log P too far; returns (the substep length to try next, substeps taken).

    A step that changes log P by more than ``step_bound`` (weighted rms over its samples,
    centred) is undone and retried with a shorter h (same random numbers). That happens
    where the explicit step is unstable, e.g. the first steps from a single-state start,
    where mass leaves the state at its full out-rate; once the distribution is smooth every
    step is one step of dt. ``h`` carries the substep length from step to step (grows x2
    per accepted substep at most, up to dt; ``substep_factor``).
    """
    remaining, substeps, refreshed = dt, 0, False
    bound = step_bound(net.n_species)
    while remaining > 1e-12 * dt:
        h = min(h, remaining)
        theta = get_theta(net)
        stages = rkc.stages(tdvp, net, t, h, generator, place) if integrator == "rkc" else 2
        start = generator.get_state() if generator is not None else None
        x, w, log_p = integrate(tdvp, net, t, h, integrator, generator, place, stages)
        change = log_p_change(net, x, w, log_p)
        if not math.isfinite(change):
            raise CRNSolverError(f"the change of log P is not finite at step {place.step} (t = {t:.6g})",
                                 hint="try a smaller dt or a larger lambda")
        if change > bound and h > MIN_SUBSTEP * dt:
            set_theta(net, theta)
            if start is not None:
                generator.set_state(start)
            # an RKC step that blew up (log P moved by more than UNSTABLE_CHANGE) with a
            # stale rho: the stages were too few (the spectral radius grew since its
            # estimate); re-estimate once, and retry the same h if it did grow, rather than
            # cutting h 1000-fold and regrowing it x2 per step
            unstable = rkc is not None and not refreshed and change > UNSTABLE_CHANGE
            if unstable and rkc.refresh(tdvp, net, t, h, generator, place):
                refreshed = True
            else:          # (a blow-up is not proportional to h: cut it at most 10-fold)
                factor = substep_factor(change, bound)
                h = max(h * (max(factor, 0.1) if change > UNSTABLE_CHANGE else factor), MIN_SUBSTEP * dt)
            continue
        refreshed = False
        t += h
        remaining -= h
        substeps += 1
        h = min(h * substep_factor(change, bound), dt)
    return h, substeps


def step_bound(n_species: int) -> float:
    """The most a fixed step may change log P: MAX_STEP_CHANGE sqrt(L).

    log P of L species is a sum of L conditionals, and while a distribution spreads each
    species' conditional changes at a similar rate, so the rms change of the joint log P
    grows like sqrt(L) for the same change per species. Per species the bound is the same
    on the 2-site chain (0.071, where it was measured against FSP), the toggle switch's 4
    species (0.1, as before) and the 3x3 grid (0.15); a bound of 0.07 on the grid's joint
    log P took 1.3x the substeps of 0.1 through its transient."""
    return MAX_STEP_CHANGE * math.sqrt(max(int(n_species), 1))


def substep_factor(change: float, bound: float) -> float:
    """The factor on h after a substep that changed log P by ``change``: the change of a short
    step is proportional to h, so 0.9 bound / change aims the next one just inside the bound;
    at most x2, at least x1e-3.

    (Doubling after every accepted substep, as before, had every other substep of the 3x3
    Schlögl grid's start rejected: 0.09 accepted, then 0.17 over the bound.)"""
    if change <= 0.0:
        return 2.0
    return min(2.0, max(1e-3, 0.9 * bound / change))


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
