"""Test models as IR, built by hand (TEMPORARY STAND-IN until crnlang.parse lands).

Each function returns a ``Model``; ``text`` versions of the same models live beside them so
the tests can switch to ``crnlang.parse`` without changing their numbers.
"""
from __future__ import annotations

from crnlang.model.ir import (Compare, Const, InitDist, Logic, Model, Observable, Param,
                              Reaction, Settings, Species, SpeciesRef)


def _rate(v):
    return Const(float(v))


def _model(name, kinetics, species, reactions, init, observables=(), **settings):
    sp = tuple(Species(n, lo=0, hi=hi, base=n.split("[")[0]) for n, hi in species)
    rx = tuple(Reaction(label, tuple(reac), tuple(prod), _rate(k)) for label, reac, prod, k in reactions)
    return Model(name=name, kinetics=kinetics, params=(), species=sp, reactions=rx,
                 init=init, observables=tuple(observables), settings=Settings(**settings))


def immigration_death(k=10.0, g=1.0, hi=60, init=None, **settings):
    """0 -> X @ k, X -> 0 @ g."""
    return _model("immdeath", "binomial", [("X", hi)],
                  [("birth", (), (("X", 1),), k), ("death", (("X", 1),), (), g)],
                  {"X": init or InitDist("fixed", (0,))}, **settings)


def toggle_switch(M=80, **settings):
    """The toggle switch of LANGUAGE.md with Px, Py <= M - 1 (no elimination here)."""
    sx = sy = 50.0
    b, u = 1e-4, 0.1
    species = [("Gx", 1), ("Gy", 1), ("Gx_off", 1), ("Gy_off", 1), ("Px", M - 1), ("Py", M - 1)]
    reactions = [
        ("synx", (("Gx", 1),), (("Gx", 1), ("Px", 1)), sx),
        ("syny", (("Gy", 1),), (("Gy", 1), ("Py", 1)), sy),
        ("decx", (("Px", 1),), (), 1.0),
        ("decy", (("Py", 1),), (), 1.0),
        ("bind_y_fwd", (("Gy", 1), ("Px", 2)), (("Gy_off", 1),), b),
        ("bind_y_rev", (("Gy_off", 1),), (("Gy", 1), ("Px", 2)), u),
        ("bind_x_fwd", (("Gx", 1), ("Py", 2)), (("Gx_off", 1),), b),
        ("bind_x_rev", (("Gx_off", 1),), (("Gx", 1), ("Py", 2)), u),
    ]
    obs = [Observable("x_wins", Compare(">", SpeciesRef("Px"), SpeciesRef("Py")), True)]
    init = {"Gx": InitDist("fixed", (1,)), "Gy": InitDist("fixed", (1,))}
    return _model("toggle_switch", "power", species, reactions, init, obs, **settings)


def schlogl_chain(n_sites=2, hi=84, absorb_low=False, **settings):
    """Schlögl's model on an open chain of ``n_sites`` sites, power kinetics."""
    names = [f"X[{i}]" for i in range(n_sites)]
    reactions = []
    for i, x in enumerate(names):
        reactions += [(f"auto_{i}", ((x, 2),), ((x, 3),), 2.676),
                      (f"back_{i}", ((x, 3),), ((x, 2),), 0.040),
                      (f"in_{i}", (), ((x, 1),), 108.102),
                      (f"out_{i}", ((x, 1),), (), 37.881)]
    for i in range(n_sites - 1):
        reactions += [(f"hop_{i}_{i+1}", ((names[i], 1),), ((names[i + 1], 1),), 8.2207),
                      (f"hop_{i+1}_{i}", ((names[i + 1], 1),), ((names[i], 1),), 8.2207)]
    low = Logic("and", tuple(Compare("<=", SpeciesRef(x), Const(15.0)) for x in names))
    high = Logic("and", tuple(Compare(">=", SpeciesRef(x), Const(25.0)) for x in names))
    obs = [Observable("low", low, True, absorbing=absorb_low), Observable("high", high, True)]
    init = {x: InitDist("fixed", (50,)) for x in names}
    return _model(f"schlogl{n_sites}", "power", [(x, hi) for x in names], reactions, init, obs,
                  **settings)


__all__ = ["immigration_death", "toggle_switch", "schlogl_chain", "Param"]
