"""The weight-shared network (``@network(shared)``) against NADE on Schlögl lattices, side by
side in one process: parameters, velocities, seconds per velocity and accuracy.

    python benchmarks/bench_shared_network.py [--t-grid 0.005] [--t-chain 0.3]

* 3x3 grid (examples/schlogl2d.crn's settings) from its point mass to ``--t-grid``:
  parameters, velocities (one TDVP linear solve each), wall time and seconds per velocity;
* 2-site chain (examples/schlogl1d.crn's settings) to ``--t-chain`` against FSP: the largest
  Hellinger distance of a site marginal over the saved times, and P(high) at the end.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

import crnlang

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from report import hellinger  # noqa: E402

NETWORKS = ("nade", "shared")


def timed_solve(path: Path, network: str, **settings):
    start = time.perf_counter()
    result = crnlang.solve(str(path), network=network, **settings)
    return result, time.perf_counter() - start


def n_parameters(result) -> int | None:
    return result.extra.get("n_parameters")


def worst_hellinger(result, exact) -> float:
    worst = 0.0
    for t in exact.times[1:]:
        for name in exact.species:
            worst = max(worst, hellinger(result.marginal(name, t), exact.marginal(name, t)))
    return worst


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--t-grid", type=float, default=0.005)
    parser.add_argument("--t-chain", type=float, default=0.3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    grid, chain = REPO / "examples" / "schlogl2d.crn", REPO / "examples" / "schlogl1d.crn"
    print(f"3x3 grid, the file's settings, t = 0 .. {args.t_grid}")
    print(f"{'network':>8} {'parameters':>10} {'velocities':>10} {'wall s':>8} {'s/velocity':>10}")
    for network in NETWORKS:
        result, wall = timed_solve(grid, network, t_end=args.t_grid, save_every=1)
        v = result.extra.get("velocities", 0)
        print(f"{network:>8} {n_parameters(result)!s:>10} {v:>10} {wall:>8.1f} {wall / max(v, 1):>10.3f}")
    exact = crnlang.solve(str(chain), method="fsp", t_end=args.t_chain)
    print(f"\n2-site chain, the file's settings, t = 0 .. {args.t_chain}, against FSP "
          f"(P(high) = {exact.prob('high')[-1]:.4f})")
    print(f"{'network':>8} {'parameters':>10} {'velocities':>10} {'wall s':>8} {'max Hellinger':>13}"
          f" {'P(high)':>8}")
    for network in NETWORKS:
        result, wall = timed_solve(chain, network, t_end=args.t_chain)
        print(f"{network:>8} {n_parameters(result)!s:>10} {result.extra.get('velocities', 0):>10}"
              f" {wall:>8.1f} {worst_hellinger(result, exact):>13.4f}"
              f" {float(np.asarray(result.prob('high'))[-1]):>8.4f}")


if __name__ == "__main__":
    main()
