"""Checks on the compiled kernel before any solve: every propensity a solve can meet is a
finite, non-negative number.

A rate law such as ``log(X - 5)``, ``X - 11`` or ``0/X`` is NaN, infinite or negative at some
states. FSP, SSA and the neural methods would all turn that into wrong numbers without a
word. So ``check_propensities`` evaluates the kernel's untruncated propensities on states a
solve can visit:

* the initial states and one jump from them;
* random states of the box (unbounded species up to well past the initial counts);
* the all-low and all-high corners;
* at t = 0, and at five times up to t_end when a rate reads t.

It raises a positioned ``CRNSemanticError`` for the first bad value. A positive propensity
below the smallest normal float64 gets a warning instead: the arithmetic with it loses
precision.
"""
from __future__ import annotations

import math

from .errors import CRNSemanticError
from .model.ir import Model

BOX_SAMPLES = 2048
INIT_SAMPLES = 256
NEIGHBOUR_STATES = 8192      # one-jump neighbours of the initial states checked (all K jumps)
UNBOUNDED_MARGIN = 50        # an unbounded species is sampled up to 2 x its initial max + this
SMALLEST_NORMAL = 2.2250738585072014e-308


def check_propensities(model: Model, kernel, t_end: float) -> list[str]:
    """Raise ``CRNSemanticError`` at the reaction whose propensity is NaN, infinite or
    negative at a sampled state; return warnings (subnormal propensities)."""
    import torch

    states = _sample_states(kernel, torch.Generator().manual_seed(0))
    times = [0.0] if not kernel.TIME_DEPENDENT else [t_end * i / 4 for i in range(5)]
    warnings: list[str] = []
    for t in times:
        rates = kernel.propensities(states, t).to(torch.float64)            # (S, K)
        bad = ~torch.isfinite(rates) | (rates < 0)
        if bool(bad.any()):
            row, k = (int(i) for i in bad.nonzero()[0])
            _raise_bad(model, kernel, k, states[row], t, float(rates[row, k]))
        tiny = (rates > 0) & (rates < SMALLEST_NORMAL)
        if bool(tiny.any()) and not warnings:
            row, k = (int(i) for i in tiny.nonzero()[0])
            warnings.append(
                f"reaction '{kernel.REACTIONS[k]}' has the propensity {float(rates[row, k]):.3g} "
                f"at {_state_text(kernel, states[row])}: below the smallest normal float64 "
                f"({SMALLEST_NORMAL:.3g}), so arithmetic with it loses precision; rescale the "
                "time unit (rates per larger time unit)")
    return warnings


def _sample_states(kernel, generator):
    """(S, L) int64 states in the support: initial ones, one jump from them, random box
    states and the corners."""
    import torch

    init = kernel.init_sample(INIT_SAMPLES, generator=generator).to(torch.int64)
    lower = torch.tensor(kernel.LOWER, dtype=torch.int64)
    top = init.max(dim=0).values if init.numel() else lower
    upper = torch.tensor([2 * int(m) + UNBOUNDED_MARGIN if hi is None else int(hi)
                          for hi, m in zip(kernel.UPPER, top.tolist())], dtype=torch.int64)
    width = (upper - lower + 1).to(torch.float64)
    box = lower + torch.floor(torch.rand(BOX_SAMPLES, len(kernel.LOWER), generator=generator,
                                         dtype=torch.float64) * width).to(torch.int64)
    K = max(int(kernel.CHANGE.shape[0]), 1)
    sources = init[:max(1, NEIGHBOUR_STATES // K)]            # at most ~NEIGHBOUR_STATES jumps
    steps = (sources[:, None, :] + kernel.CHANGE[None, :, :]).reshape(-1, init.shape[1])
    states = torch.cat([init, steps, box, lower[None], upper[None]])
    return states[kernel.in_support(states)]


def _state_text(kernel, state) -> str:
    full = kernel.full_state(state[None])[0]
    pairs = [f"{name} = {int(v)}" for name, v in zip(kernel.ALL_SPECIES, full.tolist())]
    text = ", ".join(pairs[:8])
    return text + (f", ... ({len(pairs)} species)" if len(pairs) > 8 else "")


def _raise_bad(model: Model, kernel, k: int, state, t: float, value: float):
    reaction = model.reactions[k]
    what = "NaN" if math.isnan(value) else ("infinite" if math.isinf(value) else f"negative ({value:.3g})")
    when = f", t = {t:g}" if kernel.TIME_DEPENDENT else ""
    hint = ("a propensity must be a finite number >= 0 wherever the state can go: guard the "
            "rate law (e.g. max(X - 5, 1e-9) inside log, max(..., 0) around a difference), "
            "or declare bounds that keep the state where the law is defined (species X in 6..20)")
    raise CRNSemanticError(
        f"the propensity of reaction '{reaction.label}' is {what} at "
        f"{_state_text(kernel, state)}{when}", reaction.loc, hint=hint)
