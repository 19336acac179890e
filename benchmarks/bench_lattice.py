"""Neural solves of Schlögl lattices: smooth heads with rkc and rk4 against the reference's
explicit settings, side by side in one process (issue 12).

    python benchmarks/bench_lattice.py                       # chain(2), chain(6), grid(3, 3), grid(4, 4)
    python benchmarks/bench_lattice.py --shapes "chain(2)" --settings rkc rk4
    python benchmarks/bench_lattice.py --accuracy            # also chain(2) to t = 1 against FSP

Per lattice and setting it runs from the file's point-mass start to t_a (which holds the
start's transient), checkpoints, resumes to t_a + t_b, and projects the wall time to t = 1 as
wall(0, t_a) + (1 - t_a) / t_b * wall(t_a, t_a + t_b). It prints the velocities (the cost
unit: one TDVP linear solve each) before and after t_a, the seconds per velocity after t_a
and the projection. Settings:

* rkc: examples/schlogl1d.crn as shipped (head = smooth, rkc, dt = 1e-2, mixture sampling,
  B = 4000); t_a = t_b = 0.05;
* rk4: the same with rk4 at dt = 1e-3 (the earlier recipe); t_a = t_b = 0.05;
* reference: one-hot heads, euler, dt = 1e-5 (the chain's reference step; the grids' is 8e-6),
  B = 2000: the explicit limit; t_a = t_b = 10 steps.

``--accuracy`` adds the 2-site chain to t = 1 with the shipped settings against FSP (max
Hellinger over sites and saved times, P(low) and P(high)); about 2 minutes.
"""
from __future__ import annotations

import argparse
import tempfile
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


SETTINGS = {      # name -> (overrides, t_a, t_b)
    "rkc": ({}, 0.05, 0.05),
    "rk4": (dict(integrator="rk4", dt=1e-3), 0.05, 0.05),
    "reference": (dict(head="onehot", integrator="euler", dt=1e-5, batch=2000), 1e-4, 1e-4),
}


def rate(shape: str, label: str) -> None:
    overrides, t_a, t_b = SETTINGS[label]
    model = lattice(shape)
    kernel = crnlang.compile(model)
    settings = model.settings.updated(**overrides, rare=())
    steps_a = round(t_a / settings.dt)
    with tempfile.TemporaryDirectory() as tmp:
        tick = time.perf_counter()
        head = run_neural(kernel, settings.updated(t_end=t_a, save_every=steps_a), checkpoint_dir=tmp)
        wall_a = time.perf_counter() - tick
        tick = time.perf_counter()
        tail = run_neural(kernel, settings.updated(t_end=t_a + t_b, save_every=steps_a),
                          checkpoint_dir=tmp, resume=True)
        wall_b = time.perf_counter() - tick
    velocities_b = tail.extra["velocities"] - head.extra["velocities"]
    to_one = wall_a + (1.0 - t_a) / t_b * wall_b
    print(f"{shape:<11} {label:<10} {tail.extra['n_parameters']:>7} {t_a:>7.2g} {head.extra['velocities']:>7} "
          f"{wall_a:>8.1f} {velocities_b:>7} {wall_b / max(velocities_b, 1):>8.3f} {to_one / 60:>10.1f}",
          flush=True)


def hellinger(p, q) -> float:
    n = max(len(p), len(q))
    p, q = (np.pad(np.clip(a, 0, None), (0, n - len(a))) for a in (p, q))
    return float(np.sqrt(0.5 * ((np.sqrt(p) - np.sqrt(q)) ** 2).sum()))


def accuracy() -> None:
    model = lattice("chain(2)").with_settings(save_every=10)      # every 0.1
    tick = time.perf_counter()
    neural = crnlang.solve(model)
    wall = time.perf_counter() - tick
    exact = crnlang.solve(model, method="fsp", dt=0.1, save_every=1)
    worst = max(hellinger(neural.marginal(n, t), exact.marginal(n, t))
                for n in neural.species for t in neural.times[1:])
    print(f"\nchain(2) to t = 1, shipped settings: {neural.extra['substeps']} steps, "
          f"{neural.extra['velocities']} velocities, {wall / 60:.1f} min, "
          f"max Hellinger {worst:.4f} (t >= 0.1); P(low) {neural.prob('low')[-1]:.4g} vs exact "
          f"{exact.prob('low')[-1]:.4g}, P(high) {neural.prob('high')[-1]:.4g} vs {exact.prob('high')[-1]:.4g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES))
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--accuracy", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{'lattice':<11} {'settings':<10} {'params':>7} {'t_a':>7} {'vel(a)':>7} {'wall(a)':>8} "
          f"{'vel(b)':>7} {'s/vel':>8} {'min to t=1':>10}")
    for shape in args.shapes:
        for label in args.settings:
            rate(shape, label)
    if args.accuracy:
        accuracy()


if __name__ == "__main__":
    main()
