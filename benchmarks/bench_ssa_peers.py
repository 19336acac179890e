"""crnlang's SSA (the compiled per-event engine, the vectorised engine it replaced, and
tau-leaping) against rebop (the Rust Gillespie with Python bindings) and GillesPy2's C++ SSA,
side by side in one script: reaction events per second and the ratios, per model and
ensemble size.

    python benchmarks/bench_ssa_peers.py --setup      # once: benchmarks/.venv-peers with the peers
    python benchmarks/bench_ssa_peers.py [--runs 1000 10000] [--threads 1] [--models grid]

Models, under falling-factorial mass action (rebop's law of mass action; GillesPy2 gets each
propensity as a custom expression of the same law, since its mass action stops at order two)
and with no truncation (the peers have none): the 2-site Schlögl chain, the 3x3 grid and the
toggle switch to t = 1, and the 8x8 grid to t = 0.01 (64 sites: 1e4 runs to t = 1 would be
~1e10 events). rebop runs one trajectory per call, GillesPy2 all of them in one call of its
compiled solver (compiled before the clock starts), both in a subprocess of the venv, built
from the same crnlang IR (every reaction's constant rate, reactants and products). Neither
reports its event count, so their events per second are crnlang's measured mean events per
run (the same process) times their runs over their wall time.
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
REPO = HERE.parent
VENV = HERE / ".venv-peers"


def peer_models():
    """name -> crnlang Model: falling kinetics, bounds dropped, t_end = 1 (8x8: 0.01)."""
    import crnlang

    def unbounded(text: str) -> str:
        return (text.replace("kinetics power", "kinetics falling")
                .replace("species X <= 84", "species X").replace("<= 79", ""))

    schlogl = (REPO / "examples" / "schlogl1d.crn").read_text(encoding="utf-8")
    grid = unbounded((REPO / "examples" / "schlogl2d.crn").read_text(encoding="utf-8"))
    toggle = (REPO / "examples" / "toggle_switch.crn").read_text(encoding="utf-8")
    big = grid.replace("lattice grid(3, 3)", "lattice grid(8, 8)")
    assert big != grid, "examples/schlogl2d.crn no longer declares grid(3, 3)"
    settings = {"t_end": 1.0, "dt": 0.1, "save_every": 10}
    return {"schlogl chain(2)": crnlang.parse(unbounded(schlogl)).with_settings(**settings),
            "schlogl grid(3,3)": crnlang.parse(grid).with_settings(**settings),
            "schlogl grid(8,8)": crnlang.parse(big).with_settings(t_end=0.01, dt=0.001,
                                                                  save_every=10),
            "toggle switch": crnlang.parse(unbounded(toggle)).with_settings(**settings)}


def rebop_system(model) -> dict:
    """The model as plain data for rebop: [(rate, reactants, products)], the initial state."""
    from crnlang.model.semantics import evaluate

    reactions = []
    for r in model.reactions:
        rate = float(evaluate(r.rate, model.param_values))
        expand = lambda terms: [name for name, s in terms for _ in range(s)]   # noqa: E731
        reactions.append((rate, expand(r.reactants), expand(r.products)))
    init = {s.name: int(model.init_of(s.name).args[0]) for s in model.species}
    return {"reactions": reactions, "init": init, "t_end": float(model.settings.t_end)}


# ------------------------------------------------------------------ the peers' side (in the venv)
def peers_main(job: str) -> None:
    """In the venv: time ``runs`` trajectories of each system with each peer; print JSON
    {peer: {system: {runs: seconds}}} (a peer that fails gives {"error": ...})."""
    job = json.loads(job)
    out = {}
    for peer, timer in (("rebop", _rebop_walls), ("gillespy2", _gillespy2_walls)):
        try:
            out[peer] = {name: timer(system, job["runs"])
                         for name, system in job["systems"].items()}
        except Exception as err:   # noqa: BLE001 - report the peer's failure, keep the other
            out[peer] = {"error": f"{type(err).__name__}: {err}"}
    print(json.dumps(out))


def _rebop_walls(system: dict, runs: list[int]) -> dict:
    import rebop

    gillespie = rebop.Gillespie()
    for rate, reactants, products in system["reactions"]:
        gillespie.add_reaction(rate, reactants, products)
    gillespie.run(system["init"], tmax=system["t_end"], nb_steps=10, rng=0)   # warm
    walls = {}
    for n in runs:
        start = time.perf_counter()
        for seed in range(n):
            gillespie.run(system["init"], tmax=system["t_end"], nb_steps=10, rng=seed)
        walls[str(n)] = time.perf_counter() - start
    return walls


def _gillespy2_walls(system: dict, runs: list[int]) -> dict:
    import gillespy2
    import numpy as np

    names = {name: f"s{i}" for i, name in enumerate(system["init"])}
    model = gillespy2.Model(name="peer")
    model.add_species([gillespy2.Species(name=names[n], initial_value=v, mode="discrete")
                       for n, v in system["init"].items()])
    for i, (rate, reactants, products) in enumerate(system["reactions"]):
        counts = lambda terms: {names[n]: terms.count(n) for n in set(terms)}  # noqa: E731
        falling = []
        for n, s in counts(reactants).items():
            falling += [n if j == 0 else f"({n} - {j})" for j in range(s)]
        law = " * ".join([repr(float(rate))] + falling)
        model.add_reaction(gillespy2.Reaction(name=f"r{i}", reactants=counts(reactants),
                                              products=counts(products),
                                              propensity_function=law))
    model.timespan(np.linspace(0.0, system["t_end"], 11))
    solver = gillespy2.SSACSolver(model=model)                 # compiles the C++ solver
    model.run(solver=solver, number_of_trajectories=1, seed=1)  # warm
    walls = {}
    for n in runs:
        start = time.perf_counter()
        model.run(solver=solver, number_of_trajectories=n, seed=2)
        walls[str(n)] = time.perf_counter() - start
    return walls


def peers_in_venv(systems: dict, runs: list[int]) -> dict:
    python = VENV / "bin" / "python"
    if not python.exists():
        return {"error": f"no {VENV}: run `python {Path(__file__).name} --setup` first"}
    site = next((VENV / "lib").glob("python3*/site-packages"))
    env = dict(os.environ, PYTHONPATH=str(site))     # GillesPy2 runs SCons with the base python
    proc = subprocess.run([str(python), __file__, "--peers-json",
                           json.dumps({"systems": systems, "runs": runs})],
                          capture_output=True, text=True, env=env, timeout=3 * 3600)
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def setup() -> None:
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    (VENV / ".gitignore").write_text("*\n")
    subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "rebop", "gillespy2",
                    "scons"],
                   check=True)
    print(f"rebop, gillespy2 and scons installed in {VENV}")


# ------------------------------------------------------------------ the crnlang side
ENGINES = (("ssa", "compiled"), ("ssa", "vectorised"), ("tau", None))


def crnlang_rates(models: dict, runs: list[int], slow_max: int) -> dict:
    """{(model, runs, column): (wall seconds, events)} for the columns of ENGINES; the
    vectorised engine and tau only up to ``slow_max`` runs (they take hours at 1e4 on grids)."""
    import crnlang
    from crnlang.dispatch import solve_tau
    from crnlang.reference.ssa import solve_ssa_kernel

    out = {}
    for name, model in models.items():
        kernel = crnlang.compile(model)
        solve_ssa_kernel(kernel, model.with_settings(batch=10).settings)   # warm: numba
        for n in runs:
            settings = model.with_settings(batch=n, seed=1).settings
            for method, engine in ENGINES:
                if engine != "compiled" and n > slow_max:
                    continue
                start = time.perf_counter()
                if method == "ssa":
                    result = solve_ssa_kernel(kernel, settings, engine=engine)
                else:
                    result = solve_tau(model.with_settings(batch=n, seed=1), kernel=kernel)
                out[(name, n, engine or method)] = (time.perf_counter() - start,
                                                    result.extra["events"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", action="store_true", help="create the venv with the peers")
    parser.add_argument("--runs", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=None,
                        help="only the models whose name contains one of these words")
    parser.add_argument("--slow-max", type=int, default=1000,
                        help="run the vectorised engine and tau only up to this many runs")
    parser.add_argument("--peers-json", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peers_json:
        return peers_main(args.peers_json)
    if args.setup:
        return setup()
    import torch

    torch.set_num_threads(args.threads)
    models = {name: m for name, m in peer_models().items()
              if not args.models or any(word in name for word in args.models)}
    mine = crnlang_rates(models, args.runs, args.slow_max)
    peers = peers_in_venv({name: rebop_system(m) for name, m in models.items()}, args.runs)
    print(f"threads: {args.threads} (crnlang; the peers run one); peers: "
          + ("; ".join(f"{p}: {v['error']}" for p, v in peers.items() if "error" in v)
             if "error" not in peers else peers["error"]))
    columns = ["compiled", "vectorised", "tau", "rebop", "gillespy2"]
    print(f"{'model':<18} {'runs':>6} {'events/run':>10} "
          + " ".join(f"{c + ' ev/s':>15}" for c in columns)
          + f" {'compiled/rebop':>15} {'compiled/gp2':>13}")
    for name in models:
        for n in args.runs:
            events = mine[(name, n, "compiled")][1]
            rate = {c: events / mine[(name, n, c)][0] if (name, n, c) in mine else float("nan")
                    for c in columns[:3]}
            for peer in ("rebop", "gillespy2"):
                wall = peers.get(peer, {}).get(name, {}).get(str(n)) if "error" not in peers else None
                rate[peer] = events / wall if wall else float("nan")
            print(f"{name:<18} {n:>6} {events / n:>10.3g} "
                  + " ".join(f"{rate[c]:>15.3g}" for c in columns)
                  + f" {rate['compiled'] / rate['rebop']:>15.2f}"
                  f" {rate['compiled'] / rate['gillespy2']:>13.2f}", flush=True)


if __name__ == "__main__":
    main()
