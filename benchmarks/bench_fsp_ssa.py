"""FSP and SSA benchmarks, with GillesPy2's SSA solvers side by side.

    python benchmarks/bench_fsp_ssa.py --setup     # once: benchmarks/.venv with gillespy2 + scons
    python benchmarks/bench_fsp_ssa.py [--runs 2000] [--threads 1]

FSP: the 2-site Schlögl chain to t = 1 (7,225 states; exact P(all sites <= 15) ~ 0.0751) and the
toggle switch to t = 40 (25,600-state box). SSA: reaction events per second on the same two
models, crnlang's vectorised direct method against GillesPy2's C++ SSA (SSACSolver, compiled
with g++ through SCons; compile time reported apart) and its NumPy SSA. GillesPy2 runs in
benchmarks/.venv (gitignored) in a subprocess. Its event count is not reported by GillesPy2, so
its events per second are crnlang's measured mean events per run (the same process: GillesPy2
has no truncation, and the truncation edge of these models holds < 1e-4 of the mass) times
its runs over its wall time.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv"
REPO = HERE.parent

SCHLOGL = (REPO / "examples" / "schlogl1d.crn").read_text(encoding="utf-8")   # 2 sites

TOGGLE = (REPO / "examples" / "toggle_switch.crn")


# ------------------------------------------------------------------ GillesPy2 side
def gillespy2_models():
    import numpy as np
    import gillespy2

    R = gillespy2.Reaction

    def model(name, params, species, reactions, t_end):
        m = gillespy2.Model(name=name)
        m.add_parameter([gillespy2.Parameter(name=k, expression=str(v)) for k, v in params.items()])
        m.add_species([gillespy2.Species(name=n, initial_value=v, mode="discrete")
                       for n, v in species.items()])
        m.add_reaction([R(name=n, reactants=r, products=p, propensity_function=f)
                        for n, r, p, f in reactions])
        m.timespan(np.linspace(0, t_end, 11))
        return m

    schlogl = model("schlogl2", dict(c1=2.676, c2=0.040, c3=108.102, c4=37.881, d=8.2207),
                    {"X0": 50, "X1": 50}, [
                        r for i in (0, 1) for r in (
                            (f"auto{i}", {f"X{i}": 2}, {f"X{i}": 3}, f"c1*X{i}*X{i}"),
                            (f"back{i}", {f"X{i}": 3}, {f"X{i}": 2}, f"c2*X{i}*X{i}*X{i}"),
                            (f"in{i}", {}, {f"X{i}": 1}, "c3"),
                            (f"out{i}", {f"X{i}": 1}, {}, f"c4*X{i}"),
                            (f"hop{i}", {f"X{i}": 1}, {f"X{1 - i}": 1}, f"d*X{i}"))], 1.0)
    toggle = model("toggle", dict(sx=50, sy=50, dx=1, dy=1, bx=1e-4, by=1e-4, ux=0.1, uy=0.1),
                   dict(Gx=1, Gy=1, Gx_off=0, Gy_off=0, Px=0, Py=0), [
                       ("synx", {"Gx": 1}, {"Gx": 1, "Px": 1}, "sx*Gx"),
                       ("syny", {"Gy": 1}, {"Gy": 1, "Py": 1}, "sy*Gy"),
                       ("decx", {"Px": 1}, {}, "dx*Px"),
                       ("decy", {"Py": 1}, {}, "dy*Py"),
                       ("bindyf", {"Gy": 1, "Px": 2}, {"Gy_off": 1}, "by*Gy*Px*Px"),
                       ("bindyr", {"Gy_off": 1}, {"Gy": 1, "Px": 2}, "uy*Gy_off"),
                       ("bindxf", {"Gx": 1, "Py": 2}, {"Gx_off": 1}, "bx*Gx*Py*Py"),
                       ("bindxr", {"Gx_off": 1}, {"Gx": 1, "Py": 2}, "ux*Gx_off")], 40.0)
    return {"schlogl2": schlogl, "toggle": toggle}


def run_gillespy2(runs: dict) -> dict:
    """{model: {solver: {"runs", "wall", "compile"}}} for GillesPy2's SSA solvers."""
    from gillespy2 import NumPySSASolver, SSACSolver

    out = {}
    for name, model in gillespy2_models().items():
        out[name] = {}
        try:
            start = time.perf_counter()
            solver = SSACSolver(model=model)
            compiled = time.perf_counter() - start
            start = time.perf_counter()
            model.run(solver=solver, number_of_trajectories=runs[name]["cpp"], seed=1)
            out[name]["GillesPy2 SSACSolver (C++)"] = {
                "runs": runs[name]["cpp"], "wall": time.perf_counter() - start, "compile": compiled}
        except Exception as err:  # noqa: BLE001 - report, go on with the NumPy solver
            out[name]["GillesPy2 SSACSolver (C++)"] = {"error": str(err).splitlines()[0]}
        start = time.perf_counter()
        model.run(solver=NumPySSASolver(model=model), number_of_trajectories=runs[name]["numpy"],
                  seed=1)
        out[name]["GillesPy2 NumPySSASolver"] = {"runs": runs[name]["numpy"],
                                                  "wall": time.perf_counter() - start}
    return out


def gillespy2_in_venv(runs: dict) -> dict:
    python = VENV / "bin" / "python"
    if not python.exists():
        return {"error": f"no {VENV}: run `python {Path(__file__).name} --setup` first"}
    site = next((VENV / "lib").glob("python3*/site-packages"))
    env = dict(os.environ, PYTHONPATH=str(site))     # GillesPy2 runs SCons with the base python
    proc = subprocess.run([str(python), __file__, "--gillespy2-json", json.dumps(runs)],
                          capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def setup() -> None:
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(VENV)], check=True)
    (VENV / ".gitignore").write_text("*\n")
    subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "gillespy2", "scons"], check=True)
    print(f"GillesPy2 installed in {VENV}")


# ------------------------------------------------------------------ crnlang side
def crnlang_models():
    import crnlang

    return {"schlogl2": crnlang.parse(SCHLOGL).with_settings(t_end=1.0, dt=1e-3, save_every=100),
            "toggle": crnlang.load(TOGGLE).with_settings(t_end=40.0, dt=0.005, save_every=400)}


def bench_fsp(models) -> list[tuple]:
    from crnlang.dispatch import solve_fsp

    solve_fsp(models["schlogl2"].with_settings(t_end=0.01))     # warm: compile the kernels
    rows = []
    for name, observable in (("schlogl2", "low"), ("toggle", "x_wins")):
        start = time.perf_counter()
        res = solve_fsp(models[name])
        wall = time.perf_counter() - start
        rows.append((name, res.extra["states"], wall, observable, float(res.prob(observable)[-1]),
                     float(res.edge_mass.max())))
    return rows


def bench_ssa(models, runs: int) -> dict:
    from crnlang.dispatch import solve_ssa

    out = {}
    for name, model in models.items():
        solve_ssa(model.with_settings(batch=10, t_end=model.settings.t_end / 100))   # warm
        start = time.perf_counter()
        res = solve_ssa(model.with_settings(batch=runs, seed=1))
        wall = time.perf_counter() - start
        out[name] = {"runs": runs, "wall": wall, "events": res.extra["events"]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", action="store_true", help="create benchmarks/.venv with gillespy2")
    parser.add_argument("--runs", type=int, default=10000, help="crnlang SSA trajectories")
    parser.add_argument("--gillespy2-runs", type=int, default=1000,
                        help="GillesPy2 C++ trajectories (its NumPy SSA gets 1/100 of them)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (0: torch's default; 1 is fastest on 2 shared cores)")
    parser.add_argument("--skip-gillespy2", action="store_true")
    parser.add_argument("--gillespy2-json", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.gillespy2_json:
        print(json.dumps(run_gillespy2(json.loads(args.gillespy2_json))))
        return
    if args.setup:
        setup()
        return
    sys.path.insert(0, str(REPO))
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    models = crnlang_models()
    print(f"torch threads: {torch.get_num_threads()}")
    print("\nFSP (exact)")
    print(f"{'model':10} {'states':>8} {'wall s':>8}  observable at t_end          edge mass")
    for name, states, wall, obs, p, edge in bench_fsp(models):
        print(f"{name:10} {states:8,d} {wall:8.2f}  P({obs}) = {p:.6f}{'':10} {edge:.1e}")

    ours = bench_ssa(models, args.runs)
    events_per_run = {name: r["events"] / r["runs"] for name, r in ours.items()}
    theirs = {} if args.skip_gillespy2 else gillespy2_in_venv(
        {name: {"cpp": args.gillespy2_runs, "numpy": max(args.gillespy2_runs // 100, 5)}
         for name in models})
    print("\nSSA throughput (reaction events per second)")
    print(f"{'model':10} {'solver':34} {'runs':>6} {'wall s':>8} {'events/s':>12} {'compile s':>10}")
    for name in models:
        r = ours[name]
        print(f"{name:10} {'crnlang ssa (torch, vectorised)':34} {r['runs']:6d} {r['wall']:8.2f} "
              f"{r['events'] / r['wall']:12.3e} {'':>10}")
        if "error" in theirs:
            print(f"{name:10} GillesPy2: {theirs['error']}")
            continue
        for solver, t in theirs.get(name, {}).items():
            if "error" in t:
                print(f"{name:10} {solver:34} failed: {t['error']}")
                continue
            rate = events_per_run[name] * t["runs"] / t["wall"]
            compile_s = f"{t['compile']:10.1f}" if "compile" in t else ""
            print(f"{name:10} {solver:34} {t['runs']:6d} {t['wall']:8.2f} {rate:12.3e} {compile_s}")
    print(f"\nmean events per run: " + ", ".join(f"{k} {v:,.0f}" for k, v in events_per_run.items()))


if __name__ == "__main__":
    main()
