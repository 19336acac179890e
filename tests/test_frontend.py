"""Front end: the LANGUAGE.md examples parse and lower to the expected IR."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

import crnlang
from crnlang.model import ir
from crnlang.model.semantics import evaluate, propensity

LANGUAGE_MD = Path(__file__).resolve().parents[1].parent / "shared" / "LANGUAGE.md"

TOGGLE = """\
# toggle_switch.crn: two genes that repress each other
model toggle_switch
kinetics power                      # propensity = k * x^s (the convention of the published runs)

param sx = 50, sy = 50              # protein synthesis
param dx = 1,  dy = 1               # protein decay
param bx = 1e-4, by = 1e-4          # a protein pair binds the other gene
param ux = 0.1,  uy = 0.1           # and lets go

species Gx, Gy, Gx_off, Gy_off      # bounds come from conservation: Gx + Gx_off = 1
species Px <= 79, Py <= 79          # copy numbers kept in 0..79

Gx -> Gx + Px            @ sx
Gy -> Gy + Py            @ sy
Px -> 0                  @ dx
Py -> 0                  @ dy
bind_y: Gy + 2 Px <-> Gy_off @ by, uy
bind_x: Gx + 2 Py <-> Gx_off @ bx, ux

init Gx = 1, Gy = 1                 # everything else starts at 0

observe x_wins = Px > Py

@solve(method = tdvp, dt = 0.005, t_end = 40, batch = 2000)
@network(nade, hidden = 16)
"""

SCHLOGL2D = """\
# schlogl2d.crn: Schlögl's bistable reaction on a 3x3 grid, with diffusion
model schlogl2d
kinetics power
param c1 = 2.676, c2 = 0.040, c3 = 108.102, c4 = 37.881, d = 8.2207
lattice grid(3, 3)
species X <= 84
2 X -> 3 X @ c1
3 X -> 2 X @ c2
0 -> X     @ c3
X -> 0     @ c4
diffuse X @ d
init X = 50
observe low  = all(X <= 15)
observe high = all(X >= 25)
@solve(method = ngd, dt = 1e-5, t_end = 1, batch = 5000, lr = 0.8)
@sampling(mixture, uniform = 0.1)
@rare(low)
"""

PYTHON_EXAMPLE = """
    species X <= 60
    0 -> X @ 10
    X -> 0 @ 1
    init X = 0
"""


def _md_blocks() -> list[str]:
    if not LANGUAGE_MD.is_file():
        return []
    return re.findall(r"```(?:python)?\n(.*?)```", LANGUAGE_MD.read_text(encoding="utf-8"), re.S)


@pytest.mark.skipif(not LANGUAGE_MD.is_file(), reason="shared/LANGUAGE.md not present")
def test_examples_here_are_the_language_md_text():
    blocks = _md_blocks()
    assert TOGGLE in blocks
    assert SCHLOGL2D in blocks
    assert any(PYTHON_EXAMPLE.strip() in b for b in blocks)


def test_toggle_switch_ir():
    m = crnlang.parse(TOGGLE)
    assert m.name == "toggle_switch"
    assert m.kinetics == "power"
    assert m.species_names == ("Gx", "Gy", "Gx_off", "Gy_off", "Px", "Py")
    assert [(s.lo, s.hi) for s in m.species] == [(0, None)] * 4 + [(0, 79)] * 2
    assert m.param_values == {"sx": 50, "sy": 50, "dx": 1, "dy": 1, "bx": 1e-4, "by": 1e-4,
                              "ux": 0.1, "uy": 0.1}
    assert [r.label for r in m.reactions] == ["r1", "r2", "r3", "r4", "bind_y_fwd", "bind_y_rev",
                                              "bind_x_fwd", "bind_x_rev"]
    by = m.reactions[4]
    assert by.reactants == (("Gy", 1), ("Px", 2)) and by.products == (("Gy_off", 1),)
    assert by.rate == ir.ParamRef("by") and by.mass_action
    assert m.reactions[5].reactants == (("Gy_off", 1),)
    assert m.reactions[5].products == (("Gy", 1), ("Px", 2))
    assert m.reactions[0].change() == {"Px": 1}
    assert m.init_of("Gx") == ir.InitDist("fixed", (1,)) and m.init_of("Px").args == (0,)
    assert set(m.init) == {"Gx", "Gy"}
    (obs,) = m.observables
    assert obs.name == "x_wins" and obs.boolean and not obs.absorbing
    s = m.settings
    assert (s.method, s.dt, s.t_end, s.batch, s.network, s.hidden) == ("tdvp", 0.005, 40, 2000, "nade", 16)
    assert s.dtype == "float64" and s.lr == 1.0
    assert m.lattice is None
    # power kinetics: k * Gy * Px^2
    state = {"Gx": 1, "Gy": 1, "Gx_off": 0, "Gy_off": 0, "Px": 7, "Py": 3}
    assert propensity(m, by, state) == pytest.approx(1e-4 * 49)


def test_schlogl2d_ir():
    m = crnlang.parse(SCHLOGL2D)
    assert m.lattice == ir.Lattice("grid", (3, 3), False)
    assert m.species_names == tuple(f"X[{r},{c}]" for r in range(3) for c in range(3))
    assert all(s.hi == 84 and s.base == "X" for s in m.species)
    assert m.species[5].site == (1, 2)
    assert len(m.reactions) == 9 * 4 + 24 == 60
    hops = [r for r in m.reactions if "hop" in r.label]
    assert len(hops) == 24
    edges = {(r.reactants[0][0], r.products[0][0]) for r in hops}
    assert ("X[1,1]", "X[0,1]") in edges and ("X[0,1]", "X[1,1]") in edges
    assert ("X[0,0]", "X[1,1]") not in edges and ("X[0,2]", "X[0,0]") not in edges
    assert all(r.mass_action and r.rate == ir.ParamRef("d") for r in hops)
    autocat = [r for r in m.reactions if r.reactants == (("X[2,1]", 2),)]
    assert len(autocat) == 1 and autocat[0].products == (("X[2,1]", 3),)
    assert all(m.init_of(n) == ir.InitDist("fixed", (50,)) for n in m.species_names)
    low, high = m.observables
    assert low.boolean and high.boolean
    state = {n: 50 for n in m.species_names}
    assert evaluate(low.expr, m.param_values, state) is False
    assert evaluate(high.expr, m.param_values, state) is True
    state["X[2,2]"] = 20
    assert evaluate(high.expr, m.param_values, state) is False
    state = {n: 15 for n in m.species_names}
    assert evaluate(low.expr, m.param_values, state) is True
    s = m.settings
    assert (s.method, s.dt, s.t_end, s.batch, s.lr) == ("ngd", 1e-5, 1, 5000, 0.8)
    assert (s.sampling, s.uniform, s.rare) == ("mixture", 0.1, ("low",))


def test_python_example_ir():
    m = crnlang.parse(PYTHON_EXAMPLE)
    assert m.name == "model" and m.kinetics == "binomial"
    assert m.species == (ir.Species("X", 0, 60, "X", None),)
    assert [(r.reactants, r.products, r.rate) for r in m.reactions] == [
        ((), (("X", 1),), ir.Const(10.0)), ((("X", 1),), (), ir.Const(1.0))]
    assert m.init == {"X": ir.InitDist("fixed", (0,))}
    assert m.settings == ir.Settings()
