"""The rules an initial marginal must meet inside its species' bounds, written once: the code
generator checks them (to point at the model's line), the kernel's marginals enforce them."""
from __future__ import annotations


def check_initial(kind: str, args: tuple, lo: int, hi: int | None) -> None:
    """Raise ValueError when marginal ``kind`` ("Fixed", "Uniform", "Binomial", "Poisson") with
    ``args`` puts no probability inside ``lo..hi`` (``hi`` None: unbounded)."""
    if kind == "Fixed":
        (value,) = args
        if value < lo or (hi is not None and value > hi):
            raise ValueError(f"initial value {value} outside the bounds {lo}..{hi}")
    elif kind == "Uniform":
        a, b = args
        if max(a, lo) > (b if hi is None else min(b, hi)):
            raise ValueError(f"uniform({a}, {b}) has no value inside the bounds {lo}..{hi}")
    elif kind == "Binomial":
        n, p = args
        if not 0.0 < p < 1.0:
            raise ValueError("binomial p must be strictly between 0 and 1 (use a fixed value)")
        if max(0, lo) > (n if hi is None else min(n, hi)):
            raise ValueError(f"binomial({n}, {p}) has no value inside the bounds {lo}..{hi}")
    elif kind == "Poisson":
        (lam,) = args
        if not lam > 0.0:
            raise ValueError("poisson rate must be positive (use a fixed 0)")
    else:
        raise ValueError(f"unknown initial distribution {kind!r}")
