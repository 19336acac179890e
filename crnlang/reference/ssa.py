"""Gillespie's direct method: the choice of engine, and the vectorised engine.

Constant-rate mass-action models run the compiled per-event engine of ``ssa_compiled``
(``choose_engine`` says when and why); this module's engine runs every other model and any
GPU run, and the statistics of both are computed here. Under torchrun the runs are split
over the processes (``crnlang.distributed``).

The vectorised engine: many trajectories at once.

All runs advance together, each with its own clock: one iteration draws the next event of
every active run from one batched ``out_rates`` call, records the runs' states at the save
times their clocks pass, and drops the runs that passed ``t_end``. The jump rule is the
kernel's (``out_rates``: the truncation of declared bounds and absorbing regions), so SSA and
FSP sample the same process; species without an upper bound are simply never truncated.

Constant rates: the direct method, exact. Waiting time tau = -log(U1) / a0, reaction k chosen
with probability a_k / a0 by one uniform U2 against the cumulative sums.

Time-dependent rates (kernel.TIME_DEPENDENT): the hazard is integrated. The next event of a
run in state x at time t happens at t + tau where int_t^{t+tau} a0(x, s) ds = E, E ~ Exp(1),
and fires reaction k with probability a_k(x, t+tau) / a0(x, t+tau): this is the exact law of
the next jump of the time-inhomogeneous Markov chain. The integral is taken slice by slice
(slices of length h = min(max(dt, t_end/2000), save interval)) with 5-point Gauss-Legendre
quadrature (exact for polynomials of degree 9; error ~ (h/T_rate)^10 for a rate that varies on
time scale T_rate), and tau inside the slice is found by safeguarded Newton iteration on the
same quadrature to a relative tolerance of 1e-12. So the sample paths are exact up to
quadrature error, which is far below the statistical error of any feasible number of runs.
Thinning was not used because it needs a rigorous bound of a0 over a horizon, which a
generated kernel cannot provide for an arbitrary rate expression.
"""
from __future__ import annotations

import time
import warnings

import numpy as np
import torch

from .. import distributed
from ..model.grid import save_times
from ..model.ir import Settings
from ..progress import as_progress, reporting
from ..result import Result, marginal_size

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(5)
BLOCKED_WARN = 1e-4          # warn when this fraction of the jumps hits a declared bound
CHUNK_STATES = 1 << 20       # recorded states per kernel call in the statistics
PROGRESS_EVERY = 64          # iterations between progress reports (each costs a reduction)
ENGINES = ("auto", "compiled", "vectorised")


# ------------------------------------------------------------------ the entry points
def simulate_kernel(kernel, settings: Settings, runs: int | None = None, seed: int | None = None,
                    device: str = "cpu") -> np.ndarray:
    """Raw trajectories: (runs, T, L_full) int64 copy numbers of ALL_SPECIES at the save grid
    ``crnlang.model.grid.save_times(settings)``; runs/seed default to the settings' batch/seed."""
    times = save_times(settings)
    runs = int(settings.batch if runs is None else runs)
    seed = int(settings.seed if seed is None else seed)
    reduced, _, _ = run_direct_method(kernel, times, runs, seed, device, dt=settings.dt)
    return full_trajectories(kernel, reduced)


def solve_ssa_kernel(kernel, settings: Settings, device: str = "cpu", progress=None,
                     engine: str = "auto") -> Result:
    """``settings.batch`` SSA runs of a compiled kernel with ``settings.seed``: means,
    variances, marginals, observable probabilities, each with standard errors. ``engine``:
    see ``choose_engine``; ``Result.extra["ssa_engine"]`` says which ran and why."""
    start = time.perf_counter()
    times = save_times(settings)
    runs = int(settings.batch)
    engine, why = choose_engine(kernel, device, engine)
    with reporting(progress, "ssa", float(times[-1]), "events") as reporter:
        reduced, events, blocked = run_direct_method(kernel, times, runs, int(settings.seed),
                                                     device, dt=settings.dt, progress=reporter,
                                                     engine=engine)
    result = trajectory_statistics(kernel, times, reduced.cpu(), settings)
    processes = distributed.world()[1]
    result.extra.update(events=int(events), runs=runs, blocked_jumps=int(blocked),
                        ssa_engine=f"{engine} ({why})"
                        + (f", runs split over {processes} processes" if processes > 1 else ""))
    if blocked > BLOCKED_WARN * max(events, 1):
        message = (f"SSA: {blocked:,} of {events + blocked:,} drawn jumps would have left the "
                   f"declared bounds and were refused (the truncation is active); raise the bounds "
                   f"or drop them (SSA needs none)")
        result.warnings.append(message)
        warnings.warn(message, stacklevel=2)
    result.wall_seconds = time.perf_counter() - start
    return result


# ------------------------------------------------------------------ the direct method
def choose_engine(kernel, device: str = "cpu", engine: str = "auto") -> tuple[str, str]:
    """(engine, why): "compiled" (``ssa_compiled``: one run at a time, per-event cost
    independent of the batch) where it applies, else "vectorised" (this module)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown SSA engine {engine!r}; one of {', '.join(ENGINES)}")
    if engine == "vectorised":
        return "vectorised", "asked for"
    from .ssa_compiled import compiled_engine_reason

    reason = compiled_engine_reason(kernel)
    if reason is None and str(device) != "cpu":
        reason = f"the compiled engine runs on the CPU, not {device}"
    if reason is None:
        return "compiled", "mass action with constant rates"
    if engine == "compiled":
        raise ValueError(f"the compiled SSA engine cannot run this model: {reason}")
    return "vectorised", reason


def run_direct_method(kernel, times: np.ndarray, runs: int, seed: int, device: str = "cpu",
                      dt: float = 0.0, progress=None, engine: str = "auto"):
    """Simulate ``runs`` trajectories; return (states at ``times`` (runs, T, L) int32 tensor,
    number of reaction events, number of jumps refused by the declared bounds; the latter is
    counted for constant rates only). ``dt`` sets the quadrature slices of time-dependent rates;
    ``progress`` (a ``crnlang.progress.Progress``) hears the slowest run's time; ``engine``:
    see ``choose_engine``."""
    gen = torch.Generator(device=device).manual_seed(seed)
    x = kernel.init_sample(runs, generator=gen).to(device=device, dtype=torch.int64)
    progress = as_progress(progress, "ssa", float(times[-1]), "events")
    engine = choose_engine(kernel, device, engine)[0]
    if distributed.world()[1] > 1:     # torchrun: this rank's share of the runs, gathered below
        x, first = distributed.take_share(x, runs, gen, seed)
        traj, events, blocked = _run_engine(kernel, x, times, seed, device, dt, progress,
                                            engine, gen, first_run=first, total_runs=runs)
        return (distributed.gather_runs(traj.cpu(), runs).to(device), distributed.total(events),
                distributed.total(blocked))
    return _run_engine(kernel, x, times, seed, device, dt, progress, engine, gen)


def _run_engine(kernel, x, times, seed, device, dt, progress, engine, gen, first_run=0,
                total_runs=None):
    """run_direct_method on the initial states x (R, L) (the runs first_run.. of total_runs)
    with the engine ``choose_engine`` picked."""
    if engine == "compiled":
        from .ssa_compiled import run_compiled

        traj, events, blocked = run_compiled(kernel, x, times, seed, progress, first_run,
                                             total_runs)
        progress.update(float(times[-1]), events)
        return traj, events, blocked
    record = _Recorder(times, x, device)
    if kernel.TIME_DEPENDENT:
        events = _hazard_loop(kernel, x, record, gen, float(times[-1]), dt, progress)
    else:
        events = _constant_loop(kernel, x, record, gen, float(times[-1]), progress)
    return record.traj, events, record.blocked


def _constant_loop(kernel, x, record: "_Recorder", gen, t_end: float, progress) -> int:
    """The direct method on untruncated propensities, with blocked jumps as null events.

    A reaction whose jump would leave the support is drawn with its propensity but leaves
    the state unchanged (a self-loop). Self-loops do not change the law of the jump process:
    the holding time in x is still Exp(sum of the allowed rates) and the next state is still
    chosen with probability a_k / (sum of the allowed rates), i.e. the process of
    ``out_rates``. It saves the (B, K) support test: only the drawn jump is checked.
    Absorbing states have no events at all.
    """
    device = x.device
    change = kernel.CHANGE.to(device)
    runs = x.shape[0]
    t = torch.zeros(runs, dtype=torch.float64, device=device)
    active = torch.arange(runs, device=device)
    xa = x.clone()
    events = iteration = 0
    while active.numel():
        t_new, target, moved = direct_method_event(kernel, xa, t, change, gen)
        record.until(active, t_new, xa)
        xa = torch.where(moved[:, None], target, xa)
        t = t_new
        go = t_new <= t_end
        n_go, n_moved = (torch.stack([go, moved & go]).sum(dim=1)).tolist()
        events += n_moved
        record.blocked += n_go - n_moved
        if n_go < active.numel():
            xa, t, active = xa[go], t[go], active[go]
        iteration += 1
        if iteration % PROGRESS_EVERY == 0 and active.numel():
            progress.update(float(t.min()), events)
    progress.update(t_end, events)
    return events


def direct_method_event(kernel, x, t, change, gen, rate_time=0.0):
    """The next event of every run by the direct method on untruncated propensities read at
    ``rate_time``: (t_new (B,), target (B, L), moved (B,)). t_new is inf where no reaction
    can fire (a0 = 0, or an absorbing state); ``moved`` is False for a drawn jump that would
    leave the support, a null event (see ``_constant_loop``)."""
    # (K, B) layout: the generated kernels fill a (K, B) buffer, so rows are contiguous
    cum = kernel.propensities(x, rate_time).to(torch.float64).T.contiguous().cumsum_(dim=0)
    a0 = cum[-1]
    if kernel.ABSORBING:
        a0 = torch.where(kernel.absorbing(x), torch.zeros_like(a0), a0)
    u = torch.rand((2, x.shape[0]), generator=gen, dtype=torch.float64, device=x.device)
    t_new = t - torch.log1p(-u[0]) / a0                # inf where a0 == 0
    pick = (cum < (1.0 - u[1]) * a0).sum(dim=0)        # first k with cum_k >= U a0
    target = x + change[pick.clamp_(max=cum.shape[0] - 1)]
    return t_new, target, kernel.in_support(target)


def _hazard_loop(kernel, x, record: "_Recorder", gen, t_end: float, dt: float, progress) -> int:
    device = x.device
    change = kernel.CHANGE.to(device)
    times = record.times_np
    interval = float(np.min(np.diff(times))) if len(times) > 1 else t_end
    h = min(max(dt, t_end / 2000.0), interval) if interval > 0 else t_end
    runs = x.shape[0]
    t = torch.zeros(runs, dtype=torch.float64, device=device)
    need = -torch.log1p(-torch.rand(runs, generator=gen, dtype=torch.float64, device=device))
    active = torch.arange(runs, device=device)
    xa = x.clone()
    events = 0
    while active.numel():
        end = torch.clamp(t + h, max=t_end)
        hazard = _integral(kernel, xa, t, end)
        jump = hazard >= need
        # no event in the slice: move the clock to its end
        quiet = ~jump
        t_next = torch.where(quiet, end, t)
        tau = _solve_tau(kernel, xa[jump], t[jump], end[jump] - t[jump], need[jump], hazard[jump])
        t_next[jump] = t[jump] + tau
        record.until(active, torch.where(quiet & (end >= t_end), torch.full_like(end, np.inf), t_next), xa)
        need = torch.where(quiet, need - hazard, need)
        # events: pick the reaction at the event time, then draw a fresh Exp(1)
        if bool(jump.any()):
            xj = xa[jump]
            a = kernel.out_rates(xj, t_next[jump]).to(torch.float64)
            cum = a.cumsum(dim=1)
            u = 1.0 - torch.rand(xj.shape[0], generator=gen, dtype=torch.float64, device=device)
            pick = (cum < (u * cum[:, -1])[:, None]).sum(dim=1)
            xa = xa.clone()
            xa[jump] = xj + change[pick]
            fresh = -torch.log1p(-torch.rand(xj.shape[0], generator=gen, dtype=torch.float64,
                                             device=device))
            need = need.clone()
            need[jump] = fresh
            events += int(xj.shape[0])
        alive = ~(quiet & (end >= t_end))
        xa, t, need, active = xa[alive], t_next[alive], need[alive], active[alive]
        if active.numel():
            progress.update(float(t.min()), events)
    progress.update(t_end, events)
    return events


def _a0(kernel, x, t: torch.Tensor) -> torch.Tensor:
    """Total out-rate of each run at its own time t (B,)."""
    return kernel.out_rates(x, t).to(torch.float64).sum(dim=1)


def _integral(kernel, x, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """int_lo^hi a0(x, s) ds per run, by 5-point Gauss-Legendre.  (B,)"""
    if x.shape[0] == 0:
        return torch.zeros(0, dtype=torch.float64, device=x.device)
    half = (hi - lo) / 2
    mid = (hi + lo) / 2
    total = torch.zeros_like(lo)
    for node, weight in zip(_GL_NODES, _GL_WEIGHTS):
        total = total + weight * _a0(kernel, x, mid + half * node)
    return total * half


def _solve_tau(kernel, x, t, width, need, hazard_full, iterations: int = 30):
    """tau in (0, width] with int_t^{t+tau} a0 = need (need <= hazard over the slice), to
    1e-12 of the slice's hazard: Newton steps, bisection where Newton leaves the bracket."""
    if x.shape[0] == 0:
        return torch.zeros(0, dtype=torch.float64, device=x.device)
    lo = torch.zeros_like(t)
    hi = width.clone()
    tau = width * (need / hazard_full).clamp(0.0, 1.0)
    for _ in range(iterations):
        f = _integral(kernel, x, t, t + tau) - need
        lo = torch.where(f < 0, tau, lo)
        hi = torch.where(f >= 0, tau, hi)
        rate = _a0(kernel, x, t + tau)
        newton = tau - f / torch.where(rate > 0, rate, torch.ones_like(rate))
        inside = (newton > lo) & (newton < hi) & (rate > 0)
        tau = torch.where(inside, newton, (lo + hi) / 2)
        if bool((f.abs() <= 1e-12 * hazard_full).all()):
            break
    return tau


class _Recorder:
    """Writes each run's state into ``traj`` at every save time its clock has passed."""

    def __init__(self, times: np.ndarray, x0: torch.Tensor, device):
        self.times_np = times
        self.times = torch.as_tensor(times, dtype=torch.float64, device=device)
        runs, width = x0.shape
        self.traj = torch.zeros((runs, len(times), width), dtype=torch.int32, device=device)
        self.next = torch.zeros(runs, dtype=torch.int64, device=device)
        self.blocked = 0                               # jumps the truncation refused
        self.index = torch.arange(len(times), device=device)
        inf = torch.tensor([np.inf], dtype=torch.float64, device=device)
        self.times_padded = torch.cat([self.times, inf])   # next save time; inf when all done
        self.next_time = torch.full((runs,), float(times[0]), dtype=torch.float64, device=device)

    def until(self, rows: torch.Tensor, t_new: torch.Tensor, x: torch.Tensor) -> None:
        """Runs ``rows`` keep state ``x`` (B, L) at every save time < t_new (B,)."""
        moving = t_new > self.next_time[rows]         # most events pass no save time
        if not bool(moving.any()):
            return
        sel = moving.nonzero().squeeze(1)
        rows, x, t_new = rows[sel], x[sel], t_new[sel]
        start = self.next[rows]
        count = torch.searchsorted(self.times, t_new.contiguous(), right=False)
        self.next[rows] = count
        self.next_time[rows] = self.times_padded[count]
        done = count >= len(self.times_np)           # the run is finished: fill every later save
        if bool(done.any()):
            r, s0, xd = rows[done], start[done], x[done].to(torch.int32)
            later = self.index[None, :] >= s0[:, None]
            self.traj[r] = torch.where(later[:, :, None], xd[:, None, :], self.traj[r])
            keep = ~done
            rows, start, count, x = rows[keep], start[keep], count[keep], x[keep]
        x = x.to(torch.int32)
        while rows.numel():                          # usually one or two saves per event
            self.traj[rows, start] = x
            start = start + 1
            more = start < count
            if not bool(more.all()):
                rows, start, count, x = rows[more], start[more], count[more], x[more]


# ------------------------------------------------------------------ statistics
def full_trajectories(kernel, reduced: torch.Tensor, dtype=np.int64) -> np.ndarray:
    """(runs, T, L) reduced states -> (runs, T, L_full) numpy, rebuilt in chunks of runs."""
    runs, T, L = reduced.shape
    out = np.empty((runs, T, len(kernel.ALL_SPECIES)), dtype=dtype)
    for lo, hi in _run_chunks(runs, T):
        full = kernel.full_state(reduced[lo:hi].reshape(-1, L).to(torch.int64))
        if full.is_floating_point():
            full = full.round()
        out[lo:hi] = full.to(torch.int64).reshape(hi - lo, T, -1).cpu().numpy()
    return out


def _run_chunks(runs: int, T: int):
    """(lo, hi) ranges of runs holding about CHUNK_STATES recorded states each."""
    step = max(1, CHUNK_STATES // max(T, 1))
    for lo in range(0, runs, step):
        yield lo, min(lo + step, runs)


def trajectory_statistics(kernel, times: np.ndarray, reduced: torch.Tensor,
                          settings: Settings) -> Result:
    """Means, variances, marginals and observables of sampled trajectories, with standard errors."""
    full = full_trajectories(kernel, reduced, dtype=np.int32)        # (R, T, L_full)
    runs = full.shape[0]
    names = tuple(kernel.ALL_SPECIES)
    means, variances, marginals, probs, stderr = {}, {}, {}, {}, {}
    for j, name in enumerate(names):
        _moments(name, full[:, :, j].astype(np.float64), means, variances, stderr)
        hi = kernel.FULL_UPPER[j]
        size = marginal_size(hi, full[:, :, j].max(initial=0))
        marginals[name] = _histograms(full[:, :, j], size)
    del full
    for name, v in _observables(kernel, reduced, times).items():
        if v.dtype == bool:
            p = v.mean(axis=0)
            probs[name] = p
            stderr[f"prob:{name}"] = np.sqrt(p * (1 - p) / runs)
        else:
            _moments(name, v.astype(np.float64), means, variances, stderr)
    return Result(method="ssa", model_name=kernel.NAME, times=times.copy(), species=names,
                  means=means, variances=variances, marginals=marginals, probs=probs,
                  stderr=stderr, edge_mass=None, settings=settings.to_dict())


def _moments(name, values: np.ndarray, means, variances, stderr) -> None:
    """values (R, T): mean, unbiased variance, and their standard errors."""
    runs = values.shape[0]
    mean = values.mean(axis=0)
    centred = values - mean
    var = (centred ** 2).sum(axis=0) / max(runs - 1, 1)
    m4 = (centred ** 4).mean(axis=0)
    means[name] = mean
    variances[name] = var
    stderr[f"mean:{name}"] = np.sqrt(var / runs)
    stderr[f"var:{name}"] = np.sqrt(np.maximum(m4 - var ** 2, 0.0) / runs)


def _histograms(values: np.ndarray, size: int) -> np.ndarray:
    """values (R, T) int -> (T, size) empirical P(x = 0..size-1)."""
    runs, T = values.shape
    flat = values.T.astype(np.int64) + (np.arange(T) * size)[:, None]
    counts = np.bincount(flat.ravel(), minlength=T * size)
    return counts.reshape(T, size) / runs


def _observables(kernel, reduced: torch.Tensor, times: np.ndarray) -> dict[str, np.ndarray]:
    """Observables of every recorded state (runs, T, L) -> {name: (runs, T)}; time-dependent
    ones at each state's own saved time."""
    if not kernel.OBSERVABLES:
        return {}
    runs, T, L = reduced.shape
    parts: dict[str, list] = {}
    for lo, hi in _run_chunks(runs, T):
        flat = reduced[lo:hi].reshape(-1, L).to(torch.int64)
        t_flat = torch.as_tensor(np.tile(times, hi - lo), dtype=torch.float64, device=flat.device)
        try:
            table = {k: v.cpu().numpy().reshape(hi - lo, T)
                     for k, v in kernel.observables(flat, t_flat).items()}
        except Exception:  # noqa: BLE001 - a kernel that takes only a scalar t: one call per time
            rows = flat.reshape(hi - lo, T, L)
            per_time = [kernel.observables(rows[:, i], float(times[i])) for i in range(T)]
            table = {k: np.stack([p[k].cpu().numpy() for p in per_time], axis=1)
                     for k in per_time[0]}
        for k, v in table.items():
            parts.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}
