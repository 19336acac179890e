"""What a saved time reports: means, variances, marginals, observable probabilities.

When the reduced box is small (<= EXACT_LIMIT states) every state is enumerated and
weighted by exp(log P_theta): the figures are exact for the network (no sampling noise).
Otherwise they are averages over a large batch of samples of P_theta, with standard errors.
Either way the figures are of P_theta conditioned on the model's support (a box state whose
eliminated species break their bounds is no state of the model); the mass outside it is
kept in ``Estimator.outside_mass`` (the largest seen), a measure of wasted samples.

A ``Snapshot`` holds one saved time; ``Recorder`` stacks snapshots into a ``Result``.
Shapes: S states, L reduced species, L_full all species.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..boxes import box_size
from ..result import marginal_size
from .rare import sequential_probability

EXACT_LIMIT = 200_000
SAMPLES = 20_000          # samples per saved time when the box is too big to enumerate
CHUNK = 50_000            # states per log_prob call when enumerating
CONDITIONAL_CHUNK = 5_000 # samples per conditional_logits call (conditional marginals)


def box_states(lower, upper) -> torch.Tensor:
    """(S, L) int64: every state of the box, last species fastest."""
    axes = [torch.arange(int(a), int(b) + 1, device="cpu") for a, b in zip(lower, upper)]
    if len(axes) == 1:
        return axes[0][:, None]
    return torch.cartesian_prod(*axes)


@dataclass
class Snapshot:
    """Figures at one saved time (numpy arrays / floats)."""

    t: float
    means: dict[str, float]
    variances: dict[str, float]
    marginals: dict[str, np.ndarray]
    probs: dict[str, float]
    stderr: dict[str, float] = field(default_factory=dict)
    edge_mass: float = 0.0

    def to_state(self) -> dict:
        """Plain lists and floats (what a checkpoint stores)."""
        return {"t": self.t, "means": self.means, "variances": self.variances,
                "marginals": {k: [float(v) for v in m] for k, m in self.marginals.items()},
                "probs": self.probs, "stderr": self.stderr, "edge_mass": self.edge_mass}

    @classmethod
    def from_state(cls, state: dict) -> "Snapshot":
        return cls(state["t"], dict(state["means"]), dict(state["variances"]),
                   {k: np.asarray(m, dtype=np.float64) for k, m in state["marginals"].items()},
                   dict(state["probs"]), dict(state["stderr"]), state["edge_mass"])


class Estimator:
    """Computes a ``Snapshot`` of a network: exact over the box when small, else sampled.
    The figures are made on the CPU (its tensors say so: a default device set by the
    caller does not move them), the network runs on its own device."""

    def __init__(self, kernel, lower, upper, generator: torch.Generator | None = None,
                 samples: int = SAMPLES, exact_limit: int = EXACT_LIMIT, edge_upper=None):
        """``edge_upper``: per state-vector species, the declared truncation (None where the
        bound comes from a conservation law: sitting on it is no truncation); default upper."""
        self.kernel = kernel
        self.lower, self.upper = list(lower), list(upper)
        edge = list(upper) if edge_upper is None else list(edge_upper)
        self.edge_upper = torch.tensor([-1 if u is None else int(u) for u in edge], device="cpu")
        self.samples = samples
        self.generator = generator
        self.exact = box_size(lower, upper) <= exact_limit
        self.states = box_states(lower, upper) if self.exact else None
        self.full_upper = [int(u) if u is not None else None for u in kernel.FULL_UPPER]
        self.outside_mass = 0.0

    def snapshot(self, net, t: float) -> Snapshot:
        """The figures of ``net`` at time t. The network runs on its device (the estimator's
        generator is on it too); the figures are made on the CPU."""
        with torch.no_grad():
            if self.exact:
                x = self.states
                logp = self._box_log_probs(net).cpu()
                w = torch.exp(logp)
                w = self._on_support(x, w / w.sum())
                return self._figures(x, w, t, sampled=False)
            x = net.sample(self.samples, self.generator)
            x_host = x.cpu()
            w = self._on_support(x_host, torch.full((x.shape[0],), 1.0 / x.shape[0], dtype=torch.float64,
                                                    device="cpu"))
            inside = w > 0
            snap = self._figures(x_host[inside], w[inside], t, sampled=True)
            if bool(inside.all()):
                self._sequential_probabilities(net, snap)
                self._conditional_marginals(net, x, snap)
            return snap

    def _nets_box(self, net) -> bool:
        """True when ``net`` is an autoregressive net over exactly this estimator's box."""
        box = getattr(net, "lower", None)
        return (box is not None and hasattr(net, "conditional_logits")
                and box.tolist() == self.lower and (net.lower + net.sizes - 1).tolist() == self.upper)

    def _conditional_marginals(self, net, x: torch.Tensor, snap: Snapshot) -> None:
        """Replace the sampled histograms of the state-vector species by the mean of their
        conditionals over the samples (Rao-Blackwell): P(x_i = m) = E[P_theta(x_i = m | x_<i)].
        Unbiased like the histogram, and far less noisy: each sample gives species i's whole
        conditional distribution, not one count (3x3 Schlögl grid, 20,000 samples: the
        histograms' own noise is ~0.02 in Hellinger). Only where the net's box is the model's
        support (no eliminated species), so that no conditioning on the support is needed."""
        if getattr(self.kernel, "ELIMINATED", None) or not self._nets_box(net):
            return
        total = None
        for chunk in torch.split(x, CONDITIONAL_CHUNK):
            part = net.conditional_logits(chunk).exp().sum(0)            # (L, M_max)
            total = part if total is None else total + part
        mean = (total / x.shape[0]).to(torch.float64).cpu()
        for i, name in enumerate(self.kernel.SPECIES):
            lo, size = int(self.lower[i]), int(net.sizes[i])
            length = max(len(snap.marginals[name]), lo + size)
            table = torch.zeros(length, dtype=torch.float64, device="cpu")
            table[lo:lo + size] = mean[i, :size]
            snap.marginals[name] = (table / table.sum()).numpy()

    def _box_log_probs(self, net) -> torch.Tensor:
        """(S,) float64 log P_theta of ``self.states``: by the network's prefix tree when the
        network's box is this box, else state by state."""
        if self._nets_box(net):
            return net.box_log_probs().to(torch.float64)
        return torch.cat([net.log_prob(c.to(net.lower.device)).cpu()
                          for c in torch.split(self.states, CHUNK)]).to(torch.float64)

    def _sequential_probabilities(self, net, snap: Snapshot) -> None:
        """P(A) of every interval observable (``kernel.INTERVALS``) by sequential sampling
        inside A, with its standard error: exact in expectation however small P(A) is, where
        the fraction of plain samples in A is 0 below 1/samples. Only when every plain sample
        was in the support, so that P_theta(A) is the model's P(A)."""
        for name, intervals in getattr(self.kernel, "INTERVALS", {}).items():
            found = sequential_probability(net, self.kernel.SPECIES, intervals,
                                           n=self.samples, generator=self.generator)
            snap.probs[name] = found["estimate"]
            snap.stderr[f"prob:{name}"] = found["stderr"]

    def _on_support(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """(S,) weights summing to 1 -> the same conditioned on the support (sum 1 again)."""
        inside = self.kernel.in_support(x)
        kept = float(w[inside].sum())
        self.outside_mass = max(self.outside_mass, 1.0 - kept)
        if kept <= 0.0:
            from ..errors import CRNSolverError

            raise CRNSolverError("the network puts no mass inside the model's support",
                                 hint="check the species bounds against the conserved totals")
        return torch.where(inside, w, torch.zeros((), dtype=w.dtype, device=w.device)) / kept

    def _figures(self, x: torch.Tensor, w: torch.Tensor, t: float, sampled: bool) -> Snapshot:
        """Weighted figures of states x (S, L) with weights w (S,) summing to 1."""
        kernel = self.kernel
        full = kernel.full_state(x).to(torch.float64)                # (S, L_full)
        n = x.shape[0]
        means, variances, marginals, probs, stderr = {}, {}, {}, {}, {}
        for j, name in enumerate(kernel.ALL_SPECIES):
            col = full[:, j]
            m, v = _mean_var(col, w)
            means[name], variances[name] = m, v
            hi = self.full_upper[j]
            size = marginal_size(hi, col.max())
            idx = col.round().to(torch.int64).clamp(0, size - 1)
            marginals[name] = torch.zeros(size, dtype=torch.float64, device="cpu").index_add_(0, idx, w).numpy()
            if sampled:
                stderr[f"mean:{name}"] = math.sqrt(max(v, 0.0) / n)
        observed = kernel.observables(x, t) if kernel.OBSERVABLES else {}
        for name, boolean in zip(kernel.OBSERVABLES, kernel.BOOLEAN):
            value = observed[name]
            if boolean:
                p = float((w * value.to(torch.float64)).sum())
                probs[name] = p
                if sampled:
                    stderr[f"prob:{name}"] = math.sqrt(max(p * (1 - p), 0.0) / n)
            else:
                m, v = _mean_var(value.to(torch.float64), w)
                means[name], variances[name] = m, v
                if sampled:
                    stderr[f"mean:{name}"] = math.sqrt(max(v, 0.0) / n)
        lo = torch.as_tensor(self.lower, device="cpu")
        hi = self.edge_upper
        on_edge = ((x == hi) & (hi > lo)).any(-1)
        edge = float(w[on_edge].sum())
        return Snapshot(t, means, variances, marginals, probs, stderr, edge)


def _mean_var(col: torch.Tensor, w: torch.Tensor) -> tuple[float, float]:
    m = float((w * col).sum())
    v = float((w * (col - m) ** 2).sum())
    return m, v


def stack_snapshots(snapshots: list[Snapshot]) -> dict:
    """Per-name (T,) series (marginals (T, M)) from a list of snapshots."""
    first = snapshots[0]
    out = {
        "times": np.array([s.t for s in snapshots], dtype=np.float64),
        "means": {k: np.array([s.means[k] for s in snapshots]) for k in first.means},
        "variances": {k: np.array([s.variances[k] for s in snapshots]) for k in first.variances},
        "probs": {k: np.array([s.probs[k] for s in snapshots]) for k in first.probs},
        "stderr": {k: np.array([s.stderr.get(k, np.nan) for s in snapshots]) for k in first.stderr},
        "edge_mass": np.array([s.edge_mass for s in snapshots]),
        "marginals": {},
    }
    for k in first.marginals:
        width = max(len(s.marginals[k]) for s in snapshots)
        table = np.zeros((len(snapshots), width))
        for row, s in enumerate(snapshots):
            table[row, :len(s.marginals[k])] = s.marginals[k]
        out["marginals"][k] = table
    return out


__all__ = ["Estimator", "Snapshot", "stack_snapshots", "box_states", "EXACT_LIMIT"]
