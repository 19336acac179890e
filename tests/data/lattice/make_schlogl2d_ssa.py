"""Writes schlogl2d_ssa.npz: the 3x3 Schlögl grid's SSA reference (issue 12's test data).

    python tests/data/lattice/make_schlogl2d_ssa.py [--runs 100000]    # ~20 min on 2 cores

The model is examples/schlogl2d.crn's (grid(3, 3), X <= 84, start 50 per site), saved every
0.1 to t = 1. The file holds, per saved time, every site's histogram of X over 0..84 (counts),
and the counts of runs in `low` (all X <= 15) and `high` (all X >= 25); tests compare a
neural solve's site marginals and P(high) with them.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import crnlang
from crnlang.dispatch import simulate

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parents[2] / "examples" / "schlogl2d.crn"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--out", default=str(HERE / "schlogl2d_ssa.npz"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = crnlang.load(EXAMPLE).with_settings(method="ssa", dt=0.1, save_every=1, t_end=1.0)
    tick = time.perf_counter()
    runs = simulate(model, runs=args.runs, seed=args.seed)        # (runs, T, sites)
    wall = time.perf_counter() - tick
    kernel = crnlang.compile(model)
    size = 85
    counts = np.stack([np.stack([np.bincount(runs[:, t, s], minlength=size)[:size]
                                 for s in range(runs.shape[2])]) for t in range(runs.shape[1])])
    low = (runs <= 15).all(-1).sum(0)
    high = (runs >= 25).all(-1).sum(0)
    times = np.round(np.arange(runs.shape[1]) * 0.1, 10)
    np.savez_compressed(args.out, times=times, counts=counts.astype(np.int32), low=low, high=high,
                        runs=args.runs, seed=args.seed, species=np.array(kernel.ALL_SPECIES))
    print(f"{args.runs} runs in {wall:.0f} s -> {args.out}; P(high) at t = 1: {high[-1] / args.runs:.4f}, "
          f"P(low): {low[-1] / args.runs:.2e}")


if __name__ == "__main__":
    main()
