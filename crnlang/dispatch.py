"""``crnlang.solve``: merge settings, pick the method, dispatch to a backend."""
from __future__ import annotations

import os
import time
from dataclasses import replace

from .errors import CRNError
from .model.ir import Model, Settings
from .model.settings import check_setting
from .vocabulary import METHODS
from .vocabulary import NEURAL_METHODS as NEURAL

FSP_AUTO_MAX_LOG10_STATES = 6.3     # `auto` never picks FSP above ~2 million box states
FSP_AUTO_MAX_WORK = 2e11            # ... nor when states * reactions * max rate * t_end exceeds this

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
    return settings


def choose_method(model: Model, analysis) -> str:
    """``auto``: exact FSP when it is cheap, else TDVP; SSA when some species is unbounded.

    FSP's cost (uniformisation or Krylov) grows like states x reactions x (largest exit
    rate x t_end): a 3-site Schlögl box has only 6e5 states but exit rates near 1.5e5, so FSP
    would take half an hour there while the 2-site one takes seconds.
    """
    if analysis.unbounded():
        return "ssa"
    if analysis.log10_reduced is None or analysis.log10_reduced > FSP_AUTO_MAX_LOG10_STATES:
        return "tdvp"
    work = (10 ** analysis.log10_reduced * max(len(model.reactions), 1)
            * max_exit_rate(model) * model.settings.t_end)
    return "fsp" if work <= FSP_AUTO_MAX_WORK else "tdvp"


def max_exit_rate(model: Model, samples: int = 4096) -> float:
    """An estimate of the largest total out-rate over the box: random box states plus the
    all-low and all-high corners, through the compiled kernel."""
    import torch

    from .codegen.emit import compile_model

    kernel = compile_model(model)
    lo = torch.tensor(kernel.LOWER, dtype=torch.float64)
    hi = torch.tensor(kernel.UPPER, dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    states = lo + torch.floor(torch.rand(samples, len(lo), generator=generator, dtype=torch.float64)
                              * (hi - lo + 1))
    states = torch.cat([states, lo[None], hi[None]]).to(torch.int64)
    rates = kernel.out_rates(states, model.settings.t_end)
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
    from . import load, parse

    if isinstance(model, os.PathLike) or (isinstance(model, str) and model.endswith(".crn")
                                          and "\n" not in model):
        return load(model)
    if isinstance(model, str):
        return parse(model)
    raise TypeError(f"expected a Model, .crn text or a path, got {type(model).__name__}")


def solve(model, method: str | None = None, params: dict | None = None, *,
          checkpoint_dir=None, resume: bool = False, progress: bool = False, **overrides):
    """See ``crnlang.solve``. ``checkpoint_dir``/``resume``/``progress`` apply to the neural
    methods (a killed run continues from its last checkpoint with ``resume=True``)."""
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
    chosen = settings.method
    if chosen != "ssa":
        from .analysis.analyze import analyze

        analysis = analyze(model, count_reachable=False)
        if chosen == "auto":
            chosen = choose_method(model, analysis)
            model = model.with_settings(method=chosen)
        if chosen != "ssa":
            require_bounded(model, analysis, chosen)
    start = time.perf_counter()
    if chosen == "fsp":
        from .reference.fsp import solve_fsp

        result = solve_fsp(model)
    elif chosen == "ssa":
        from .reference.ssa import solve_ssa

        result = solve_ssa(model)
    else:
        from .runtime.solver import solve_neural

        result = solve_neural(model, checkpoint_dir=checkpoint_dir, resume=resume,
                              progress=progress)
    if not result.wall_seconds:
        result.wall_seconds = time.perf_counter() - start
    grid_end = float(result.times[-1]) if len(result.times) else 0.0
    if abs(grid_end - settings.t_end) > 1e-9 * max(1.0, settings.t_end):
        result.warnings.append(f"t_end = {settings.t_end:g} is not a whole number of steps of dt = "
                               f"{settings.dt:g}: the last saved time is {grid_end:g}")
    return result
