"""A neural solve split over processes (torchrun) beside the same solve in one process.

    python benchmarks/bench_distributed.py                  # toggle switch, tdvp, t = 0..0.02
    python benchmarks/bench_distributed.py --model examples/schlogl2d.crn --t-end 2e-4

Both runs use the machine's cores: one process with --threads C, against N processes with
--threads C / N each (gloo). Prints the wall time of each run, the solver's own step
seconds (from summary.json), their ratio, and the largest difference of a site's mean
between the two (they draw different samples, so it is statistical, not zero).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(model: Path, out: Path, processes: int, threads: int, settings: list[str]) -> tuple[float, dict]:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                 f"--nproc_per_node={processes}", "-m"] if processes > 1 else [sys.executable, "-m"])
    command = launcher + ["crnlang", "solve", str(model), "--no-plots", "-q", "--threads",
                          str(threads), "--out", str(out)] + settings
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    tick = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - tick
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return wall, json.loads((out / "summary.json").read_text())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(REPO / "examples" / "toggle_switch.crn"))
    parser.add_argument("--t-end", type=float, default=0.02)
    parser.add_argument("--batch", type=int, default=4000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args(argv)
    settings = ["--set", f"solve.t_end={args.t_end}", "--set", f"solve.batch={args.batch}",
                "--set", "solve.save_every=1000000"]
    model = Path(args.model)
    with tempfile.TemporaryDirectory() as scratch:
        one_wall, one = run(model, Path(scratch) / "one", 1, args.cores, settings)
        many_wall, many = run(model, Path(scratch) / "many", args.processes,
                              max(1, args.cores // args.processes), settings)
    gap = max(abs(one["mean"][k][-1] - many["mean"][k][-1]) for k in one["mean"])
    print(f"{model.name}: tdvp to t = {args.t_end:g}, batch {args.batch}, {args.cores} cores")
    for name, wall, summary in (("1 process", one_wall, one), (f"{args.processes} processes", many_wall, many)):
        extra = summary.get("extra", {})
        print(f"  {name:<12} wall {wall:7.1f} s   steps+substeps {extra.get('substeps')}, "
              f"step seconds {extra.get('step_seconds', float('nan')):7.1f}")
    print(f"  speed-up of the steps: {one['extra']['step_seconds'] / many['extra']['step_seconds']:.2f}x"
          f"   (largest difference of a mean: {gap:.3g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
