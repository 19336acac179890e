"""How far a run is, for every method: a tqdm bar on a terminal; off a terminal (a log file,
a batch job) one line every ``interval`` seconds and a final line; nothing when disabled.

    [crnlang] ssa: t = 0.42 of 1 (42%), 120,000 events, 12 s, about 17 s left
    [crnlang] ssa: done, t = 1, 290,000 events, 29 s

The backends call ``update(t, count)`` with the simulated time reached (the slowest run's,
for the sampling methods) and a count of their work (``unit``: steps, events, saved times);
``figures`` (a loss, an ESS) are shown beside them.
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager


class Progress:
    """A progress reporter; ``start`` names the run, ``update`` reports, ``close`` ends it."""

    def __init__(self, enabled: bool = True, interval: float = 10.0, stream=None):
        self.enabled = enabled
        self.interval = interval
        self.stream = stream if stream is not None else sys.stderr
        self.method, self.t_end, self.unit = "", 1.0, "steps"
        self.bar = None
        self.started = self.last = 0.0
        self.t, self.count, self.figures = 0.0, 0, {}

    def start(self, method: str, t_end: float, unit: str = "steps") -> "Progress":
        self.method, self.t_end, self.unit = method, float(t_end), unit
        self.started = self.last = time.perf_counter()
        if self.enabled and _is_terminal(self.stream):
            from tqdm import tqdm

            self.bar = tqdm(total=self.t_end, unit="t", leave=False, file=self.stream,
                            desc=method, bar_format="{desc}: {percentage:3.0f}%|{bar}| "
                                                    "t = {n:.4g}/{total:.4g} [{elapsed}<{remaining}]")
        return self

    def update(self, t: float, count: int | None = None, **figures) -> None:
        if not self.enabled:
            return
        self.t = min(float(t), self.t_end)
        if count is not None:
            self.count = int(count)
        self.figures.update(figures)
        if self.bar is not None:
            self.bar.n = self.t
            self.bar.set_postfix({self.unit: f"{self.count:,}", **self._figure_text()},
                                 refresh=False)
            self.bar.refresh()
            return
        now = time.perf_counter()
        if now - self.last >= self.interval:
            self.last = now
            self._line(now)

    def close(self) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            return
        elapsed = time.perf_counter() - self.started
        print(f"[crnlang] {self.method}: done, t = {self.t:g}, {self.count:,} {self.unit}, "
              f"{_duration(elapsed)}{self._figures_tail()}", file=self.stream, flush=True)

    # ------------------------------------------------------------ text
    def _line(self, now: float) -> None:
        elapsed = now - self.started
        fraction = self.t / self.t_end if self.t_end > 0 else 0.0
        left = f", about {_duration(elapsed * (1 - fraction) / fraction)} left" if fraction > 0 else ""
        print(f"[crnlang] {self.method}: t = {self.t:.4g} of {self.t_end:g} ({100 * fraction:.0f}%), "
              f"{self.count:,} {self.unit}, {_duration(elapsed)}{left}{self._figures_tail()}",
              file=self.stream, flush=True)

    def _figure_text(self) -> dict:
        return {k: f"{v:.3g}" for k, v in self.figures.items()}

    def _figures_tail(self) -> str:
        return "".join(f", {k} {v}" for k, v in self._figure_text().items())


def is_started(progress) -> bool:
    """True for a Progress that a caller has already started (and so will close)."""
    return isinstance(progress, Progress) and bool(progress.method)


def as_progress(progress, method: str, t_end: float, unit: str = "steps") -> Progress:
    """A started ``Progress`` from what a caller passed: a Progress (started here unless it
    already was), True (a default reporter) or False/None (silent)."""
    if isinstance(progress, Progress):
        return progress if is_started(progress) else progress.start(method, t_end, unit)
    return Progress(enabled=bool(progress)).start(method, t_end, unit)


@contextmanager
def reporting(progress, method: str, t_end: float, unit: str = "steps"):
    """``as_progress`` as a context: the reporter is closed at the end when it was started
    here (one handed in already started belongs to an outer ``reporting``)."""
    started_here = not is_started(progress)
    reporter = as_progress(progress, method, t_end, unit)
    try:
        yield reporter
    finally:
        if started_here:
            reporter.close()


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
