"""Lattice kernels: reaction groups (one line per reaction template over a block of sites)
against the per-reaction code (one line per reaction and site), side by side in one process.

    python benchmarks/bench_lattice_kernels.py [--batch 2000] [--repeats 30] [--device cpu]
        [--shapes "grid(3, 3)" "grid(8, 8)"]

For the Schlögl model of examples/schlogl2d.crn on each lattice it prints, for both
generators: the module's lines and kilobytes, the time to generate and import it, and the
best-of-N time of the kernel calls a neural step makes per velocity on B states
(``shifted`` (the CME's in-flux), ``out_rates``, ``observables``). The two kernels' outputs
are checked equal before timing.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

import crnlang
from crnlang.codegen.emit import emit
from crnlang.codegen.loader import load_kernel

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_propensities import best_time  # noqa: E402
SHAPES = ("chain(2)", "grid(3, 3)", "grid(4, 4)", "grid(8, 8)")


def schlogl_on(shape: str) -> crnlang.Model:
    text = (REPO / "examples" / "schlogl2d.crn").read_text(encoding="utf-8")
    return crnlang.parse(text.replace("grid(3, 3)", shape))


def calls(kernel, x):
    """The kernel calls of one velocity: in-flux, out-flux, observables."""
    return lambda: (kernel.shifted(x, 0.0), kernel.out_rates(x, 0.0), kernel.observables(x, 0.0))


def same_outputs(a, b, x) -> bool:
    (pa, ia), (pb, ib) = a.shifted(x, 0.0), b.shifted(x, 0.0)
    oa, ob = a.observables(x, 0.0), b.observables(x, 0.0)
    return (torch.equal(pa, pb) and torch.equal(ia, ib)
            and torch.equal(a.out_rates(x, 0.0), b.out_rates(x, 0.0))
            and all(torch.equal(oa[k], ob[k]) for k in oa))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES))
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"Schlögl kernels, B = {args.batch}, {device}, {torch.get_num_threads()} threads; "
          "per velocity = shifted + out_rates + observables (best of "
          f"{args.repeats})")
    print(f"{'lattice':>10} {'K':>4} | {'generator':>12} {'lines':>6} {'kB':>6} {'emit+import s':>13}"
          f" {'per velocity ms':>15}")
    warm = schlogl_on("chain(2)")
    emit(warm, crnlang.analyze(warm))                # the template's first load, not timed
    with tempfile.TemporaryDirectory() as cache:
        for shape in args.shapes:
            model = schlogl_on(shape)
            analysis = crnlang.analyze(model)
            kernels, rows = {}, []
            for label, grouped in (("groups", True), ("per reaction", False)):
                start = time.perf_counter()
                source = emit(model, analysis, grouped=grouped)
                kernels[label] = load_kernel(source, cache)
                build = time.perf_counter() - start
                rows.append((label, source.count("\n"), len(source) / 1e3, build))
            gen = torch.Generator().manual_seed(0)
            x = torch.randint(0, 85, (args.batch, len(kernels["groups"].SPECIES)), generator=gen)
            x = x.to(torch.float64).to(device)
            if not same_outputs(kernels["groups"], kernels["per reaction"], x):
                raise SystemExit(f"{shape}: the two kernels disagree")
            times = {label: best_time(calls(k, x), args.repeats, device) for label, k in kernels.items()}
            for label, lines, kb, build in rows:
                print(f"{shape:>10} {len(model.reactions):>4} | {label:>12} {lines:>6} {kb:>6.1f}"
                      f" {build:>13.3f} {times[label] * 1e3:>15.2f}")
            print(f"{'':>10} {'':>4} | per-reaction / groups: "
                  f"{times['per reaction'] / times['groups']:.2f}x per velocity")


if __name__ == "__main__":
    main()
