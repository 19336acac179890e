"""First passage into an absorbing region, from every method: the curve, its density and the
switching rate from the late-time slope of log(1 - P), against closed forms."""
from __future__ import annotations

import math

import numpy as np
import pytest

import crnlang
from crnlang.result import first_passage

ONE_STEP = """
species X <= 1
0 -> X @ 2
observe done = X >= 1
absorb done
@solve(t_end = 3, dt = 0.05, save_every = 2)
"""

# two steps in a row: P(absorbed by t) = 1 - (1 + k t) exp(-k t), late rate k
TWO_STEPS = (ONE_STEP.replace("X <= 1", "X <= 2").replace("@ 2", "@ 1.5")
             .replace("X >= 1", "X >= 2").replace("t_end = 3", "t_end = 8")
             .replace("save_every = 2", "save_every = 4"))


def test_exact_rate_and_density_from_fsp():
    result = crnlang.solve(ONE_STEP, method="fsp")
    passage = result.extra["first_passage"]["done"]
    assert passage["rate"] == pytest.approx(2.0, rel=1e-6)
    t = np.asarray(result.times)
    assert np.allclose(result.prob("done"), 1 - np.exp(-2 * t), atol=1e-9)
    density = np.asarray(passage["density"])
    assert np.sum(density * np.diff(t)) == pytest.approx(result.prob("done")[-1], rel=1e-9)
    assert passage["mean_time_lower"] == pytest.approx(0.5 * (1 - math.exp(-6)), rel=5e-3)


def test_late_rate_of_a_two_step_passage():
    """S(t) = (1 + k t) e^{-k t}: the late slope tends to k from below."""
    result = crnlang.solve(TWO_STEPS, method="fsp")
    passage = result.extra["first_passage"]["done"]
    t = np.asarray(result.times)
    k = 1.5
    assert np.allclose(result.prob("done"), 1 - (1 + k * t) * np.exp(-k * t), atol=1e-9)
    assert 0.8 * k < passage["rate"] < k


@pytest.mark.parametrize("method", ["ssa", "tau"])
def test_sampled_rate_within_its_error_bar(method):
    result = crnlang.solve(ONE_STEP, method=method, batch=20000, seed=4)
    passage = result.extra["first_passage"]["done"]
    assert abs(passage["rate"] - 2.0) < 4 * passage["rate_stderr"]
    assert passage["rate_stderr"] < 0.2


def test_no_rate_without_late_points():
    out = first_passage([0.0, 1.0], [0.0, 0.5])
    assert math.isnan(out["rate"]) and len(out["density"]) == 1


def test_the_summary_prints_the_rate(tmp_path):
    from click.testing import CliRunner

    from crnlang.cli import cli

    path = tmp_path / "m.crn"
    path.write_text(ONE_STEP)
    result = CliRunner().invoke(cli, ["solve", str(path), "--method", "fsp", "--no-plots",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "first passage into done: switching rate 2 ±" in result.output


def test_saved_with_a_plot_and_read_back(tmp_path):
    from crnlang.io import load_result

    result = crnlang.solve(ONE_STEP, method="fsp")
    names = {p.name for p in result.save(tmp_path)}
    assert "first_passage.png" in names
    back = load_result(tmp_path)
    assert back.extra["first_passage"]["done"]["rate"] == pytest.approx(2.0, rel=1e-6)
