"""Finite state projection (FSP): the truncated CME solved exactly on the reachable states.

    reachable states (vectorised BFS from the initial support, whole frontiers at once)
      -> sparse generator A (CSR, A[j, i] = rate of i -> j, every column sums to 0)
      -> P(t) on the save grid -> means, variances, marginals, observables, edge mass

The truncation is the kernel's: a jump that would leave the support is dropped from both
the in- and the out-flux (``out_rates`` is zero for it), so probability is conserved and the
solve is exact for the truncated system. Absorbing regions have zero out-rates, so
``prob(obs)`` of an absorbing observable is its first-passage curve.

Edge mass (``Result.edge_mass``, one value per saved time): the probability of the states where
a jump with positive propensity is refused because it would push a species past its DECLARED
upper bound (bounds from conservation laws are exact, not truncations; absorbing states are
excluded). Above 1e-4 at any saved time, FSP warns and names the bounds to raise.
``Result.extra["states"]`` is the number of reachable states solved on.

Integrators
    constant rates:   uniformisation (Jensen's method): exp(hA) p = sum_n Pois(n; qh) B^n p with
                      B = I + A/q, q >= max exit rate. Every term is non-negative, so there is no
                      cancellation; the Poisson series is cut where its tail is below 1e-15.
                      Cost ~ q * t_end sparse matrix-vector products. Measured against scipy's
                      expm_multiply (which agrees to 5e-15): DSMTS 00005 (12,001 states,
                      q t = 1.3e5) 5.5 s vs 34 s; toggle switch (25,596 states, q t = 1e4) 1.5 s vs
                      8.6 s; BDF took 51 s and 77 s. Above q * t_end = 5e6, BDF.
    time-dependent:   solve_ivp with rtol 1e-8, atol 1e-12 (absolute, per state probability): the
                      explicit RK45 while q * t_end <= 2e4 (q probed at 9 times), else BDF with
                      the sparse generator as its Jacobian. Each right-hand-side call refreshes
                      the rates from the kernel into a CSR layout built once.
    (Timings measured on this project's 2-core machine, shared with other jobs.)
"""
from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from scipy import sparse

from ..boxes import decode, encode, radix_strides
from ..errors import CRNAnalysisError, CRNSolverError
from ..model.grid import save_times
from ..model.ir import Settings
from ..progress import reporting
from ..result import Result, marginal_size

DEFAULT_MAX_STATES = 5_000_000
EDGE_WARN = 1e-4
BOX_FACTOR = 100                # FSP refuses a box this many times larger than its state limit
BATCH = 1 << 16                 # states per kernel call
UNIFORMISATION_LIMIT = 5e6      # q * t_end above this: use BDF (measured: uniformisation wins below)
EXPLICIT_LIMIT = 2e4            # time-dependent: q * t_end up to this: RK45, above: BDF
ODE_RTOL, ODE_ATOL = 1e-8, 1e-12


# ------------------------------------------------------------------ the entry point
def solve_fsp_kernel(kernel, settings: Settings, max_states: int | None = None,
                     progress=None) -> Result:
    """Exact solution of a compiled kernel's truncated CME with ``settings`` (t_end, dt,
    save_every); the edge mass is watched on the kernel's DECLARED_UPPER. ``progress``: a
    ``crnlang.progress.Progress`` told each saved time reached."""
    start = time.perf_counter()
    codec = StateCodec.of(kernel)
    limit = state_limit(max_states)
    if codec.box > BOX_FACTOR * limit:
        raise CRNSolverError(
            f"the box of the state space holds {codec.box:.3g} states, more than {BOX_FACTOR} x "
            f"the FSP limit of {limit:,} reachable states: enumerating it is out of reach",
            hint="tighten the species bounds (`X <= N`), use method = ssa or tau, or raise the "
                 "limit with max_states= / CRNLANG_FSP_MAX_STATES")
    states = reachable_states(kernel, codec, limit)
    p0 = initial_probabilities(kernel, states)
    times = save_times(settings)
    stats = Statistics(kernel, states, times, kernel.DECLARED_UPPER)
    with reporting(progress, "fsp", float(times[-1]), "saved times") as reporter:
        for i, p in enumerate(propagate(kernel, states, codec, p0, times)):
            stats.record(i, p)
            reporter.update(float(times[i]), i + 1)
    result = stats.result(kernel.NAME, settings)
    result.extra["states"] = int(len(states))
    result.wall_seconds = time.perf_counter() - start
    return result


def state_limit(max_states: int | None) -> int:
    """The memory guard: argument, else env CRNLANG_FSP_MAX_STATES, else 5e6."""
    if max_states is not None:
        return int(max_states)
    env = os.environ.get("CRNLANG_FSP_MAX_STATES")
    return int(float(env)) if env else DEFAULT_MAX_STATES


# ------------------------------------------------------------------ state space
@dataclass(frozen=True)
class StateCodec:
    """Mixed-radix integer code of a reduced state over the kernel's box (``crnlang.boxes``)."""

    lo: np.ndarray        # (L,)
    size: np.ndarray      # (L,) hi - lo + 1
    stride: np.ndarray    # (L,)

    @classmethod
    def of(cls, kernel) -> "StateCodec":
        missing = [name for name, hi in zip(kernel.SPECIES, kernel.UPPER) if hi is None]
        if missing:
            name = missing[0]
            raise CRNAnalysisError(
                f"FSP needs a finite upper bound for every species; "
                f"{', '.join(repr(m) for m in missing)} {'has' if len(missing) == 1 else 'have'} none",
                hint=f"declare one, e.g. `species {name} <= 100`, or use method = ssa")
        lo = np.asarray(kernel.LOWER, dtype=np.int64)
        size = np.asarray(kernel.UPPER, dtype=np.int64) - lo + 1
        stride = radix_strides(size)
        if stride is None:
            raise CRNSolverError(
                f"the bounding box of the state space has 2^{sum(math.log2(int(s)) for s in size):.0f} "
                "states, too many to index for FSP",
                hint="tighten the species bounds, or use method = ssa")
        return cls(lo, size, np.asarray(stride, dtype=np.int64))

    @property
    def box(self) -> int:
        return int(np.prod(self.size, dtype=np.float64))

    def encode(self, x: np.ndarray) -> np.ndarray:
        """(..., L) int64 states -> (...,) int64 codes."""
        return encode(x, self.lo, self.stride)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """(N,) codes -> (N, L) states."""
        return decode(codes, self.lo, self.size, self.stride)


def reachable_states(kernel, codec: StateCodec, max_states: int) -> np.ndarray:
    """All states reachable from the initial support, sorted by code.  (N, L) int64.

    A jump is followed where its out-rate is positive at t = 0; for time-dependent rates,
    wherever the support rule lets it fire (a superset: a rate that is zero at t = 0 may not be
    later). Raises CRNSolverError when the count exceeds ``max_states``.
    """
    start = initial_states(kernel, codec, max_states)
    seen = _Seen(codec)
    frontier = seen.add_new(start)
    count = len(frontier)
    while len(frontier):
        if count > max_states:
            raise _too_many(count, max_states, partial=True)
        targets = [_successors(kernel, chunk) for chunk in _chunks(frontier)]
        frontier = seen.add_new(np.concatenate(targets))
        count += len(frontier)
    if count > max_states:
        raise _too_many(count, max_states, partial=False)
    return seen.states()


def _successors(kernel, x: np.ndarray) -> np.ndarray:
    """Targets of the jumps that can happen from states x (B, L) -> (M, L)."""
    xt = torch.from_numpy(x)
    if kernel.TIME_DEPENDENT:
        allowed = kernel.fires(xt) & ~kernel.absorbing(xt)[:, None]
    else:
        allowed = kernel.out_rates(xt, 0.0) > 0
    change = kernel.CHANGE.cpu().numpy()
    targets = x[:, None, :] + change[None, :, :]
    return targets[allowed.cpu().numpy()]


class _Seen:
    """The set of visited states: a bitmap over the box when it is small, else sorted codes."""

    BITMAP_LIMIT = 200_000_000

    def __init__(self, codec: StateCodec):
        self.codec = codec
        self.bitmap = np.zeros(codec.box, dtype=bool) if codec.box <= self.BITMAP_LIMIT else None
        self.sorted_codes = np.zeros(0, dtype=np.int64)
        self.parts: list[np.ndarray] = []

    def add_new(self, x: np.ndarray) -> np.ndarray:
        """Add states x (M, L); return those not seen before, deduplicated."""
        codes = np.unique(self.codec.encode(x)) if len(x) else np.zeros(0, dtype=np.int64)
        if self.bitmap is not None:
            codes = codes[~self.bitmap[codes]]
            self.bitmap[codes] = True
        else:
            codes = codes[~_member(codes, self.sorted_codes)]
            self.sorted_codes = np.union1d(self.sorted_codes, codes)
        self.parts.append(codes)
        return self.codec.decode(codes)

    def states(self) -> np.ndarray:
        return self.codec.decode(np.sort(np.concatenate(self.parts)))


def _member(codes: np.ndarray, sorted_codes: np.ndarray) -> np.ndarray:
    """codes[i] in sorted_codes, elementwise."""
    if len(sorted_codes) == 0:
        return np.zeros(len(codes), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_codes, codes), len(sorted_codes) - 1)
    return sorted_codes[pos] == codes


def _too_many(count: int, limit: int, partial: bool) -> CRNSolverError:
    more = "at least " if partial else ""
    return CRNSolverError(
        f"FSP state space has {more}{count:,} reachable states, above the limit of {limit:,}",
        hint="tighten the species bounds (`X <= N`), use method = ssa, or raise the limit with "
             "max_states= / the environment variable CRNLANG_FSP_MAX_STATES")


def initial_states(kernel, codec: StateCodec, max_states: int) -> np.ndarray:
    """States with P > 0 at t = 0 (kernel.init_support(), else scanned over the box)."""
    support = kernel.init_support()
    if support is not None:
        x = support.cpu().numpy().astype(np.int64)
        return x[kernel.in_support(torch.from_numpy(x)).cpu().numpy()]
    if codec.box > max_states:
        raise CRNSolverError(
            f"the initial distribution is spread over a box of {codec.box:,} states, "
            f"above the FSP limit of {max_states:,}",
            hint="tighten the species bounds or use method = ssa")
    x = codec.decode(np.arange(codec.box, dtype=np.int64))
    keep = np.isfinite(_init_log_prob(kernel, x))
    return x[keep]


def _init_log_prob(kernel, x: np.ndarray) -> np.ndarray:
    parts = [kernel.init_log_prob(torch.from_numpy(c)).cpu().numpy() for c in _chunks(x)]
    return np.concatenate(parts) if parts else np.zeros(0)


def initial_probabilities(kernel, states: np.ndarray) -> np.ndarray:
    """P(x, 0) on ``states`` (N,), renormalised to 1 over the truncated support."""
    logp = _init_log_prob(kernel, states)
    p = np.where(np.isfinite(logp), np.exp(logp - np.max(logp[np.isfinite(logp)])), 0.0)
    return p / p.sum()


def _chunks(x: np.ndarray):
    for i in range(0, len(x), BATCH):
        yield x[i:i + BATCH]


# ------------------------------------------------------------------ generator
@dataclass
class Transitions:
    """The jumps i -> j of the truncated CME: src, dst (E,) state indices, reaction (E,)."""

    src: np.ndarray
    dst: np.ndarray
    reaction: np.ndarray


def transitions(kernel, states: np.ndarray, codec: StateCodec) -> Transitions:
    """Every jump between reachable states that the support rule allows (absorbing: none)."""
    codes = codec.encode(states)
    change = kernel.CHANGE.cpu().numpy()
    src, dst, rx = [], [], []
    for offset in range(0, len(states), BATCH):
        x = states[offset:offset + BATCH]
        xt = torch.from_numpy(x)
        if kernel.TIME_DEPENDENT:
            allowed = kernel.fires(xt) & ~kernel.absorbing(xt)[:, None]
        else:
            allowed = kernel.out_rates(xt, 0.0) > 0
        i, k = np.nonzero(allowed.cpu().numpy())
        target = codec.encode(x[i] + change[k])
        j = np.searchsorted(codes, target)
        ok = (j < len(codes)) & (codes[np.minimum(j, len(codes) - 1)] == target)
        src.append(i[ok] + offset)
        dst.append(j[ok])
        rx.append(k[ok])
    return Transitions(np.concatenate(src), np.concatenate(dst), np.concatenate(rx))


def out_rate_table(kernel, states: np.ndarray, t: float) -> np.ndarray:
    """out_rates of every state at time t.  (N, K) float64."""
    parts = [kernel.out_rates(torch.from_numpy(x), t).cpu().numpy() for x in _chunks(states)]
    return np.concatenate(parts).astype(np.float64)


class Generator:
    """The CME generator A(t) of fixed sparsity: dP/dt = A P, (N, N) CSR, columns sum to 0.

    The CSR structure (one entry per jump, plus the diagonal) is laid out once; each call
    only recomputes the rates from the kernel and permutes them into place.
    """

    def __init__(self, kernel, states: np.ndarray, jumps: Transitions):
        self.kernel, self.states, self.jumps = kernel, states, jumps
        n = len(states)
        rows = np.concatenate([jumps.dst, np.arange(n)])
        cols = np.concatenate([jumps.src, np.arange(n)])
        self.order = np.lexsort((cols, rows))
        self.indices = cols[self.order].astype(np.int64)
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))]).astype(np.int64)

    def __call__(self, t: float) -> sparse.csr_matrix:
        n = len(self.states)
        rates = out_rate_table(self.kernel, self.states, t)[self.jumps.src, self.jumps.reaction]
        exit_rate = np.bincount(self.jumps.src, weights=rates, minlength=n)
        data = np.concatenate([rates, -exit_rate])[self.order]
        return sparse.csr_matrix((data, self.indices, self.indptr), shape=(n, n))


def generator(kernel, states: np.ndarray, jumps: Transitions, t: float) -> sparse.csr_matrix:
    """The CME generator A at time t: dP/dt = A P.  (N, N) CSR, columns sum to 0."""
    return Generator(kernel, states, jumps)(t)


# ------------------------------------------------------------------ time stepping
def propagate(kernel, states, codec, p0: np.ndarray, times: np.ndarray):
    """Yield P(t) (N,) at every saved time."""
    jumps = transitions(kernel, states, codec)
    if kernel.TIME_DEPENDENT:
        generator_at = Generator(kernel, states, jumps)
        probe = np.linspace(float(times[0]), float(times[-1]), 9)
        q = max(float(-generator_at(t).diagonal().min()) for t in probe) if len(states) else 0.0
        method = "RK45" if q * float(times[-1]) <= EXPLICIT_LIMIT else "BDF"
        yield from _ode(generator_at, p0, times, method)
        return
    A = generator(kernel, states, jumps, 0.0)
    q = float(-A.diagonal().min()) if len(states) else 0.0
    if q * float(times[-1]) > UNIFORMISATION_LIMIT:
        yield from _ode(lambda t: A, p0, times, "BDF")
    else:
        yield from _uniformisation(A, q, p0, times)


def _uniformisation(A: sparse.csr_matrix, q: float, p0: np.ndarray, times: np.ndarray):
    """P at ``times`` by Jensen's method; exact up to a 1e-15 cut of the Poisson series."""
    from scipy.stats import poisson

    p = p0.copy()
    yield p.copy()
    if q <= 0:
        for _ in times[1:]:
            yield p.copy()
        return
    q *= 1.0 + 1e-12
    B = (sparse.identity(A.shape[0], format="csr") + A / q).tocsr()
    for h in np.diff(times):
        lam = q * h
        n_max = int(poisson.isf(1e-15, lam)) + 2 if lam > 0 else 0
        weights = poisson.pmf(np.arange(n_max + 1), lam)
        first = int(np.argmax(weights > 1e-300))
        v = p
        out = weights[0] * v
        for n in range(1, n_max + 1):
            v = B @ v
            if n >= first:
                out += weights[n] * v
        p = out / out.sum() if out.sum() > 0 else out
        yield p.copy()


def _ode(generator_at, p0: np.ndarray, times: np.ndarray, method: str):
    """P at ``times`` by scipy's solve_ivp (RK45, or BDF with the sparse generator as Jacobian)."""
    from scipy.integrate import solve_ivp

    yield p0.copy()
    if len(times) < 2:
        return
    jac = {"jac": lambda t, p: generator_at(t)} if method == "BDF" else {}
    sol = solve_ivp(lambda t, p: generator_at(t) @ p, (float(times[0]), float(times[-1])), p0,
                    method=method, t_eval=times, rtol=ODE_RTOL, atol=ODE_ATOL, **jac)
    if not sol.success:
        raise CRNSolverError(f"FSP time integration failed: {sol.message}",
                             hint="try a smaller t_end or tighter bounds")
    for column in sol.y.T[1:]:
        yield np.maximum(column, 0.0)


# ------------------------------------------------------------------ statistics
class Statistics:
    """Means, variances, marginals, observables and edge mass, one saved time at a time."""

    def __init__(self, kernel, states: np.ndarray, times: np.ndarray, declared_hi: dict[str, int]):
        self.kernel = kernel
        self.states = states
        self.times = times
        self.full = self._full_states(states)                       # (N, L_full)
        self.names = tuple(kernel.ALL_SPECIES)
        self.sizes = [self._marginal_size(i) for i in range(len(self.names))]
        self.declared_hi = declared_hi
        self.edge_static = None if kernel.TIME_DEPENDENT else self._edge(0.0)
        T, L = len(times), len(self.names)
        self.mean = np.zeros((T, L))
        self.var = np.zeros((T, L))
        self.marg = [np.zeros((T, m)) for m in self.sizes]
        self.obs_mean: dict[str, np.ndarray] = {}
        self.obs_var: dict[str, np.ndarray] = {}
        self.obs_prob: dict[str, np.ndarray] = {}
        self.edge = np.zeros(T)
        self.edge_by_species = np.zeros((T, L))

    def _full_states(self, states):
        parts = [self.kernel.full_state(torch.from_numpy(x)).cpu().numpy() for x in _chunks(states)]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros((0, 0), np.int64)

    def _marginal_size(self, i: int) -> int:
        return marginal_size(self.kernel.FULL_UPPER[i], self.full[:, i].max(initial=0))

    def _edge(self, t: float) -> np.ndarray:
        """Where a jump with positive propensity is blocked by species j's declared upper bound.

        (N, L_full) bool; a state is on the truncation edge when any entry of its row is set.
        """
        hi = np.array([self.declared_hi.get(n, np.iinfo(np.int64).max) for n in self.names])
        if not np.any(hi < np.iinfo(np.int64).max):
            return np.zeros((len(self.states), len(self.names)), dtype=bool)
        change = self.kernel.CHANGE_FULL.cpu().numpy()
        out = []
        for offset in range(0, len(self.states), BATCH):
            x = torch.from_numpy(self.states[offset:offset + BATCH])
            full = self.full[offset:offset + BATCH]
            over = (full[:, None, :] + change[None]) > hi                         # (B, K, L_full)
            positive = (self.kernel.propensities(x, t) > 0).cpu().numpy()          # (B, K)
            free = ~self.kernel.absorbing(x).cpu().numpy()                         # (B,)
            out.append((over & positive[:, :, None]).any(axis=1) & free[:, None])
        return np.concatenate(out)

    def record(self, i: int, p: np.ndarray) -> None:
        t = float(self.times[i])
        p = np.maximum(p, 0.0)
        self.mean[i] = p @ self.full
        self.var[i] = p @ (self.full - self.mean[i]) ** 2
        for j, m in enumerate(self.sizes):
            self.marg[j][i] = np.bincount(self.full[:, j], weights=p, minlength=m)[:m]
        edge = self.edge_static if self.edge_static is not None else self._edge(t)
        self.edge[i] = p[edge.any(axis=1)].sum()
        self.edge_by_species[i] = p @ edge
        for name, values in self._observables(t).items():
            if values.dtype == bool:
                self.obs_prob.setdefault(name, np.zeros(len(self.times)))[i] = p[values].sum()
            else:
                mean = p @ values
                self.obs_mean.setdefault(name, np.zeros(len(self.times)))[i] = mean
                self.obs_var.setdefault(name, np.zeros(len(self.times)))[i] = p @ (values - mean) ** 2

    def _observables(self, t: float) -> dict[str, np.ndarray]:
        if not self.kernel.OBSERVABLES:
            return {}
        parts: dict[str, list] = {}
        for x in _chunks(self.states):
            for name, v in self.kernel.observables(torch.from_numpy(x), t).items():
                parts.setdefault(name, []).append(v.cpu().numpy())
        return {name: np.concatenate(v) for name, v in parts.items()}

    def result(self, model_name: str, settings: Settings) -> Result:
        means = {n: self.mean[:, j] for j, n in enumerate(self.names)}
        variances = {n: np.maximum(self.var[:, j], 0.0) for j, n in enumerate(self.names)}
        means.update(self.obs_mean)
        variances.update(self.obs_var)
        messages = self._edge_warnings()
        for message in messages:
            warnings.warn(message, stacklevel=3)
        return Result(method="fsp", model_name=model_name, times=self.times.copy(),
                      species=self.names, means=means, variances=variances,
                      marginals={n: self.marg[j] for j, n in enumerate(self.names)},
                      probs=dict(self.obs_prob), edge_mass=self.edge.copy(),
                      settings=settings.to_dict(), warnings=messages)

    def _edge_warnings(self) -> list[str]:
        worst = int(np.argmax(self.edge)) if len(self.edge) else 0
        if not len(self.edge) or self.edge[worst] <= EDGE_WARN:
            return []
        worst_by_species = self.edge_by_species.max(axis=0)
        at_bound = sorted(((worst_by_species[j], name) for j, name in enumerate(self.names)
                           if worst_by_species[j] > EDGE_WARN / 100), reverse=True)
        names = ", ".join(f"{n} <= {self.declared_hi[n]}" for _, n in at_bound[:5])
        return [f"FSP: probability {self.edge[worst]:.2e} on the truncation edge at "
                f"t = {self.times[worst]:g} (above {EDGE_WARN:g}); the answer is distorted by the "
                f"bounds{': ' + names if names else ''}. Raise them."]
