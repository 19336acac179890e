"""What FSP and SSA share: the save grid, the compiled kernel, the declared bounds."""
from __future__ import annotations

import math

import numpy as np

from ..model.ir import Model, Settings


def save_times(settings: Settings) -> np.ndarray:
    """Saved times: every ``dt * save_every`` from 0, and ``t_end`` itself last.  Shape (T,)."""
    t_end = float(settings.t_end)
    step = float(settings.dt) * max(int(settings.save_every), 1)
    if t_end <= 0:
        return np.zeros(1)
    n = int(math.floor(t_end / step + 1e-9))
    times = np.arange(n + 1) * step
    if t_end - times[-1] > 1e-9 * max(t_end, 1.0):
        return np.append(times, t_end)
    times[-1] = t_end
    return times


def kernel_of(model: Model):
    """The compiled kernel module of ``model`` (see crnlang/runtime/kernel.py)."""
    from .. import compile as compile_model

    return compile_model(model)


def declared_upper(model: Model) -> dict[str, int]:
    """Species -> declared finite upper bound (the truncation, not a conservation-law bound)."""
    return {s.name: s.hi for s in model.species if s.hi is not None}
