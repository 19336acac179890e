"""The neural solver (adam, ngd, tdvp) against exact solutions: closed forms and FSP.

Default runs are short; the long numerical checks are marked slow.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import crnlang
from crnlang.errors import CRNAnalysisError, CRNSolverError
from crnlang.runtime.solver import RunInterrupted, run_neural

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def hellinger(p, q) -> float:
    n = max(len(p), len(q))
    p = np.pad(np.clip(p, 0, None), (0, n - len(p)))
    q = np.pad(np.clip(q, 0, None), (0, n - len(q)))
    return float(np.sqrt(0.5 * ((np.sqrt(p) - np.sqrt(q)) ** 2).sum()))


def poisson_box(lam: float, size: int) -> np.ndarray:
    """Poisson(lam) on 0..size-1 with the tail folded onto the last state (reflecting box)."""
    k = np.arange(size)
    p = np.exp(k * math.log(lam) - lam - np.array([math.lgamma(i + 1) for i in k]))
    p[-1] += 1 - p.sum()
    return p


def birth_death_lambda(t: float) -> float:
    return math.exp(-0.01 * t) + 10 * (1 - math.exp(-0.01 * t))


@pytest.fixture(scope="module")
def birth_death():
    model = crnlang.load(EXAMPLES / "birth_death.crn")
    return model, crnlang.compile(model)


def bd_settings(model, **changes):
    base = dict(method="tdvp", integrator="euler", dt=1.0, t_end=40.0, batch=1000, save_every=10,
                sampling="mixture", reweight=False)
    base.update(changes)
    return model.settings.updated(**base)


def bd_errors(result) -> list[float]:
    """Hellinger distance of the X marginal to the exact Poisson at every saved time."""
    return [hellinger(result.marginals["X"][i], poisson_box(birth_death_lambda(t), 30))
            for i, t in enumerate(result.times)]


# ------------------------------------------------------------------ birth-death (closed form)
def test_birth_death_tdvp_heun_matches_poisson(birth_death):
    model, kernel = birth_death
    result = run_neural(kernel, bd_settings(model, integrator="heun", dt=2.0))
    errors = bd_errors(result)
    assert result.times[0] == 0 and result.times[-1] == pytest.approx(40.0)
    assert max(errors) < 0.01, errors
    lam = birth_death_lambda(40.0)
    assert result.mean("X")[-1] == pytest.approx(lam, rel=0.01)
    assert result.var("X")[-1] == pytest.approx(lam, rel=0.03)


def test_rk4_at_four_times_the_euler_dt_is_as_accurate(birth_death):
    model, kernel = birth_death
    euler = run_neural(kernel, bd_settings(model, integrator="euler", dt=0.5, save_every=20))
    rk4 = run_neural(kernel, bd_settings(model, integrator="rk4", dt=2.0, save_every=5))
    np.testing.assert_allclose(euler.times, rk4.times)
    e_euler, e_rk4 = max(bd_errors(euler)), max(bd_errors(rk4))
    assert e_rk4 < 0.01
    assert e_rk4 <= e_euler * 1.1, (e_rk4, e_euler)


def test_adaptive_step_lands_on_the_save_times(birth_death):
    model, kernel = birth_death
    result = run_neural(kernel, bd_settings(model, integrator="adaptive", dt=2.0, t_end=20.0, save_every=5),
                        tol=3e-3)
    np.testing.assert_allclose(result.times, [0.0, 10.0, 20.0])
    assert max(bd_errors(result)) < 0.01


def test_birth_death_ngd(birth_death):
    model, kernel = birth_death
    result = run_neural(kernel, bd_settings(model, method="ngd", dt=1.0, t_end=10.0, save_every=5))
    assert max(bd_errors(result)) < 0.01


@pytest.mark.parametrize("seed", [0, 2])
def test_ngd_splits_the_stiff_start_of_the_toggle_switch(toggle, seed):
    """ngd at the file's dt = 0.005 from the single-state start: the first steps' targets ask
    for too large a change of log P and are split into substeps (without: Hellinger 0.30).
    Seed 2 is where an undamped epoch at lambda 1e-5 threw the network away (0.73; the
    Levenberg-Marquardt retry of ``ngd_epochs``: 0.0095)."""
    model, kernel = toggle
    result = run_neural(kernel, model.settings.updated(method="ngd", t_end=0.05, save_every=5, batch=1000,
                                                       seed=seed))
    assert result.extra["substeps"] > 10 + 20
    errors = fsp_errors(model, result)
    assert errors.max() < 0.03, errors


# the reference's ngd settings (METHOD.md: lr 0.5, 5 epochs, B = 2000) at the file's dt = 0.005
NGD_REFERENCE = dict(method="ngd", lr=0.5, epochs=5, batch=2000)


def test_ngd_at_the_reference_settings_keeps_up_with_fsp(toggle):
    """Issue 14: ngd at lr = 0.5 fell behind the CME by the 3 % of every step its 5 epochs
    leave undone (and lambda = 1e-3 left weak directions behind): Hellinger 0.045 of FSP by
    t = 0.2 before, 0.014 now (``ngd_reach``, lambda 1e-5)."""
    model, kernel = toggle
    result = run_neural(kernel, model.settings.updated(t_end=0.2, save_every=10, **NGD_REFERENCE))
    assert result.settings["lam"] == 1e-5
    errors = fsp_errors(model, result)
    assert errors.max() < 0.02, errors


@pytest.mark.slow
@pytest.mark.parametrize("lr", [0.5, 1.0])
def test_ngd_toggle_switch_to_one_matches_fsp(toggle, lr):
    """ngd with the file's dt = 0.005 to t = 1: every marginal within 0.02 of FSP at every
    saved time (measured 2 threads: 0.0140 at lr = 0.5, 0.0134 at lr = 1; before this fix
    0.068 and 0.033, the issue's figures)."""
    model, kernel = toggle
    result = run_neural(kernel, model.settings.updated(t_end=1.0, save_every=20, **dict(NGD_REFERENCE, lr=lr)))
    errors = fsp_errors(model, result)
    assert errors.max() < 0.02, errors


def test_birth_death_adam(birth_death):
    model, kernel = birth_death
    result = run_neural(kernel, bd_settings(model, method="adam", dt=1.0, t_end=2.0, save_every=1,
                                            epochs=40, lr=3e-3))
    assert max(bd_errors(result)) < 0.02


# ------------------------------------------------------------------ results, checkpoints, guards
def test_result_has_every_species_and_observable(birth_death):
    model, kernel = birth_death
    result = run_neural(kernel, bd_settings(model, t_end=4.0, dt=1.0, save_every=2))
    assert result.method == "tdvp" and result.species == ("X",)
    assert result.marginals["X"].shape == (3, 30)
    np.testing.assert_allclose(result.marginals["X"].sum(1), 1.0, atol=1e-12)
    # numeric observable x = X has the species' moments; boolean one a probability
    np.testing.assert_allclose(result.mean("x"), result.mean("X"), atol=1e-12)
    tail = result.marginals["X"][:, 10:].sum(1)
    np.testing.assert_allclose(result.prob("many"), tail, atol=1e-12)


@pytest.mark.parametrize("integrator", ["euler", "rkc"])
def test_checkpoint_resume_gives_the_same_series(birth_death, tmp_path, integrator):
    """(rkc: its spectral-radius estimate and schedule travel in the checkpoint)"""
    model, kernel = birth_death
    settings = bd_settings(model, t_end=8.0, dt=1.0, save_every=2).updated(integrator=integrator)
    whole = run_neural(kernel, settings)
    with pytest.raises(RunInterrupted):
        run_neural(kernel, settings, checkpoint_dir=tmp_path, stop_after_saves=2)
    resumed = run_neural(kernel, settings, checkpoint_dir=tmp_path, resume=True)
    np.testing.assert_array_equal(resumed.times, whole.times)
    np.testing.assert_allclose(resumed.marginals["X"], whole.marginals["X"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(resumed.mean("X"), whole.mean("X"), rtol=0, atol=1e-12)
    assert resumed.extra["velocities"] == whole.extra["velocities"]


def test_resume_refuses_other_settings(birth_death, tmp_path):
    model, kernel = birth_death
    with pytest.raises(RunInterrupted):
        run_neural(kernel, bd_settings(model, t_end=4.0, save_every=1), checkpoint_dir=tmp_path,
                   stop_after_saves=1)
    with pytest.raises(CRNSolverError, match="other settings: batch = 1000 in the checkpoint, 500 now"):
        run_neural(kernel, bd_settings(model, t_end=4.0, save_every=1, batch=500),
                   checkpoint_dir=tmp_path, resume=True)


def test_resume_can_extend_t_end(birth_death, tmp_path):
    """A finished run continues past its old end: the same series as one run to the new end."""
    model, kernel = birth_death
    whole = run_neural(kernel, bd_settings(model, t_end=6.0, dt=1.0, save_every=2))
    run_neural(kernel, bd_settings(model, t_end=4.0, dt=1.0, save_every=2), checkpoint_dir=tmp_path)
    longer = run_neural(kernel, bd_settings(model, t_end=6.0, dt=1.0, save_every=2),
                        checkpoint_dir=tmp_path, resume=True)
    np.testing.assert_array_equal(longer.times, whole.times)
    np.testing.assert_allclose(longer.mean("X"), whole.mean("X"), rtol=0, atol=1e-12)


class NaNAfter:
    """Wraps a kernel; its rates turn NaN from time t_bad on (to trip the guard)."""

    def __init__(self, kernel, t_bad):
        self._k, self._t_bad = kernel, t_bad

    def __getattr__(self, name):
        return getattr(self._k, name)

    def out_rates(self, x, t):
        rates = self._k.out_rates(x, t)
        return rates * math.nan if t >= self._t_bad else rates


def test_nan_guard_names_step_time_quantity_and_remedy(birth_death):
    model, kernel = birth_death
    with pytest.raises(CRNSolverError) as info:
        run_neural(NaNAfter(kernel, 3.0), bd_settings(model, t_end=6.0))
    text = str(info.value)
    assert "step 3" in text and "t = 3" in text and "E(n)" in text
    assert "smaller dt" in text and "lambda" in text


def test_absurd_dt_stops_with_a_remedy(birth_death):
    model, kernel = birth_death
    with pytest.raises(CRNSolverError, match="dt"):
        run_neural(kernel, bd_settings(model, method="ngd", dt=500.0, t_end=1000.0, sampling="plain"))


def test_unbounded_species_is_refused_by_name():
    model = crnlang.parse("species Y\n0 -> Y @ 1\nY -> 0 @ 0.1\n")
    with pytest.raises(CRNAnalysisError) as info:
        crnlang.solve(model, method="tdvp", t_end=1.0)
    assert "'Y'" in str(info.value) and "Y <= " in str(info.value)


# ------------------------------------------------------------------ the public entry point
def test_solve_entry_point_and_rare_event_estimate():
    model = crnlang.parse("""
        species X <= 29
        0 -> X @ 0.1
        X -> 0 @ 0.01
        init X ~ poisson(1)
        observe high = X >= 6
        @rare(high)
    """)
    result = crnlang.solve(model, method="tdvp", dt=1.0, t_end=10.0, batch=500, save_every=5,
                           sampling="mixture", reweight=False, integrator="heun")
    assert result.times.tolist() == [0.0, 5.0, 10.0]
    rare = result.extra["rare"]["high"]
    exact_for_network = result.prob("high")[-1]       # exact sum over the box, same network
    # X >= 6 is an interval of the one species: the sequential estimator, exact here
    assert rare["n"] > 0 and rare["estimator"] == "sequential" and rare["stderr"] < 1e-12
    assert rare["estimate"] == pytest.approx(exact_for_network, rel=1e-9)
    truth = poisson_box(birth_death_lambda(10.0), 30)[6:].sum()
    assert exact_for_network == pytest.approx(truth, rel=0.2)


# ------------------------------------------------------------------ proposals and estimates
def _small_net(seed=0):
    from crnlang.runtime.networks import make_network

    g = torch.Generator().manual_seed(seed)
    net = make_network("nade", [0, 0, 1], [3, 5, 4], hidden=8, dtype=torch.float64, generator=g)
    with torch.no_grad():                      # a non-trivial distribution
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    return net


@pytest.mark.parametrize("kind", ["alpha", "diffusive", "mixture", "defensive"])
def test_proposals_are_normalised_and_weights_unbiased(kind):
    from crnlang.runtime.estimates import box_states
    from crnlang.runtime.sampling import Sampler, log_box_size

    net = _small_net()
    sampler = Sampler(kind, alpha=0.4, kernel=1, uniform=0.3)
    states = box_states([0, 0, 1], [3, 5, 4])
    with torch.no_grad():
        log_p = net.log_prob(states)
        if kind == "mixture":
            log_q = torch.logaddexp(log_p + math.log(0.7),
                                    torch.full_like(log_p, math.log(0.3) - log_box_size(net)))
        elif kind == "defensive":
            log_q = torch.logaddexp(log_p, net.proposal_log_prob(states, sampler.transform())) - math.log(2)
        else:
            log_q = net.proposal_log_prob(states, sampler.transform())
    assert float(torch.exp(log_q).sum()) == pytest.approx(1.0, abs=1e-12)
    # the weighted mean of X_0 from proposal samples matches the exact mean under P
    exact = float((torch.exp(log_p) * states[:, 0]).sum())
    x, w = sampler.draw(net, 40000, torch.Generator().manual_seed(1))
    estimate = float((w * x[:, 0]).sum() / w.sum())
    assert estimate == pytest.approx(exact, abs=0.03)
    if kind == "defensive":                    # P / q <= 2: no heavy tail to clip
        assert float(w.max()) < 2.1


def test_sampled_estimates_agree_with_enumeration(birth_death):
    from crnlang.runtime.estimates import Estimator
    from crnlang.runtime.networks import make_network

    model, kernel = birth_death
    net = make_network("nade", [0], [29], hidden=4, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        net.b.copy_(torch.log(torch.as_tensor(poisson_box(5.0, 30))))
        net.V.zero_()
    exact = Estimator(kernel, [0], [29]).snapshot(net, 1.0)
    sampled = Estimator(kernel, [0], [29], generator=torch.Generator().manual_seed(0),
                        exact_limit=0).snapshot(net, 1.0)
    assert exact.means["X"] == pytest.approx(5.0, abs=1e-9)
    assert abs(sampled.means["X"] - exact.means["X"]) < 4 * sampled.stderr["mean:X"]
    # "many" (X >= 8) is an interval: the sequential estimator, exact with one species
    assert abs(sampled.probs["many"] - exact.probs["many"]) < 4 * sampled.stderr["prob:many"] + 1e-12
    assert hellinger(sampled.marginals["X"], exact.marginals["X"]) < 0.02


def test_sampled_marginals_are_conditional_means_far_below_histogram_noise():
    """Where the box is too big to enumerate, a species' marginal is the mean of its
    conditionals over the samples (Rao-Blackwell): unbiased, and on a correlated 3-species
    net with 2000 samples far closer to the enumerated marginal than the samples' histogram
    (6e-5 against 0.017 on average in Hellinger)."""
    from crnlang.runtime.estimates import Estimator
    from crnlang.runtime.networks import make_network

    model = crnlang.parse("species A <= 6, B <= 6, C <= 6\n0 -> A @ 2\nA -> 0 @ 1\n"
                          "A -> A + B @ 1\nB -> 0 @ 1\nB -> B + C @ 1\nC -> 0 @ 1\n"
                          "init A = 1\n")
    kernel = crnlang.compile(model)
    assert not kernel.ELIMINATED
    net = make_network("nade", [0, 0, 0], [6, 6, 6], hidden=8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        net.W.mul_(30.0)                                  # strongly correlated species
    exact = Estimator(kernel, [0] * 3, [6] * 3).snapshot(net, 0.0)
    errors, histogram_errors = [], []
    for seed in range(5):
        sampled = Estimator(kernel, [0] * 3, [6] * 3, samples=2000, exact_limit=0,
                            generator=torch.Generator().manual_seed(seed))
        snap = sampled.snapshot(net, 0.0)
        x = net.sample(2000, torch.Generator().manual_seed(100 + seed))
        for i, name in enumerate("ABC"):
            assert snap.marginals[name].sum() == pytest.approx(1.0, abs=1e-12)
            errors.append(hellinger(snap.marginals[name], exact.marginals[name]))
            counts = np.bincount(x[:, i].numpy(), minlength=7) / 2000
            histogram_errors.append(hellinger(counts, exact.marginals[name]))
    assert max(errors) < 0.01 and np.mean(errors) < np.mean(histogram_errors) / 5


# ------------------------------------------------------------------ against FSP (delta starts)
def fsp_errors(model, result) -> np.ndarray:
    """(T, species) Hellinger distances of the marginals to FSP at the saved times."""
    exact = crnlang.solve(model, method="fsp", t_end=float(result.times[-1]),
                          dt=float(result.times[1]), save_every=1)
    return np.array([[hellinger(result.marginals[n][i], exact.marginal(n, t)) for n in result.species]
                     for i, t in enumerate(result.times)])


DELTA_START = dict(method="tdvp", integrator="adaptive")     # sampling auto (SpreadingStart)


@pytest.fixture(scope="module")
def toggle():
    model = crnlang.load(EXAMPLES / "toggle_switch.crn")
    return model, crnlang.compile(model)


def test_euler_step_guard_splits_the_stiff_start_only(toggle):
    """The file's own settings (euler, dt = 0.005): from the single-state start the mass
    leaves at rate 100, so the first steps are split (without the guard: Hellinger 0.27 at
    t = 0.05); later steps are whole steps of dt."""
    model, kernel = toggle
    settings = model.settings.updated(t_end=0.1, save_every=2, batch=1000)
    assert settings.integrator == "euler" and settings.dt == 0.005
    result = run_neural(kernel, settings)
    errors = fsp_errors(model, result)
    assert errors.max() < 0.02, errors
    assert result.extra["substeps"] > 20 + 10          # 20 steps of dt, the first ones split


def test_toggle_switch_start_matches_fsp(toggle):
    """The stiff start from a delta (mass leaves at rate 100): adaptive tdvp, every species."""
    model, kernel = toggle
    settings = model.settings.updated(**DELTA_START, t_end=0.02, dt=0.005, save_every=2, batch=500)
    result = run_neural(kernel, settings, tol=3e-2)
    errors = fsp_errors(model, result)
    assert errors.max() < 0.02, errors


@pytest.mark.slow
def test_toggle_switch_to_half_matches_fsp(toggle):
    """The file's own settings to t = 0.5, saved every 0.05 (measured 0.013-0.018)."""
    model, kernel = toggle
    result = run_neural(kernel, model.settings.updated(t_end=0.5, save_every=10))
    errors = fsp_errors(model, result)
    assert errors.max() < 0.02, errors


@pytest.mark.slow
def test_toggle_switch_full_run_matches_fsp(toggle):
    """The whole T = 40 run with the file's own settings (euler, dt = 0.005, B = 2000, auto
    sampling, lambda 1e-5): every species within Hellinger 0.03 of FSP at every saved time.
    Measured with 2 threads: 0.027 at worst (seed 0, Py lagging the growth of P(Py = 0)
    around t = 11, back below 0.004 by t = 16); 0.012 and 0.0195 for seeds 1 and 2 to t = 14
    (docs/solvers.md). A 10 % error in one rate moves a Poisson(50) marginal by ~0.25. About
    8.5 min with 2 torch threads; the tests use one."""
    model, kernel = toggle
    result = run_neural(kernel, model.settings.updated(save_every=200))
    errors = fsp_errors(model, result)
    assert errors.max() < 0.03, errors


def gene_expression_errors(t_end: float, save_every: int, batch: int) -> np.ndarray:
    """fsp_errors of an adaptive tdvp run of gene_expression.crn (dt = 0.1)."""
    model = crnlang.load(EXAMPLES / "gene_expression.crn")
    settings = model.settings.updated(**DELTA_START, t_end=t_end, dt=0.1, save_every=save_every, batch=batch)
    return fsp_errors(model, run_neural(crnlang.compile(model), settings, tol=3e-2))


def test_gene_expression_matches_fsp():
    errors = gene_expression_errors(t_end=4.0, save_every=20, batch=500)
    assert errors.max() < 0.01, errors


@pytest.mark.slow
def test_gene_expression_long_matches_fsp():
    errors = gene_expression_errors(t_end=20.0, save_every=50, batch=1000)
    assert errors.max() < 0.01, errors


@pytest.fixture(scope="module")
def early_life():
    model = crnlang.load(EXAMPLES / "early_life.crn")
    return model, crnlang.compile(model)


def early_settings(model, t_end):
    # (one-hot heads: these tests read the exact point-mass start at t = 0)
    return model.settings.updated(method="tdvp", integrator="adaptive", sampling="mixture", head="onehot",
                                  reweight=False, t_end=t_end, dt=0.002, save_every=5, batch=500)


def test_estimates_are_conditioned_on_the_support(early_life):
    """Box states with S0 + S2 > 100 (S1 < 0), or S0 + S2 = 0 (S1 = 100 > 99), are no states
    of the model: the figures leave them out, and the mass they held is reported."""
    from crnlang.runtime.estimates import Estimator, box_states
    from crnlang.runtime.networks import make_network

    model, kernel = early_life
    net = make_network("nade", kernel.LOWER, kernel.UPPER, hidden=4, generator=torch.Generator().manual_seed(0))
    estimator = Estimator(kernel, kernel.LOWER, kernel.UPPER)
    snap = estimator.snapshot(net, 0.0)
    states = box_states(kernel.LOWER, kernel.UPPER)
    with torch.no_grad():
        p = torch.exp(net.log_prob(states))
    inside = kernel.in_support(states)
    (eliminated,) = kernel.ELIMINATED
    rebuilt = kernel.full_state(states)[:, kernel.ALL_SPECIES.index(eliminated)].double()
    assert bool(((rebuilt[~inside] < 0) | (rebuilt[~inside] > 99)).all())      # S1 <= 99
    assert 0.3 < estimator.outside_mass == pytest.approx(float(p[~inside].sum()), abs=1e-12)
    expected = float((p[inside] * rebuilt[inside]).sum() / p[inside].sum())
    assert snap.means[eliminated] == pytest.approx(expected, rel=1e-10)
    assert snap.marginals[eliminated].sum() == pytest.approx(1.0)


def test_early_life_runs_on_the_reduced_state_and_rebuilds_the_eliminated_species(early_life):
    """S1 = 100 - S0 - S2 is not a network variable (of S0, S1, S2, all bounded by the law, it
    has the largest initial count); it is rebuilt from the law."""
    model, kernel = early_life
    assert kernel.SPECIES == ("S0", "S2") and "S1" in kernel.ALL_SPECIES
    result = run_neural(kernel, early_settings(model, 0.002), tol=3e-2)
    assert result.species == ("S0", "S1", "S2")
    total = result.mean("S0") + result.mean("S1") + result.mean("S2")
    np.testing.assert_allclose(total, 100.0, atol=1e-9)          # the law holds exactly
    assert result.marginal("S0", 0.0)[2] > 0.999                 # S0 starts at 2
    assert result.marginal("S1", 0.0)[49] > 0.999                # and S1 at 49


def test_early_life_matches_fsp(early_life):
    """The reference's settings (one-hot heads, euler, dt = 4e-4, B = 2000), to t = 0.05: the
    fast relaxation of S0 from 2 to about 1 and the start of the S1/S2 spread. Every species
    within Hellinger 0.02 (measured 0.008; it was 0.25 with S0 eliminated, see analyze.py)."""
    model, kernel = early_life
    reference = model.settings.updated(head="onehot", integrator="euler", dt=4e-4)
    result = run_neural(kernel, reference.updated(t_end=0.05, save_every=25))
    errors = fsp_errors(model, result)
    assert errors.max() < 0.02, errors


def test_early_life_file_settings_match_fsp(early_life):
    """The file's settings (smooth heads, rk4, dt = 4e-3: ten times the reference's step), to
    t = 0.4. The smooth start is not the exact point mass, so the first saves are off; from
    t = 0.2 every species is within Hellinger 0.01 (measured 0.0044 to t = 2)."""
    model, kernel = early_life
    assert (model.settings.head, model.settings.integrator, model.settings.dt) == ("smooth", "rk4", 4e-3)
    result = run_neural(kernel, model.settings.updated(t_end=0.4, save_every=50))
    errors = fsp_errors(model, result)
    assert errors[1:].max() < 0.01, errors


def test_plain_sampling_from_a_point_start_warns(toggle):
    model, kernel = toggle
    result = run_neural(kernel, model.settings.updated(method="tdvp", t_end=0.01, dt=0.005, batch=200,
                                                       sampling="plain"))
    assert any("@sampling(auto)" in w for w in result.warnings)


def test_default_sampling_moves_off_a_point_start(toggle):
    """sampling = auto from a single state: alpha with tempered weights, then defensive."""
    from crnlang.dispatch import solve_fsp

    model, kernel = toggle
    settings = model.settings.updated(method="tdvp", t_end=0.5, dt=0.005, batch=500, save_every=20)
    assert settings.sampling == "auto"
    from crnlang.dispatch import solve_neural

    result = solve_neural(model.with_settings(**{k: getattr(settings, k) for k in
                                                 ("method", "t_end", "dt", "batch", "save_every")}))
    assert result.settings["sampling"] == "auto" and 0 < result.extra["spread_at"] <= 0.5
    assert result.settings["lam"] == 1e-5
    assert not result.warnings       # no point-start warning, no (conservation-bound) edge mass
    exact = solve_fsp(model.with_settings(t_end=0.5, dt=0.005, save_every=20))
    for name in ("Px", "Py"):
        assert abs(result.mean(name)[-1] - exact.mean(name)[-1]) < 0.05 * exact.mean(name)[-1]
