"""Propensity throughput on 1e5 states of the 3x3 Schlögl grid (examples/schlogl2d.crn):
the generated kernel vs a generic dense evaluation (rate_k * prod_i x_i ** s_ik over all
reactions and species, as a reference implementation without code generation would do).

    python benchmarks/bench_propensities.py [--states 100000] [--repeats 20] [--device cpu]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import crnlang

REPO = Path(__file__).resolve().parents[1]


def dense_inputs(model, kernel):
    """(K,) folded rates and (K, L) reactant stoichiometry of a plain mass-action model."""
    index = {name: i for i, name in enumerate(kernel.SPECIES)}
    values = model.param_values
    rates = torch.tensor([values[r.rate.name] for r in model.reactions], dtype=torch.float64)
    stoich = torch.zeros((len(model.reactions), len(kernel.SPECIES)), dtype=torch.float64)
    for k, r in enumerate(model.reactions):
        for name, s in r.reactants:
            stoich[k, index[name]] = s
    return rates, stoich


def dense_propensities(x, rates, stoich):
    """(B, L) -> (B, K): the generic evaluation, power kinetics."""
    xf = x.to(torch.float64)
    return rates * torch.prod(xf[:, None, :] ** stoich[None], dim=-1)


def best_time(fn, repeats, device):
    fn()                                             # warm-up
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    model = crnlang.load(REPO / "examples" / "schlogl2d.crn")
    kernel = crnlang.compile(model)
    assert model.kinetics == "power" and not kernel.ELIMINATED
    rates, stoich = (t.to(device) for t in dense_inputs(model, kernel))
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 85, (args.states, len(kernel.SPECIES)), generator=gen).to(device)

    generated = kernel.propensities(x, 0.0)
    dense = dense_propensities(x, rates, stoich)
    torch.testing.assert_close(generated, dense, rtol=1e-12, atol=0)   # the same numbers

    t_gen = best_time(lambda: kernel.propensities(x, 0.0), args.repeats, device)
    t_dense = best_time(lambda: dense_propensities(x, rates, stoich), args.repeats, device)
    t_out = best_time(lambda: kernel.out_rates(x, 0.0), args.repeats, device)
    t_shift = best_time(lambda: kernel.shifted(x, 0.0), max(3, args.repeats // 4), device)
    K = len(kernel.REACTIONS)
    print(f"schlogl2d 3x3: {args.states} states, {len(kernel.SPECIES)} species, {K} reactions, "
          f"device {device}, torch threads {torch.get_num_threads()}")
    print(f"generated propensities : {t_gen * 1e3:8.2f} ms  "
          f"({args.states / t_gen / 1e6:7.2f} M states/s)")
    print(f"generic dense          : {t_dense * 1e3:8.2f} ms  "
          f"({args.states / t_dense / 1e6:7.2f} M states/s)")
    print(f"speed-up (dense / generated): {t_dense / t_gen:.2f}x")
    print(f"out_rates (with support rule): {t_out * 1e3:8.2f} ms;  "
          f"shifted (B*K in-fluxes): {t_shift * 1e3:8.2f} ms")


if __name__ == "__main__":
    main()
