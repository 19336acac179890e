"""Result files (crnlang.io.results) and plots (crnlang.io.plots)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from crnlang.errors import CRNError
from crnlang.io import load_result, save_result
from crnlang.io.results import json_clean
from crnlang.result import Result

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def hand_made(lattice: bool = False) -> Result:
    times = np.linspace(0.0, 2.0, 5)
    species = ("X[0,0]", "X[0,1]", "X[1,0]", "X[1,1]") if lattice else ("X", "Y")
    rng = np.random.default_rng(1)
    means = {s: rng.uniform(0, 10, 5) for s in species}
    means["total"] = sum(means[s] for s in species)
    variances = {k: rng.uniform(0, 3, 5) for k in means}
    variances[species[0]][2] = math.nan            # NaN must survive as null / nan
    marginals = {}
    for s in species:
        p = rng.uniform(0, 1, (5, 12))
        marginals[s] = p / p.sum(axis=1, keepdims=True)
    return Result(
        method="ssa", model_name="handmade", times=times, species=species, means=means,
        variances=variances, marginals=marginals,
        probs={"low": np.array([0.0, 1e-5, 3e-4, 2e-3, 1e-2]), "high": np.full(5, 0.5)},
        stderr={f"mean:{species[0]}": np.full(5, 0.1), "prob:low": np.full(5, 1e-6)},
        edge_mass=np.array([0.0, 1e-12, 1e-9, 1e-7, math.inf]),
        settings={"method": "ssa", "t_end": 2.0, "rare": ["low"], "dt": 0.5},
        wall_seconds=1.25, warnings=["a warning"],
        extra={"rare": {"low": {"estimate": 1.5e-6, "stderr": 2e-7}}, "loss": np.arange(4.0),
               "note": "plain text", "nan_value": math.nan})


def assert_same(a: Result, b: Result) -> None:
    assert (a.method, a.model_name, a.species, a.wall_seconds, a.warnings) == \
           (b.method, b.model_name, b.species, b.wall_seconds, b.warnings)
    np.testing.assert_array_equal(a.times, b.times)
    for name in ("means", "variances", "marginals", "probs", "stderr"):
        ta, tb = getattr(a, name), getattr(b, name)
        assert ta.keys() == tb.keys(), name
        for k in ta:
            np.testing.assert_array_equal(ta[k], tb[k])
    np.testing.assert_array_equal(a.edge_mass, b.edge_mass)
    assert a.settings == b.settings
    np.testing.assert_array_equal(a.extra["loss"], b.extra["loss"])
    assert a.extra["rare"] == b.extra["rare"] and a.extra["note"] == b.extra["note"]


def test_save_writes_json_npz_and_pngs(tmp_path):
    res = hand_made()
    out = tmp_path / "deep" / "dir"
    paths = save_result(res, out)
    names = {p.name for p in paths}
    assert {"summary.json", "results.npz", "means.png", "marginals.png", "probabilities.png",
            "edge_mass.png"} <= names
    assert all(p.exists() and p.parent == out for p in paths)
    for p in paths:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == PNG_MAGIC
    text = (out / "summary.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    summary = json.loads(text)
    assert summary["method"] == "ssa" and summary["model"] == "handmade"
    assert summary["times"] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert summary["mean"]["X"] == pytest.approx(list(res.means["X"]))
    assert summary["var"]["X"][2] is None
    assert summary["prob"]["low"][1] == 1e-5
    assert summary["edge_mass"][-1] is None
    assert summary["stderr"]["prob:low"] == [1e-6] * 5
    assert summary["extra"]["rare"]["low"]["estimate"] == 1.5e-6
    assert summary["warnings"] == ["a warning"]
    assert summary["std"]["Y"] == pytest.approx(list(np.sqrt(res.variances["Y"])))
    with np.load(out / "results.npz") as npz:
        assert npz["marginal:X"].shape == (5, 12)
        np.testing.assert_array_equal(npz["prob:low"], res.probs["low"])
        np.testing.assert_array_equal(npz["times"], res.times)
    # no temporary files left behind
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_load_reads_back_what_was_saved(tmp_path):
    res = hand_made()
    save_result(res, tmp_path)
    back = load_result(tmp_path)
    assert_same(res, back)
    assert math.isnan(back.variances["X"][2])
    assert back.mean("total") is not None and back.marginal("Y", 2.0).shape == (12,)


def test_lattice_result_gets_a_heatmap(tmp_path):
    paths = save_result(hand_made(lattice=True), tmp_path)
    assert (tmp_path / "lattice.png") in paths
    assert_same(hand_made(lattice=True), load_result(tmp_path))


def test_saving_twice_overwrites(tmp_path):
    save_result(hand_made(), tmp_path)
    res = hand_made()
    res.method = "fsp"
    save_result(res, tmp_path, plots=False)
    assert load_result(tmp_path).method == "fsp"


def test_result_save_method_uses_save_result(tmp_path):
    paths = hand_made().save(tmp_path)
    assert (tmp_path / "summary.json") in paths


def test_minimal_result_saves(tmp_path):
    res = Result(method="fsp", model_name="m", times=np.array([0.0]), species=("A",),
                 means={"A": np.array([1.0])}, variances={"A": np.array([0.0])})
    paths = save_result(res, tmp_path)
    assert {p.name for p in paths} == {"summary.json", "results.npz", "means.png"}
    assert_same_minimal = load_result(tmp_path)
    assert assert_same_minimal.edge_mass is None and assert_same_minimal.probs == {}


def test_missing_result_is_a_crn_error(tmp_path):
    with pytest.raises(CRNError, match="no saved result"):
        load_result(tmp_path)


def test_json_clean():
    assert json_clean({"a": (np.float32(1.5), np.int64(2), math.nan, -math.inf, np.bool_(True))}) == \
        {"a": [1.5, 2, None, None, True]}


def test_real_fsp_result_round_trips(tmp_path):
    import crnlang

    model = crnlang.parse("""
        model bd
        species X <= 30
        0 -> X @ 3
        X -> 0 @ 1
        observe many = X >= 5
    """)
    res = crnlang.solve(model, method="fsp", t_end=1.0, dt=0.25, save_every=1)
    paths = save_result(res, tmp_path)
    assert {"means.png", "marginals.png", "probabilities.png"} <= {p.name for p in paths}
    back = load_result(tmp_path)
    for name in res.marginals:
        np.testing.assert_array_equal(back.marginals[name], res.marginals[name])
    np.testing.assert_array_equal(back.prob("many"), res.prob("many"))
    np.testing.assert_array_equal(back.mean("X"), res.mean("X"))
    # Poisson(3 (1 - e^-t)) from 0: a check that what was saved is the solution
    assert back.mean("X")[-1] == pytest.approx(3 * (1 - math.exp(-1.0)), rel=1e-9)


def test_written_files_follow_the_umask(tmp_path):
    """Results, plots and kernels are readable by the group and others under the usual
    umask 022 (0644), not private to the writer as a bare temporary file would be."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        paths = save_result(hand_made(), tmp_path)
    finally:
        os.umask(old)
    assert paths and all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in paths)


def test_plots_are_wide_enough_and_bands_stay_on_counts(tmp_path):
    import struct

    from crnlang.io.plots import quantiles

    for path in save_result(hand_made(), tmp_path):
        if path.suffix == ".png":
            width, _ = struct.unpack(">II", path.read_bytes()[16:24])
            assert width >= 800, path.name
    marginal = np.array([[0.95, 0.05, 0.0], [0.2, 0.3, 0.5]])
    low, high = quantiles(marginal, (0.1, 0.9))
    assert low.tolist() == [0.0, 0.0] and high.tolist() == [0.0, 2.0]


def test_bimodal_marginals_are_told_from_sampling_noise():
    from scipy.stats import poisson

    from crnlang.io.plots import is_bimodal

    n = np.arange(120)
    assert is_bimodal(0.5 * poisson.pmf(n, 10) + 0.5 * poisson.pmf(n, 40))
    assert is_bimodal(0.8 * poisson.pmf(n, 3) + 0.2 * poisson.pmf(n, 25))
    assert not is_bimodal(poisson.pmf(n, 20))
    rng = np.random.default_rng(0)
    noisy = [np.bincount(rng.poisson(lam, runs), minlength=120)[:120] / runs
             for lam in (5, 20, 40, 80) for runs in (200, 2000) for _ in range(10)]
    assert sum(is_bimodal(h) for h in noisy) <= 1          # 2 of 2400 seen
    assert is_bimodal(np.stack([poisson.pmf(n, 20), 0.5 * poisson.pmf(n, 5) + 0.5 * poisson.pmf(n, 50)]))


def test_lattice_plots_small_multiples_and_a_heat_map_that_says_noise(tmp_path):
    import struct

    from crnlang.io.plots import _colour_range

    paths = {p.name: p for p in save_result(hand_made(lattice=True), tmp_path)}
    assert {"sites.png", "lattice.png", "marginals_over_time.png"} <= set(paths)
    for path in paths.values():
        if path.suffix == ".png":
            width, _ = struct.unpack(">II", path.read_bytes()[16:24])
            assert width >= 800, path.name
    grid = np.array([[42.3, 42.6], [42.8, 43.1]])
    (lo, hi), note = _colour_range(grid, np.full(4, 0.3))        # within noise
    assert "noise" in note and hi - lo >= 6 * 0.3 - 1e-9 and lo < 42.3 and hi > 43.1
    (lo, hi), note = _colour_range(np.array([[10.0, 20.0], [30.0, 40.0]]), np.full(4, 0.3))
    assert lo is None and note == ""                            # real structure: data range
