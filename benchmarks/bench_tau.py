"""Tau-leaping against the exact SSA, side by side in one process: wall time, reaction events
per second (the events the leaps stand for), and accuracy against FSP.

    python benchmarks/bench_tau.py [--runs 1000 10000] [--threads 1]

Models: immigration-death with a mean of 1000 (to t = 2), dimerisation 2 X -> 0 around 7000
(to t = 0.3), and the 2-site Schlögl chain (examples/schlogl1d.crn, to t = 0.1, counts below
100: tau takes exact steps there). The accuracy column is the largest relative error of a
mean over species and saved times against FSP, for both methods.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import crnlang
from crnlang.dispatch import solve_fsp, solve_ssa, solve_tau

REPO = Path(__file__).resolve().parents[1]

MODELS = {
    "immigration-death": "species X <= 1500\n0 -> X @ 1000\nX -> 0 @ 1\n"
                         "@solve(t_end = 2, dt = 0.5, save_every = 1)\n",
    "dimerisation": "species X <= 14000\n0 -> X @ 50000\n2 X -> 0 @ 0.001\ninit X = 8000\n"
                    "@solve(t_end = 0.3, dt = 0.1, save_every = 1)\n",
}


def models():
    out = {name: crnlang.parse(text) for name, text in MODELS.items()}
    schlogl = crnlang.parse((REPO / "examples" / "schlogl1d.crn").read_text(encoding="utf-8"))
    out["schlogl chain(2)"] = schlogl.with_settings(t_end=0.1, dt=0.01, save_every=5)
    return out


def mean_error(result, exact) -> float:
    return max(float(np.max(np.abs(result.means[s][1:] / exact.means[s][1:] - 1)))
               for s in exact.species)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads: {args.threads}")
    print(f"{'model':<20} {'runs':>6} {'method':>6} {'wall s':>8} {'events/s':>10} "
          f"{'leaps':>9} {'mean err':>9} {'tau/ssa speed':>14}")
    for name, model in models().items():
        exact = solve_fsp(model)
        solve_tau(model.with_settings(batch=10, t_end=model.settings.t_end / 10))   # warm
        for runs in args.runs:
            walls = {}
            for method, solve in (("ssa", solve_ssa), ("tau", solve_tau)):
                start = time.perf_counter()
                result = solve(model.with_settings(batch=runs, seed=1))
                walls[method] = time.perf_counter() - start
                events = result.extra["events"]
                leaps = result.extra.get("leaps", "")
                ratio = f"{walls['ssa'] / walls['tau']:.1f}x" if method == "tau" else ""
                print(f"{name:<20} {runs:>6} {method:>6} {walls[method]:>8.2f} "
                      f"{events / walls[method]:>10.3g} {leaps:>9} {mean_error(result, exact):>9.2e} "
                      f"{ratio:>14}", flush=True)


if __name__ == "__main__":
    main()
