"""The save grid, written once: which steps of ``dt`` every method saves at.

n = round(t_end / dt) steps in all; saved are t = 0, every ``save_every`` steps, and the
last step. FSP, SSA and the neural solver save at exactly these times."""
from __future__ import annotations

import numpy as np

from .ir import Settings


def save_steps(settings: Settings) -> list[int]:
    """Step numbers of the saved times after t = 0 (the last one is the final step n)."""
    n_steps = max(1, int(round(float(settings.t_end) / float(settings.dt))))
    every = max(int(settings.save_every), 1)
    steps = list(range(every, n_steps + 1, every))
    if not steps or steps[-1] != n_steps:
        steps.append(n_steps)
    return steps


def save_times(settings: Settings) -> np.ndarray:
    """The saved times, t = 0 first, shape (T,): ``save_steps`` times ``dt``, the last one set
    to ``t_end`` exactly when n * dt equals it up to rounding."""
    dt, t_end = float(settings.dt), float(settings.t_end)
    times = np.array([0] + save_steps(settings), dtype=np.float64) * dt
    if abs(times[-1] - t_end) <= 1e-9 * max(t_end, 1.0):
        times[-1] = t_end
    return times
