"""The ``Result`` every solver returns (FSP, SSA, the neural methods)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


MAX_MARGINAL_BOUND = 10 ** 6     # a bound above this does not size the tables (memory)


def marginal_size(upper: int | None, largest_seen: int) -> int:
    """M, the length of a species' marginal table P(x = 0..M-1): past the species' upper bound
    (when it has one, up to ``MAX_MARGINAL_BOUND``) and past the largest count any state or
    sample holds. Every solver sizes its marginals by this rule."""
    bound = 0 if upper is None or int(upper) > MAX_MARGINAL_BOUND else int(upper)
    return max(bound, int(largest_seen)) + 1


@dataclass
class Result:
    """Time series of a solved model.

    Shapes: T saved times. ``species`` are full names (all species, eliminated ones included;
    lattice sites as ``X[3]`` / ``X[1,2]``).

    means, variances:   name -> (T,)       per species and per numeric observable
    marginals:          name -> (T, M)     P(x = 0..M-1) per species
    probs:              name -> (T,)       per boolean observable
    stderr:             "mean:X" / "prob:low" / ... -> (T,)  standard errors (sampling methods)
    edge_mass:          (T,) probability on the truncation edge (FSP), or None
    extra:              anything method-specific worth saving (rare-event estimates, losses)
    """

    method: str
    model_name: str
    times: np.ndarray
    species: tuple[str, ...]
    means: dict[str, np.ndarray]
    variances: dict[str, np.ndarray]
    marginals: dict[str, np.ndarray] = field(default_factory=dict)
    probs: dict[str, np.ndarray] = field(default_factory=dict)
    stderr: dict[str, np.ndarray] = field(default_factory=dict)
    edge_mass: np.ndarray | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    wall_seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def _get(self, table: dict, name: str, what: str) -> np.ndarray:
        if name not in table:
            from .errors import CRNError, did_you_mean

            raise CRNError(f"no {what} named '{name}' in this result",
                           hint=did_you_mean(name, table) or f"known: {', '.join(table)}")
        return table[name]

    def mean(self, name: str) -> np.ndarray:
        return self._get(self.means, name, "species or numeric observable")

    def var(self, name: str) -> np.ndarray:
        return self._get(self.variances, name, "species or numeric observable")

    def std(self, name: str) -> np.ndarray:
        return np.sqrt(np.maximum(self.var(name), 0.0))

    def marginal(self, name: str, t: float) -> np.ndarray:
        """P(name = 0..M-1) at the saved time nearest ``t``."""
        table = self._get(self.marginals, name, "species marginal")
        return table[self.time_index(t)]

    def prob(self, observable: str) -> np.ndarray:
        return self._get(self.probs, observable, "boolean observable")

    def time_index(self, t: float) -> int:
        return int(np.argmin(np.abs(np.asarray(self.times) - t)))

    def save(self, directory) -> list:
        """Write summary.json, results.npz and PNG plots into ``directory``; returns the paths."""
        from .io.results import save_result

        return save_result(self, directory)


LATE_FRACTION = 0.5      # the switching rate is fitted over the last half of the saved times


def first_passage(times, absorbed, stderr=None) -> dict:
    """First passage into an absorbing region, from P(absorbed by t) on the saved times.

    ``times`` (T,), ``absorbed`` (T,) the probability of the absorbing observable (absorbing
    states never leave, so it is the first-passage curve), ``stderr`` (T,) its standard error
    or None (exact). Returns:

        density:      (T-1,) dP/dt between consecutive saved times, at ``density_times``
        rate:         the switching rate r of S(t) = 1 - P(t) ~ C exp(-r t) at late times,
                      the slope of log S fitted over the last half of the saved times
        rate_stderr:  its standard error (from the standard errors of P where given, else
                      from the scatter of log S about the line); NaN when it cannot be fitted
        mean_time_lower: the area under S up to the last time, a lower bound of the mean
                      first-passage time
    """
    t = np.asarray(times, dtype=np.float64)
    p = np.clip(np.asarray(absorbed, dtype=np.float64), 0.0, 1.0)
    out = {"density_times": ((t[1:] + t[:-1]) / 2).tolist(),
           "density": (np.diff(p) / np.maximum(np.diff(t), 1e-300)).tolist(),
           "mean_time_lower": float(np.sum(np.diff(t) * (1 - (p[1:] + p[:-1]) / 2))),
           "rate": math.nan, "rate_stderr": math.nan}
    survive = 1.0 - p
    late = (t >= t[0] + (1 - LATE_FRACTION) * (t[-1] - t[0])) & (survive > 1e-12) & (p > 0)
    if late.sum() < 3:
        return out
    x, y = t[late], np.log(survive[late])
    if stderr is not None and np.all(np.asarray(stderr)[late] > 0):
        sigma = np.asarray(stderr, dtype=np.float64)[late] / survive[late]
    else:
        sigma = np.ones_like(x)
    weight = 1.0 / sigma ** 2
    x_bar = np.sum(weight * x) / np.sum(weight)
    spread = np.sum(weight * (x - x_bar) ** 2)
    slope = np.sum(weight * (x - x_bar) * y) / spread
    intercept = np.sum(weight * y) / np.sum(weight) - slope * x_bar
    residual = np.sum(weight * (y - intercept - slope * x) ** 2) / max(len(x) - 2, 1)
    scale = residual if stderr is None else max(residual, 1.0)
    out["rate"] = float(-slope)
    out["rate_stderr"] = float(math.sqrt(scale / spread))
    return out
