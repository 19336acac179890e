"""Rare-event estimators against exact enumeration over a small network's box, and the
interval regions the kernel hands them."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import crnlang
from crnlang.model.semantics import interval_region
from crnlang.runtime.estimates import box_states
from crnlang.runtime.networks import make_network
from crnlang.runtime.rare import sequential_probability


def peaked_network(kind="nade", lower=(0, 0, 0), upper=(5, 7, 4), seed=0):
    """A small autoregressive network with a far-from-uniform law (parameters scaled up)."""
    generator = torch.Generator().manual_seed(seed)
    net = make_network(kind, list(lower), list(upper), hidden=8, generator=generator)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(4.0).add_(0.5 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return net


def enumerated(net, lower, upper, intervals, names):
    states = box_states(lower, upper)
    with torch.no_grad():
        p = net.log_prob(states).exp()
    inside = torch.ones(len(states), dtype=torch.bool)
    for i, name in enumerate(names):
        lo, hi = intervals.get(name, (lower[i], upper[i]))
        inside &= (states[:, i] >= lo) & (states[:, i] <= (upper[i] if hi is None else hi))
    return float(p[inside].sum())


@pytest.mark.parametrize("kind", ["nade", "gru"])
def test_sequential_estimator_is_unbiased_and_its_stderr_honest(kind):
    lower, upper, names = (0, 0, 0), (5, 7, 4), ("A", "B", "C")
    net = peaked_network(kind, lower, upper)
    intervals = {"A": (4, 5), "B": (0, 2), "C": (3, None)}       # a corner of the box
    exact = enumerated(net, lower, upper, intervals, names)
    assert 0 < exact < 0.2
    generator = torch.Generator().manual_seed(1)
    runs = [sequential_probability(net, names, intervals, n=40, generator=generator)
            for _ in range(300)]
    estimates = np.array([r["estimate"] for r in runs])
    errors = np.array([r["stderr"] for r in runs])
    pooled_se = estimates.std(ddof=1) / math.sqrt(len(runs))
    assert abs(estimates.mean() - exact) < 3 * pooled_se, (estimates.mean(), exact)
    covered = np.mean(np.abs(estimates - exact) <= errors)
    assert 0.55 < covered < 0.80, covered                      # 1-SE intervals: ~68 %
    assert all(r["estimator"] == "sequential" for r in runs)


def test_sequential_estimator_sees_probabilities_no_sampler_can():
    """A region of probability ~1e-9 or below: relative error of a few per cent from 2000
    samples, where plain sampling would need 10^11."""
    lower, upper, names = (0, 0, 0), (30, 30, 30), ("A", "B", "C")
    net = peaked_network("nade", lower, upper, seed=3)
    with torch.no_grad():                  # each conditional falls off like exp(-0.7 m)
        net.b.add_(-0.7 * torch.cat([torch.arange(u - l + 1, dtype=net.b.dtype)
                                     for l, u in zip(lower, upper)]))
    intervals = {"A": (10, 12), "B": (9, 30), "C": (11, None)}    # far in every tail
    exact = enumerated(net, lower, upper, intervals, names)
    assert exact < 1e-8
    result = sequential_probability(net, names, intervals, n=2000,
                                    generator=torch.Generator().manual_seed(2))
    assert abs(result["estimate"] - exact) < 4 * result["stderr"]
    assert result["stderr"] < 0.2 * exact


def test_one_species_is_exact():
    net = peaked_network("nade", (0,), (9,))
    exact = enumerated(net, (0,), (9,), {"A": (2, 6)}, ("A",))
    result = sequential_probability(net, ("A",), {"A": (2, 6)}, n=10)
    assert result["estimate"] == pytest.approx(exact, rel=1e-12) and result["stderr"] < 1e-12


def test_empty_interval_has_probability_zero():
    net = peaked_network("nade", (0, 0), (5, 5))
    result = sequential_probability(net, ("A", "B"), {"B": (7, None)}, n=10)
    assert result["estimate"] == 0.0


def test_interval_regions_of_conditions():
    model = crnlang.parse(
        "param c = 2.5\nspecies X <= 9, Y <= 9\n"
        "observe a = X >= 2 and not (Y > c) and 1 < 2\n"
        "observe b = X > 2 or Y < 1\nobserve e = X == 3 and X <= 7\nobserve d = X + Y < 3\n"
        "observe f = 4 < X\n")
    regions = {o.name: interval_region(o.expr, model.param_values) for o in model.observables}
    assert regions["a"] == {"X": (2, math.inf), "Y": (-math.inf, 2)}
    assert regions["b"] is None and regions["d"] is None
    assert regions["e"] == {"X": (3, 3)} and regions["f"] == {"X": (5, math.inf)}


def test_the_kernel_lists_interval_observables_over_state_vector_species():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "examples" / "schlogl1d.crn").read_text()
    kernel = crnlang.compile(crnlang.parse(text))
    assert kernel.INTERVALS == {"low": {"X[0]": (0, 15), "X[1]": (0, 15)},
                                "high": {"X[0]": (25, 84), "X[1]": (25, 84)}}
    # a condition on an eliminated species is not a product region of the state vector
    model = crnlang.parse("species A <= 10, B <= 10\nA -> B @ 1\nB -> A @ 1\ninit A = 10\n"
                          "observe few_b = B <= 2\nobserve few_a = A <= 2\n")
    kernel = crnlang.compile(model)
    eliminated = set(kernel.ALL_SPECIES) - set(kernel.SPECIES)
    assert len(eliminated) == 1
    assert set(kernel.INTERVALS) == {"few_a", "few_b"} - {f"few_{n.lower()}" for n in eliminated}


def test_pareto_k_tells_light_from_heavy_tails():
    from crnlang.runtime.rare import pareto_k

    generator = torch.Generator().manual_seed(0)
    light = torch.rand(20000, generator=generator, dtype=torch.float64)          # bounded: k < 0
    u = torch.rand(20000, generator=generator, dtype=torch.float64)
    heavy = u ** -0.8                                                           # Pareto, k = 0.8
    assert pareto_k(light) < 0.2
    assert 0.6 < pareto_k(heavy) < 1.0
    assert math.isnan(pareto_k(torch.ones(5, dtype=torch.float64)))


def test_importance_estimate_reports_ess_and_pareto_k():
    """X > Y is no product of intervals: importance sampling, with its diagnostics."""
    from crnlang.runtime.rare import rare_estimate

    model = crnlang.parse("species X <= 30, Y <= 30\n0 -> X @ 1\n0 -> Y @ 1\nX -> 0 @ 1\n"
                          "Y -> 0 @ 1\nobserve x_wins = X > Y + 10\n")
    kernel = crnlang.compile(model)
    net = peaked_network("nade", (0, 0), (30, 30))
    found = rare_estimate(net, kernel, "x_wins", 0.0, alpha=0.5, n=4000,
                          generator=torch.Generator().manual_seed(1))
    assert found["estimator"] == "importance" and found["ess"] > 0
    assert math.isfinite(found["pareto_k"]) and found["pareto_k"] < 0.7
    states = box_states((0, 0), (30, 30))
    with torch.no_grad():
        exact = float(net.log_prob(states).exp()[states[:, 0] > states[:, 1] + 10].sum())
    assert abs(found["estimate"] - exact) < 4 * found["stderr"]
