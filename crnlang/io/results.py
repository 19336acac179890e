"""Result files: what ``crnlang solve --out DIR`` writes, and reading them back.

``save_result(result, directory)`` writes, atomically (``crnlang.files``):

* ``summary.json``::

      {"method": "fsp", "model": "birth_death", "settings": {...}, "wall_seconds": 0.12,
       "times": [...], "species": ["X", ...],
       "mean": {"X": [...], "<numeric observable>": [...]},
       "var":  {"X": [...], ...},
       "std":  {"X": [...], ...},                 sqrt of var, for reading by eye
       "prob": {"<boolean observable>": [...]},
       "stderr": {"mean:X": [...], "prob:low": [...]},     when the method gives them
       "edge_mass": [...], "warnings": [...],               when present
       "extra": {...}}                            method-specific (rare-event estimates ...)

  Floats are JSON-clean: NaN and infinities are written as ``null``.
* ``results.npz``: ``times``, ``mean:X``, ``var:X``, ``marginal:X`` (T, M), ``prob:NAME``,
  ``stderr:KEY``, ``edge_mass``, and ``extra:KEY`` for array-valued extras; exact float64.
* PNG plots (``crnlang.io.plots``): means.png, marginals.png, probabilities.png,
  edge_mass.png, lattice.png (those that apply).

``read_result_fields(directory)`` reads them back: the fields of the ``Result`` from
results.npz (arrays) and summary.json (everything else); ``crnlang.io.load_result`` builds
the ``Result`` from them. A result is read and returned by its fields: ``crnlang.result`` is
not imported here (``Result.save`` calls ``save_result``).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CRNError
from ..files import write_atomic

SUMMARY = "summary.json"
ARRAYS = "results.npz"


def json_clean(value: Any) -> Any:
    """``value`` with numpy types as Python ones, tuples as lists, NaN/inf as None."""
    if isinstance(value, dict):
        return {str(k): json_clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_clean(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def summary_of(result) -> dict:
    """The summary.json content of ``result`` (JSON-clean)."""
    def table(d: dict) -> dict:
        return {k: np.asarray(v, dtype=float) for k, v in d.items()}

    out = {
        "method": result.method,
        "model": result.model_name,
        "settings": result.settings,
        "wall_seconds": result.wall_seconds,
        "times": np.asarray(result.times, dtype=float),
        "species": list(result.species),
        "mean": table(result.means),
        "var": table(result.variances),
        "std": {k: np.sqrt(np.maximum(np.asarray(v, dtype=float), 0.0)) for k, v in result.variances.items()},
        "prob": table(result.probs),
    }
    if result.stderr:
        out["stderr"] = table(result.stderr)
    if result.edge_mass is not None:
        out["edge_mass"] = np.asarray(result.edge_mass, dtype=float)
    if result.warnings:
        out["warnings"] = list(result.warnings)
    if result.extra:
        out["extra"] = {k: v for k, v in result.extra.items()}
    return json_clean(out)


def arrays_of(result) -> dict[str, np.ndarray]:
    """The results.npz content of ``result``."""
    arrays = {"times": np.asarray(result.times, dtype=float)}
    for prefix, table in (("mean", result.means), ("var", result.variances),
                          ("marginal", result.marginals), ("prob", result.probs),
                          ("stderr", result.stderr)):
        for name, values in table.items():
            arrays[f"{prefix}:{name}"] = np.asarray(values, dtype=float)
    if result.edge_mass is not None:
        arrays["edge_mass"] = np.asarray(result.edge_mass, dtype=float)
    for key, value in result.extra.items():
        if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            arrays[f"extra:{key}"] = value
    return arrays


def save_result(result, directory, plots: bool = True) -> list[Path]:
    """Write summary.json, results.npz and the PNG plots into ``directory`` (created when
    missing); returns the written paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    summary = summary_of(result)
    text = json.dumps(summary, indent=1, allow_nan=False).encode()
    path = directory / SUMMARY
    write_atomic(path, lambda f: f.write(text))
    written.append(path)
    arrays = arrays_of(result)
    path = directory / ARRAYS
    write_atomic(path, lambda f: np.savez(f, **arrays))
    written.append(path)
    if plots:
        from .plots import plot_result

        written += plot_result(result, directory)
    return written


def _array(values) -> np.ndarray:
    return np.array([math.nan if v is None else v for v in values], dtype=float)


def read_result_fields(directory) -> dict[str, Any]:
    """The fields (``Result``'s keyword arguments) of the result saved by ``save_result`` in
    ``directory``."""
    directory = Path(directory)
    try:
        summary = json.loads((directory / SUMMARY).read_text())
        with np.load(directory / ARRAYS, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError as exc:
        raise CRNError(f"no saved result in {directory}: {exc.filename} is missing",
                       hint="write one with `crnlang solve FILE --out DIR`") from None
    except (OSError, ValueError) as exc:
        raise CRNError(f"cannot read the result in {directory}: {exc}") from None

    def table(prefix: str) -> dict[str, np.ndarray]:
        start = prefix + ":"
        return {k[len(start):]: v for k, v in arrays.items() if k.startswith(start)}

    extra = dict(summary.get("extra", {}))
    extra.update(table("extra"))
    return dict(
        method=summary["method"],
        model_name=summary["model"],
        times=arrays["times"],
        species=tuple(summary["species"]),
        means=table("mean"),
        variances=table("var"),
        marginals=table("marginal"),
        probs=table("prob"),
        stderr=table("stderr"),
        edge_mass=arrays.get("edge_mass"),
        settings=summary.get("settings", {}),
        wall_seconds=summary.get("wall_seconds") or 0.0,
        warnings=list(summary.get("warnings", [])),
        extra=extra,
    )
