"""Runs split over processes with PyTorch's own engine (torch.distributed, started by torchrun).

    torchrun --nproc_per_node=4 -m crnlang solve FILE          # one machine, 4 processes
    srun torchrun --nnodes=$SLURM_NNODES ... -m crnlang solve FILE

torchrun sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT; ``start_from_environment``
joins the process group they describe (gloo for CPU tensors, nccl for CUDA ones). Outside torchrun nothing
here does anything: ``world()`` is (0, 1).

SSA and tau-leaping ensembles: rank r of N simulates the runs ``run_slice(runs)`` gives it;
the compiled SSA engine seeds each run from the solve's seed and the run's index, so the
gathered trajectories are exactly those of one process with the same seed and runs (the
vectorised engine and tau draw from disjoint per-rank streams).

Neural solves (adam, ngd, tdvp) are data-parallel over the batch. Every process draws its
share of the B samples from its own generator stream and the samples (B x L integers) are
gathered, so every process holds the whole batch; the costly per-sample work, the local
rate E(n) or the Euler target with its K neighbours per sample and the score rows of the
linear solve, is done on the process's own rows (``by_rows``) and combined with
collectives: E(n) is gathered (B numbers), the normal equations of ngd/tdvp are summed
(``natgrad.solve_sr_split``), adam's gradients are summed. Every decision (substeps, step
guards, the sampler's phase) is then taken on the same numbers in every process, so all
of them take the identical step; ``check_in_step`` compares the parameters every
CHECK_EVERY steps and stops on a mismatch. With CRNLANG_SAME_SAMPLES=1 every process draws
the whole batch from the shared seed instead (no speed-up in sampling; the result is that
of one process to rounding, for checking).

Only rank 0 writes results, plots and checkpoints (a checkpoint holds every rank's
generator state, so ``--resume`` with the same number of processes continues exactly).
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
        # with a GPU: nccl for tensors on it, gloo for those on the CPU (a --device cpu run
        # on a GPU machine, the small counts and generator states of any run)
        backend = ("cpu:gloo,cuda:nccl" if torch.cuda.is_available() and dist.is_nccl_available()
                   else "gloo")
        dist.init_process_group(backend=backend)
    return True


SAME_SAMPLES_ENV = "CRNLANG_SAME_SAMPLES"
CHECK_EVERY = 50          # steps between the parameter checks of a distributed neural solve


def same_samples() -> bool:
    """True when every process is to draw the whole batch from the shared stream."""
    return os.environ.get(SAME_SAMPLES_ENV, "0") not in ("", "0")


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
    size = world()[1]
    return gather_rows(rows, [hi - lo for lo, hi in (run_slice_of(r, size, runs) for r in range(size))])


def total(value: int) -> int:
    """The sum of an integer over all ranks."""
    if world()[1] == 1:
        return int(value)
    tensor = torch.tensor([int(value)], dtype=torch.int64)
    torch.distributed.all_reduce(tensor)
    return int(tensor.item())


def row_slice(n: int) -> slice:
    """This process's rows of a batch of n (``run_slice_of``)."""
    lo, hi = run_slice(n)
    return slice(lo, hi)


def draw_split(propose, net, n: int, generator):
    """propose(net, n, generator) -> (n, L) samples; in a distributed run each process
    proposes its share from its own stream and all of them get the gathered whole (with
    ``same_samples()`` every process proposes the whole batch from the shared stream)."""
    if world()[1] == 1 or same_samples():
        return propose(net, n, generator)
    lo, hi = run_slice(n)
    return gather_runs(propose(net, hi - lo, generator), n)


def by_rows(fn, x: torch.Tensor, *rows: torch.Tensor | None, **kwargs) -> torch.Tensor:
    """fn(x, *rows, **kwargs) -> (B, ...) per-sample values of the (B, L) samples x, each
    process computing its own rows (``row_slice``) and all receiving the gathered whole.
    ``rows``: further (B, ...) arguments sliced with x (None passes through)."""
    if world()[1] == 1:
        return fn(x, *rows, **kwargs)
    part = row_slice(x.shape[0])
    mine = fn(x[part], *[r if r is None else r[part] for r in rows], **kwargs)
    return gather_runs(mine.cpu(), x.shape[0]).to(mine.device)


def gather_rows(rows: torch.Tensor, sizes: list[int] | None = None) -> torch.Tensor:
    """Every process's (n_r, ...) rows concatenated in rank order, on every process.
    ``sizes``: every process's n_r when known (``gather_runs``); else they are gathered first."""
    size = world()[1]
    if size == 1:
        return rows
    dist = torch.distributed
    if sizes is None:
        counts = [torch.zeros(1, dtype=torch.int64) for _ in range(size)]
        dist.all_gather(counts, torch.tensor([rows.shape[0]], dtype=torch.int64))
        sizes = [int(c) for c in counts]
    padded = rows.new_zeros((max(sizes),) + tuple(rows.shape[1:]))
    padded[:rows.shape[0]] = rows
    parts = [torch.empty_like(padded) for _ in range(size)]
    dist.all_gather(parts, padded)
    return torch.cat([part[:n] for part, n in zip(parts, sizes)])


def sum_over_processes(tensor: torch.Tensor) -> torch.Tensor:
    """The elementwise sum of ``tensor`` over all processes (in place; returned)."""
    if world()[1] > 1:
        torch.distributed.all_reduce(tensor)
    return tensor


def check_in_step(theta: torch.Tensor, step: int) -> None:
    """Stop with a clear error when the processes' parameters (P,) differ (a distributed
    neural solve must take the identical step everywhere)."""
    rank, size = world()
    if size == 1:
        return
    from .errors import CRNSolverError

    t = theta.detach().to(torch.float64).cpu()
    mine = torch.stack([t.sum(), (t * torch.arange(1, t.numel() + 1, dtype=torch.float64)).sum(),
                        (t * t).sum()])
    parts = [torch.empty_like(mine) for _ in range(size)]
    torch.distributed.all_gather(parts, mine)
    if any(not torch.equal(part, parts[0]) for part in parts[1:]):
        apart = max(float((part - parts[0]).abs().max()) for part in parts[1:])
        raise CRNSolverError(
            f"the processes of this distributed run disagree on the network's parameters at "
            f"step {step} (checksums differ by {apart:.3g}): they no longer take the same step",
            hint="rerun with one process, or report it with the torch and crnlang versions; "
                 "a nondeterministic operation on the device is the likely cause")


def gather_states(state: torch.Tensor) -> list[torch.Tensor]:
    """Every process's generator state (uint8 tensors of equal length), in rank order, each
    in storage of its own (Generator.set_state of a row view of the gathered whole crashed)."""
    return [row.clone() for row in gather_rows(state.unsqueeze(0))]
