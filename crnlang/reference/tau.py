"""Explicit tau-leaping (``method = tau``): SSA ensembles when exactness is not required.

Many trajectories advance together, each with its own clock and its own leap. One leap of a
run in state x fires every non-critical reaction k Poisson(a_k(x) tau) times at once.

Step selection (Cao, Gillespie & Petzold, J. Chem. Phys. 124, 044109, 2006):

* **Critical reactions.** A reaction is critical when it can fire fewer than ``N_CRITICAL``
  times before some species leaves its bounds (below its lower bound, or past a declared or
  conserved upper bound). Critical reactions never leap; at most one of them fires per leap,
  drawn like an SSA event.
* **The leap length.** tau is the largest step over which no propensity is expected to
  change by more than ``epsilon`` (the ``@solve`` key, default 0.005) relative to itself:
  tau' = min_i min(max(eps x_i / g_i, 1) / |mu_i|, max(eps x_i / g_i, 1)^2 / sigma2_i).
  Here mu_i and sigma2_i are the mean and variance of species i's change per unit time from
  the non-critical reactions. g_i comes from the highest order of the reactions that consume
  species i: 1, 2 (2 + 1/(x-1) when two of it react), 3 (3 + 1/(x-1) + 2/(x-2), or
  1.5 (2 + 1/(x-1))); an order above 3 uses g = order.
* **Exact steps.** When tau' < ``EXACT_FACTOR`` / a0(x), a leap would cover only a few
  events, so the run takes ``EXACT_STEPS`` = 100 exact SSA steps instead (as CGP do), and
  then its step selection is looked at again.
* **Never a negative count.** A leap that would leave the support (a negative count, or a
  count past a bound) is rejected. tau' is halved for that run and the leap is redrawn from
  the same state. So every recorded state is in the support.
* **Saved times.** No leap crosses a saved time: a leap that would is shortened to end
  exactly on it.

Measured with 20,000 runs against FSP (``benchmarks/bench_tau.py`` gives the speed). The
models are immigration-death (1000 in, 1 out per molecule, from 0 to t = 2) and
dimerisation (50000 in, 2 X -> 0 at 0.001, from 8000 to t = 0.3). Each cell is the largest
relative error over the saved times, of the mean / of the standard deviation:

| epsilon | leap | immigration-death | dimerisation |
|---|---|---|---|
| 0.01 | plain | 3.0e-3 / 1.5e-2 | 1.7e-3 / 3.2e-2 |
| 0.01 | estimated midpoint | 6e-4 / 1.2e-2 | 1e-4 / 6.5e-2 |
| 0.005 | plain | 9e-4 / 1.1e-2 | 6e-4 / 1.2e-2 |
| 0.005 | estimated midpoint | 6e-4 / 2e-3 | 1e-4 / 1.9e-2 |

At 0.03, CGP's usual value, the mean of immigration-death is off by 1 % and its marginals by
Hellinger 0.12. The leaps near the stationary state reach 0.45 time units, against a
relaxation time of 1. The plain leap at 0.005 still lags the mean of the dimerisation's
transient by 0.06 %, a twelfth of a standard deviation. That is Hellinger 0.02 on its own,
more than the midpoint leap's 2 % wider spread costs (0.01). So the default is 0.005 with the
estimated-midpoint leap (Gillespie 2001): the non-critical reactions fire Poisson(a_k(x') tau)
times, with x' = x + round(tau/2 * drift(x)) (x itself where x' leaves the box).

Rates are read at the start of each leap and at its midpoint. For time-dependent rates that
adds an error of order tau * (d log a / dt), on top of the leap error. Use ``ssa`` when that
matters.

Accuracy at the default epsilon is stated in docs/solvers.md and tested in tests/test_tau.py
against FSP.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from ..model.grid import save_times
from ..model.ir import Settings
from ..progress import as_progress, reporting
from ..result import Result
from .. import distributed
from .ssa import _Recorder, direct_method_event, trajectory_statistics

N_CRITICAL = 10          # fewer possible firings than this before leaving the bounds: critical
EXACT_FACTOR = 10.0      # tau' below this many mean waiting times: exact SSA steps instead
EXACT_STEPS = 100        # exact steps a run takes before its step selection is looked at again
MAX_REJECTIONS = 60      # halvings of one leap before giving up (never reached in practice)
NO_BOUND = 2 ** 62


def solve_tau_kernel(kernel, settings: Settings, device: str = "cpu", progress=None) -> Result:
    """``settings.batch`` tau-leaping runs of a compiled kernel with ``settings.seed``:
    the statistics of ``ssa`` (means, variances, marginals, observables, with standard
    errors); ``extra`` counts events, leaps, exact steps and rejected leaps."""
    start = time.perf_counter()
    times = save_times(settings)
    runs = int(settings.batch)
    leaper = Leaper(kernel, float(settings.epsilon), device)
    with reporting(progress, "tau", float(times[-1]), "events") as reporter:
        reduced, counts = leaper.run(times, runs, int(settings.seed), reporter)
    result = trajectory_statistics(kernel, times, reduced.cpu(), settings)
    result.method = "tau"
    result.extra.update(runs=runs, **counts)
    result.wall_seconds = time.perf_counter() - start
    return result


class Leaper:
    """Tau-leaping on a kernel: the fixed tables (changes, bounds, reaction orders) once."""

    def __init__(self, kernel, epsilon: float, device: str = "cpu"):
        self.kernel = kernel
        self.epsilon = epsilon
        self.device = torch.device(device)
        self.change = kernel.CHANGE.to(self.device)                          # (K, L)
        self.change_full = kernel.CHANGE_FULL.to(self.device, torch.float64)  # (K, L_full)
        self.lower = torch.tensor(kernel.FULL_LOWER, dtype=torch.float64, device=self.device)
        self.upper = torch.tensor([NO_BOUND if u is None else u for u in kernel.FULL_UPPER],
                                  dtype=torch.float64, device=self.device)
        self.order, self.need = _highest_orders(kernel.REACTANTS)
        self.order, self.need = self.order.to(self.device), self.need.to(self.device)
        self.reactant = self.order > 0                                     # (L_full,) bool

    # ------------------------------------------------------------ the loop
    def run(self, times: np.ndarray, runs: int, seed: int, progress=None):
        """States at ``times`` (runs, T, L) int32, and the counts of the work done;
        ``progress`` (a ``crnlang.progress.Progress``) hears the slowest run's time."""
        progress = as_progress(progress, "tau", float(times[-1]), "events")
        gen = torch.Generator(device=self.device).manual_seed(seed)
        x = self.kernel.init_sample(runs, generator=gen).to(self.device, torch.int64)
        size = distributed.world()[1]
        if size > 1:                   # torchrun: this rank's share, on its own stream
            x, _ = distributed.take_share(x, runs, gen, seed)
        here = x.shape[0]
        record = _Recorder(times, x, self.device)
        save = torch.as_tensor(times, dtype=torch.float64, device=self.device)
        t_end = float(times[-1])
        t = torch.zeros(here, dtype=torch.float64, device=self.device)
        shrink = torch.ones(here, dtype=torch.float64, device=self.device)
        active = torch.arange(here, device=self.device)
        counts = {"events": 0, "leaps": 0, "exact_steps": 0, "rejected_leaps": 0}
        while active.numel():
            rates, critical, tau_leap, exact = self.select(x, t, shrink)
            leaping = (~exact).nonzero().squeeze(1)
            if leaping.numel():
                t_new, x_new, accepted = self.leap(x[leaping], t[leaping], rates[leaping],
                                                   critical[leaping], tau_leap[leaping], save,
                                                   gen, counts)
                record.until(active[leaping], torch.where(accepted, t_new, t[leaping]), x[leaping])
                x[leaping] = torch.where(accepted[:, None], x_new, x[leaping])
                t[leaping] = torch.where(accepted, t_new, t[leaping])
                shrink[leaping] = torch.where(accepted, 1.0, shrink[leaping] / 2)
                if bool((shrink < 2.0 ** -MAX_REJECTIONS).any()):
                    raise RuntimeError("tau-leaping: a leap was rejected 60 times in a row")
            stepping = exact.nonzero().squeeze(1)
            if stepping.numel():
                x[stepping], t[stepping] = self.exact_steps(
                    x[stepping], t[stepping], active[stepping], record, gen, t_end, counts)
            going = t < t_end
            if not bool(going.all()):
                done = ~going
                record.until(active[done], torch.full_like(t[done], np.inf), x[done])
                x, t, shrink, active = x[going], t[going], shrink[going], active[going]
            if active.numel():
                progress.update(float(t.min()), counts["events"])
        progress.update(t_end, counts["events"])
        if size > 1:
            counts = {key: distributed.total(value) for key, value in counts.items()}
            return distributed.gather_runs(record.traj.cpu(), runs).to(self.device), counts
        return record.traj, counts

    def select(self, x, t, shrink):
        """Per run: out-rates (B, K), the critical reactions (B, K), tau' (B,), and whether
        an exact step beats a leap (B,)."""
        kernel = self.kernel
        rates = kernel.out_rates(x, self._time(t)).to(torch.float64)
        full = kernel.full_state(x).to(torch.float64)                         # (B, L_full)
        critical = (rates > 0) & (self._firings_left(full) < N_CRITICAL)
        tau_leap = self._leap_length(full, torch.where(critical, 0.0, rates)) * shrink
        exact = tau_leap < EXACT_FACTOR / rates.sum(dim=1)        # True where a0 == 0 too
        return rates, critical, tau_leap, exact

    def leap(self, x, t, rates, critical, tau_leap, save, gen, counts):
        """One leap per run: (t_new, x_new, accepted). Non-critical reactions fire
        Poisson(a tau) times, at most one critical reaction fires, no leap crosses a save."""
        u = torch.rand((2, x.shape[0]), generator=gen, dtype=torch.float64, device=x.device)
        critical_rates = torch.where(critical, rates, 0.0)
        a_critical = critical_rates.sum(dim=1)
        tau_event = -torch.log1p(-u[0]) / a_critical                       # inf where none
        next_save = save[torch.searchsorted(save, t, right=True).clamp(max=len(save) - 1)]
        to_save = torch.where(next_save > t, next_save - t, torch.full_like(t, np.inf))
        tau = torch.minimum(torch.minimum(tau_leap, tau_event), to_save)
        event_fires = torch.isfinite(tau_event) & (tau_event <= tau)
        on_save = (to_save <= tau) & ~event_fires                 # the leap ends on a save time
        leap_rates = self._midpoint_rates(x, t, torch.where(critical, 0.0, rates), tau)
        mean = torch.where(critical, 0.0, leap_rates) * tau[:, None]
        firings = torch.poisson(torch.where(torch.isfinite(mean), mean, 0.0), generator=gen)
        pick = (critical_rates.cumsum(dim=1) < (u[1] * a_critical)[:, None]).sum(dim=1)
        one = torch.zeros_like(rates).scatter_(1, pick.clamp(max=rates.shape[1] - 1)[:, None], 1.0)
        firings = firings + torch.where(event_fires[:, None], one, 0.0)
        x_new = x + firings.to(torch.int64) @ self.change
        accepted = self.kernel.in_support(x_new)
        t_new = torch.where(on_save, next_save, t + tau)
        counts["leaps"] += int(accepted.sum())
        counts["rejected_leaps"] += int((~accepted).sum())
        counts["events"] += int((firings.sum(dim=1) * accepted).sum())
        return t_new, x_new, accepted

    def exact_steps(self, x, t, rows, record, gen, t_end: float, counts):
        """Up to ``EXACT_STEPS`` steps of the direct method per run; returns (x, t), t = inf
        for a run that passed t_end. As in ``ssa``: untruncated propensities, and a drawn jump
        that would leave the support is a null event (the same law, no (B, K) support test)."""
        x_out, t_out = x.clone(), t.clone()
        index = torch.arange(x.shape[0], device=x.device)
        for _ in range(EXACT_STEPS):
            t_new, target, moved = direct_method_event(self.kernel, x, t, self.change, gen,
                                                       self._time(t))
            record.until(rows, t_new, x)
            going = t_new <= t_end
            moved = moved & going
            x = torch.where(moved[:, None], target, x)
            t = torch.where(going, t_new, torch.full_like(t, np.inf))
            counts["exact_steps"] += int(going.sum())
            counts["events"] += int(moved.sum())
            if not bool(going.all()):
                done = ~going
                x_out[index[done]], t_out[index[done]] = x[done], t[done]
                x, t, rows, index = x[going], t[going], rows[going], index[going]
                if not index.numel():
                    break
        x_out[index], t_out[index] = x, t
        return x_out, t_out

    def _midpoint_rates(self, x, t, rates, tau):
        """The out-rates at each leap's estimated midpoint x + round(tau/2 * drift) (Gillespie
        2001; x itself where the midpoint leaves the box); (B, K)."""
        drift = rates @ self.change.to(torch.float64)                         # (B, L)
        half = torch.where(torch.isfinite(tau), tau / 2, 0.0)
        middle = x + torch.round(drift * half[:, None]).to(torch.int64)
        middle = torch.where(self.kernel.in_support(middle)[:, None], middle, x)
        return self.kernel.out_rates(middle, self._time(t + half)).to(torch.float64)

    def _time(self, t: torch.Tensor):
        return t if self.kernel.TIME_DEPENDENT else 0.0

    # ------------------------------------------------------------ step selection
    def _firings_left(self, full: torch.Tensor) -> torch.Tensor:
        """(B, L_full) -> (B, K): how many times each reaction can fire before a species it
        changes leaves [lower, upper] (inf for a reaction that changes nothing)."""
        change = self.change_full                                           # (K, L_full)
        room_down = (full - self.lower)[:, None, :] / (-change).clamp(min=1e-300)[None]
        room_up = (self.upper - full)[:, None, :] / change.clamp(min=1e-300)[None]
        room = torch.where(change[None] < 0, room_down,
                           torch.where(change[None] > 0, room_up, torch.full_like(room_up, np.inf)))
        return room.floor().amin(dim=2) if room.shape[2] else torch.full(
            room.shape[:2], np.inf, dtype=torch.float64, device=full.device)

    def _leap_length(self, full: torch.Tensor, rates: torch.Tensor) -> torch.Tensor:
        """Cao-Gillespie-Petzold tau' of each run (B,) from its non-critical ``rates`` (B, K)."""
        drift = rates @ self.change_full                                    # (B, L_full)
        spread = rates @ self.change_full ** 2
        bound = (self.epsilon * full / self._g(full)).clamp(min=1.0)
        by_mean = bound / drift.abs()
        by_var = bound ** 2 / spread
        tau = torch.minimum(by_mean, by_var)                                # inf where 0
        tau = torch.where(self.reactant[None, :], tau, torch.full_like(tau, np.inf))
        return tau.amin(dim=1) if tau.shape[1] else torch.full(
            (full.shape[0],), np.inf, dtype=torch.float64, device=full.device)

    def _g(self, full: torch.Tensor) -> torch.Tensor:
        """g_i(x) of CGP (B, L_full): the highest order of the reactions consuming species i."""
        x1 = (full - 1).clamp(min=1.0)
        x2 = (full - 2).clamp(min=1.0)
        order, need = self.order[None, :], self.need[None, :]
        two = torch.where(need >= 2, 2 + 1 / x1, torch.full_like(full, 2.0))
        three = torch.where(need >= 3, 3 + 1 / x1 + 2 / x2,
                            torch.where(need == 2, 1.5 * (2 + 1 / x1), torch.full_like(full, 3.0)))
        g = torch.where(order <= 1, torch.ones_like(full), order.to(full.dtype).expand_as(full))
        g = torch.where(order == 2, two, g)
        return torch.where(order == 3, three, g)


def _highest_orders(reactants: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, L_full) reactant stoichiometry -> per species (L_full,): the highest order of the
    reactions it is a reactant of (0: none), and how many of it such a reaction consumes."""
    reactants = reactants.to(torch.int64)
    order_k = reactants.sum(dim=1)                                          # (K,)
    present = reactants > 0
    orders = torch.where(present, order_k[:, None], torch.zeros_like(reactants))
    highest = orders.amax(dim=0) if reactants.shape[0] else torch.zeros(reactants.shape[1],
                                                                          dtype=torch.int64)
    at_highest = present & (orders == highest[None, :])
    need = torch.where(at_highest, reactants, torch.zeros_like(reactants))
    need = need.amax(dim=0) if reactants.shape[0] else torch.zeros_like(highest)
    return highest, need
