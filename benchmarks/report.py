"""The reproduction report: every example as shipped, beside exact or simulated truth.

    python benchmarks/report.py                       # every row, then docs/results.md
    python benchmarks/report.py --only toggle_switch  # one row again (the others are kept)
    python benchmarks/report.py --list                # the row names

Each row solves one model at its shipped settings in this process (2 torch threads unless
--threads says otherwise) and compares it with a reference of the same truncated model:
exact FSP where crnlang's own `auto` would pick FSP, else an SSA ensemble (REFERENCE_RUNS
runs; for schlogl2d the cached 1e5-run ensemble under tests/data/lattice). Per row: the
method, steps (with substeps) and velocities, wall time, the largest Hellinger distance of a
species' marginal to the reference over the saved times (with where it is), and every
boolean observable at the final time with its standard error beside the reference's.

The `*_methods` rows race adam, ngd and tdvp on the same model, horizon and batch
(time-to-accuracy). Every row writes docs/results/<row>.json and a PNG; docs/results.md is
rebuilt from all the JSON files there, with the machine and the commit, so a row can be
rerun alone. Run it on an otherwise idle machine: rows are timed.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
OUT = REPO / "docs" / "results"
REPORT = REPO / "docs" / "results.md"
REFERENCE_RUNS = 10_000
GRID_SSA = REPO / "tests" / "data" / "lattice" / "schlogl2d_ssa.npz"
RACES = {      # model, horizon, dt, batch, the methods' own settings (adam's 100 epochs per
               # step are the cost: gene expression to t = 20 had not finished in 8 minutes)
    "toggle_switch_methods": ("toggle_switch", 0.1, 0.005, 2000,
                              {"adam": {"epochs": 100}, "ngd": {}, "tdvp": {}}),
    "gene_expression_methods": ("gene_expression", 5.0, 0.1, 1000,
                                {"adam": {"epochs": 100}, "ngd": {}, "tdvp": {}}),
}


def hellinger(p, q) -> float:
    n = max(len(p), len(q))
    p = np.pad(np.clip(np.asarray(p, float), 0, None), (0, n - len(p)))
    q = np.pad(np.clip(np.asarray(q, float), 0, None), (0, n - len(q)))
    return float(np.sqrt(0.5 * ((np.sqrt(p) - np.sqrt(q)) ** 2).sum()))


# ------------------------------------------------------------------ references
def reference(model, times: np.ndarray) -> dict:
    """{"method", "runs", "wall_s", "marginal(name, i)", "prob(name)" -> (p, se)} at ``times``
    (equally spaced from 0): FSP where `auto` would choose it, else SSA."""
    import crnlang
    from crnlang.dispatch import method_choice

    if model.name == "schlogl2d" and GRID_SSA.exists():
        return cached_grid_reference(times)
    method, _ = method_choice(model, crnlang.analyze(model))
    spacing = float(times[1] - times[0])
    tick = time.perf_counter()
    settings = dict(t_end=float(times[-1]), dt=spacing, save_every=1)
    if method == "fsp":
        res = crnlang.solve(model, method="fsp", **settings)
        runs = None
    else:
        runs = REFERENCE_RUNS
        res = crnlang.solve(model, method="ssa", batch=runs, seed=20261201, **settings)
    wall = time.perf_counter() - tick

    def prob(name):
        p = float(res.prob(name)[-1])
        return p, (0.0 if runs is None else (p * (1 - p) / runs) ** 0.5)

    return {"method": method, "runs": runs, "wall_s": wall,
            "marginal": lambda name, i: res.marginal(name, float(res.times[i])), "prob": prob}


def cached_grid_reference(times: np.ndarray) -> dict:
    ref = np.load(GRID_SSA)
    runs = int(ref["runs"])
    index = {str(n): k for k, n in enumerate(ref["species"])}
    rows = [int(np.argmin(np.abs(ref["times"] - t))) for t in times]

    def prob(name):
        p = float(ref[name][-1]) / runs
        return p, (p * (1 - p) / runs) ** 0.5

    return {"method": "ssa (cached, tests/data/lattice)", "runs": runs, "wall_s": None,
            "marginal": lambda name, i: ref["counts"][rows[i], index[name]] / runs, "prob": prob}


# ------------------------------------------------------------------ rows
def compare(name: str, model, result, wall: float, ref: dict | None = None) -> dict:
    """The row of one neural (or other) result against its reference (``reference`` at the
    result's saved times unless given)."""
    times = np.asarray(result.times, float)
    ref = ref or reference(model, times)
    errors = np.array([[hellinger(result.marginal(s, float(t)), ref["marginal"](s, i)) for s in result.species]
                       for i, t in enumerate(times)])
    later = errors[1:] if len(times) > 1 else errors     # t = 0 is the start's fit (below)
    worst = np.unravel_index(int(later.argmax()), later.shape)
    observables = {}
    for obs, series in result.probs.items():
        se = result.stderr.get(f"prob:{obs}")
        observables[obs] = [float(series[-1]), float(se[-1]) if se is not None else 0.0,   # 0: none given
                            *ref["prob"](obs)]
    extra = result.extra or {}
    return {
        "row": name, "model": model.name, "method": result.method,
        "settings": {k: result.settings[k] for k in ("dt", "t_end", "batch", "integrator", "head")
                     if k in (result.settings or {})},
        "steps": extra.get("substeps"), "velocities": extra.get("velocities"), "wall_s": wall,
        "reference": {k: ref[k] for k in ("method", "runs", "wall_s")},
        "max_hellinger": float(later.max()),
        "worst": [result.species[worst[1]], float(times[worst[0] + (len(times) > 1)])],
        "start_hellinger": float(errors[0].max()),
        "hellinger_by_time": errors.max(1).tolist(), "times": times.tolist(), "observables": observables,
    }


def example_row(stem: str) -> dict:
    import crnlang

    model = crnlang.load(EXAMPLES / f"{stem}.crn")
    tick = time.perf_counter()
    result = crnlang.solve(model)
    return compare(stem, model, result, time.perf_counter() - tick)


def race_row(name: str) -> dict:
    import crnlang

    stem, horizon, dt, batch, methods = RACES[name]
    model = crnlang.load(EXAMPLES / f"{stem}.crn")
    save_every = max(1, int(round(horizon / dt / 10)))
    entries, ref = [], None
    for method, own in methods.items():
        tick = time.perf_counter()
        result = crnlang.solve(model, method=method, t_end=horizon, dt=dt, batch=batch,
                               save_every=save_every, **own)
        wall = time.perf_counter() - tick
        ref = ref or reference(model, np.asarray(result.times, float))     # one for the race
        entries.append(compare(f"{name}:{method}", model, result, wall, ref))
    return {"row": name, "model": stem, "race": entries}


def rows() -> list[str]:
    return sorted(p.stem for p in EXAMPLES.glob("*.crn")) + list(RACES)


def run_row(name: str) -> dict:
    return race_row(name) if name in RACES else example_row(name)


# ------------------------------------------------------------------ output
def figure(row: dict) -> str | None:
    """docs/results/<row>.png: the largest marginal Hellinger distance against time."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    entries = row.get("race", [row])
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for entry in entries:
        ax.plot(entry["times"], entry["hellinger_by_time"], marker=".", label=f"{entry['method']}")
    ax.set_xlabel("t")
    ax.set_ylabel("max Hellinger to reference")
    ax.set_title(row["row"])
    ax.legend()
    fig.tight_layout()
    path = OUT / f"{row['row']}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path.name


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    import torch

    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} with "
            f"{torch.get_num_threads()} threads, Python {platform.python_version()}")


def commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return out + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def fmt_p(values, exact: bool) -> str:
    p, se, q, se_q = values
    mine = f"{p:.4g}" + (f" ± {se:.2g}" if se else "")
    return f"{mine} (ref {q:.4g}" + (", exact)" if exact else f" ± {se_q:.2g})")


def table_line(entry: dict) -> str:
    ref = entry["reference"]
    ref_text = ref["method"] + (f", {ref['runs']} runs" if ref["runs"] else "")
    steps = f"{entry['steps']}" + (f" / {entry['velocities']}" if entry.get("velocities") else "")
    exact = ref["method"] == "fsp"
    obs = "; ".join(f"P({k}) {fmt_p(v, exact)}" for k, v in entry["observables"].items()) or "-"
    worst = f"{entry['max_hellinger']:.4f} ({entry['worst'][0]}, t = {entry['worst'][1]:g})"
    return (f"| {entry['row']} | {entry['method']} | {steps} | {entry['wall_s']:.0f} s | {ref_text} | "
            f"{entry.get('start_hellinger', float('nan')):.3f} | {worst} | {obs} |")


def write_report() -> None:
    found = [json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))]
    head = ("| row | method | steps / velocities | wall | reference | Hellinger at t = 0 | "
            "max Hellinger after t = 0 (where) | observables at t_end (SE) |\n|---|---|---|---|---|---|---|---|")
    lines = ["# Results: every example beside exact or simulated truth", "",
             "Written by `python benchmarks/report.py` (rerun one row with `--only NAME`).", ""]
    stamps = sorted({(r["machine"], r["commit"], r["date"]) for r in found})
    for m, c, d in stamps:
        lines.append(f"* {d}: commit {c} on {m}")
    lines += ["", "Hellinger distances are per species marginal, the largest over species. At t = 0 it is",
              "the network's fit of the initial distribution: a smooth head cannot hold a point mass",
              "(docs/solvers.md, smooth heads), so the models that start in one state and use smooth",
              "heads start about 0.2 off; the column after it is the largest over the later saved times.",
              "An SSA reference carries its own noise (about 0.01 for 1e4 runs of a 30-state marginal).",
              "", "## The examples as shipped", "", head]
    lines += [table_line(r) for r in found if "race" not in r]
    lines += ["", "## adam, ngd and tdvp on the same model, horizon and batch", "", head]
    for r in found:
        lines += [table_line(e) for e in r.get("race", [])]
    missing = [name for name in rows() if name not in {r["row"] for r in found}]
    if missing:
        lines += ["", f"Not run yet: {', '.join(missing)} (`python benchmarks/report.py --only NAME`)."]
    lines += ["", "## Figures", ""]
    lines += [f"![{r['row']}](results/{r['figure']})" for r in found if r.get("figure")]
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", help="rows to run (default: all)")
    parser.add_argument("--list", action="store_true", help="print the row names")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(rows()))
        return 0
    import torch

    torch.set_num_threads(args.threads)
    names = args.only or rows()
    unknown = sorted(set(names) - set(rows()))
    if unknown:
        parser.error(f"unknown rows {unknown}; --list names them")
    OUT.mkdir(parents=True, exist_ok=True)
    for name in names:
        print(f"[report] {name} ...", flush=True)
        row = run_row(name)
        row.update(machine=machine(), commit=commit(), date=datetime.date.today().isoformat())
        row["figure"] = figure(row)
        (OUT / f"{name}.json").write_text(json.dumps(row, indent=1, default=str), encoding="utf-8")
        for entry in row.get("race", [row]):
            print(table_line(entry), flush=True)
    write_report()
    print(f"wrote {REPORT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
