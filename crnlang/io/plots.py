"""PNG plots of a ``Result`` (matplotlib's Agg canvas; no global state, no pyplot).

A result is read by its fields (``crnlang.result`` is not imported: ``Result.save`` writes
through this package).

    means.png          the mean over time with the 10-90 % band of the counts (from the
                       marginals; mean +- 1 sd for numeric observables), a small panel per
                       species / numeric observable (at most MAX_PANELS; a lattice shows its
                       site-summed totals instead); a bimodal species shows its marginal
                       over time as a heat map behind the mean instead of a band
    sites.png          lattice models: one small panel per site, laid out as the lattice
                       (mean and 10-90 % band; at most MAX_SITES sites)
    lattice.png        lattice models: heatmap of the final means, one per species; where the
                       site means are consistent with one mean within their standard errors
                       (chi-square p > 0.01) the colours span +- 3 SE and the title says so
    marginals.png      P(x = n) at the final time, per species (at most MAX_PANELS)
    marginals_over_time.png
                       P(x = n) over time as a heat map (histograms over time), per species
    probabilities.png  boolean observables over time (log y-axis when some are below 1e-2); a
                       sampled event never seen is drawn as its 95 % upper bound 3 / runs
    edge_mass.png      probability on the truncation edge over time (when the method reports it)
    first_passage.png  absorbing regions: 1 - P(absorbed by t) on a log axis with the fitted
                       late-time switching rate, and the first-passage density
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from ..files import write_atomic

MAX_PANELS = 16
MAX_SITES = 64
NOISE_P = 0.01           # site means this consistent with one mean are drawn as noise
NOISE_SE = 3.0           # ... on a colour range of at least +- this many standard errors
MIN_WIDTH = 8.0          # inches: at 100 dpi every plot is at least 800 px wide
_SITE = re.compile(r"^(\w+)\[([\d,]+)\]$")


def _figure(n_panels: int, width: float = 3.2, height: float = 2.4):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = min(4, max(1, n_panels))
    rows = max(1, math.ceil(n_panels / cols))
    fig = Figure(figsize=(max(width * cols, MIN_WIDTH), height * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes


def _save(fig, path: Path) -> Path:
    return write_atomic(path, lambda handle: fig.savefig(handle, format="png", dpi=100))


def _lattice_groups(names) -> dict[str, list[tuple[tuple[int, ...], str]]]:
    """base -> [(site, full name)] for names like X[1,2]; empty when none are site names."""
    groups: dict[str, list] = {}
    for name in names:
        m = _SITE.match(name)
        if m:
            groups.setdefault(m.group(1), []).append((tuple(int(v) for v in m.group(2).split(",")), name))
    return groups


def _series(result) -> list[tuple[str, np.ndarray, np.ndarray | None, str]]:
    """(title, mean, sd or None, y label) for the means panels."""
    groups = _lattice_groups(result.species)
    out = []
    if groups:
        for base, sites in groups.items():
            total = sum(np.asarray(result.means[n], dtype=float) for _, n in sites if n in result.means)
            out.append((f"sum of {base} over {len(sites)} sites", total, None, "copy number"))
        plain = [n for n in result.species if not _SITE.match(n)]
    else:
        plain = list(result.species)
    for name in plain:
        if name in result.means:
            out.append((name, result.means[name], np.sqrt(np.maximum(result.variances.get(name, 0.0), 0.0)),
                        "copy number"))
    for name in result.means:
        if name not in result.species:
            out.append((name, result.means[name],
                        np.sqrt(np.maximum(result.variances.get(name, 0.0), 0.0)), "value"))
    return out


def quantiles(marginal: np.ndarray, levels) -> list[np.ndarray]:
    """(T, M) P(x = 0..M-1) over time -> per level, (T,) the smallest count whose cumulative
    probability reaches it: bands of counts that never leave 0..M-1 (a mean +- sd band of a
    count near 0 would go below it)."""
    cdf = np.cumsum(marginal, axis=1)
    cdf = cdf / np.where(cdf[:, -1:] > 0, cdf[:, -1:], 1.0)
    return [np.argmax(cdf >= level - 1e-12, axis=1).astype(float) for level in levels]


def is_bimodal(marginal: np.ndarray) -> bool:
    """(T, M) or (M,) marginals -> True when at some time P(x = n), smoothed over a window
    of about 2/3 of its standard deviation (so that sampling noise makes no peaks), has two
    peaks, each at least 10 % of the highest, with a dip between them below half the lower."""
    n = None
    for p in np.atleast_2d(np.asarray(marginal, dtype=float)):
        if p.size < 5 or not np.any(p > 0):
            continue
        n = np.arange(p.size) if n is None else n
        mean = float(np.dot(n, p) / p.sum())
        sd = math.sqrt(max(float(np.dot((n - mean) ** 2, p) / p.sum()), 0.0))
        width = max(3, 2 * int(sd / 3) + 1)
        smooth = np.convolve(p, np.ones(width) / width, mode="same")
        tall = smooth >= 0.1 * smooth.max()
        inner = (smooth[1:-1] >= smooth[:-2]) & (smooth[1:-1] > smooth[2:]) & tall[1:-1]
        peaks = np.flatnonzero(inner) + 1
        for a, b in zip(peaks[:-1], peaks[1:]):
            if smooth[a:b + 1].min() < 0.5 * min(smooth[a], smooth[b]):
                return True
    return False


def _histogram_over_time(ax, t: np.ndarray, marginal: np.ndarray):
    """P(x = n, t) / max_n P(x = n, t) as an image: time across, copy number up (to the
    99.9 % quantile). Each time is scaled to its own peak, so a narrow start does not wash
    out the later, wider histograms."""
    top = int(np.max(quantiles(marginal, (0.999,))[0])) + 1
    peak = marginal.max(axis=1, keepdims=True)
    scaled = marginal / np.where(peak > 0, peak, 1.0)
    image = ax.imshow(scaled[:, :top + 1].T, origin="lower", aspect="auto", cmap="Greys",
                      extent=(t[0], t[-1] if t[-1] > t[0] else t[0] + 1, -0.5, top + 0.5),
                      interpolation="nearest")
    return image


def plot_means(result, path: Path) -> Path | None:
    series = _series(result)
    if not series:
        return None
    shown = series[:MAX_PANELS]
    fig, axes = _figure(len(shown))
    t = np.asarray(result.times, dtype=float)
    for ax, (title, mean, sd, ylabel) in zip(axes, shown):
        mean = np.asarray(mean, dtype=float)
        ax.plot(t, mean, lw=1.5, label="mean")
        marginal = result.marginals.get(title) if result.marginals else None
        if marginal is not None and len(marginal) == len(t) and is_bimodal(marginal):
            _histogram_over_time(ax, t, np.asarray(marginal, dtype=float))
            title = f"{title} (bimodal: P(x, t) in grey)"
        elif marginal is not None and len(marginal) == len(t):
            low, high = quantiles(np.asarray(marginal, dtype=float), (0.1, 0.9))
            ax.fill_between(t, low, high, alpha=0.3, lw=0, step="mid", label="10-90 %")
        elif sd is not None:
            ax.fill_between(t, mean - sd, mean + sd, alpha=0.3, lw=0, label="± 1 sd")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("time")
        ax.set_ylabel(ylabel)
    axes[0].legend(fontsize=7)
    more = f" (first {MAX_PANELS} of {len(series)})" if len(series) > MAX_PANELS else ""
    fig.suptitle(f"{result.model_name}: means, and 10-90 % of the copy numbers "
                 f"({result.method}){more}")
    return _save(fig, path)


def plot_lattice(result, path: Path) -> Path | None:
    groups = _lattice_groups(result.species)
    if not groups:
        return None
    fig, axes = _figure(len(groups), width=3.6, height=3.2)
    for ax, (base, sites) in zip(axes, groups.items()):
        shape = tuple(max(s[i] for s, _ in sites) + 1 for i in range(len(sites[0][0])))
        grid = np.full(shape if len(shape) == 2 else (1, shape[0]), np.nan)
        errors = []
        for site, name in sites:
            value = float(np.asarray(result.means[name])[-1]) if name in result.means else np.nan
            grid[site if len(site) == 2 else (0, site[0])] = value
            err = result.stderr.get(f"mean:{name}")
            errors.append(float(np.asarray(err)[-1]) if err is not None else np.nan)
        limits, note = _colour_range(grid, np.array(errors))
        image = ax.imshow(grid, cmap="viridis", aspect="auto" if len(shape) == 1 else "equal",
                          vmin=limits[0], vmax=limits[1])
        fig.colorbar(image, ax=ax, label="mean copy number")
        ax.set_xticks(range(grid.shape[1]))
        ax.set_yticks(range(grid.shape[0]) if len(shape) == 2 else [])
        ax.set_title(f"{base} at t = {float(result.times[-1]):g}{note}", fontsize=9)
        ax.set_xlabel("column" if len(shape) == 2 else "site")
        ax.set_ylabel("row" if len(shape) == 2 else "")
    fig.suptitle(f"{result.model_name}: final means per lattice site")
    return _save(fig, path)


def _colour_range(grid: np.ndarray, errors: np.ndarray):
    """((vmin, vmax) or (None, None), title note). Where the site means are consistent with
    one common mean (a chi-square test of homogeneity with their standard errors gives
    p > NOISE_P), the colours span +- NOISE_SE SE around it and the note says so."""
    from scipy.stats import chi2

    values = grid.ravel()
    keep = np.isfinite(values) & np.isfinite(errors) & (errors > 0)
    if keep.sum() < 2:
        return (None, None), ""
    m, se = values[keep], errors[keep]
    centre = float(np.sum(m / se ** 2) / np.sum(1 / se ** 2))
    p_value = float(chi2.sf(np.sum(((m - centre) / se) ** 2), keep.sum() - 1))
    if p_value <= NOISE_P:
        return (None, None), ""
    width = max(NOISE_SE * float(se.max()), float(np.abs(m - centre).max()))
    return ((centre - width, centre + width),
            f"\nsite differences are noise (chi-square p = {p_value:.2g}); "
            f"colours span ± {width:.2g}")


def plot_sites(result, path: Path) -> Path | None:
    """Small multiples: one panel per site of the first lattice species, laid out as the lattice."""
    groups = _lattice_groups(result.species)
    if not groups:
        return None
    base, sites = next(iter(groups.items()))
    if len(sites) > MAX_SITES:
        return None
    dims = len(sites[0][0])
    rows = max(s[0] for s, _ in sites) + 1 if dims == 2 else math.ceil(len(sites) / 8)
    cols = max(s[1] for s, _ in sites) + 1 if dims == 2 else min(8, len(sites))
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(1.6 * cols, MIN_WIDTH), 1.3 * rows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    for ax in axes.ravel():
        ax.set_visible(False)
    t = np.asarray(result.times, dtype=float)
    for index, (site, name) in enumerate(sites):
        ax = axes[site] if dims == 2 else axes[divmod(index, cols)]
        ax.set_visible(True)
        if name in result.means:
            ax.plot(t, np.asarray(result.means[name], dtype=float), lw=1)
        marginal = result.marginals.get(name) if result.marginals else None
        if marginal is not None and len(marginal) == len(t):
            low, high = quantiles(np.asarray(marginal, dtype=float), (0.1, 0.9))
            ax.fill_between(t, low, high, alpha=0.3, lw=0, step="mid")
        ax.set_title(name, fontsize=7)
        ax.tick_params(labelsize=6)
    fig.suptitle(f"{result.model_name}: {base} per site, mean and 10-90 % ({result.method})")
    return _save(fig, path)


def _species_panels(result, names: list[str], path: Path, title: str, draw) -> Path:
    """One panel per name (at most MAX_PANELS), each drawn by ``draw(fig, ax, name)``."""
    shown = names[:MAX_PANELS]
    fig, axes = _figure(len(shown))
    for ax, name in zip(axes, shown):
        draw(fig, ax, name)
        ax.set_title(name, fontsize=9)
    more = f" (first {MAX_PANELS} of {len(names)})" if len(names) > MAX_PANELS else ""
    fig.suptitle(f"{result.model_name}: {title}{more}")
    return _save(fig, path)


def plot_marginals_over_time(result, path: Path) -> Path | None:
    names = [n for n in result.species if n in result.marginals] or list(result.marginals)
    t = np.asarray(result.times, dtype=float)
    names = [n for n in names if len(result.marginals[n]) == len(t)]
    if not names or len(t) < 2:
        return None

    def draw(fig, ax, name):
        image = _histogram_over_time(ax, t, np.asarray(result.marginals[name], dtype=float))
        fig.colorbar(image, ax=ax, label="P(x = n) / its peak")
        ax.set_xlabel("time")
        ax.set_ylabel("copy number")

    return _species_panels(result, names, path, f"marginals over time ({result.method})", draw)


def plot_marginals(result, path: Path) -> Path | None:
    names = [n for n in result.species if n in result.marginals] or list(result.marginals)
    if not names:
        return None

    def draw(fig, ax, name):
        p = np.asarray(result.marginals[name], dtype=float)[-1]
        ax.bar(np.arange(len(p)), p, width=1.0)
        ax.set_xlabel("copy number")
        ax.set_ylabel("probability")

    return _species_panels(result, names, path,
                           f"marginals at t = {float(result.times[-1]):g}", draw)


def plot_probs(result, path: Path) -> Path | None:
    if not result.probs:
        return None
    fig, axes = _figure(1, width=6.0, height=3.6)
    ax = axes[0]
    t = np.asarray(result.times, dtype=float)
    positive = []
    runs = (result.extra or {}).get("runs")
    for name, p in result.probs.items():
        p = np.asarray(p, dtype=float)
        if runs and np.all(p[1:] == 0):        # a sampled event never seen: its upper bound
            bound = 3.0 / runs
            ax.plot(t, np.full_like(t, bound), ls=":", lw=1.5,
                    label=f"{name} < {bound:.2g} (unseen in {runs:,} runs, 95 %)")
            positive.append(bound)
            continue
        ax.plot(t, p, lw=1.5, label=name)
        err = result.stderr.get(f"prob:{name}")
        if err is not None:
            ax.fill_between(t, p - err, p + err, alpha=0.25, lw=0)
        positive += list(p[np.isfinite(p) & (p > 0)])
    if positive and min(positive) < 1e-2:
        ax.set_yscale("log")
    ax.set_xlabel("time")
    ax.set_ylabel("probability")
    ax.legend(fontsize=8)
    fig.suptitle(f"{result.model_name}: probabilities of the boolean observables")
    return _save(fig, path)


def plot_edge_mass(result, path: Path) -> Path | None:
    if result.edge_mass is None:
        return None
    fig, axes = _figure(1, width=6.0, height=3.2)
    ax = axes[0]
    edge = np.asarray(result.edge_mass, dtype=float)
    ax.plot(np.asarray(result.times, dtype=float), edge, lw=1.5)
    if np.any(edge > 0):
        ax.set_yscale("log")
    ax.set_xlabel("time")
    ax.set_ylabel("probability on the truncation edge")
    fig.suptitle(f"{result.model_name}: mass on the edge of the truncation box")
    return _save(fig, path)


def plot_first_passage(result, path: Path) -> Path | None:
    passages = result.extra.get("first_passage") if result.extra else None
    if not passages:
        return None
    fig, axes = _figure(2, width=4.2, height=3.2)
    survival, density = axes[0], axes[1]
    t = np.asarray(result.times, dtype=float)
    for name, passage in passages.items():
        alive = 1.0 - np.asarray(result.probs[name], dtype=float)
        shown = alive > 0
        line, = survival.plot(t[shown], alive[shown], lw=1.5, label=name)
        rate = passage.get("rate", float("nan"))
        if np.isfinite(rate) and shown.sum() > 1:
            late = t[shown][-1]
            fit = alive[shown][-1] * np.exp(-rate * (t[shown] - late))
            survival.plot(t[shown], fit, ls="--", lw=1, color=line.get_color(),
                          label=f"rate {rate:.3g} ± {passage.get('rate_stderr', float('nan')):.2g}")
        density.plot(passage["density_times"], passage["density"], lw=1.5, color=line.get_color(),
                     label=name)
    survival.set_yscale("log")
    survival.set_xlabel("time")
    survival.set_ylabel("1 - P(absorbed by t)")
    survival.legend(fontsize=7)
    density.set_xlabel("time")
    density.set_ylabel("first-passage density")
    fig.suptitle(f"{result.model_name}: first passage into the absorbing regions")
    return _save(fig, path)


def plot_result(result, directory) -> list[Path]:
    """Every plot that applies to ``result``, written into ``directory``; returns the paths."""
    directory = Path(directory)
    plots = [(plot_means, "means.png"), (plot_sites, "sites.png"),
             (plot_lattice, "lattice.png"), (plot_marginals, "marginals.png"),
             (plot_marginals_over_time, "marginals_over_time.png"),
             (plot_probs, "probabilities.png"),
             (plot_edge_mass, "edge_mass.png"), (plot_first_passage, "first_passage.png")]
    written = []
    for plot, filename in plots:
        path = plot(result, directory / filename)
        if path is not None:
            written.append(path)
    return written
