"""The neural CME solver: ``run_neural(kernel, settings) -> Result`` (methods adam, ngd, tdvp).

    kernel                                          # the model's generated module (dispatch)
    net    = make_network(...)                      # P_theta over the reduced species
    t = 0:  P_theta := the initial distribution (1 - spread) P0 + spread * uniform, checked
    every step: adam / ngd epochs towards T P_t, or a tdvp integrator step
    every save_every steps: a Snapshot (exact over the box when it is small), and a checkpoint
                            when CHECKPOINT_SECONDS have passed since the last (always at the end)

``settings`` are the model's, already merged with the caller's overrides; ``dispatch``
compiles the model and calls ``run_neural``.
"""
from __future__ import annotations

import math
import time

import torch

from .. import distributed
from ..errors import CRNAnalysisError, CRNSolverError, did_you_mean
from ..model.grid import save_steps
from ..progress import as_progress, is_started
from ..result import Result
from ..vocabulary import INTEGRATORS, STEP_CONTROLLED
from ..vocabulary import NEURAL_METHODS as METHODS
from .checkpoint import load_checkpoint, save_checkpoint
from .devices import resolve_device
from .guards import deferred, flush
from .estimates import Estimator, Snapshot, stack_snapshots
from .optimizers import ADAM_LR, adam_epochs, fit_initial, ngd_epochs, ngd_reach, substeps_needed
from .implicit import IMPLICIT_TOL, ImplicitStepper, implicit_step
from .rare import rare_estimate
from .sampling import Sampler, SpreadingStart
from .stepping import TDVP, RKCControl, StepPlace, adaptive_step, fixed_step, get_theta

DEFAULT_EPOCHS = {"adam": 100, "ngd": 5, "tdvp": 1}
DEFAULT_LAMBDA = {"adam": 1e-3, "ngd": 1e-5, "tdvp": 1e-5}
CHECKPOINT_SECONDS = 5.0  # a checkpoint at a save at most this often (and at the last save)
INIT_SPREAD = 1e-5       # mass of the initial distribution spread uniformly over the box
ADAPTIVE_TOL = 1e-2      # weighted rms change of log P per step (heun vs euler) allowed by "adaptive"
                         # (3e-2 lets the toggle switch drift to Hellinger 0.04 by t = 4; 1e-2: 0.009)
INIT_KL_WARN = 1e-2
EDGE_WARN = 1e-3
OUTSIDE_WARN = 0.5       # network mass outside the model's support (wasted samples) worth a warning
DTYPES = {"float32": torch.float32, "float64": torch.float64}


class RunInterrupted(Exception):
    """Raised by ``run_neural(stop_after_saves=N)``: a stand-in for a killed run (tests)."""


def check_network_memory(lower, upper, settings) -> None:
    """Refuse a box whose network would not fit in memory, before building it: the
    parameters and one batch of logits, B x L x M_max numbers (M_max the most values of any
    species), against half of this machine's memory."""
    import os

    width = max((u - l + 1 for l, u in zip(lower, upper)), default=1)
    itemsize = 4 if settings.dtype == "float32" else 8
    numbers = len(lower) * width * (2 * settings.hidden + settings.batch)
    need = numbers * itemsize
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 16 * 2 ** 30
    if need > memory / 2:
        widest = max(range(len(lower)), key=lambda i: upper[i] - lower[i])
        raise CRNSolverError(
            f"the neural network for this box needs about {need / 2 ** 30:,.1f} GiB ({len(lower)} "
            f"species with up to {width:,} values each, batch {settings.batch:,}), more than half "
            f"of this machine's {memory / 2 ** 30:,.0f} GiB",
            hint="lower the species' upper bounds (the widest spans "
                 f"{lower[widest]}..{upper[widest]}), or use ssa or tau, which need no bounds")


def check_resumable(saved: dict, now: dict, step: int) -> None:
    """A checkpoint continues only under its own settings, except a later ``t_end`` (the run
    goes on past the old end); otherwise a CRNSolverError names each setting that differs."""
    differ = [k for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)]
    if not differ:
        return
    if differ == ["t_end"] and float(now["t_end"]) >= step * float(now["dt"]) * (1 - 1e-12):
        return
    shown = ", ".join(f"{k} = {saved.get(k)!r} in the checkpoint, {now.get(k)!r} now"
                      for k in differ)
    raise CRNSolverError(f"the checkpoint was written with other settings: {shown}",
                         hint="resume with the checkpoint's settings (only t_end may grow), or "
                              "start afresh without --resume")


def check_splittable(settings, processes: int) -> None:
    """Refuse what a distributed neural solve cannot split (CRNSolverError)."""
    if settings.integrator == "implicit":
        raise CRNSolverError("integrator = implicit runs in one process only (its error estimate "
                             "draws samples of its own in every process)",
                             hint="use integrator = rkc, heun or adaptive under torchrun, or run one process")
    if int(settings.batch) < processes:
        raise CRNSolverError(f"batch = {settings.batch} is smaller than the {processes} processes",
                             hint=f"use a batch of at least {processes} (ideally thousands per process)")


def check_same_device(saved: str, device: torch.device) -> None:
    """A checkpoint continues on the kind of device it was written on (a CPU and a CUDA
    generator keep different states)."""
    if saved != device.type:
        raise CRNSolverError(f"the checkpoint was written by a run on {saved}, this run is on {device.type}",
                             hint=f"resume with --device {saved}, or start afresh without --resume")


def rank_generator_state(state: dict, rank: int, processes: int) -> torch.Tensor:
    """This process's generator state from a checkpoint (one per rank in a distributed one)."""
    saved = int(state.get("processes", 1))
    if saved != processes:
        raise CRNSolverError(f"the checkpoint was written by {saved} process(es), this run has {processes}",
                             hint=f"resume with {saved} process(es) (torchrun --nproc_per_node={saved}), "
                                  "or start afresh without --resume")
    return state["rng_by_rank"][rank] if "rng_by_rank" in state else state["rng"]


def species_classes(kernel) -> list[str]:
    """The declared species of each state-vector species ("X" for every X[i, j]): the
    species a ``shared`` network gives one output head."""
    base = getattr(kernel.MODEL, "species_base", None) or {}
    return [base.get(name, name) for name in kernel.SPECIES]


def check_bounded(kernel) -> None:
    """Refuse a reduced species without an upper bound (CRNAnalysisError naming it)."""
    for name, hi in zip(kernel.SPECIES, kernel.UPPER):
        if hi is None:
            raise CRNAnalysisError(
                f"species '{name}' has no upper bound; the neural solvers need a bounded box",
                hint=f"declare a bound, e.g. `species {name} <= 100`")


def _solver_settings(settings) -> None:
    if settings.method not in METHODS:
        raise CRNSolverError(f"'{settings.method}' is not a neural method",
                             hint=did_you_mean(settings.method, METHODS) or f"use one of {', '.join(METHODS)}")
    if settings.integrator not in INTEGRATORS:
        raise CRNSolverError(f"unknown integrator '{settings.integrator}'",
                             hint=did_you_mean(settings.integrator, INTEGRATORS)
                             or f"use one of {', '.join(INTEGRATORS)}")
    if settings.dtype not in DTYPES:
        raise CRNSolverError(f"unknown dtype '{settings.dtype}'", hint="use float32 or float64")
    if not (settings.dt > 0 and settings.t_end > 0):
        raise CRNSolverError("dt and t_end must be positive", hint="e.g. dt = 1e-3, t_end = 10")
    if settings.batch < 2 or settings.save_every < 1:
        raise CRNSolverError("batch must be at least 2 and save_every at least 1")


def starts_at_one_state(kernel) -> bool:
    """True when the initial distribution is a point mass (every species fixed)."""
    support = kernel.init_support()
    if support is not None:
        return len(support) == 1
    draws = kernel.init_sample(256, torch.Generator().manual_seed(0))
    return bool((draws == draws[:1]).all())


def resolve_defaults(settings, kernel):
    """The settings left to the solver, made explicit (so ``Result.settings`` says what ran).

    ``lam = None``: the method's DEFAULT_LAMBDA. TDVP's least-squares fit of the CME's motion
    wants little damping (1e-3 visibly slows the toggle switch's relaxation; 1e-5 follows it),
    and so do ngd's epochs: each closes only s / (s + lam) of the move along a direction
    whose Fisher eigenvalue is s, so a large lam leaves the weakly determined part of every
    step undone (toggle switch to t = 1, lr = 1, 5 epochs: Hellinger 0.033 of FSP at 1e-3,
    0.013 at 1e-5). (adam does not use lam.)
    ``sampling = auto`` stays ``auto`` from a single-state start (``make_sampler``: plain
    samples would all be that state, the centred scores vanish and nothing moves), and is
    ``plain`` otherwise.
    """
    if settings.lam is None:
        settings = settings.updated(lam=DEFAULT_LAMBDA[settings.method])
    if settings.sampling == "auto" and not starts_at_one_state(kernel):
        settings = settings.updated(sampling="plain")
    return settings


def make_sampler(settings):
    """The step's proposal: ``SpreadingStart`` for ``auto`` (a single-state start), else the
    named one."""
    if settings.sampling == "auto":
        return SpreadingStart(alpha=float(settings.alpha))
    return Sampler.from_settings(settings)


def run_neural(kernel, settings, *, checkpoint_dir=None, resume: bool = False,
               progress=False, init_spread: float = INIT_SPREAD,
               tol: float | None = None, log_euler: bool = False, solver: str = "auto",
               stop_after_saves: int | None = None, keep_v: float = 0.0,
               device="cpu") -> Result:
    """The neural solve of a kernel module (see the module docstring).

    ``progress``: a ``crnlang.progress.Progress`` (or True/False for a default/silent one).
    ``tol``: the local error per step of the step-controlled integrators (None: ADAPTIVE_TOL
    for adaptive, IMPLICIT_TOL for implicit). ``log_euler``: the tdvp euler step uses the reference's values log(1 + dt E)/dt instead
    of E. ``solver``: the linear solve of ngd/tdvp (natgrad.solve_sr: auto, cholesky,
    structured, cg). ``stop_after_saves``: raise RunInterrupted after that many saves in
    this call (stands in for a killed run in tests). The edge mass is watched on the
    kernel's DECLARED_UPPER (a bound that a conservation law implies is no truncation).
    ``device``: cpu, cuda, cuda:N or auto (``devices.resolve_device``): the network, the
    samples and the kernel's arithmetic run there; the network starts from the same
    parameters on every device (initialised on the CPU), the samples' generator lives on
    the device. Inside the step loop the host reads the device only where a decision needs
    a value (``guards``: the checks are read with those values).
    """
    from .natgrad import FLOAT32_REFACTORED, solve_sr as _solve_sr, solve_sr_split
    from .networks import make_network

    wall_start = time.perf_counter()
    FLOAT32_REFACTORED["count"] = 0
    _solver_settings(settings)
    check_bounded(kernel)
    rank, processes = distributed.world()
    if processes > 1:
        check_splittable(settings, processes)
    method, dtype = settings.method, DTYPES[settings.dtype]
    device = resolve_device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)   # (nccl's collectives and the caching allocator use it)
    lower, upper = [int(v) for v in kernel.LOWER], [int(v) for v in kernel.UPPER]
    check_network_memory(lower, upper, settings)
    generator = torch.Generator().manual_seed(int(settings.seed))
    with torch.device("cpu"):           # the same initial parameters on every device
        net = make_network(settings.network, lower, upper, hidden=settings.hidden,
                           layers=settings.layers, dtype=dtype, generator=generator,
                           head=settings.head, classes=species_classes(kernel))
    net = net.to(device)
    if device.type != "cpu":            # the samples' stream, where the samples are drawn
        generator = torch.Generator(device=device).manual_seed(int(settings.seed))
    settings = resolve_defaults(settings, kernel)
    sampler = make_sampler(settings)
    epochs = settings.epochs if settings.epochs is not None else DEFAULT_EPOCHS[method]
    lr = settings.lr
    if method == "adam" and lr == 1.0:       # the shared default suits ngd/tdvp, not Adam
        lr = ADAM_LR
    reach = ngd_reach(lr, epochs) if method == "ngd" else 1.0     # ngd aims each target at dt / reach
    optimizer = torch.optim.Adam(net.parameters(), lr=lr) if method == "adam" else None

    def solve_sr(net_, x, w, values, lam):
        if processes > 1:
            return solve_sr_split(net_, x, w, values, lam)
        return _solve_sr(net_, x, w, values, lam, solver=solver)

    tdvp = TDVP(kernel, sampler, solve_sr, settings.batch, settings.lam,
                log_euler=log_euler and settings.integrator == "euler")
    if tol is None:
        tol = IMPLICIT_TOL if settings.integrator == "implicit" else ADAPTIVE_TOL
    implicit = ImplicitStepper(tol)
    rkc = RKCControl()
    edge_upper = [kernel.DECLARED_UPPER.get(name) for name in kernel.SPECIES]
    estimator = Estimator(kernel, lower, upper, edge_upper=edge_upper,
                          generator=torch.Generator(device=device).manual_seed(int(settings.seed) + 1))
    targets = save_steps(settings)
    dt = settings.dt

    state = load_checkpoint(checkpoint_dir) if (checkpoint_dir is not None and resume) else None
    if state is not None:
        check_resumable(state["settings"], settings.to_dict(), state["step"])
        check_same_device(state.get("device", "cpu"), device)
        net.load_state_dict(state["net"])
        if optimizer is not None:
            optimizer.load_state_dict(state["optimizer"])
        generator.set_state(rank_generator_state(state, rank, processes))
        estimator.generator.set_state(state["estimator_rng"])
        step, t, h = state["step"], state["t"], state["h"]
        if isinstance(sampler, SpreadingStart):
            sampler.spread = state["extra"].get("spread_at") is not None
        snapshots = [Snapshot.from_state(s) for s in state["snapshots"]]
        extra = state["extra"]
        rkc.load_state(state.get("rkc", {}))
    else:
        extra = fit_initial(net, kernel, lower, upper, init_spread, generator, keep_v)
        extra.update({"losses": [], "substeps": 0, "method": method, "step_seconds": 0.0})
        step, t, h = 0, 0.0, dt
        snapshots = [estimator.snapshot(net, 0.0)]
        if processes > 1 and not distributed.same_samples():    # each process its own samples
            generator.manual_seed(int(settings.seed) + 1_000_003 * (rank + 1))

    velocities_before = extra.get("velocities", 0)

    last_checkpoint = [-math.inf]

    def checkpoint(force: bool = True) -> None:
        """Write the checkpoint; with ``force=False`` only CHECKPOINT_SECONDS after the last."""
        extra["velocities"] = velocities_before + tdvp.evaluations
        if processes > 1:
            distributed.check_in_step(get_theta(net), step)
        if checkpoint_dir is None or (not force and processes == 1
                                      and time.perf_counter() - last_checkpoint[0] < CHECKPOINT_SECONDS):
            return      # (a distributed run writes at every save: the processes decide alike)
        last_checkpoint[0] = time.perf_counter()
        states = distributed.gather_states(generator.get_state())
        if not distributed.is_main():
            return
        save_checkpoint(checkpoint_dir, {
            "settings": settings.to_dict(), "net": net.state_dict(),
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "rng": states[0], "rng_by_rank": states, "processes": processes,
            "estimator_rng": estimator.generator.get_state(),
            "step": step, "t": t, "h": h, "snapshots": [s.to_state() for s in snapshots],
            "extra": extra, "rkc": rkc.to_state(), "device": device.type})

    if state is None:
        checkpoint()
    owned = not is_started(progress)                   # started here: closed here
    reporter = as_progress(progress, method, settings.t_end, "steps")
    saves_this_call = 0
    losses: list = []                       # this save's losses (adam/ngd), tensors
    with deferred():                        # the checks of a step are read with its decisions
        for target in targets:
            if target <= step:
                continue
            t_target = target * dt
            if settings.integrator in STEP_CONTROLLED and method == "tdvp":
                while t < t_target * (1 - 1e-12):
                    tick = time.perf_counter()
                    place = StepPlace(step, t, h, settings.lam, settings.dtype)
                    h_try = min(h, t_target - t)
                    if settings.integrator == "implicit":
                        taken, h_next = implicit_step(implicit, tdvp, net, t, h_try, settings.t_end,
                                                      generator, place)
                    else:
                        taken, h_next = adaptive_step(tdvp, net, t, h_try, settings.t_end, tol, generator, place)
                    extra.setdefault("adaptive_steps", []).append((t, taken))
                    t = t_target if taken >= t_target - t else t + taken
                    h = max(h_next, h) if h_try < h and taken == h_try else h_next
                    extra["substeps"] += 1
                    extra["step_seconds"] += time.perf_counter() - tick
                step = target
                reporter.update(t, extra["substeps"])
            else:
                while step < target:
                    tick = time.perf_counter()
                    t = step * dt
                    place = StepPlace(step, t, dt, settings.lam, settings.dtype)
                    if method == "tdvp":
                        h, substeps = fixed_step(tdvp, net, t, dt, h, settings.integrator, generator,
                                                 place, rkc)
                        extra["substeps"] += substeps - 1
                    else:
                        n_sub = substeps_needed(net, kernel, sampler, t, dt / reach, settings.batch, generator)
                        h_sub = dt / n_sub
                        for k in range(n_sub):
                            if method == "ngd":
                                loss = ngd_epochs(net, solve_sr, kernel, sampler, t + k * h_sub, h_sub / reach,
                                                  settings.batch, epochs, lr, settings.lam, generator, place)
                            else:
                                loss = adam_epochs(net, optimizer, kernel, sampler, t + k * h_sub, h_sub,
                                                   settings.batch, epochs, generator, place)
                        losses.append(loss)             # (read at the save: no host read per step)
                        extra["substeps"] += n_sub - 1
                    step += 1
                    extra["substeps"] += 1
                    extra["step_seconds"] += time.perf_counter() - tick
                    if processes > 1 and step % distributed.CHECK_EVERY == 0:
                        distributed.check_in_step(get_theta(net), step)
                    reporter.update(step * dt, step)
                t = step * dt
            if getattr(sampler, "spread", False) and extra.get("spread_at") is None:
                extra["spread_at"] = t          # (to the save after the switch)
            flush()                             # every queued check, before anything is saved
            if losses:
                extra["losses"].extend(torch.stack(losses).tolist())
                losses.clear()
                reporter.update(t, step, loss=extra["losses"][-1])
            snapshots.append(estimator.snapshot(net, t))
            extra["outside_mass"] = max(extra.get("outside_mass", 0.0), estimator.outside_mass)
            saves_this_call += 1
            stopping = stop_after_saves is not None and saves_this_call >= stop_after_saves
            checkpoint(force=stopping or target == targets[-1])
            if stopping and target != targets[-1]:
                if owned:
                    reporter.close()
                raise RunInterrupted(f"stopped after {saves_this_call} saves at step {step}")
    if owned:
        reporter.close()

    extra["velocities"] = velocities_before + tdvp.evaluations
    extra["float32_refactored"] = FLOAT32_REFACTORED["count"]
    if processes > 1:
        extra.update(processes=processes, same_samples=distributed.same_samples())
    if settings.integrator == "rkc" and rkc.rho is not None:
        extra["rkc"] = {"spectral_radius": rkc.rho, "most_stages": rkc.most_stages,
                        "estimates": rkc.estimates, "refreshes": rkc.refreshes}
    if settings.rare:
        extra["rare"] = _rare_events(net, kernel, settings, t, device)
    return _result(kernel, settings, snapshots, extra, net, init_spread,
                   time.perf_counter() - wall_start)


def _rare_events(net, kernel, settings, t: float, device) -> dict:
    out = {}
    booleans = {n for n, b in zip(kernel.OBSERVABLES, kernel.BOOLEAN) if b}
    for name in settings.rare:
        if name not in booleans:
            raise CRNSolverError(f"@rare({name}): no boolean observable named '{name}'",
                                 hint=did_you_mean(name, booleans) or "declare it with `observe NAME = CONDITION`")
        gen = torch.Generator(device=device).manual_seed(int(settings.seed) + 2)
        out[name] = rare_estimate(net, kernel, name, t, settings.alpha, generator=gen)
    return out


def _result(kernel, settings, snapshots, extra, net, init_spread, wall) -> Result:
    series = stack_snapshots(snapshots)
    warnings = []
    if extra.get("init_point_mass", False) and settings.sampling == "plain" and settings.reweight:
        warnings.append("the initial distribution is (nearly) a single state and sampling is plain: "
                        "samples of P_theta cannot see the states the mass flows into; use "
                        "the default @sampling(auto)")
    if extra.get("init_kl", 0.0) > INIT_KL_WARN:
        kl = extra["init_kl"]
        warnings.append(f"head = smooth cannot hold a point-mass start exactly: it is fitted as closely "
                        f"as the basis allows (KL {kl:.3g}); the difference decays with the "
                        "distribution's relaxation. Use @network(head = onehot) for an exact start"
                        if getattr(net, "smooth", False) else
                        f"the network fits the initial distribution only to KL {kl:.3g}")
    if extra.get("float32_refactored", 0):
        warnings.append(f"{extra['float32_refactored']} float32 Gram matrices were not positive definite "
                        "(float32 rounding against a small lambda) and were factored again in float64: "
                        "float32 is too coarse for this model (on the 3x3 Schlögl grid it went wrong); "
                        "use dtype = float64")
    if extra.get("outside_mass", 0.0) > OUTSIDE_WARN:
        warnings.append(f"up to {extra['outside_mass']:.3g} of the network's mass sat outside the model's "
                        "support (box states that break a conservation law's bounds): the figures are "
                        "conditioned on the support, but most samples were wasted")
    edge = float(series["edge_mass"].max())
    if edge > EDGE_WARN:
        warnings.append(f"up to {edge:.3g} of the probability sits on the edge of the box: "
                        "raise the species bounds")
    extra = dict(extra, n_parameters=sum(p.numel() for p in net.parameters()))
    return Result(method=settings.method, model_name=kernel.NAME, times=series["times"],
                  species=tuple(kernel.ALL_SPECIES), means=series["means"],
                  variances=series["variances"], marginals=series["marginals"],
                  probs=series["probs"], stderr=series["stderr"], edge_mass=series["edge_mass"],
                  settings=settings.to_dict(), wall_seconds=wall, warnings=warnings, extra=extra)
