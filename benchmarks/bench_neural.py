"""Seconds per time step of the neural solvers on the toggle switch (NADE H = 16, B = 2000).

    python benchmarks/bench_neural.py                 # adam, ngd, tdvp per-step times
    python benchmarks/bench_neural.py --solvers       # tdvp step with each linear solver, f64/f32
    python benchmarks/bench_neural.py --full tdvp     # the whole run to T = 40, Hellinger vs FSP

Per-step time is the solver's own step clock (extra["step_seconds"] / steps), so the t = 0
fit and the saved-time estimates are not counted. The reference implementation's figures
on this kind of machine (2 CPU cores) are printed alongside.
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
REFERENCE = {"tdvp": 2.6, "ngd": 12.4, "adam": 6.5}      # s per step, reference code, 2 cores
STEPS = {"tdvp": 10, "ngd": 3, "adam": 2}


def toggle():
    model = crnlang.load(REPO / "examples" / "toggle_switch.crn")
    return model, crnlang.compile(model)


def per_step(kernel, settings, steps: int, **run) -> float:
    s = settings.updated(t_end=steps * settings.dt, save_every=10 ** 6)
    result = run_neural(kernel, s, **run)
    return result.extra["step_seconds"] / result.extra["substeps"]


def bench_methods(dtype: str) -> None:
    model, kernel = toggle()
    base = model.settings.updated(batch=2000, hidden=16, dtype=dtype, dt=0.005)
    print(f"toggle switch, NADE H=16, B=2000, {dtype}, torch threads {torch.get_num_threads()}")
    print(f"{'method':8s} {'s/step':>9s} {'reference':>10s} {'speed-up':>9s} {'vs adam':>8s}")
    times = {}
    for method, epochs in (("adam", 100), ("ngd", 5), ("tdvp", None)):
        times[method] = per_step(kernel, base.updated(method=method, epochs=epochs), STEPS[method])
    for method, sec in times.items():
        print(f"{method:8s} {sec:9.3f} {REFERENCE[method]:10.1f} {REFERENCE[method] / sec:8.1f}x "
              f"{times['adam'] / sec:7.1f}x")


def bench_solvers() -> None:
    model, kernel = toggle()
    print("tdvp euler step by linear solver (toggle, B=2000)")
    for dtype in ("float64", "float32"):
        for solver in ("cholesky", "structured", "cg"):
            s = model.settings.updated(method="tdvp", batch=2000, dtype=dtype, dt=0.005)
            print(f"  {dtype:8s} {solver:11s} {per_step(kernel, s, 5, solver=solver):.3f} s/step")


def hellinger(p, q) -> float:
    n = max(len(p), len(q))
    p, q = np.pad(p, (0, n - len(p))), np.pad(q, (0, n - len(q)))
    return float(np.sqrt(0.5 * ((np.sqrt(np.clip(p, 0, None)) - np.sqrt(np.clip(q, 0, None))) ** 2).sum()))


def bench_full(method: str, t_end: float, integrator: str, sampling: str, reweight: bool) -> None:
    model, kernel = toggle()
    settings = model.settings.updated(method=method, t_end=t_end, integrator=integrator,
                                      sampling=sampling, reweight=reweight, save_every=200)
    start = time.perf_counter()
    result = run_neural(kernel, settings, progress=True)
    wall = time.perf_counter() - start
    exact = crnlang.solve(model, method="fsp", t_end=t_end, dt=settings.dt, save_every=settings.save_every)
    worst = max(hellinger(result.marginals[n][i], exact.marginal(n, t))
                for i, t in enumerate(result.times) for n in result.species)
    print(f"{method} ({integrator}, {sampling}, reweight={reweight}) to T = {t_end}: {wall:.1f} s wall, "
          f"{result.extra['substeps']} steps, max Hellinger over species and saved times {worst:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--solvers", action="store_true", help="compare the linear solvers")
    parser.add_argument("--full", metavar="METHOD", help="run METHOD to --t-end and compare with FSP")
    parser.add_argument("--t-end", type=float, default=40.0)
    parser.add_argument("--integrator", default="euler")
    parser.add_argument("--sampling", default="plain")
    parser.add_argument("--no-reweight", action="store_true")
    args = parser.parse_args()
    if args.full:
        bench_full(args.full, args.t_end, args.integrator, args.sampling, not args.no_reweight)
    elif args.solvers:
        bench_solvers()
    else:
        bench_methods(args.dtype)


if __name__ == "__main__":
    main()
