"""The one place the pipeline runs: merge settings, analyze once, compile once with that
analysis, pick the method, and hand ``(kernel, settings)`` to a backend.

    model --analyze--> Analysis --emit--> kernel source --load--> kernel module
          --preflight--> every propensity a solve can meet is finite and >= 0
          --> reference.fsp.solve_fsp_kernel | reference.ssa.solve_ssa_kernel
              | reference.tau.solve_tau_kernel | runtime.solver.run_neural
                (kernel, settings) -> Result

The backends (``runtime/``, ``reference/``) see only the kernel and the settings; the
model-level entry points (``solve_fsp``, ``solve_ssa``, ``solve_tau``, ``simulate``,
``solve_neural``)
live here. The kernel cache folder is the caller's (``cache_dir=``), else
``default_cache_dir()``: $CRNLANG_CACHE or ~/.cache/crnlang.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import replace
from pathlib import Path

from .errors import CRNError
from .model.ir import Model, Settings
from .model.settings import check_setting
from .preflight import check_propensities
from .progress import reporting
from .result import first_passage
from .vocabulary import METHODS, SIMULATION_METHODS
from .vocabulary import NEURAL_METHODS as NEURAL

FSP_AUTO_MAX_LOG10_STATES = 6.3     # `auto` never picks FSP above ~2 million box states
FSP_AUTO_MAX_WORK = 2e11            # ... nor when states * reactions * max rate * t_end exceeds this
MAX_STEPS = 1e9                     # t_end / dt
MAX_SAVES = 100_000                 # saved times: each holds every species' marginal

_ALIASES = {"lambda": "lam"}


def settings_with(model: Model, method: str | None, overrides: dict) -> Settings:
    """The model's settings updated by ``method`` and keyword overrides (validated names)."""
    known = set(Settings.__dataclass_fields__)
    changes = {}
    for key, value in overrides.items():
        key = _ALIASES.get(key, key)
        if key not in known:
            from .errors import did_you_mean

            raise CRNError(f"unknown solver setting '{key}'",
                           hint=did_you_mean(key, known) or f"valid settings: {', '.join(sorted(known))}")
        changes[key] = check_setting(key, value)
    if method is not None:
        changes["method"] = check_setting("method", method)
    settings = model.settings.updated(**changes)
    if settings.method not in METHODS:
        raise CRNError(f"unknown method '{settings.method}'", hint=f"use one of {', '.join(METHODS)}")
    if "rare" in changes:
        check_rare_names(model, settings.rare)
    check_time_grid(settings)
    return settings


def check_time_grid(settings: Settings) -> None:
    """t_end / dt steps and the saved times they make stay within what a run can hold."""
    steps = float(settings.t_end) / float(settings.dt)
    if not math.isfinite(steps) or steps > MAX_STEPS:
        raise CRNError(f"t_end / dt = {settings.t_end:g} / {settings.dt:g} = {steps:.3g} steps, "
                       f"more than {MAX_STEPS:.0e}", hint="raise dt or lower t_end")
    saves = steps / max(int(settings.save_every), 1)
    if saves > MAX_SAVES:
        every = math.ceil(steps / MAX_SAVES)
        raise CRNError(f"{saves:.3g} saved times (t_end / dt / save_every), more than {MAX_SAVES:,}",
                       hint=f"raise save_every to at least {every:,}")


def check_rare_names(model: Model, names) -> None:
    """Every name given to ``rare`` is a boolean observable of the model."""
    from .errors import did_you_mean

    conditions = [o.name for o in model.observables if o.boolean]
    for name in names:
        if name not in conditions:
            numeric = any(o.name == name for o in model.observables)
            raise CRNError(
                f"rare: '{name}' is {'a numeric observable' if numeric else 'not an observable'}"
                " of the model; rare names boolean observables",
                hint=did_you_mean(name, conditions)
                or (f"one of: {', '.join(conditions)}" if conditions
                    else "define one with `observe NAME = CONDITION`"))


# ---------------------------------------------------------------- analyze, emit, compile
def default_cache_dir() -> Path:
    """Where compiled kernels are kept: $CRNLANG_CACHE, or ~/.cache/crnlang."""
    root = os.environ.get("CRNLANG_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "crnlang"


def analyze(model: Model, count_reachable: bool = False):
    """The model's ``Analysis`` (the reachable-state search only when asked)."""
    from .analysis.analyze import analyze as _analyze

    return _analyze(model, count_reachable=count_reachable)


def emit(model: Model, analysis=None) -> str:
    """The generated kernel module of ``model``, as Python source."""
    from .codegen.emit import emit as _emit

    return _emit(model, analyze(model) if analysis is None else analysis)


def compile(model: Model, analysis=None, cache_dir=None):  # noqa: A001 - the public name
    """The generated kernel module of ``model``, imported (cached by source hash and version
    under ``cache_dir``, default ``default_cache_dir()``)."""
    from .codegen.loader import load_kernel

    return load_kernel(emit(model, analysis), default_cache_dir() if cache_dir is None else cache_dir)


# ---------------------------------------------------------------- the model-level backends
def solve_fsp(model: Model, max_states: int | None = None, kernel=None, progress=None):
    """Exact FSP of ``model`` with ``model.settings`` (see ``reference.fsp``)."""
    from .reference.fsp import solve_fsp_kernel

    return solve_fsp_kernel(compile(model) if kernel is None else kernel, model.settings,
                            max_states, progress)


def solve_ssa(model: Model, kernel=None, progress=None, device="cpu"):
    """``settings.batch`` SSA runs of ``model`` (see ``reference.ssa``)."""
    from .reference.ssa import solve_ssa_kernel

    return solve_ssa_kernel(compile(model) if kernel is None else kernel, model.settings,
                            device=str(device), progress=progress)


def solve_tau(model: Model, kernel=None, progress=None, device="cpu"):
    """``settings.batch`` tau-leaping runs of ``model`` (see ``reference.tau``)."""
    from .reference.tau import solve_tau_kernel

    return solve_tau_kernel(compile(model) if kernel is None else kernel, model.settings,
                            device=str(device), progress=progress)


def simulate(model: Model, runs: int | None = None, seed: int | None = None,
             device: str = "cpu", kernel=None):
    """Raw SSA trajectories of ``model``: (runs, T, L_full) int64 at the save grid."""
    from .reference.ssa import simulate_kernel

    return simulate_kernel(compile(model) if kernel is None else kernel, model.settings, runs, seed, device)


def solve_neural(model: Model, checkpoint_dir=None, resume: bool = False, progress=False,
                 kernel=None, device="cpu"):
    """The neural solve of ``model`` with its settings' method (see ``runtime.solver``)."""
    from .runtime.solver import run_neural

    return run_neural(compile(model) if kernel is None else kernel, model.settings, checkpoint_dir=checkpoint_dir,
                      resume=resume, progress=progress, device=device)


def device_for(method: str, device) -> str:
    """Where ``method`` runs for ``device`` (cpu, cuda, cuda:N or auto): FSP always on the
    CPU (scipy); ``auto`` is the GPU, when torch sees one, for the neural methods and
    tau-leaping, and the CPU for SSA, whose compiled engine runs there."""
    from .runtime.devices import resolve_device

    if method == "fsp" or (method == "ssa" and str(device or "auto") == "auto"):
        return "cpu"
    return str(resolve_device(device))


# ---------------------------------------------------------------- the method
def choose_method(model: Model, analysis, kernel=None) -> str:
    """``auto``: exact FSP when it is cheap, else TDVP; SSA when some species is unbounded
    (``method_choice`` gives the reason too)."""
    return method_choice(model, analysis, kernel)[0]


def method_choice(model: Model, analysis, kernel=None) -> tuple[str, str]:
    """``auto``'s method and the reason, in words.

    FSP's cost (uniformisation or Krylov) grows like states x reactions x (largest exit
    rate x t_end): a 3-site Schlögl box has only 6e5 states but exit rates near 1.5e5, so FSP
    would take half an hour there while the 2-site one takes seconds.
    """
    unbounded = analysis.unbounded()
    if unbounded:
        return "ssa", f"species {unbounded[0]} has no upper bound, so only simulation applies"
    if analysis.log10_reduced is None or analysis.log10_reduced > FSP_AUTO_MAX_LOG10_STATES:
        box = "" if analysis.log10_reduced is None else f" (1e{analysis.log10_reduced:.1f} states)"
        return "tdvp", (f"the box{box} is larger than FSP's 1e{FSP_AUTO_MAX_LOG10_STATES} states")
    kernel = compile(model, analysis) if kernel is None else kernel
    states = 10 ** analysis.log10_reduced
    work = (states * max(len(model.reactions), 1)
            * max_exit_rate(kernel, model.settings.t_end) * model.settings.t_end)
    if work <= FSP_AUTO_MAX_WORK:
        return "fsp", (f"the box has {states:.3g} states and the FSP work estimate, {work:.2g}, "
                       f"is below {FSP_AUTO_MAX_WORK:.0e}: exact in seconds to minutes")
    return "tdvp", (f"the FSP work estimate (states x reactions x largest exit rate x t_end) is "
                    f"{work:.2g}, above {FSP_AUTO_MAX_WORK:.0e}")


# the settings each method reads (beyond method itself); the others are reported as ignored
READS = {"fsp": {"t_end", "dt", "save_every"},
         "ssa": {"t_end", "dt", "save_every", "batch", "seed"},
         "tau": {"t_end", "dt", "save_every", "batch", "seed", "epsilon"}}


def ignored_settings(settings: Settings, method: str) -> list[str]:
    """The settings given (different from their defaults) that ``method`` does not read."""
    if method in NEURAL:
        reads = set(Settings.__dataclass_fields__) - {"epsilon"}
    else:
        reads = READS[method]
    default = Settings()
    return [("lambda" if name == "lam" else name) for name in Settings.__dataclass_fields__
            if name != "method" and name not in reads
            and getattr(settings, name) != getattr(default, name)]


def max_exit_rate(kernel, t: float, samples: int = 4096) -> float:
    """An estimate of the largest total out-rate over the box at time ``t``: random box
    states plus the all-low and all-high corners, through the compiled kernel."""
    import torch

    lo = torch.tensor(kernel.LOWER, dtype=torch.float64)
    hi = torch.tensor(kernel.UPPER, dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    states = lo + torch.floor(torch.rand(samples, len(lo), generator=generator, dtype=torch.float64)
                              * (hi - lo + 1))
    states = torch.cat([states, lo[None], hi[None]]).to(torch.int64)
    rates = kernel.out_rates(states, t)
    return float(rates.sum(dim=1).max()) if rates.numel() else 0.0


def require_bounded(model: Model, analysis, method: str) -> None:
    """FSP and the neural methods need a finite box: name the first unbounded species, at
    its declaration."""
    unbounded = analysis.unbounded()
    if not unbounded:
        return
    from .errors import CRNAnalysisError

    name = unbounded[0]
    species = model.species_by_name(name)
    others = f" (also: {', '.join(unbounded[1:])})" if len(unbounded) > 1 else ""
    raise CRNAnalysisError(
        f"species '{name}' has no upper bound, and method {method} needs one for every "
        f"species{others}", species.loc,
        hint=f"declare a truncation, e.g. `species {species.base or name} <= 100`, "
             "or use method = ssa")


def _as_model(model) -> Model:
    if isinstance(model, Model):
        return model
    from .model.lower import load, parse

    if isinstance(model, os.PathLike) or (isinstance(model, str) and model.endswith(".crn")
                                          and "\n" not in model):
        return load(model)
    if isinstance(model, str):
        return parse(model)
    raise TypeError(f"expected a Model, .crn text or a path, got {type(model).__name__}")


def require_splittable(method: str) -> None:
    """Under torchrun, SSA and tau ensembles are split by runs and the neural methods by
    samples (``crnlang.distributed``); refuse the rest (FSP) before N processes each do the
    whole work."""
    from . import distributed
    from .errors import CRNSolverError

    size = distributed.world()[1]
    if size > 1 and method not in SIMULATION_METHODS and method not in NEURAL:
        raise CRNSolverError(
            f"a distributed run ({size} processes under torchrun) splits SSA and tau-leaping "
            f"ensembles and the neural methods; method {method} runs in one process",
            hint="start it without torchrun, or use --method ssa or a neural method")


def solve(model, method: str | None = None, params: dict | None = None, *,
          checkpoint_dir=None, resume: bool = False, progress: bool = False, cache_dir=None,
          device: str = "auto", **overrides):
    """See ``crnlang.solve``. ``checkpoint_dir``/``resume``/``progress`` apply to the neural
    methods (a killed run continues from its last checkpoint with ``resume=True``);
    ``cache_dir``: where the compiled kernel is kept (default ``default_cache_dir()``);
    ``device``: cpu, cuda, cuda:N or auto (``device_for``)."""
    model = _as_model(model)
    if params:
        from .model.params import with_params

        model = with_params(model, params)
    settings = settings_with(model, method, overrides)
    model = replace(model, settings=settings)
    if not model.species:
        from .errors import CRNAnalysisError

        raise CRNAnalysisError("nothing to solve: the model declares no species",
                               hint="declare species and reactions, e.g. `species X <= 10` and `0 -> X @ 1`")
    analysis = analyze(model)
    kernel = compile(model, analysis, cache_dir)
    rate_warnings = check_propensities(model, kernel, settings.t_end)
    chosen = settings.method
    auto_choice = None
    if chosen == "auto":
        auto_choice = method_choice(model, analysis, kernel)
        chosen, reason = auto_choice[0], f"auto chose {auto_choice[0]}: {auto_choice[1]}"
        model = model.with_settings(method=chosen)
    else:
        reason = (f"{chosen}: asked for by the caller" if method is not None
                  else f"{chosen}: from the file's @solve")
    if chosen not in SIMULATION_METHODS:
        require_bounded(model, analysis, chosen)
    require_splittable(chosen)
    where = device_for(chosen, device)
    start = time.perf_counter()
    unit = {"fsp": "saved times", "ssa": "events", "tau": "events"}.get(chosen, "steps")
    with reporting(progress, chosen, settings.t_end, unit) as reporter:
        if chosen == "fsp":
            result = solve_fsp(model, kernel=kernel, progress=reporter)
        elif chosen == "ssa":
            result = solve_ssa(model, kernel=kernel, progress=reporter, device=where)
        elif chosen == "tau":
            result = solve_tau(model, kernel=kernel, progress=reporter, device=where)
        else:
            result = solve_neural(model, checkpoint_dir=checkpoint_dir, resume=resume,
                                  progress=reporter, kernel=kernel, device=where)
    result.warnings.extend(rate_warnings)
    result.extra["method_reason"] = reason
    result.extra["device"] = where
    ignored = ignored_settings(settings, chosen)
    if ignored:
        result.extra["ignored_settings"] = ignored
    for name in kernel.ABSORBING:
        result.extra.setdefault("first_passage", {})[name] = first_passage(
            result.times, result.probs[name], result.stderr.get(f"prob:{name}"))
    # was exact FSP the cheaper answer? (auto has already said; otherwise ask once)
    if chosen in NEURAL and (auto_choice or method_choice(model, analysis, kernel))[0] == "fsp":
        result.warnings.append(
            f"this model fits exact FSP ({10 ** analysis.log10_reduced:.3g} box states): "
            "`--method fsp` gives the exact answer to check this neural one against")
    if not result.wall_seconds:
        result.wall_seconds = time.perf_counter() - start
    grid_end = float(result.times[-1]) if len(result.times) else 0.0
    if abs(grid_end - settings.t_end) > 1e-9 * max(1.0, settings.t_end):
        result.warnings.append(f"t_end = {settings.t_end:g} is not a whole number of steps of dt = "
                               f"{settings.dt:g}: the last saved time is {grid_end:g}")
    return result
