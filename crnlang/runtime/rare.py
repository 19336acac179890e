"""Rare-event probabilities P(A) of a boolean observable A under a network P_theta, with
standard errors. Plain sampling cannot see P(A) below about 1/(number of samples).

Sequential in-region sampling (``sequential_probability``), for a region that is a product of
per-species intervals, A = {n : n_i in I_i for every i} (``kernel.INTERVALS``: ``all(X <= 15)``,
``X >= 25 and Y < 3``). Species are drawn in the network's order, each from its own
conditional restricted to I_i, and the sample's weight is the mass the conditionals put
inside:

    P(A) = E[ prod_i P(n_i in I_i | n_<i) ],   n_i ~ P(n_i | n_<i, n_i in I_i)

This is importance sampling with the proposal P(n | A), whose weight is exactly that product,
so it is unbiased. Its relative error depends on how much the weights vary inside A, not on
how small P(A) is: 1e-9 is as easy as 1e-1. With one species it is exact.

Importance sampling from a tempered proposal (``rare_probability``), for any condition. Every
conditional is made proportional to p^alpha (alpha < 1 flattens), and

    P(A) = E_q[ (P_theta / q) 1_A ],

with the exact normalised P_theta and q of the autoregressive network. The effective sample
size of the weights inside A and the Pareto k of their tail (``pareto_k``: above 0.7 the
estimate is unreliable, and the summary says so) are recorded beside the estimate.

In both, the standard error is the sample standard deviation of the per-sample terms over
sqrt(n).
"""
from __future__ import annotations

import math

import torch

from .sampling import alpha_transform

RARE_SAMPLES = 20_000


def rare_estimate(net, kernel, name: str, t: float, alpha: float, n: int = RARE_SAMPLES,
                  generator: torch.Generator | None = None) -> dict:
    """P(name) under ``net`` with its standard error: the sequential in-region estimator when
    ``name`` is a product of intervals (``kernel.INTERVALS``), else importance sampling from
    the alpha-tempered proposal. The answer names the estimator it used."""
    intervals = getattr(kernel, "INTERVALS", {}).get(name)
    if intervals is not None:
        return sequential_probability(net, kernel.SPECIES, intervals, n, generator)
    return rare_probability(net, kernel, name, t, alpha, n, generator)


def sequential_probability(net, species, intervals: dict, n: int = RARE_SAMPLES,
                           generator: torch.Generator | None = None) -> dict:
    """{"estimate", "stderr", "n", "estimator": "sequential"} of P(n_i in I_i for all i) under
    the autoregressive ``net``. ``species``: the network's variables in order (L);
    ``intervals``: {species: (lo, hi)} (hi None: no upper end), the others unconstrained."""
    lower = net.lower.tolist()
    sizes = net.sizes.tolist()
    x = net.lower.expand(n, -1).clone()
    log_w = torch.zeros(n, dtype=torch.float64, device=x.device)
    with torch.no_grad():
        for i, name in enumerate(species):
            lo, hi = intervals.get(name, (lower[i], None))
            first = max(int(lo) - lower[i], 0)
            last = sizes[i] - 1 if hi is None else min(int(hi) - lower[i], sizes[i] - 1)
            if first > last:                                   # an empty interval: P(A) = 0
                return {"estimate": 0.0, "stderr": 0.0, "n": n, "estimator": "sequential"}
            log_p = net.conditional_logits(x)[:, i].to(torch.float64)       # (n, M_max)
            offsets = torch.arange(log_p.shape[1], device=x.device)
            inside = (offsets >= first) & (offsets <= last)
            log_p = log_p.masked_fill(~inside, -math.inf)
            log_mass = torch.logsumexp(log_p, dim=1)                       # log P(I_i | n_<i)
            log_w = log_w + log_mass
            probs = torch.exp(log_p - log_mass[:, None])
            cdf = probs.cumsum(dim=1)
            u = torch.rand(n, 1, dtype=torch.float64, generator=generator, device=x.device)
            pick = (cdf < u * cdf[:, -1:]).sum(dim=1).clamp(min=first, max=last)
            x[:, i] = lower[i] + pick
    return _mean_and_stderr(torch.exp(log_w), n, estimator="sequential")


def _mean_and_stderr(terms: torch.Tensor, n: int, **info) -> dict:
    estimate = float(terms.mean())
    stderr = float(terms.std(unbiased=True)) / math.sqrt(n) if n > 1 else math.nan
    return {"estimate": estimate, "stderr": stderr, "n": n, **info}


def rare_probability(net, kernel, name: str, t: float, alpha: float, n: int = RARE_SAMPLES,
                     generator: torch.Generator | None = None) -> dict:
    """{"estimate", "stderr", "n", "alpha", "ess", "estimator": "importance"} for the boolean
    observable ``name``; ``ess``: the effective sample size of the weights inside A."""
    transform = alpha_transform(alpha)
    with torch.no_grad():
        x = net.sample(n, generator, transform)
        log_w = (net.log_prob(x) - net.proposal_log_prob(x, transform)).to(torch.float64)
        inside = kernel.observables(x, t)[name].to(device=x.device, dtype=torch.bool)
        terms = torch.where(inside, torch.exp(log_w), torch.zeros_like(log_w))
    ess = float(terms.sum() ** 2 / (terms ** 2).sum()) if bool((terms > 0).any()) else 0.0
    return _mean_and_stderr(terms, n, alpha=alpha, ess=ess, pareto_k=pareto_k(terms),
                            estimator="importance")


def pareto_k(weights: torch.Tensor) -> float:
    """The tail shape k of the largest importance weights (generalised Pareto, fitted by
    scipy to the excesses of the top min(n/5, 3 sqrt(n)) positive weights over the next one;
    Vehtari et al., Pareto smoothed importance sampling). Below 0.5 the variance is finite
    and the standard error honest; above 0.7 the estimate is unreliable. NaN with fewer than
    20 positive weights."""
    from scipy.stats import genpareto

    positive = torch.sort(weights[weights > 0]).values.to(torch.float64).cpu().numpy()
    n = len(positive)
    tail = int(min(n / 5, 3 * math.sqrt(n)))
    if n < 20 or tail < 5:
        return math.nan
    excess = positive[-tail:] - positive[-tail - 1]
    if not (excess > 0).any():
        return math.nan
    shape, _, _ = genpareto.fit(excess, floc=0.0)
    return float(shape)
