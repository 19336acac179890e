"""Generic helpers the generated kernels import (the model-specific parts live in the kernel).

Initial distributions: one ``Marginal`` per species (independent across species), each
truncated to the species' bounds [lo, hi] and renormalised there, so that ``init_log_prob``
sums to 1 over the support and ``init_sample`` never leaves it.
"""
from __future__ import annotations

import math
from functools import cached_property

import numpy as np
import torch

from ..model.initial import check_initial
from ..model.ir import Lattice
from ..model.lattice import directed_edges, hop_label, site_label, site_number, sites_of

TAIL = 1e-12            # an unbounded Poisson is cut where its upper tail is below this
NO_UPPER = 2 ** 62      # stands for "no upper bound" in bound tensors
MAX_INIT_SUPPORT = 10 ** 6


# ---------------------------------------------------------------- small tensor helpers
def float_of(x: torch.Tensor) -> torch.Tensor:
    """x in its own float dtype, or float64 for an integer tensor."""
    return x if x.is_floating_point() else x.to(torch.float64)


def column(value, n: int, dtype: torch.dtype, device) -> torch.Tensor:
    """A (n,) tensor of ``dtype`` from a (n,) tensor, a 0-d tensor or a Python scalar."""
    value = torch.as_tensor(value, device=device)
    return value.to(dtype).expand(n) if value.dim() == 0 else value.to(dtype)


def constant_row(value: int, rows: torch.Tensor) -> torch.Tensor:
    """(B,) filled with ``value``, in the dtype and device of the (L, B) ``rows``."""
    return torch.full((rows.shape[1],), value, dtype=rows.dtype, device=rows.device)


def count(n: int, device, *indicators) -> torch.Tensor:
    """(n,) int32: how many of the indicators ((n,) bool tensors or 0/1) are true."""
    total = torch.zeros(n, dtype=torch.int32, device=device)
    for ind in indicators:
        total += ind
    return total


def as_count(indicator):
    """A (B,) bool indicator (or a 0/1 constant) as int32, for count arithmetic."""
    if isinstance(indicator, torch.Tensor):
        return indicator.to(torch.int32)
    return int(indicator)


def bound_tensor(values, device) -> torch.Tensor:
    """(L,) int64 bounds on ``device``; None (no upper bound) becomes NO_UPPER."""
    return torch.tensor([NO_UPPER if v is None else v for v in values], dtype=torch.int64,
                        device=device)


def within_rows(rows: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """(L, B) rows, (L,) bounds -> (B,) bool: every row inside [lower, upper]."""
    lower, upper = lower.to(rows.device)[:, None], upper.to(rows.device)[:, None]
    return ((rows >= lower) & (rows <= upper)).all(dim=0)


# ---------------------------------------------------------------- reaction groups
def _lattice(info: dict) -> Lattice:
    return Lattice(info["kind"], tuple(info["shape"]), bool(info["periodic"]))


def edge_rows(lattice: dict, end: int, offset: int) -> torch.Tensor:
    """(E,) int64: offset + the site number of end ``end`` (0 from, 1 to) of every directed
    edge of the lattice (``MODEL.lattice``), in ``directed_edges`` order."""
    info = _lattice(lattice)
    return torch.tensor([offset + site_number(info, edge[end]) for edge in directed_edges(info)],
                        dtype=torch.int64)


def site_labels(lattice: dict, label: str) -> tuple[str, ...]:
    """``label`` at every site: ("r1[0,0]", "r1[0,1]", ...)."""
    return tuple(site_label(label, s) for s in sites_of(_lattice(lattice)))


def hop_labels(lattice: dict, species: str) -> tuple[str, ...]:
    """The labels of ``diffuse``'s hops of ``species``, one per directed edge."""
    return tuple(hop_label(species, a, b) for a, b in directed_edges(_lattice(lattice)))


def group_rows(rows, size: int) -> torch.Tensor:
    """(size,) int64 rows of one slot of a reaction group: an int a means a, a+1, ..."""
    if isinstance(rows, int):
        return torch.arange(rows, rows + size, dtype=torch.int64)
    return torch.as_tensor(rows, dtype=torch.int64)


def reaction_matrix(n_reactions: int, n_species: int, groups, field: int) -> torch.Tensor:
    """(K, L) int64 from the reaction groups ``(start, stop, step, rows per slot, change per
    slot, reactant order per slot)``: entry [start + g * step, rows[j][g]] = groups[field][j]."""
    out = torch.zeros((n_reactions, n_species), dtype=torch.int64)
    for group in groups:
        start, stop, step, slot_rows, values = *group[:4], group[field]
        reactions = torch.arange(start, stop, step)
        for rows, value in zip(slot_rows, values):
            out[reactions, group_rows(rows, len(reactions))] = value
    return out


def interleave(*runs) -> tuple:
    """(a0, b0, a1, b1, ...) from equally long runs (a0, a1, ...), (b0, b1, ...)."""
    return tuple(item for items in zip(*runs, strict=True) for item in items)


# ---------------------------------------------------------------- initial marginals
class Marginal:
    """The initial distribution of one species, truncated to [lo, hi] (hi None: unbounded)."""

    lo: int
    hi: int | None

    def log_prob(self, values: torch.Tensor) -> torch.Tensor:
        """(B,) float counts -> (B,) log-probabilities (-inf outside the support)."""
        raise NotImplementedError

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n,) int64 exact samples, on the generator's device (CPU without one)."""
        raise NotImplementedError

    def support(self) -> np.ndarray:
        """All values with positive probability (a finite superset for an unbounded Poisson,
        cut at an upper tail below TAIL), ascending int64."""
        raise NotImplementedError


def _device_of(generator):
    return generator.device if generator is not None else torch.device("cpu")


class Fixed(Marginal):
    def __init__(self, value: int, lo: int = 0, hi: int | None = None):
        check_initial("Fixed", (value,), lo, hi)
        self.value, self.lo, self.hi = int(value), lo, hi

    def log_prob(self, values):
        return torch.zeros_like(values).masked_fill(values != self.value, -math.inf)

    def sample(self, n, generator=None):
        return torch.full((n,), self.value, dtype=torch.int64, device=_device_of(generator))

    def support(self):
        return np.array([self.value], dtype=np.int64)


class _Tabled(Marginal):
    """A distribution over the integers first..last, given by its log-pmf, renormalised there."""

    first: int
    last: int | None

    def _log_pmf_np(self, k: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _log_pmf_torch(self, values: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _table_last(self) -> int:
        return self.last

    @cached_property
    def _table(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(values, cdf) over the finite table range, and log Z of the range."""
        k = np.arange(self.first, self._table_last() + 1, dtype=np.int64)
        log_p = self._log_pmf_np(k)
        log_z = float(np.logaddexp.reduce(log_p))
        cdf = np.cumsum(np.exp(log_p - log_z))
        return k, cdf / cdf[-1], log_z

    def _log_z(self) -> float:
        return self._table[2]

    def log_prob(self, values):
        lp = self._log_pmf_torch(values) - self._log_z()
        inside = values >= self.first
        if self.last is not None:
            inside = inside & (values <= self.last)
        return torch.where(inside, lp, -math.inf)

    def sample(self, n, generator=None):
        k, cdf, _ = self._table
        device = _device_of(generator)
        u = torch.rand(n, generator=generator, dtype=torch.float64, device=device)
        idx = torch.searchsorted(torch.as_tensor(cdf, device=device), u, right=True)
        idx = idx.clamp_(max=len(k) - 1)
        return torch.as_tensor(k, device=device)[idx]

    def support(self):
        return self._table[0]


class Uniform(_Tabled):
    """Integers a..b inclusive, each equally likely (before truncation to [lo, hi])."""

    def __init__(self, a: int, b: int, lo: int = 0, hi: int | None = None):
        check_initial("Uniform", (a, b), lo, hi)
        self.a, self.b, self.lo, self.hi = int(a), int(b), lo, hi
        self.first = max(self.a, lo)
        self.last = self.b if hi is None else min(self.b, hi)

    def _log_pmf_np(self, k):
        return np.zeros(k.shape)

    def _log_pmf_torch(self, values):
        return torch.zeros_like(values)


class Binomial(_Tabled):
    def __init__(self, n: int, p: float, lo: int = 0, hi: int | None = None):
        check_initial("Binomial", (n, p), lo, hi)
        self.n, self.p, self.lo, self.hi = int(n), float(p), lo, hi
        self.first = max(0, lo)
        self.last = self.n if hi is None else min(self.n, hi)

    def _log_pmf_np(self, k):
        from scipy.special import gammaln

        n, p = self.n, self.p
        return (gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)
                + k * math.log(p) + (n - k) * math.log1p(-p))

    def _log_pmf_torch(self, values):
        n, p = self.n, self.p
        v = values.clamp(0, n)
        return (math.lgamma(n + 1) - torch.lgamma(v + 1) - torch.lgamma(n - v + 1)
                + v * math.log(p) + (n - v) * math.log1p(-p))


class Poisson(_Tabled):
    def __init__(self, lam: float, lo: int = 0, hi: int | None = None):
        check_initial("Poisson", (lam,), lo, hi)
        self.lam, self.lo, self.hi = float(lam), lo, hi
        self.first, self.last = max(0, lo), hi

    def _table_last(self) -> int:
        if self.last is not None:
            return self.last
        from scipy.stats import poisson

        return max(self.first, int(poisson.isf(TAIL, self.lam)) + 1)

    def _log_z(self) -> float:
        if self.last is not None:
            return self._table[2]
        if self.first == 0:
            return 0.0
        from scipy.stats import poisson

        return float(poisson.logsf(self.first - 1, self.lam))

    def _log_pmf_np(self, k):
        from scipy.special import gammaln

        return k * math.log(self.lam) - self.lam - gammaln(k + 1)

    def _log_pmf_torch(self, values):
        v = values.clamp(min=0)
        return v * math.log(self.lam) - self.lam - torch.lgamma(v + 1)

    def sample(self, n, generator=None):
        if self.last is None and self.first == 0:
            device = _device_of(generator)
            rates = torch.full((n,), self.lam, dtype=torch.float64, device=device)
            return torch.poisson(rates, generator=generator).to(torch.int64)
        return super().sample(n, generator)


# ---------------------------------------------------------------- whole initial state
def init_log_prob(marginals, full: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    """Sum of the per-species log-probabilities of the full state (B, L_full) (float), and
    -inf where ``ok`` (the state is in the support) is False."""
    total = torch.zeros(full.shape[0], dtype=full.dtype, device=full.device)
    for i, marginal in enumerate(marginals):
        total = total + marginal.log_prob(full[:, i])
    return torch.where(ok, total, -math.inf)


def init_sample(marginals, reduced_index, log_prob, n: int, generator=None,
                max_rounds: int = 1000) -> torch.Tensor:
    """(n, L) int64 exact samples: independent per species, rows rejected (and redrawn) where
    ``log_prob`` is -inf (a conservation law contradicted)."""
    def draw(m):
        return torch.stack([marginals[i].sample(m, generator) for i in reduced_index], dim=1)

    x = draw(n) if reduced_index else torch.zeros((n, 0), dtype=torch.int64,
                                                  device=_device_of(generator))
    for _ in range(max_rounds):
        bad = ~torch.isfinite(log_prob(x))
        if not bad.any():
            return x
        x[bad] = draw(int(bad.sum()))
    raise ValueError("could not sample the initial distribution: almost all draws violate "
                     "a conservation law")


def init_support(marginals, reduced_index, log_prob, max_states: int = MAX_INIT_SUPPORT):
    """(S, L) int64: every reduced state with positive initial probability, or None when the
    product of the per-species supports exceeds ``max_states``."""
    supports = [marginals[i].support() for i in reduced_index]
    if math.prod(len(s) for s in supports) > max_states:
        return None
    if not supports:
        states = torch.zeros((1, 0), dtype=torch.int64, device="cpu")
    else:
        grids = np.meshgrid(*supports, indexing="ij")
        states = torch.as_tensor(np.stack([g.reshape(-1) for g in grids], axis=1), device="cpu")
    return states[torch.isfinite(log_prob(states))]

