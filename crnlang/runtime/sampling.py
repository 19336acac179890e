"""Where the samples of a time step come from: P_theta itself or an enhanced proposal q.

Proposals (METHOD.md, ``@sampling``):

* ``plain``      samples of P_theta, all weights 1;
* ``alpha``      every conditional raised to the power alpha and renormalised (alpha < 1
                 flattens it, so the tails are visited);
* ``diffusive``  every conditional convolved with a box kernel of half-width ``kernel``;
* ``mixture``    a fraction ``uniform`` of the batch drawn uniformly over the box, the rest
                 from P_theta; every sample is weighted by the mixture density
                 q = (1 - u) P_theta + u / |box|;
* ``defensive``  half the batch from P_theta, half from the alpha proposal q_alpha, weighted
                 by q = (P_theta + q_alpha) / 2 (defensive importance sampling: w <= 2, so
                 the fit is the P_theta-weighted one with no heavy tail, while the alpha half
                 keeps samples where the mass is going).

``auto`` from a single-state start is ``SpreadingStart``: the alpha proposal with tempered
weights while P_theta is still concentrated, then ``defensive`` for good.

Importance weights w = P_theta / q are normalised to mean 1; weights above sqrt(B) times
the mean are clipped (truncated importance sampling) and the rest renormalised, so one
sample cannot carry the whole batch. With ``reweight = false`` every weight is 1.

Shapes: B batch, L species, M_max largest number of outcomes of one species.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..distributed import draw_split
from ..vocabulary import PROPOSALS

DEFENSIVE_SHARE = 0.5     # fraction of a defensive batch drawn from the alpha proposal


@dataclass(frozen=True)
class Sampler:
    """A proposal and the rule for its weights (see the module docstring)."""

    kind: str = "plain"
    alpha: float = 0.3
    kernel: int = 10
    uniform: float = 0.1
    reweight: bool = True

    @classmethod
    def from_settings(cls, settings) -> "Sampler":
        if settings.sampling not in PROPOSALS:
            from ..errors import CRNSolverError, did_you_mean

            raise CRNSolverError(f"unknown sampling '{settings.sampling}'",
                                 hint=did_you_mean(settings.sampling, PROPOSALS)
                                 or f"use one of {', '.join(PROPOSALS)}")
        return cls(settings.sampling, float(settings.alpha), int(settings.kernel),
                   float(settings.uniform), bool(settings.reweight))

    def transform(self):
        """The per-conditional transform of ``net.sample`` / ``net.proposal_log_prob`` (or None)."""
        if self.kind in ("alpha", "defensive"):
            return alpha_transform(self.alpha)
        if self.kind == "diffusive":
            return diffusive_transform(self.kernel)
        return None

    def draw(self, net, n: int, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """n samples and their importance weights: ((n, L) int64, (n,) float, mean 1).
        Under torchrun each process proposes its share of the n (``distributed.draw_split``)
        and every process weighs the whole batch, so all of them hold the same samples."""
        x = draw_split(self.propose, net, n, generator)
        return x, self.weigh(net, x)

    def propose(self, net, n: int, generator: torch.Generator | None) -> torch.Tensor:
        """(n, L) int64 samples of the proposal q."""
        if self.kind == "plain":
            return net.sample(n, generator)
        if self.kind == "mixture":
            n_uniform = min(n, int(round(self.uniform * n)))
            return torch.cat([net.sample(n - n_uniform, generator), uniform_box(net, n_uniform, generator)])
        if self.kind == "defensive":
            n_alpha = min(n, int(round(DEFENSIVE_SHARE * n)))
            return torch.cat([net.sample(n - n_alpha, generator),
                              net.sample(n_alpha, generator, self.transform())])
        return net.sample(n, generator, self.transform())

    def weigh(self, net, x: torch.Tensor) -> torch.Tensor:
        """(n,) importance weights P_theta / q of samples x (n, L) of ``propose``, mean 1."""
        if self.kind == "plain" or not self.reweight:
            return torch.ones(x.shape[0], dtype=_dtype(net), device=x.device)
        with torch.no_grad():
            log_p = net.log_prob(x)
            if self.kind == "mixture":
                log_q = torch.logaddexp(log_p + math.log1p(-self.uniform) if self.uniform < 1
                                        else torch.full_like(log_p, -math.inf),
                                        torch.full_like(log_p, math.log(self.uniform) - log_box_size(net)))
            elif self.kind == "defensive":
                log_q = torch.logaddexp(log_p + math.log1p(-DEFENSIVE_SHARE),
                                        net.proposal_log_prob(x, self.transform()) + math.log(DEFENSIVE_SHARE))
            else:
                log_q = net.proposal_log_prob(x, self.transform())
        return importance_weights(log_p - log_q)


def importance_weights(log_w: torch.Tensor) -> torch.Tensor:
    """(B,) log(P/q) -> (B,) weights with mean 1, the heavy tail clipped at sqrt(B)."""
    w = torch.exp(log_w - log_w.max())
    w = w / w.mean()
    w = w.clamp(max=math.sqrt(w.numel()))      # (always: no host read to ask whether any is over)
    return w / w.mean()


@dataclass
class SpreadingStart:
    """``sampling = auto`` from a single-state start, in two phases.

    1. While P_theta is concentrated: samples of the alpha proposal, weights (P/q)^beta with
       the largest beta in [0, 1] that keeps an effective sample size of half the batch. At
       first beta is near 0: the fit is q-weighted and sees the states the mass is flowing
       into, which P-weighting would ignore while their P is still tiny.
    2. Once beta reaches ``switch_beta`` (P_theta has spread): ``defensive`` from then on,
       the P_theta-weighted fit that keeps long runs accurate (the alpha weights stay
       uneven on a multimodal P, so phase 1 would keep the fit biased towards q).

    ``spread`` (the phase) is part of a checkpoint.
    """

    alpha: float = 0.3
    switch_beta: float = 0.5
    spread: bool = False

    def draw(self, net, n: int, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """As ``Sampler.draw``: the phase is decided on the whole batch, the same in every process."""
        if self.spread:
            return Sampler("defensive", alpha=self.alpha).draw(net, n, generator)
        transform = alpha_transform(self.alpha)
        x = draw_split(lambda net_, n_, gen: net_.sample(n_, gen, transform), net, n, generator)
        with torch.no_grad():
            log_w = net.log_prob(x) - net.proposal_log_prob(x, transform)
        log_w = log_w - log_w.max()
        beta = tempering_exponent(log_w)
        if beta >= self.switch_beta:
            self.spread = True
        w = torch.exp(beta * log_w)
        return x, w / w.mean()


def tempering_exponent(log_w: torch.Tensor, min_ess: float = 0.5, iterations: int = 30) -> float:
    """The largest beta in [0, 1] with ESS(exp(beta log_w)) >= min_ess * B, by bisection
    (the ESS falls monotonically from B at beta = 0 as beta grows). The bisection runs on a
    host copy of the B log-weights: one read of the device instead of one per iteration."""
    host = log_w.detach().to(torch.float64).cpu().numpy()
    n = host.size

    def ess_fraction(beta: float) -> float:
        w = np.exp(beta * host)
        return float(w.sum() ** 2 / (w * w).sum()) / n

    if ess_fraction(1.0) >= min_ess:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if ess_fraction(mid) >= min_ess:
            lo = mid
        else:
            hi = mid
    return lo


def effective_sample_size(w: torch.Tensor) -> float:
    """Kish's effective sample size (sum w)^2 / sum w^2 of (B,) weights."""
    return float(w.sum() ** 2 / (w * w).sum())


@dataclass(frozen=True)
class AlphaTransform:
    """Conditionals proportional to p^alpha. Networks that see ``alpha`` work in log space
    instead, q = softmax(alpha log p), which needs no power and does not underflow."""

    alpha: float

    def __call__(self, probs: torch.Tensor, i: int) -> torch.Tensor:
        return probs.clamp(min=0) ** self.alpha


def alpha_transform(alpha: float) -> AlphaTransform:
    """Conditionals proportional to p^alpha."""
    return AlphaTransform(float(alpha))


def diffusive_transform(width: int):
    """Conditionals convolved with a box kernel over offsets -width..width (outcomes beyond M_i
    are masked by the network)."""
    def transform(probs: torch.Tensor, i: int) -> torch.Tensor:
        n, m = probs.shape
        kernel = torch.ones(1, 1, 2 * width + 1, dtype=probs.dtype, device=probs.device)
        out = torch.nn.functional.conv1d(probs.unsqueeze(1), kernel, padding=width)
        return out.squeeze(1)[:, :m]
    return transform


def uniform_box(net, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """(n, L) int64 states uniform over the network's box."""
    sizes = net.sizes.to(torch.float64)
    u = torch.rand(n, net.n_species, dtype=torch.float64, generator=generator, device=net.sizes.device)
    k = torch.minimum((u * sizes).to(torch.int64), net.sizes - 1)
    return net.lower + k


def log_box_size(net) -> float:
    """log of the number of states of the network's box."""
    return float(torch.log(net.sizes.to(torch.float64)).sum())


def _dtype(net) -> torch.dtype:
    return next(net.parameters()).dtype
