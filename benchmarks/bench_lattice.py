"""Neural solves of Schlögl lattices: smooth heads with rk4 against the reference's explicit
settings, side by side in one process (issue 12).

    python benchmarks/bench_lattice.py                       # chain(2), chain(6), grid(3, 3), grid(4, 4)
    python benchmarks/bench_lattice.py --shapes "grid(3, 3)" --steps 30
    python benchmarks/bench_lattice.py --accuracy            # also chain(2) to t = 1 against FSP

Per lattice and setting it runs the first ``--steps`` steps from the file's point-mass start
and prints the substeps the step guard needed, seconds per substep, and the projected wall
time to t = 1 (steps to t = 1 times the seconds per step after the first step, plus the first
step's own time, which holds the start's transient). Settings:

* smooth rk4: examples/schlogl1d.crn as shipped (head = smooth, rk4, dt = 1e-3, mixture
  sampling, B = 4000);
* reference: one-hot heads, euler, dt = 1e-5 (the chain's reference step; the grids' is 8e-6),
  B = 2000: the explicit limit.

``--accuracy`` adds the 2-site chain to t = 1 with the shipped settings against FSP (max
Hellinger over sites and saved times, P(low) and P(high)); about 5 minutes.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import crnlang
from crnlang.runtime.solver import run_neural

REPO = Path(__file__).resolve().parents[1]
SHAPES = ("chain(2)", "chain(6)", "grid(3, 3)", "grid(4, 4)")


def lattice(shape: str) -> crnlang.Model:
    text = (REPO / "examples" / "schlogl1d.crn").read_text(encoding="utf-8")
    return crnlang.parse(text.replace("lattice chain(2)", f"lattice {shape}"))


SETTINGS = {
    "smooth rk4, dt 1e-3, B 4000": {},
    "reference: one-hot euler, dt 1e-5, B 2000": dict(head="onehot", integrator="euler", dt=1e-5,
                                                      batch=2000),
}


def rate(shape: str, label: str, steps: int) -> None:
    model = lattice(shape)
    kernel = crnlang.compile(model)
    settings = model.settings.updated(**SETTINGS[label])
    first = settings.updated(t_end=settings.dt, save_every=1)
    tick = time.perf_counter()
    head = run_neural(kernel, first)
    first_wall = time.perf_counter() - tick
    more = settings.updated(t_end=settings.dt * (steps + 1), save_every=steps + 1)
    tick = time.perf_counter()
    result = run_neural(kernel, more)
    wall = time.perf_counter() - tick
    per_step = max(wall - first_wall, 1e-9) / steps
    substeps = result.extra["substeps"] - head.extra["substeps"]
    to_one = first_wall + per_step * (1.0 / settings.dt - 1)
    print(f"{shape:<11} {label:<42} {result.extra['n_parameters']:>7} {head.extra['substeps']:>6} "
          f"{first_wall:>8.1f} {substeps:>6} {per_step:>8.3f} {to_one / 60:>10.1f}", flush=True)


def hellinger(p, q) -> float:
    n = max(len(p), len(q))
    p, q = (np.pad(np.clip(a, 0, None), (0, n - len(a))) for a in (p, q))
    return float(np.sqrt(0.5 * ((np.sqrt(p) - np.sqrt(q)) ** 2).sum()))


def accuracy() -> None:
    model = lattice("chain(2)").with_settings(save_every=100)
    tick = time.perf_counter()
    neural = crnlang.solve(model)
    wall = time.perf_counter() - tick
    exact = crnlang.solve(model, method="fsp", dt=0.1, save_every=1)
    worst = max(hellinger(neural.marginal(n, t), exact.marginal(n, t))
                for n in neural.species for t in neural.times[1:])
    print(f"\nchain(2) to t = 1, shipped settings: {neural.extra['substeps']} steps, {wall / 60:.1f} min, "
          f"max Hellinger {worst:.4f} (t >= 0.1); P(low) {neural.prob('low')[-1]:.4g} vs exact "
          f"{exact.prob('low')[-1]:.4g}, P(high) {neural.prob('high')[-1]:.4g} vs {exact.prob('high')[-1]:.4g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES))
    parser.add_argument("--steps", type=int, default=10, help="steps timed after the first")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--accuracy", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{'lattice':<11} {'settings':<42} {'params':>7} {'sub1':>6} {'first s':>8} {'subN':>6} "
          f"{'s/step':>8} {'min to t=1':>10}")
    for shape in args.shapes:
        for label in SETTINGS:
            rate(shape, label, args.steps)
    if args.accuracy:
        accuracy()


if __name__ == "__main__":
    main()
