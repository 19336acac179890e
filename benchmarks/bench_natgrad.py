"""Natural-gradient linear algebra on a toggle-switch-sized NADE (METHOD.md, "Where the time goes").

NADE H = 16 over L = 4 species with M = 80 outcomes each (P = 5520), B = 2000 samples, fitted
first to a bimodal toggle-like distribution so that the Gram matrix is as ill-conditioned as
in a real run. Prints one table: seconds (best of --repeat) per operation, float64 and float32 ("merged":
repeated samples merged first, as solve_sr does by default; "all rows": merge=False).
"mixed" builds and factors the Gram in float32 and refines once in float64; its baseline is
"structured" (all float64) in the same column.

    python benchmarks/bench_natgrad.py [--threads N] [--repeat R] [--batch B]
"""
from __future__ import annotations

import argparse
import time

import torch

from crnlang.runtime import natgrad as ng
from crnlang.runtime.networks import make_network

L, M, H = 4, 80, 16
LAM = 1e-3


# the toggle switch's change vectors on (Gx, Gy, Px, Py): synthesis, decay, binding, unbinding
TOGGLE_CHANGES = torch.tensor([[0, 0, 1, 0], [0, 0, 0, 1], [0, 0, -1, 0], [0, 0, 0, -1],
                               [0, -1, -2, 0], [0, 1, 2, 0], [-1, 0, 0, -2], [1, 0, 0, 2]])


def toggle_like_samples(n: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 4) draws of a bimodal distribution: genes on/off, one protein high, one low."""
    high = torch.rand(n, generator=generator) < 0.5
    gx = (torch.rand(n, generator=generator) < torch.where(high, 0.9, 0.2)).long()
    gy = (torch.rand(n, generator=generator) < torch.where(high, 0.2, 0.9)).long()
    rate_x = torch.where(high, 45.0, 4.0)
    rate_y = torch.where(high, 4.0, 45.0)
    px = torch.poisson(rate_x, generator=generator).long().clamp(max=M - 1)
    py = torch.poisson(rate_y, generator=generator).long().clamp(max=M - 1)
    return torch.stack([gx, gy, px, py], dim=1)


def fitted_network(dtype: torch.dtype, steps: int = 300) -> ng.NADE:
    """A NADE trained by maximum likelihood on toggle-like samples (deterministic)."""
    g = torch.Generator().manual_seed(0)
    net = make_network("nade", [0] * L, [M - 1] * L, hidden=H, dtype=torch.float64, generator=g)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(steps):
        x = toggle_like_samples(2000, g)
        loss = -net.log_prob(x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.to(dtype)


def best_of(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def rows_for(dtype: torch.dtype, batch: int, repeat: int) -> dict[str, float]:
    net = fitted_network(dtype)
    g = torch.Generator().manual_seed(1)
    x = net.sample(batch, generator=g)
    # a TDVP-like right-hand side: a smooth function of the state plus noise
    values = (0.02 * x[:, 2] - 0.02 * x[:, 3] + 0.1 * torch.randn(batch, generator=g, dtype=torch.float64))
    values = values.to(dtype)
    O = ng.score_matrix(net, x)
    scores = ng.NadeScores.of(net, x)
    shifted = x[:, None, :] - TOGGLE_CHANGES                        # (B, 8, 4) neighbours
    out = {}
    with torch.no_grad():
        out["sample B"] = best_of(lambda: net.sample(batch, generator=g), repeat)
        out["log_prob of B x 8 neighbours (flat)"] = best_of(
            lambda: net.log_prob(shifted.reshape(-1, L)), repeat)
        out["log_prob_shifted (prefix reuse + merge)"] = best_of(
            lambda: net.log_prob_shifted(x, shifted), repeat)
    out |= {
        "score_matrix (generic vmap)": best_of(lambda: ng.score_matrix(net, x), max(1, repeat // 2)),
        "NADE factors (NadeScores.of)": best_of(lambda: ng.NadeScores.of(net, x), repeat),
        "NADE dense scores": best_of(lambda: scores.dense(), repeat),
        "generic Gram O O^T": best_of(lambda: O @ O.t(), repeat),
        "structured Gram (full)": best_of(lambda: scores.gram(), repeat),
        "structured Gram (lower)": best_of(lambda: scores.gram(lower_only=True), repeat),
        "Cholesky B x B": best_of(lambda: torch.linalg.cholesky_ex(_spd(scores)), repeat),
    }
    out["unique samples (rows after merging)"] = float(torch.unique(x, dim=0).shape[0])
    for solver in ("cholesky", "structured", "mixed", "cg"):
        out[f"solve_sr {solver}, all rows"] = best_of(
            lambda: ng.solve_sr(net, x, None, values, LAM, solver, merge=False), repeat)
    for solver in ("cholesky", "structured", "mixed", "cg", "auto"):
        out[f"solve_sr {solver}, merged"] = best_of(
            lambda: ng.solve_sr(net, x, None, values, LAM, solver), repeat)
    ref = ng.solve_sr(net.double(), x, None, values.double(), LAM, "cholesky")
    net.to(dtype)
    for solver in ("structured", "mixed", "cg"):
        got = ng.solve_sr(net, x, None, values, LAM, solver).double()
        out[f"rel. error {solver} vs f64 cholesky"] = float((got - ref).norm() / ref.norm())
    return out


def _spd(scores):
    G = scores.gram()
    G.diagonal().add_(LAM + G.diagonal().mean())
    return G


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    table = {str(dt).replace("torch.", ""): rows_for(dt, args.batch, args.repeat)
             for dt in (torch.float64, torch.float32)}
    names = list(next(iter(table.values())))
    print(f"NADE H={H} L={L} M={M} P={H * (L + 1 + L * M) + L * M} B={args.batch} "
          f"lambda={LAM} threads={torch.get_num_threads()}")
    print(f"{'operation':40s} " + " ".join(f"{k:>10s}" for k in table))
    for name in names:
        fmt = "10.1e" if name.startswith("rel.") else "10.0f" if name.startswith("unique") else "10.4f"
        print(f"{name:40s} " + " ".join(f"{table[k][name]:{fmt}}" for k in table))


if __name__ == "__main__":
    main()
