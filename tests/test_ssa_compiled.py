"""The compiled per-event SSA engine (reference/ssa_compiled.py): its propensities are the
kernel's, its law is the vectorised engine's and FSP's, and its streams do not depend on
threads or chunking."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import crnlang
from crnlang.dispatch import solve_fsp
from crnlang.reference import ssa_compiled
from crnlang.reference.ssa import choose_engine, run_direct_method, solve_ssa_kernel
from kernels.models import immigration_death, schlogl_chain, toggle_switch
from test_ssa import assert_marginals_agree

pytestmark = pytest.mark.skipif(ssa_compiled.numba is None, reason="numba is not installed")


def _kinetics_model(kinetics: str):
    """Every reaction order up to three, a conservation law and a bound, under one kinetics."""
    return crnlang.parse(f"""
        model orders
        kinetics {kinetics}
        species A <= 40, B <= 30, C, D
        0 -> A         @ 7.5
        2 A -> B       @ 0.03
        A + B -> C     @ 0.02
        3 B -> A + D   @ 1.5e-3
        C -> 0         @ 0.4
        D + C <-> 2 D  @ 0.01, 0.2
        init A = 10, B = 5, C = 2, D = 1
        @solve(t_end = 1, dt = 0.1)
    """)


@pytest.mark.parametrize("kinetics", ["binomial", "falling", "power"])
def test_propensities_equal_the_kernels(kinetics):
    kernel = crnlang.compile(_kinetics_model(kinetics))
    assert choose_engine(kernel)[0] == "compiled"
    tables = ssa_compiled._Tables(kernel)
    gen = torch.Generator().manual_seed(0)
    states = torch.randint(0, 31, (200, len(kernel.SPECIES)), generator=gen)
    expected = kernel.propensities(states, 0.0).numpy()
    full = kernel.full_state(states).numpy()
    for row, x in enumerate(full):
        got = [ssa_compiled._propensity(k, x, tables.rate, tables.kinetics, tables.r_ptr,
                                        tables.r_species, tables.r_order)
               for k in range(len(kernel.REACTIONS))]
        np.testing.assert_allclose(got, expected[row], rtol=1e-13, atol=0)


def test_dependency_graph_lists_every_reaction_an_event_can_change():
    kernel = crnlang.compile(schlogl_chain(3))
    tables = ssa_compiled._Tables(kernel)
    reads = kernel.REACTANTS.numpy() > 0
    for k, change in enumerate(kernel.CHANGE_FULL.numpy()):
        listed = set(tables.d_rx[tables.d_ptr[k]:tables.d_ptr[k + 1]].tolist())
        assert listed == {j for j in range(len(reads)) if (reads[j] & (change != 0)).any()}
        groups = set(tables.g_list[tables.g_ptr[k]:tables.g_ptr[k + 1]].tolist())
        assert groups == {j // tables.group for j in listed}


def test_toggle_switch_with_conservation_and_bounds_matches_fsp():
    runs = 2000
    model = toggle_switch(M=80, t_end=4, dt=0.01, save_every=100, batch=runs, seed=13)
    kernel = crnlang.compile(model)
    res = solve_ssa_kernel(kernel, model.settings, engine="compiled")
    exact = solve_fsp(model)
    assert res.extra["ssa_engine"].startswith("compiled")
    assert_marginals_agree(res, exact, res.species, runs)
    g, g_off = res.mean("Gx"), res.mean("Gx_off")
    assert np.allclose(g + g_off, 1.0)                  # eliminated species rebuilt


def test_refused_jumps_are_null_events_like_the_vectorised_engine():
    runs = 3000
    model = immigration_death(k=10, g=1, hi=12, t_end=3, dt=0.1, save_every=10, batch=runs)
    kernel = crnlang.compile(model)
    with pytest.warns(UserWarning, match="declared bounds"):
        res = solve_ssa_kernel(kernel, model.settings, engine="compiled")
    with pytest.warns(UserWarning, match="truncation edge"):
        exact = solve_fsp(model)
    assert res.marginals["X"].shape[1] == 13             # never past the bound
    assert_marginals_agree(res, exact, ["X"], runs)
    with pytest.warns(UserWarning, match="declared bounds"):
        vectorised = solve_ssa_kernel(kernel, model.settings, engine="vectorised")
    ratio = res.extra["blocked_jumps"] / vectorised.extra["blocked_jumps"]
    assert abs(ratio - 1) < 0.05                          # the same rate of refused jumps


def test_absorbing_box_first_passage_matches_fsp():
    runs = 2000
    model = schlogl_chain(2, absorb_low=True, t_end=0.4, dt=0.01, save_every=5, batch=runs,
                          seed=14)
    kernel = crnlang.compile(model)
    assert choose_engine(kernel)[0] == "compiled"
    res = solve_ssa_kernel(kernel, model.settings)
    exact = solve_fsp(model)
    q = exact.prob("low")
    assert q[-1] > 1e-3
    assert np.all(np.abs(res.prob("low") - q) <= 4 * np.sqrt(q * (1 - q) / runs) + 1.0 / runs)
    assert np.all(np.diff(res.prob("low")) >= 0)          # absorbed runs never leave


def test_streams_do_not_depend_on_threads_or_chunks(monkeypatch):
    kernel = crnlang.compile(schlogl_chain(2))
    times = np.linspace(0.0, 0.05, 6)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one, events, _ = run_direct_method(kernel, times, 64, seed=3, engine="compiled")
        torch.set_num_threads(2)
        monkeypatch.setattr(ssa_compiled, "CHUNK_SECONDS", 1e-6)     # many small chunks
        two, events_two, _ = run_direct_method(kernel, times, 64, seed=3, engine="compiled")
        assert torch.get_num_threads() == 2              # numba's pool leaves torch's alone
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two) and events == events_two
    other, _, _ = run_direct_method(kernel, times, 64, seed=4, engine="compiled")
    assert not torch.equal(one, other)


def test_other_rate_laws_run_the_vectorised_engine():
    timed = crnlang.compile(immigration_death(k="10 * (1 + sin(t))"))
    assert choose_engine(timed) == ("vectorised", "a rate reads t (the vectorised engine "
                                                  "integrates the hazard)")
    hill = crnlang.compile(crnlang.parse("""
        model hill
        species X <= 50
        0 => X @ 10 / (1 + X)
        X -> 0 @ 1
    """))
    assert choose_engine(hill)[0] == "vectorised"
    with pytest.raises(ValueError, match="not mass action"):
        choose_engine(hill, engine="compiled")
    assert choose_engine(crnlang.compile(schlogl_chain(2)), engine="vectorised")[0] == "vectorised"
