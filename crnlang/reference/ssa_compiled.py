"""Gillespie's direct method one trajectory at a time, in a loop compiled by numba.

The vectorised engine of ``ssa.py`` advances every run together; its cost per event is a
batched kernel call that only a very large batch amortises, and it evaluates every reaction
of every site per event. This engine runs each trajectory on its own, event by event, and
after an event recomputes only the propensities of the reactions that read a species the
event changed (the dependency graph of the network). The next reaction is found in two
levels: the reactions are cut into groups of about sqrt(K), a group is chosen by the group
sums, then a reaction inside it. Group sums are recomputed from their members after each
event (never updated by differences), so no rounding drift builds up over a long run.

It applies where every propensity is c_k * h(x) with a constant c_k (mass action, the
kernel's ``RATE_CONSTANTS``), the rates do not read t, and every absorbing region is a
product of intervals (the kernel's ``INTERVALS``). Otherwise ``ssa.py``'s vectorised engine
runs, and ``Result.extra["ssa_engine"]`` says why. The law is the same as there: blocked
jumps (a drawn jump that would leave the declared bounds) are null events, absorbing states
have no events, the states are recorded at the save times their clock passes.

Every run draws from its own xoshiro256+ stream (Blackman & Vigna; the top 53 bits of each
output make a double), its 256-bit state from numpy's SeedSequence of the solve's seed and
the run's index, so the result does not depend on the number of threads or on the chunking.
Inline in the loop it is faster than numba's np.random (a thread-local Mersenne Twister):
measured 1.8e7 against 1.37e7 events/s on the 2-site Schlögl chain, one thread.
The initial states are the kernel's ``init_sample`` with the same torch generator as the
vectorised engine. Threads: numba's, set to torch's intra-op thread count.
"""
from __future__ import annotations

import math
import os
import time

import numpy as np
import torch
from scipy import sparse

try:
    import numba
except ImportError:              # the vectorised engine runs instead
    numba = None
if numba is not None and "NUMBA_THREADING_LAYER" not in os.environ:
    # numba's OpenMP layer shares torch's libgomp and resets its thread count when its pool
    # starts (measured: torch.get_num_threads() went from 1 to 2); its own pool does not
    numba.config.THREADING_LAYER = "workqueue"

KINETICS_CODE = {"binomial": 0, "falling": 1, "power": 2}
UNBOUNDED = np.iinfo(np.int64).max // 4
CHUNK_SECONDS = 1.0          # aim of one compiled call between progress reports


def _jit(**options):
    """numba.njit with the on-disk cache, or nothing when numba is missing."""
    if numba is None:
        return lambda func: func
    return numba.njit(cache=True, nogil=True, **options)


_prange = numba.prange if numba is not None else range


def compiled_engine_reason(kernel) -> str | None:
    """None when the compiled engine can run ``kernel``, else why not (one sentence)."""
    if numba is None:
        return "numba is not installed"
    if kernel.TIME_DEPENDENT:
        return "a rate reads t (the vectorised engine integrates the hazard)"
    constants = getattr(kernel, "RATE_CONSTANTS", None)
    if constants is None or any(c is None for c in constants):
        return "a rate law is not mass action with a constant rate"
    if kernel.MODEL.kinetics not in KINETICS_CODE:
        return f"kinetics {kernel.MODEL.kinetics} is not known to the compiled engine"
    if any(name not in kernel.INTERVALS for name in kernel.ABSORBING):
        return "an absorbing region is not a product of intervals"
    return None


def run_compiled(kernel, x0: torch.Tensor, times: np.ndarray, seed: int, progress=None,
                 first_run: int = 0, total_runs: int | None = None):
    """Simulate one trajectory per row of ``x0`` (R, L) reduced initial states; return (states
    at ``times`` (R, T, L) int32 tensor, reaction events, jumps refused by the bounds).
    The rows are runs first_run .. first_run + R - 1 of ``total_runs`` (a rank's share of
    an ensemble: each run's stream is fixed by the seed and its index alone). ``progress``
    hears t_end x the fraction of runs done, and the events so far."""
    tables = _Tables(kernel)
    full0 = kernel.full_state(x0.to(torch.int64))
    full0 = (full0.round() if full0.is_floating_point() else full0).to(torch.int64).numpy()
    full0 = np.ascontiguousarray(full0)
    runs = full0.shape[0]
    times = np.ascontiguousarray(times, dtype=np.float64)
    traj = np.zeros((runs, len(times), len(tables.reduced)), dtype=np.int32)
    events = np.zeros(runs, dtype=np.int64)
    blocked = np.zeros(runs, dtype=np.int64)
    total_runs = runs if total_runs is None else int(total_runs)
    run_seeds = np.random.SeedSequence(int(seed)).generate_state(4 * total_runs, dtype=np.uint64)
    run_seeds = np.ascontiguousarray(run_seeds.reshape(total_runs, 4)[first_run:first_run + runs])
    torch_threads = torch.get_num_threads()
    numba.set_num_threads(max(1, min(torch_threads, numba.config.NUMBA_NUM_THREADS)))
    done, chunk = 0, max(8, 2 * numba.get_num_threads())
    t_end = float(times[-1])
    while done < runs:
        hi = min(runs, done + chunk)
        start = time.perf_counter()
        _simulate_runs(full0[done:hi], run_seeds[done:hi], times, *tables.arrays(),
                       traj[done:hi], events[done:hi], blocked[done:hi])
        spent = time.perf_counter() - start
        done = hi
        if progress is not None:
            progress.update(t_end * done / runs, int(events.sum()))
        growth = min(4.0, CHUNK_SECONDS / max(spent, 1e-3))
        chunk = int(min(max(chunk * growth, 8), 1 << 16))
    torch.set_num_threads(torch_threads)          # whatever numba's pool did, torch's stays
    return torch.from_numpy(traj), int(events.sum()), int(blocked.sum())


class _Tables:
    """The kernel's network as flat arrays for the compiled loop (CSR lists per reaction)."""

    def __init__(self, kernel):
        n_full = len(kernel.ALL_SPECIES)
        reactants = kernel.REACTANTS.numpy().astype(np.int64)           # (K, L_full)
        change = kernel.CHANGE_FULL.numpy().astype(np.int64)            # (K, L_full)
        K = change.shape[0]
        self.kinetics = KINETICS_CODE[kernel.MODEL.kinetics]
        self.rate = np.array(kernel.RATE_CONSTANTS, dtype=np.float64).reshape(K)
        if self.kinetics == 0:                       # binomial: c / prod s! times falling
            self.rate = self.rate / np.prod([[math.factorial(int(s)) for s in row]
                                             for row in reactants], axis=1)
        self.r_ptr, self.r_species, self.r_order = _csr(sparse.csr_matrix(reactants))
        self.c_ptr, self.c_species, self.c_delta = _csr(sparse.csr_matrix(change))
        self.lo = np.array(kernel.FULL_LOWER, dtype=np.int64)
        self.hi = np.array([UNBOUNDED if h is None else h for h in kernel.FULL_UPPER],
                           dtype=np.int64)
        self.reduced = np.array(kernel._REDUCED_INDEX, dtype=np.int64).reshape(-1)
        self.group = K if K <= 16 else max(1, int(math.ceil(math.sqrt(K))))
        # reaction k's event changes the propensity of j when it changes a reactant of j;
        # sparse, so that a lattice of many sites does not need a dense (K, K) matrix
        changes = sparse.csr_matrix((change != 0).astype(np.int64))          # (K, L_full)
        reads = sparse.csr_matrix((reactants > 0).astype(np.int64))          # (K, L_full)
        touched = (changes @ reads.T).tocsr()                                # (K, K)
        touched.sort_indices()
        self.d_ptr, self.d_rx = touched.indptr.astype(np.int64), touched.indices.astype(np.int64)
        member = sparse.csr_matrix((np.ones(K, dtype=np.int64),
                                    (np.arange(K), np.arange(K) // self.group)))
        groups = (touched @ member).tocsr()                                  # (K, groups)
        groups.sort_indices()
        self.g_ptr, self.g_list = groups.indptr.astype(np.int64), groups.indices.astype(np.int64)
        boxes = [kernel.INTERVALS[name] for name in kernel.ABSORBING]
        self.box_lo = np.full((len(boxes), n_full), -UNBOUNDED, dtype=np.int64)
        self.box_hi = np.full((len(boxes), n_full), UNBOUNDED, dtype=np.int64)
        index = {name: j for j, name in enumerate(kernel.ALL_SPECIES)}
        for b, box in enumerate(boxes):
            for name, (lo, hi) in box.items():
                self.box_lo[b, index[name]] = lo
                self.box_hi[b, index[name]] = UNBOUNDED if hi is None else hi

    def arrays(self):
        return (self.rate, self.kinetics, self.r_ptr, self.r_species, self.r_order,
                self.c_ptr, self.c_species, self.c_delta, self.lo, self.hi, self.reduced,
                self.group, self.d_ptr, self.d_rx, self.g_ptr, self.g_list,
                self.box_lo, self.box_hi)


def _csr(matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A scipy CSR (K, N) -> (ptr (K+1), column index, value), int64, columns in order."""
    matrix = matrix.tocsr()
    matrix.sort_indices()
    return (matrix.indptr.astype(np.int64), matrix.indices.astype(np.int64),
            matrix.data.astype(np.int64))


@_jit(inline="always")
def _propensity(k, x, rate, kinetics, r_ptr, r_species, r_order):
    """Propensity of reaction k at the full state x: c_k * h(x), h as in ir.py (power:
    prod x^s; falling: prod x (x-1)...(x-s+1); binomial: falling with 1/prod s! folded into
    ``rate`` by ``_Tables``)."""
    h = rate[k]
    for p in range(r_ptr[k], r_ptr[k + 1]):
        n = float(x[r_species[p]])
        s = r_order[p]
        if s == 1:
            h *= n
        elif kinetics == 2:
            for _ in range(s):
                h *= n
        else:
            for j in range(s):
                h *= n - j
    return h


@_jit(inline="always")
def _rotl(v, k):
    return (v << np.uint64(k)) | (v >> np.uint64(64 - k))


@_jit(inline="always")
def _uniform(state):
    """A uniform double in [0, 1) from xoshiro256+ (Blackman & Vigna), state (4,) uint64."""
    result = state[0] + state[3]
    t = state[1] << np.uint64(17)
    state[2] ^= state[0]
    state[3] ^= state[1]
    state[1] ^= state[2]
    state[0] ^= state[3]
    state[2] ^= t
    state[3] = _rotl(state[3], 45)
    return float(result >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@_jit()
def _absorbed(x, box_lo, box_hi):
    """x inside any absorbing box (each a product of intervals)."""
    for b in range(box_lo.shape[0]):
        inside = True
        for j in range(x.shape[0]):
            if x[j] < box_lo[b, j] or x[j] > box_hi[b, j]:
                inside = False
                break
        if inside:
            return True
    return False


@_jit()
def _one_run(x, seed, times, rate, kinetics, r_ptr, r_species, r_order, c_ptr, c_species,
             c_delta, lo, hi, reduced, group, d_ptr, d_rx, g_ptr, g_list, box_lo, box_hi, out):
    """One trajectory from the full state x (modified in place); out (T, L) int32 gets the
    reduced state at each save time. Returns (events, blocked jumps)."""
    state = seed.copy()
    if state[0] == 0 and state[1] == 0 and state[2] == 0 and state[3] == 0:
        state[0] = 1                             # the one state xoshiro never leaves
    K = rate.shape[0]
    n_groups = (K + group - 1) // group
    a = np.empty(K)
    for k in range(K):
        a[k] = _propensity(k, x, rate, kinetics, r_ptr, r_species, r_order)
    sums = np.zeros(n_groups)
    for k in range(K):
        sums[k // group] += a[k]
    T = times.shape[0]
    t_end = times[T - 1]
    t = 0.0
    save = 0
    events = 0
    refused = 0
    absorbed = _absorbed(x, box_lo, box_hi)
    while True:
        a0 = 0.0
        for g in range(n_groups):
            a0 += sums[g]
        t_new = np.inf
        if a0 > 0.0 and not absorbed:
            t_new = t - math.log(1.0 - _uniform(state)) / a0
        while save < T and times[save] < t_new:
            for j in range(reduced.shape[0]):
                out[save, j] = x[reduced[j]]
            save += 1
        if t_new > t_end:
            return events, refused
        t = t_new
        # the reaction: the first k whose cumulative propensity reaches u * a0
        target = (1.0 - _uniform(state)) * a0
        g = 0
        while g < n_groups - 1 and (target > sums[g] or sums[g] == 0.0):
            target -= sums[g]
            g += 1
        while sums[g] == 0.0 and g > 0:          # rounding ran past the last weighted group
            g -= 1
        k = g * group
        last = min(k + group, K) - 1
        while k < last and (target > a[k] or a[k] == 0.0):
            target -= a[k]
            k += 1
        while a[k] == 0.0 and k > g * group:     # rounding ran past the group's last member
            k -= 1
        # a jump that would leave the bounds is a null event
        ok = True
        for p in range(c_ptr[k], c_ptr[k + 1]):
            n = x[c_species[p]] + c_delta[p]
            if n < lo[c_species[p]] or n > hi[c_species[p]]:
                ok = False
                break
        if not ok:
            refused += 1
            continue
        for p in range(c_ptr[k], c_ptr[k + 1]):
            x[c_species[p]] += c_delta[p]
        events += 1
        for p in range(d_ptr[k], d_ptr[k + 1]):
            j = d_rx[p]
            a[j] = _propensity(j, x, rate, kinetics, r_ptr, r_species, r_order)
        for p in range(g_ptr[k], g_ptr[k + 1]):
            g = g_list[p]
            total = 0.0
            for j in range(g * group, min(g * group + group, K)):
                total += a[j]
            sums[g] = total
        if box_lo.shape[0] > 0:
            absorbed = _absorbed(x, box_lo, box_hi)


@_jit(parallel=True)
def _simulate_runs(x0, seeds, times, rate, kinetics, r_ptr, r_species, r_order, c_ptr,
                   c_species, c_delta, lo, hi, reduced, group, d_ptr, d_rx, g_ptr, g_list,
                   box_lo, box_hi, traj, events, blocked):
    """Every run r (in parallel): from the full state x0[r] to times[-1]; writes traj[r]
    (T, L), events[r] and blocked[r]."""
    for r in _prange(x0.shape[0]):
        e, b = _one_run(x0[r].copy(), seeds[r], times, rate, kinetics, r_ptr, r_species,
                        r_order, c_ptr, c_species, c_delta, lo, hi, reduced, group, d_ptr,
                        d_rx, g_ptr, g_list, box_lo, box_hi, traj[r])
        events[r] = e
        blocked[r] = b
