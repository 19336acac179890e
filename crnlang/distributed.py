"""Runs split over processes with PyTorch's own engine (torch.distributed, started by torchrun).

    torchrun --nproc_per_node=4 -m crnlang solve FILE          # one machine, 4 processes
    srun torchrun --nnodes=$SLURM_NNODES ... -m crnlang solve FILE

torchrun sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT; ``start_from_environment``
joins the process group they describe (gloo on CPU, nccl on CUDA). Outside torchrun nothing
here does anything: ``world()`` is (0, 1).

What is split today: SSA and tau-leaping ensembles. Rank r of N simulates the runs
``run_slice(runs)`` gives it; the compiled SSA engine seeds each run from the solve's seed
and the run's index, so the gathered trajectories are exactly those of one process with
the same seed and runs (the vectorised engine and tau draw from disjoint per-rank streams).
Only rank 0 writes results and prints.
"""
from __future__ import annotations

import os

import torch


def world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) when no process group is running."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """True on the process that writes results (rank 0, or the only process)."""
    return world()[0] == 0


def start_from_environment() -> bool:
    """Join the process group torchrun describes (WORLD_SIZE > 1); True when joined."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    dist = torch.distributed
    if not dist.is_available():
        raise RuntimeError("this torch build has no torch.distributed")
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
        dist.init_process_group(backend=backend)
    return True


def stop() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def run_slice(runs: int) -> tuple[int, int]:
    """The runs [lo, hi) this rank simulates: contiguous, in rank order, sizes within one."""
    return run_slice_of(*world(), runs)


def run_slice_of(rank: int, size: int, runs: int) -> tuple[int, int]:
    per, extra = divmod(int(runs), size)
    lo = rank * per + min(rank, extra)
    return lo, lo + per + (1 if rank < extra else 0)


def take_share(x: torch.Tensor, runs: int, gen: torch.Generator, seed: int):
    """This rank's rows of the (runs, L) initial states x, and the index of its first run;
    ``gen`` is reseeded to this rank's own stream (disjoint from every other rank's)."""
    rank = world()[0]
    lo, hi = run_slice(runs)
    gen.manual_seed(int(seed) + 1_000_003 * rank)
    return x[lo:hi], lo


def gather_runs(rows: torch.Tensor, runs: int) -> torch.Tensor:
    """Every rank's (n_r, ...) rows of ``run_slice`` -> the (runs, ...) whole, on every rank."""
    rank, size = world()
    if size == 1:
        return rows
    dist = torch.distributed
    widest = -(-int(runs) // size)
    padded = torch.zeros((widest,) + tuple(rows.shape[1:]), dtype=rows.dtype)
    padded[:rows.shape[0]] = rows
    parts = [torch.empty_like(padded) for _ in range(size)]
    dist.all_gather(parts, padded)
    pieces = []
    for r, part in enumerate(parts):
        lo, hi = run_slice_of(r, size, runs)
        pieces.append(part[:hi - lo])
    return torch.cat(pieces)


def total(value: int) -> int:
    """The sum of an integer over all ranks."""
    if world()[1] == 1:
        return int(value)
    tensor = torch.tensor([int(value)], dtype=torch.int64)
    torch.distributed.all_reduce(tensor)
    return int(tensor.item())
