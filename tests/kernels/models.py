"""Test models of the reference backends, as .crn text parsed by ``crnlang.parse``."""
from __future__ import annotations

import crnlang


def _solve_line(settings: dict) -> str:
    return "@solve(" + ", ".join(f"{k} = {v}" for k, v in settings.items()) + ")" if settings else ""


def immigration_death(k=10.0, g=1.0, hi=60, init="X = 0", **settings):
    """0 -> X @ k, X -> 0 @ g, X <= hi (``hi=None``: unbounded)."""
    bound = f" <= {hi}" if hi is not None else ""
    return crnlang.parse(f"""
        model immdeath
        species X{bound}
        birth: 0 -> X @ {k}
        death: X -> 0 @ {g}
        init {init}
        {_solve_line(settings)}
    """)


def toggle_switch(M=80, **settings):
    """The toggle switch of LANGUAGE.md with Px, Py <= M - 1."""
    return crnlang.parse(f"""
        model toggle_switch
        kinetics power
        param sx = 50, sy = 50, dx = 1, dy = 1, bx = 1e-4, by = 1e-4, ux = 0.1, uy = 0.1
        species Gx, Gy, Gx_off, Gy_off
        species Px <= {M - 1}, Py <= {M - 1}
        Gx -> Gx + Px            @ sx
        Gy -> Gy + Py            @ sy
        Px -> 0                  @ dx
        Py -> 0                  @ dy
        bind_y: Gy + 2 Px <-> Gy_off @ by, uy
        bind_x: Gx + 2 Py <-> Gx_off @ bx, ux
        init Gx = 1, Gy = 1
        observe x_wins = Px > Py
        {_solve_line(settings)}
    """)


def schlogl_chain(n_sites=2, hi=84, absorb_low=False, **settings):
    """Schlögl's model on an open chain of ``n_sites`` sites (species X[0], X[1], ...)."""
    absorb = "absorb low" if absorb_low else ""
    return crnlang.parse(f"""
        model schlogl{n_sites}
        kinetics power
        param c1 = 2.676, c2 = 0.040, c3 = 108.102, c4 = 37.881, d = 8.2207
        lattice chain({n_sites})
        species X <= {hi}
        2 X -> 3 X @ c1
        3 X -> 2 X @ c2
        0 -> X     @ c3
        X -> 0     @ c4
        diffuse X @ d
        init X = 50
        observe total = sum(X)
        observe low  = all(X <= 15)
        observe high = all(X >= 25)
        {absorb}
        {_solve_line(settings)}
    """)
