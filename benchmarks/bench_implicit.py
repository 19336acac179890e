"""The implicit TDVP step against the explicit one on stiff models, side by side, against
exact answers (closed form or FSP).

    python benchmarks/bench_implicit.py                # stiff immigration-death and the 2-site chain
    python benchmarks/bench_implicit.py --t-end 0.2    # the chain further (slower)
    python benchmarks/bench_implicit.py --grid 3       # s/step of the first implicit steps on a 3x3 grid

Per model and integrator it prints steps, seconds per step (the solver's own step clock),
wall time, the time to t = 1 that rate implies, and the max Hellinger distance of the
marginals to the exact answer over the saved times. Baseline: tdvp euler at a step the
explicit scheme can take (about 1 / (largest exit rate)).
"""
from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np
import torch

import crnlang
from crnlang.runtime.solver import run_neural

REPO = Path(__file__).resolve().parents[1]
STIFF = REPO / "tests" / "data" / "stiff_immigration_death.crn"     # exit rate 2000, relaxation 100


def hellinger(p, q) -> float:
    n = max(len(p), len(q))
    p, q = (np.pad(np.clip(a, 0, None), (0, n - len(a))) for a in (p, q))
    return float(np.sqrt(0.5 * ((np.sqrt(p) - np.sqrt(q)) ** 2).sum()))


def schlogl(shape: str) -> crnlang.Model:
    text = (REPO / "examples" / "schlogl1d.crn").read_text()
    text = text.replace("lattice chain(2)", f"lattice {shape}")
    return crnlang.parse(re.sub(r"^@(solve|sampling)\(.*\)$", "", text, flags=re.M))


def max_hellinger(result, exact) -> float:
    """Max over saved times and species of H(result, exact); exact: Result on the same grid."""
    worst = 0.0
    for t in result.times[1:]:
        for name in result.species:
            worst = max(worst, hellinger(result.marginal(name, t), exact.marginal(name, t)))
    return worst


def row(label, result, wall, error, t_end) -> None:
    steps = len(result.extra.get("adaptive_steps", [])) or result.extra["substeps"]
    per = result.extra["step_seconds"] / max(steps, 1)
    to_one = per * steps / t_end
    print(f"{label:<34} {steps:>6} {per:>8.3f} {wall:>8.1f} {to_one / 60:>10.1f} {error:>9.4f}")


def compare(name, model, runs, t_end, save) -> None:
    print(f"\n{name} to t = {t_end:g} (max Hellinger to the exact answer over the saved times)")
    print(f"{'integrator':<34} {'steps':>6} {'s/step':>8} {'wall s':>8} {'min to t=1':>10} {'Hellinger':>9}")
    kernel = crnlang.compile(model)
    exact = crnlang.solve(model, method="fsp", t_end=t_end, dt=save, save_every=1)
    for label, changes in runs:
        changes = dict(changes)
        tol = changes.pop("tol", None)
        settings = model.settings.updated(method="tdvp", t_end=t_end, **changes)
        settings = settings.updated(save_every=max(1, int(round(save / settings.dt))))
        tick = time.perf_counter()
        result = run_neural(kernel, settings, tol=tol)
        row(label, result, time.perf_counter() - tick, max_hellinger(result, exact), t_end)


def grid_rate(side: int, steps: int, batch: int) -> None:
    model = schlogl(f"grid({side}, {side})")
    kernel = crnlang.compile(model)
    settings = model.settings.updated(method="tdvp", integrator="implicit", dt=1e-4,
                                      t_end=1.0, batch=batch, save_every=10 ** 6)
    import crnlang.runtime.implicit as implicit

    clock = {"n": 0, "s": 0.0}
    step = implicit.implicit_step

    def counted(*args, **kwargs):
        tick = time.perf_counter()
        out = step(*args, **kwargs)
        clock["n"] += 1
        clock["s"] += time.perf_counter() - tick
        if clock["n"] >= steps:
            raise StopIteration
        return out

    import crnlang.runtime.solver as solver

    solver.implicit_step = counted
    try:
        run_neural(kernel, settings)
    except StopIteration:
        pass
    finally:
        solver.implicit_step = step
    print(f"\n{side}x{side} grid, implicit, B = {batch}: {clock['s'] / clock['n']:.2f} s per step "
          f"(first {clock['n']} steps)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--t-end", type=float, default=0.05, help="horizon of the chain runs")
    parser.add_argument("--grid", type=int, help="also time implicit steps on a grid of this side")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    common = dict(batch=500, sampling="mixture")
    compare("stiff immigration-death (exit rate 2000, relaxation 100)", crnlang.load(STIFF), [
        ("euler dt = 2e-5 (baseline)", dict(integrator="euler", dt=2e-5, **common)),
        ("euler dt = 2e-3", dict(integrator="euler", dt=2e-3, **common)),
        ("implicit (first h = 1e-3)", dict(integrator="implicit", dt=1e-3, **common)),
        ("implicit, tol 3e-3", dict(integrator="implicit", dt=1e-3, tol=3e-3, **common)),
    ], t_end=0.05, save=0.01)
    compare("2-site Schlogl chain (exit rate ~3e4)", schlogl("chain(2)"), [
        ("euler dt = 2e-5 (baseline)", dict(integrator="euler", dt=2e-5, batch=2000)),
        ("implicit (first h = 1e-4)", dict(integrator="implicit", dt=1e-4, batch=2000)),
    ], t_end=args.t_end, save=args.t_end / 5)
    if args.grid:
        grid_rate(args.grid, steps=3, batch=500)


if __name__ == "__main__":
    main()
