"""Mass-action terms as expressions, and recognising them inside a rate law.

h(x) itself is ``crnlang.model.semantics.mass_action_expr`` (``("binomial", (("P", 2),))`` is
``P * (P - 1) / 2``), which SBML export writes out.

``split_mass_action(law, reactants, kinetics)`` answers the import question "is this kinetic
law ``rate * h(x)`` for this kinetics convention, with ``rate`` free of the reactants?", and
returns that rate. The law is flattened into a product of factors; factors that read a
reactant must multiply to ``c * h(x)`` for a constant ``c`` (checked on many states; they may
use no parameters or time), and ``rate`` is ``c`` times the other factors.
"""
from __future__ import annotations

import math
import random

from ..model.ir import Binary, Const, Expr, ParamRef, TimeRef, Unary, species_in
from ..model.semantics import evaluate, mass_action_term

_N_CHECKS = 24


def _factors(expr: Expr) -> tuple[list[Expr], list[Expr]]:
    """expr as prod(numerator) / prod(denominator)."""
    if isinstance(expr, Binary) and expr.op == "*":
        ln, ld = _factors(expr.left)
        rn, rd = _factors(expr.right)
        return ln + rn, ld + rd
    if isinstance(expr, Binary) and expr.op == "/":
        ln, ld = _factors(expr.left)
        rn, rd = _factors(expr.right)
        return ln + rd, ld + rn
    if isinstance(expr, Unary) and expr.op == "-":
        n, d = _factors(expr.arg)
        return [Const(-1.0)] + n, d
    return [expr], []


def _has_param_or_time(expr: Expr) -> bool:
    if isinstance(expr, (ParamRef, TimeRef)):
        return True
    from ..model.ir import children

    return any(_has_param_or_time(c) for c in children(expr))


def _product(factors: list[Expr]) -> Expr | None:
    if not factors:
        return None
    out = factors[0]
    for f in factors[1:]:
        out = Binary("*", out, f)
    return out


def _constant_ratio(num: list[Expr], den: list[Expr], reactants, kinetics: str,
                    others: set[str]) -> float | None:
    """c with prod(num)/prod(den) == c * h(x) on every checked state, else None."""
    rng = random.Random(12345)
    ratio = None
    for i in range(_N_CHECKS):
        state = {name: float(s + i if i < 8 else s + rng.randrange(0, 60)) for name, s in reactants}
        state.update({name: float(rng.randrange(1, 40)) for name in others})
        try:
            value = 1.0
            for f in num:
                value *= float(evaluate(f, {}, state))
            for f in den:
                value /= float(evaluate(f, {}, state))
        except (ArithmeticError, ValueError, KeyError):
            return None
        h = mass_action_term(kinetics, reactants, state)
        if h == 0 or not math.isfinite(value):
            return None
        r = value / h
        if ratio is None:
            ratio = r
        elif not math.isclose(r, ratio, rel_tol=1e-9, abs_tol=0.0):
            return None
    return ratio


def split_mass_action(law: Expr, reactants, kinetics: str) -> tuple[Expr, bool] | None:
    """(rate, clean) with ``law == rate * h(x)`` under ``kinetics``, or None.

    ``clean`` is True when the rate needs no numeric factor (the law's constants match the
    convention exactly: ``k*P*(P-1)/2`` is clean under binomial, ``k*P*(P-1)`` under falling).
    """
    names = {n for n, _ in reactants}
    num, den = _factors(law)
    scalar = 1.0
    rate_num: list[Expr] = []
    rate_den: list[Expr] = []
    term_num: list[Expr] = []
    term_den: list[Expr] = []
    for factors, rate_part, term_part, sign in ((num, rate_num, term_num, 1), (den, rate_den, term_den, -1)):
        for f in factors:
            if isinstance(f, Const):
                scalar *= f.value ** sign
            elif species_in(f) & names:
                term_part.append(f)
            else:
                rate_part.append(f)
    if any(_has_param_or_time(f) for f in term_num + term_den):
        return None
    if names:
        others = set().union(*[species_in(f) for f in term_num + term_den]) - names
        c = _constant_ratio(term_num, term_den, reactants, kinetics, others)
        if c is None:
            return None
    else:
        if term_num or term_den:
            return None
        c = 1.0
    numeric = scalar * c
    if numeric == 0 or not math.isfinite(numeric):
        return None
    numeric = _snap(numeric)
    top = _product(rate_num)
    bottom = _product(rate_den)
    inverse = _snap(1.0 / numeric)
    if numeric != 1.0 and inverse.is_integer() and inverse > 0:
        bottom = Const(inverse) if bottom is None else Binary("*", Const(inverse), bottom)
    elif numeric != 1.0:
        top = Const(numeric) if top is None else Binary("*", Const(numeric), top)
    if top is None:
        top = Const(1.0)
    rate = top if bottom is None else Binary("/", top, bottom)
    return rate, numeric == 1.0


def _snap(v: float) -> float:
    """Round to a nearby integer when within floating-point noise."""
    r = round(v)
    return float(r) if r != 0 and math.isclose(v, r, rel_tol=1e-12) else v
