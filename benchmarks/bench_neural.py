"""Seconds per time step of the neural solvers on the toggle switch (NADE H = 16, B = 2000).

    python benchmarks/bench_neural.py                 # adam, ngd, tdvp per-step times
    python benchmarks/bench_neural.py --solvers       # tdvp step with each linear solver, f64/f32
    python benchmarks/bench_neural.py --full tdvp     # the whole run to T = 40, Hellinger vs FSP
                                                      # (the file's settings; --batch, --dt, ... change them)

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
    """Seconds per step of a real run from t = 0 (the delta start: samples repeat a lot)."""
    s = settings.updated(t_end=steps * settings.dt, save_every=10 ** 6)
    result = run_neural(kernel, s, **run)
    return result.extra["step_seconds"] / result.extra["substeps"]


def per_step_broad(kernel, settings, steps: int, solver: str = "auto") -> float:
    """Seconds per step from a freshly initialised network (nearly uniform over the box, so
    almost no sample repeats: the expensive case of the later, spread-out distribution)."""
    from crnlang.runtime.natgrad import solve_sr as _solve_sr
    from crnlang.runtime.networks import make_network
    from crnlang.runtime.optimizers import adam_epochs, ngd_epochs
    from crnlang.runtime.sampling import Sampler
    from crnlang.runtime.stepping import TDVP, StepPlace, integrate

    from crnlang.runtime.solver import DEFAULT_LAMBDA

    settings = settings.updated(lam=settings.lam or DEFAULT_LAMBDA[settings.method],
                                sampling="plain" if settings.sampling == "auto" else settings.sampling)
    dtype = {"float64": torch.float64, "float32": torch.float32}[settings.dtype]
    gen = torch.Generator().manual_seed(0)
    net = make_network("nade", kernel.LOWER, kernel.UPPER, hidden=settings.hidden, dtype=dtype, generator=gen)
    sampler = Sampler.from_settings(settings)

    def solve_sr(n, x, w, v, lam):
        return _solve_sr(n, x, w, v, lam, solver=solver)

    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    tdvp = TDVP(kernel, sampler, solve_sr, settings.batch, settings.lam)
    start = time.perf_counter()
    for step in range(steps):
        place = StepPlace(step, step * settings.dt, settings.dt, settings.lam, settings.dtype)
        t = step * settings.dt
        if settings.method == "tdvp":
            integrate(tdvp, net, t, settings.dt, settings.integrator, gen, place)
        elif settings.method == "ngd":
            ngd_epochs(net, solve_sr, kernel, sampler, t, settings.dt, settings.batch, settings.epochs,
                       1.0, settings.lam, gen, place)
        else:
            adam_epochs(net, opt, kernel, sampler, t, settings.dt, settings.batch, settings.epochs, gen, place)
    return (time.perf_counter() - start) / steps


def bench_methods(dtype: str) -> None:
    model, kernel = toggle()
    base = model.settings.updated(batch=2000, hidden=16, dtype=dtype, dt=0.005)
    print(f"toggle switch, NADE H=16, B=2000, {dtype}, torch threads {torch.get_num_threads()}")
    print("s/step: 'start' = first steps of a real run from the delta start; 'broad' = from a")
    print("fresh, nearly uniform network (no repeated samples: the costly case)")
    print(f"{'method':8s} {'start':>8s} {'broad':>8s} {'reference':>10s} {'speed-up':>9s} {'vs adam':>8s}")
    start, broad = {}, {}
    for method, epochs in (("adam", 100), ("ngd", 5), ("tdvp", 1)):
        s = base.updated(method=method, epochs=epochs)
        start[method] = per_step(kernel, s, STEPS[method])
        broad[method] = per_step_broad(kernel, s, STEPS[method])
    for method in start:
        print(f"{method:8s} {start[method]:8.3f} {broad[method]:8.3f} {REFERENCE[method]:10.1f} "
              f"{REFERENCE[method] / broad[method]:8.1f}x {broad['adam'] / broad[method]:7.1f}x")


def bench_solvers() -> None:
    model, kernel = toggle()
    print("tdvp euler step by linear solver (toggle, B=2000)")
    for dtype in ("float64", "float32"):
        for solver in ("cholesky", "structured", "cg"):
            s = model.settings.updated(method="tdvp", batch=2000, dtype=dtype, dt=0.005)
            print(f"  {dtype:8s} {solver:11s} {per_step_broad(kernel, s, 5, solver=solver):.3f} s/step "
                  "(broad network)")


def hellinger(p, q) -> float:
    n = max(len(p), len(q))
    p, q = np.pad(p, (0, n - len(p))), np.pad(q, (0, n - len(q)))
    return float(np.sqrt(0.5 * ((np.sqrt(np.clip(p, 0, None)) - np.sqrt(np.clip(q, 0, None))) ** 2).sum()))


def bench_full(method: str, t_end: float, overrides: dict, tol: float | None = None) -> None:
    """The whole run with the file's settings (changed by ``overrides``), then FSP."""
    model, kernel = toggle()
    settings = model.settings.updated(method=method, t_end=t_end, **{"save_every": 200, **overrides})
    start = time.perf_counter()
    result = run_neural(kernel, settings, progress=True, **({"tol": tol} if tol else {}))
    wall = time.perf_counter() - start
    exact = crnlang.solve(model, method="fsp", t_end=t_end, dt=settings.dt, save_every=settings.save_every)
    per_time = [max(hellinger(result.marginals[n][i], exact.marginal(n, t)) for n in result.species)
                for i, t in enumerate(result.times)]
    worst = max(per_time)
    print("max Hellinger over species at each saved time:")
    print("  " + " ".join(f"{t:g}:{h:.3f}" for t, h in zip(result.times, per_time)))
    ran = result.settings
    print(f"{method} ({ran['integrator']}, dt {ran['dt']:g}, B {ran['batch']}, lambda {ran['lam']:g}, "
          f"{ran['sampling']}, reweight={ran['reweight']}) to T = {t_end}: {wall:.1f} s wall, "
          f"{result.extra['substeps']} steps, max Hellinger over species and saved times {worst:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--solvers", action="store_true", help="compare the linear solvers")
    parser.add_argument("--full", metavar="METHOD", help="run METHOD to --t-end and compare with FSP")
    parser.add_argument("--t-end", type=float, default=40.0)
    parser.add_argument("--integrator", help="(default: the file's, euler)")
    parser.add_argument("--sampling", help="(default: the file's, auto)")
    parser.add_argument("--reweight", choices=("true", "false", "tempered"))
    parser.add_argument("--batch", type=int)
    parser.add_argument("--dt", type=float)
    parser.add_argument("--lam", type=float, help="lambda (default: the method's)")
    parser.add_argument("--save-every", type=int, help="steps between saved times (default 200)")
    parser.add_argument("--lr", type=float)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--tol", type=float, default=None, help="adaptive tolerance (default: the solver's)")
    args = parser.parse_args()
    if args.full:
        overrides = {k: getattr(args, k) for k in ("integrator", "sampling", "batch", "dt", "lam", "save_every",
                                                      "lr", "epochs")
                     if getattr(args, k) is not None}
        if args.reweight is not None:
            overrides["reweight"] = {"true": True, "false": False}.get(args.reweight, args.reweight)
        if args.dtype != "float64":
            overrides["dtype"] = args.dtype
        bench_full(args.full, args.t_end, overrides, args.tol)
    elif args.solvers:
        bench_solvers()
    else:
        bench_methods(args.dtype)


if __name__ == "__main__":
    main()
