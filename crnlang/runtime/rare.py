"""Rare-event probabilities P(A) of a boolean observable A under the final P_theta.

Plain sampling cannot see P(A) below about 1/(number of samples). Here samples come from a
tempered proposal q (every conditional proportional to p^alpha, alpha < 1 flattens), and

    P(A) = E_q[ (P_theta / q) 1_A ]

with the exact normalised P_theta and q of the autoregressive network; the standard error is
the sample standard deviation of (P_theta / q) 1_A over sqrt(n).
"""
from __future__ import annotations

import math

import torch

from .sampling import alpha_transform

RARE_SAMPLES = 20_000


def rare_probability(net, kernel, name: str, t: float, alpha: float, n: int = RARE_SAMPLES,
                     generator: torch.Generator | None = None) -> dict:
    """{"estimate", "stderr", "n", "alpha"} for the boolean observable ``name``."""
    transform = alpha_transform(alpha)
    with torch.no_grad():
        x = net.sample(n, generator, transform)
        log_w = (net.log_prob(x) - net.proposal_log_prob(x, transform)).to(torch.float64)
        inside = kernel.observables(x, t)[name].to(torch.bool)
        terms = torch.where(inside, torch.exp(log_w), torch.zeros_like(log_w))
    estimate = float(terms.mean())
    stderr = float(terms.std(unbiased=True)) / math.sqrt(n) if n > 1 else math.nan
    return {"estimate": estimate, "stderr": stderr, "n": n, "alpha": alpha}
