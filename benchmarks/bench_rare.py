"""Rare-event estimators at a fixed cost: relative standard error for P(A) = 1e-2, 1e-5, 1e-8.

    python benchmarks/bench_rare.py                 # 2-site Schlögl chain, n = 20,000 samples
    python benchmarks/bench_rare.py --samples 5000 --repeats 20

The network is the one the shipped neural solve of examples/schlogl1d.crn leaves at t = 1
(tdvp, run here first, about 2-4 minutes on 2 cores). Its P_theta(A) is enumerated exactly
over the 85 x 85 box, so every estimate is compared with the truth of the same network.
Regions A = all(X <= k) (and all(X >= k) where the low side does not go so far) are picked
with P_theta(A) nearest 1e-2, 1e-5 and 1e-8. At the same number of samples n, each
estimator's relative standard error (its own stated SE / the exact P) and its error, over
``repeats`` independent estimates (the fraction of them within 2 stated SE of the truth is
the honesty of the SE):

* plain: the fraction of n samples of P_theta inside A (binomial SE); the baseline;
* importance: samples of the alpha-tempered proposal (alpha = 0.3 and 0.6), weighted;
* sequential: n samples drawn inside A from the network's own conditionals.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import crnlang  # noqa: E402
from crnlang.runtime.checkpoint import load_checkpoint  # noqa: E402
from crnlang.runtime.networks import make_network  # noqa: E402
from crnlang.runtime.rare import rare_probability, sequential_probability  # noqa: E402

CHAIN = REPO / "examples" / "schlogl1d.crn"
TARGETS = (1e-2, 1e-5, 1e-8)


def trained_network(model, folder: Path):
    """The network of the shipped solve at t = 1 (from its last checkpoint)."""
    tick = time.perf_counter()
    crnlang.solve(model, checkpoint_dir=folder, rare=[], device="cpu")
    print(f"neural solve of {CHAIN.name} to t = 1: {time.perf_counter() - tick:.0f} s")
    state = load_checkpoint(folder)
    s = model.settings
    kernel = crnlang.compile(model)
    net = make_network(s.network, list(kernel.LOWER), list(kernel.UPPER), hidden=s.hidden,
                       layers=s.layers, dtype=torch.float64, head=s.head)
    net.load_state_dict(state["net"])
    return net.eval()


def box_probabilities(net) -> torch.Tensor:
    """(85, 85) exact P_theta over the box."""
    size = int(net.sizes[0])
    return net.box_log_probs().exp().reshape(size, size)


def pick_regions(P: torch.Tensor) -> list[tuple[str, int, float]]:
    """(condition, k, exact P) with P nearest each target, over all(X <= k) and all(X >= k)."""
    size = P.shape[0]
    candidates = []
    for k in range(size):
        candidates.append((f"all(X <= {k})", k, float(P[:k + 1, :k + 1].sum())))
        candidates.append((f"all(X >= {k})", k, float(P[k:, k:].sum())))
    chosen = []
    for target in TARGETS:
        best = min((c for c in candidates if c[2] > 0),
                   key=lambda c: abs(math.log(c[2] / target)))
        chosen.append(best)
    return chosen


def kernel_with(condition: str):
    text = CHAIN.read_text().replace("observe high = all(X >= 25)",
                                     f"observe high = all(X >= 25)\nobserve region = {condition}")
    return crnlang.compile(crnlang.parse(text))


def plain_estimate(net, kernel, n, generator) -> dict:
    with torch.no_grad():
        x = net.sample(n, generator)
    p = float(kernel.observables(x, 1.0)["region"].double().mean())
    return {"estimate": p, "stderr": math.sqrt(max(p * (1 - p), 0.0) / n)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    model = crnlang.load(CHAIN)
    with tempfile.TemporaryDirectory() as folder:
        net = trained_network(model, Path(folder))
    P = box_probabilities(net)
    n = args.samples
    print(f"n = {n:,} samples per estimate, {args.repeats} repeats; relative SE = stated SE / exact P")
    print(f"{'region':<16} {'exact P':>9}  {'estimator':<16} {'rel. SE':>9} {'rel. error':>10} "
          f"{'within 2 SE':>11} {'ms':>7}")
    for condition, _, exact in pick_regions(P):
        kernel = kernel_with(condition)
        intervals = kernel.INTERVALS["region"]
        estimators = {
            "plain": lambda g: plain_estimate(net, kernel, n, g),
            "importance 0.3": lambda g: rare_probability(net, kernel, "region", 1.0, 0.3, n, g),
            "importance 0.6": lambda g: rare_probability(net, kernel, "region", 1.0, 0.6, n, g),
            "sequential": lambda g: sequential_probability(net, kernel.SPECIES, intervals, n, g),
        }
        for name, estimate in estimators.items():
            found, tick = [], time.perf_counter()
            for r in range(args.repeats):
                found.append(estimate(torch.Generator().manual_seed(1000 + r)))
            ms = (time.perf_counter() - tick) / args.repeats * 1e3
            values = np.array([f["estimate"] for f in found])
            ses = np.array([f["stderr"] for f in found])
            rel_se = float(np.median(ses)) / exact
            rel_err = float(np.sqrt(np.mean((values - exact) ** 2))) / exact
            honest = float(np.mean(np.abs(values - exact) <= 2 * ses))
            se_text = f"{rel_se:9.2g}" if rel_se > 0 else "   (0 hit)"
            print(f"{condition:<16} {exact:9.2e}  {name:<16} {se_text} {rel_err:10.2g} "
                  f"{honest:11.0%} {ms:7.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
