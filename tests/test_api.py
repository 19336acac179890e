"""The Python API of LANGUAGE.md, end to end on its own example."""
import numpy as np
import pytest
from scipy.stats import poisson

import crnlang

EXAMPLE = """
    species X <= 60
    0 -> X @ 10
    X -> 0 @ 1
    init X = 0
"""


def test_language_md_python_example():
    model = crnlang.parse(EXAMPLE)
    res = crnlang.solve(model, method="fsp", t_end=5.0)
    assert res.times[0] == 0 and abs(res.times[-1] - 5.0) < 1e-12
    lam = 10 * (1 - np.exp(-res.times))       # immigration-death from 0 stays Poisson
    assert np.allclose(res.mean("X"), lam, rtol=1e-8, atol=1e-10)
    assert np.allclose(res.var("X"), lam, rtol=1e-8, atol=1e-10)
    p = res.marginal("X", t=5.0)
    assert p.shape == (61,)
    assert np.allclose(p, poisson.pmf(np.arange(61), lam[-1]), atol=1e-9)
    src = crnlang.emit(model)
    assert "def propensities" in src
    mod = crnlang.compile(model)
    assert mod.SPECIES == ("X",)


def test_solve_stays_callable_and_accepts_text():
    first = crnlang.solve(EXAMPLE, method="fsp", t_end=1.0)
    second = crnlang.solve(EXAMPLE, method="fsp", t_end=1.0)   # crnlang.solve not shadowed
    assert np.allclose(first.mean("X"), second.mean("X"))


def test_unknown_setting_is_a_crn_error():
    with pytest.raises(crnlang.CRNError, match="unknown solver setting"):
        crnlang.solve(EXAMPLE, method="fsp", t_edn=1.0)


def test_auto_picks_fsp_for_small_bounded_models():
    res = crnlang.solve(EXAMPLE, method="auto", t_end=1.0)
    assert res.method == "fsp"


def test_result_errors_name_what_exists():
    res = crnlang.solve(EXAMPLE, method="fsp", t_end=1.0)
    with pytest.raises(crnlang.CRNError, match="known: X"):
        res.mean("x_")


def test_auto_weighs_fsp_cost_not_only_state_count():
    from crnlang.analysis.analyze import analyze
    from crnlang.dispatch import choose_method

    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "examples" / "schlogl1d.crn").read_text()
    two_sites = crnlang.parse(text)
    three_sites = crnlang.parse(text.replace("chain(2)", "chain(3)"))
    assert "chain(2)" in text
    assert choose_method(two_sites, analyze(two_sites, count_reachable=False)) == "fsp"
    # 6e5 states but exit rates ~1e5: FSP would take half an hour
    assert choose_method(three_sites, analyze(three_sites, count_reachable=False)) == "tdvp"
    unbounded = crnlang.parse("species X\n0 -> X @ 1\n")
    assert choose_method(unbounded, analyze(unbounded, count_reachable=False)) == "ssa"
