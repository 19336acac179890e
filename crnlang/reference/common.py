"""What FSP and SSA share: the save grid, the compiled kernel, the declared bounds."""
from __future__ import annotations

import numpy as np

from ..model.ir import Model, Settings


def save_times(settings: Settings) -> np.ndarray:
    """Saved times, the neural solver's grid (runtime.solver.save_steps): t = 0, then every
    ``save_every`` steps of ``dt`` and the last step, n = round(t_end / dt) steps in all; the
    last time is set to ``t_end`` exactly when n * dt equals it up to rounding.  Shape (T,)."""
    dt, t_end = float(settings.dt), float(settings.t_end)
    n_steps = max(1, int(round(t_end / dt)))
    steps = list(range(0, n_steps + 1, max(int(settings.save_every), 1)))
    if steps[-1] != n_steps:
        steps.append(n_steps)
    times = np.array(steps, dtype=np.float64) * dt
    if abs(times[-1] - t_end) <= 1e-9 * max(t_end, 1.0):
        times[-1] = t_end
    return times


def kernel_of(model: Model):
    """The compiled kernel module of ``model`` (see crnlang/runtime/kernel.py)."""
    from .. import compile as compile_model

    return compile_model(model)


def declared_upper(model: Model) -> dict[str, int]:
    """Species -> declared finite upper bound (the truncation, not a conservation-law bound)."""
    return {s.name: s.hi for s in model.species if s.hi is not None}
