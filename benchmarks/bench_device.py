"""The device path: host reads per step, float32 against float64, and the GPU when there is one.

    python benchmarks/bench_device.py                       # host reads + float32 on the CPU
    python benchmarks/bench_device.py --part reads
    python benchmarks/bench_device.py --part precision --t-end 0.5
    python benchmarks/bench_device.py --part gpu            # on a machine with a CUDA GPU

* reads: the host reads of device values (``devices.HostReads``: each one a GPU
  synchronisation) per fixed step of every neural method on the toggle switch, from the
  difference of a 10-step and a 20-step run, with the lines that make them. The baseline is
  the count before the checks were deferred (commit d8cd94a, measured the same way): tdvp
  euler 75.7 per step, heun 118.6, rkc 137.2, ngd 478.7.
* precision: the toggle switch with the file's settings (tdvp, euler, dt = 0.005, B = 2000)
  in float32 beside float64: seconds per step and the largest Hellinger distance of a
  species' marginal to FSP; and seconds per velocity evaluation of the 3x3 Schlögl grid
  (its file's settings, dt = 0.001, to t = 0.002) with the largest difference of a site's mean.
* gpu: the 3x3, 4x4 and 8x8 Schlögl grids to t = 0.01 at the shipped settings on the GPU
  beside the CPU (s per velocity evaluation, and t = 1 projected at the ~2000 velocities
  the 3x3 grid's run takes), and SSA
  events per second for 10^5 runs of the 3x3 grid on the GPU.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import crnlang  # noqa: E402
from crnlang.runtime.devices import HostReads  # noqa: E402
from report import hellinger  # noqa: E402

TOGGLE = REPO / "examples" / "toggle_switch.crn"


def reads_per_step(method: str, integrator: str, dt: float = 0.005, batch: int = 500) -> tuple[float, dict]:
    """Host reads per fixed step (and per site) between step 10 and step 20."""
    counts = []
    for steps in (10, 20):
        extra = {"epochs": 5} if method == "adam" else {}
        with HostReads() as reads:
            crnlang.solve(TOGGLE, method=method, integrator=integrator, dt=dt, t_end=steps * dt,
                          save_every=steps, batch=batch, device="cpu", **extra)
        counts.append(reads.sites)
    sites = {k: (counts[1][k] - counts[0].get(k, 0)) / 10 for k in counts[1]}
    sites = {k: v for k, v in sites.items() if v}
    return sum(sites.values()), sites


def part_reads() -> None:
    print("host reads of device values per fixed step (toggle switch, B = 500, dt = 0.005)")
    baseline = {("tdvp", "euler"): 75.7, ("tdvp", "heun"): 118.6, ("tdvp", "rkc"): 137.2,
                ("ngd", "euler"): 478.7}
    for method, integrator in (("tdvp", "euler"), ("tdvp", "heun"), ("tdvp", "rkc"),
                               ("ngd", "euler"), ("adam", "euler")):
        total, sites = reads_per_step(method, integrator)
        before = baseline.get((method, integrator))
        print(f"  {method:<4} {integrator:<6} {total:7.1f} per step"
              + (f"   (before the deferred checks: {before:.1f})" if before else ""))
        for site, count in sorted(sites.items(), key=lambda kv: -kv[1])[:6]:
            print(f"        {count:6.1f}  {site}")


def timed_solve(model, device: str, **settings):
    tick = time.perf_counter()
    result = crnlang.solve(model, device=device, **settings)
    return result, time.perf_counter() - tick


def part_precision(t_end: float) -> None:
    model = crnlang.load(TOGGLE)
    exact = crnlang.solve(model, method="fsp", t_end=t_end, save_every=10)
    print(f"toggle switch, the file's settings (tdvp, euler, dt = 0.005, B = 2000) to t = {t_end:g}")
    for dtype in ("float64", "float32"):
        result, wall = timed_solve(model, "cpu", t_end=t_end, save_every=10, dtype=dtype)
        steps = result.extra["substeps"]
        worst = max(hellinger(result.marginals[s][i], exact.marginals[s][i])
                    for s in result.species for i in range(len(result.times)))
        print(f"  {dtype}: {result.extra['step_seconds'] / steps * 1e3:7.1f} ms per step "
              f"({steps} steps+substeps, wall {wall:.1f} s), max Hellinger to FSP {worst:.4f}")
    grid = crnlang.load(REPO / "examples" / "schlogl2d.crn")
    print("3x3 Schlögl grid, the file's settings (tdvp, rkc, B = 2000) with dt = 0.001 to t = 0.002")
    means = {}
    for dtype in ("float64", "float32"):
        result, wall = timed_solve(grid, "cpu", t_end=0.002, dt=0.001, save_every=1, dtype=dtype, rare=[])
        steps, velocities = result.extra["substeps"], result.extra["velocities"]
        means[dtype] = np.array([v[-1] for v in result.means.values()])
        print(f"  {dtype}: {result.extra['step_seconds'] / velocities * 1e3:7.1f} ms per velocity "
              f"({steps} steps+substeps, {velocities} velocities, wall {wall:.1f} s)")
    print(f"  largest difference of a site's mean at t = 0.002: "
          f"{np.abs(means['float32'] - means['float64']).max():.3g}")


def part_gpu() -> None:
    if not torch.cuda.is_available():
        print("no CUDA GPU here: the gpu part needs one")
        return
    print(f"GPU: {torch.cuda.get_device_name(0)}")
    for sites in (3, 4, 8):
        text = (REPO / "examples" / "schlogl2d.crn").read_text()
        text = text.replace("lattice grid(3, 3)", f"lattice grid({sites}, {sites})")
        model = crnlang.parse(text)
        for device in ("cpu", "cuda"):
            for dtype in ("float64", "float32"):
                result, wall = timed_solve(model, device, t_end=0.01, save_every=1, dtype=dtype, rare=[])
                steps, velocities = result.extra["substeps"], result.extra["velocities"]
                per = result.extra["step_seconds"] / velocities
                print(f"  {sites}x{sites} {device:<4} {dtype}: {per * 1e3:8.1f} ms per velocity "
                      f"({steps} steps+substeps, {velocities} velocities, wall {wall:.1f} s); "
                      f"t = 1 at ~2000 velocities: {2000 * per / 60:6.1f} min")
            if device == "cpu" and sites == 8:
                break
    grid = crnlang.load(REPO / "examples" / "schlogl2d.crn")
    tick = time.perf_counter()
    result = crnlang.solve(grid, method="ssa", batch=100_000, t_end=0.05, device="cuda")
    wall = time.perf_counter() - tick
    print(f"  SSA 3x3, 1e5 runs to t = 0.05 on the GPU: {result.extra['events'] / wall:,.0f} events/s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("reads", "precision", "gpu", "all"), default="all")
    parser.add_argument("--t-end", type=float, default=0.2)
    args = parser.parse_args(argv)
    if args.part in ("reads", "all"):
        part_reads()
    if args.part in ("precision", "all"):
        part_precision(args.t_end)
    if args.part in ("gpu", "all"):
        part_gpu()
    return 0


if __name__ == "__main__":
    sys.exit(main())
