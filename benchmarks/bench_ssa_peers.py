"""crnlang's SSA (and tau-leaping) against rebop, the Rust Gillespie with Python bindings,
side by side in one script: reaction events per second and the ratio, per model and
ensemble size.

    python benchmarks/bench_ssa_peers.py --setup      # once: benchmarks/.venv-peers with rebop
    python benchmarks/bench_ssa_peers.py [--runs 1000 10000] [--threads 1]

Models, all to t = 1 under falling-factorial mass action (rebop's law of mass action) and
with no truncation (rebop has none): the 2-site Schlögl chain, the 3x3 Schlögl grid, the
toggle switch. rebop runs one trajectory per call in a subprocess of its venv, built from
the same crnlang IR (every reaction's constant rate, reactants and products). It does not
report its event count, so its events per second are crnlang's measured mean events per run
(the same process) times its runs over its wall time.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV = HERE / ".venv-peers"


def peer_models():
    """name -> crnlang Model: falling kinetics, bounds dropped, t_end = 1."""
    import crnlang

    def unbounded(text: str) -> str:
        return (text.replace("kinetics power", "kinetics falling")
                .replace("species X <= 84", "species X").replace("<= 79", ""))

    schlogl = (REPO / "examples" / "schlogl1d.crn").read_text(encoding="utf-8")
    grid = (REPO / "examples" / "schlogl2d.crn").read_text(encoding="utf-8")
    toggle = (REPO / "examples" / "toggle_switch.crn").read_text(encoding="utf-8")
    settings = {"t_end": 1.0, "dt": 0.1, "save_every": 10}
    return {"schlogl chain(2)": crnlang.parse(unbounded(schlogl)).with_settings(**settings),
            "schlogl grid(3,3)": crnlang.parse(unbounded(grid)).with_settings(**settings),
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


# ------------------------------------------------------------------ the rebop side
def rebop_main(job: str) -> None:
    """In the venv: time ``runs`` rebop trajectories of each system; print JSON."""
    import rebop

    job = json.loads(job)
    out = {}
    for name, system in job["systems"].items():
        gillespie = rebop.Gillespie()
        for rate, reactants, products in system["reactions"]:
            gillespie.add_reaction(rate, reactants, products)
        gillespie.run(system["init"], tmax=system["t_end"], nb_steps=10, rng=0)   # warm
        walls = {}
        for runs in job["runs"]:
            start = time.perf_counter()
            for seed in range(runs):
                gillespie.run(system["init"], tmax=system["t_end"], nb_steps=10, rng=seed)
            walls[str(runs)] = time.perf_counter() - start
        out[name] = walls
    print(json.dumps(out))


def rebop_in_venv(systems: dict, runs: list[int]) -> dict:
    python = VENV / "bin" / "python"
    if not python.exists():
        return {"error": f"no {VENV}: run `python {Path(__file__).name} --setup` first"}
    proc = subprocess.run([str(python), __file__, "--rebop-json",
                           json.dumps({"systems": systems, "runs": runs})],
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def setup() -> None:
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    (VENV / ".gitignore").write_text("*\n")
    subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "rebop"], check=True)
    print(f"rebop installed in {VENV}")


# ------------------------------------------------------------------ the crnlang side
def crnlang_rates(models: dict, runs: list[int]) -> dict:
    from crnlang.dispatch import solve_ssa, solve_tau

    out = {}
    for name, model in models.items():
        solve_ssa(model.with_settings(batch=10, t_end=0.01))                 # warm: compile
        for n in runs:
            for method, solve in (("ssa", solve_ssa), ("tau", solve_tau)):
                start = time.perf_counter()
                result = solve(model.with_settings(batch=n, seed=1))
                out[(name, n, method)] = (time.perf_counter() - start, result.extra["events"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", action="store_true", help="create the venv with rebop")
    parser.add_argument("--runs", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rebop-json", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rebop_json:
        return rebop_main(args.rebop_json)
    if args.setup:
        return setup()
    import torch

    torch.set_num_threads(args.threads)
    models = peer_models()
    mine = crnlang_rates(models, args.runs)
    peer = rebop_in_venv({name: rebop_system(m) for name, m in models.items()}, args.runs)
    print(f"torch threads: {args.threads}; rebop: "
          f"{'one trajectory per call' if 'error' not in peer else peer['error']}")
    print(f"{'model':<20} {'runs':>6} {'events/run':>11} {'ssa ev/s':>10} {'tau ev/s':>10} "
          f"{'rebop ev/s':>11} {'ssa/rebop':>10} {'tau/rebop':>10}")
    for name in models:
        for n in args.runs:
            ssa_wall, events = mine[(name, n, "ssa")]
            tau_wall, _ = mine[(name, n, "tau")]
            rebop_wall = peer.get(name, {}).get(str(n)) if "error" not in peer else None
            rebop_rate = events / rebop_wall if rebop_wall else float("nan")
            print(f"{name:<20} {n:>6} {events / n:>11.3g} {events / ssa_wall:>10.3g} "
                  f"{events / tau_wall:>10.3g} {rebop_rate:>11.3g} "
                  f"{events / ssa_wall / rebop_rate:>10.2f} {events / tau_wall / rebop_rate:>10.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
