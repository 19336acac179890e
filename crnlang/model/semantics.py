"""The meaning of the IR, as a slow scalar interpreter.

This is the test oracle for the generated kernels (they must agree with it on random
states) and the evaluator for parameter expressions. Backends never call it in a hot loop.
"""
from __future__ import annotations

import math
from typing import Mapping

from .ir import (KINETICS, Binary, Call, Compare, Const, Expr, Logic, Model, ParamRef, Reaction,
                 SpeciesRef, TimeRef, Unary)

_CALLS = {
    "exp": math.exp, "log": math.log, "sqrt": math.sqrt, "sin": math.sin, "cos": math.cos,
    "abs": abs, "min": min, "max": max,
}
_COMPARE = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


def evaluate(expr: Expr, params: Mapping[str, float], state: Mapping[str, float] | None = None,
             t: float = 0.0):
    """Value of ``expr`` (a float, or a bool for conditions).

    ``params``: name -> value; ``state``: species name -> copy number; ``t``: time.
    Raises KeyError for a name missing from params/state, ValueError/ZeroDivisionError/
    OverflowError from the arithmetic itself.
    """
    state = state or {}
    if isinstance(expr, Const):
        return expr.value
    if isinstance(expr, ParamRef):
        return params[expr.name]
    if isinstance(expr, SpeciesRef):
        return state[expr.name]
    if isinstance(expr, TimeRef):
        return t
    if isinstance(expr, Unary):
        v = evaluate(expr.arg, params, state, t)
        return (not v) if expr.op == "not" else -v
    if isinstance(expr, Binary):
        a = evaluate(expr.left, params, state, t)
        b = evaluate(expr.right, params, state, t)
        if expr.op == "+":
            return a + b
        if expr.op == "-":
            return a - b
        if expr.op == "*":
            return a * b
        if expr.op == "/":
            return a / b
        return float(a) ** b
    if isinstance(expr, Compare):
        return _COMPARE[expr.op](evaluate(expr.left, params, state, t),
                                 evaluate(expr.right, params, state, t))
    if isinstance(expr, Logic):
        values = [bool(evaluate(a, params, state, t)) for a in expr.args]
        return all(values) if expr.op == "and" else any(values)
    if isinstance(expr, Call):
        return _CALLS[expr.func](*[evaluate(a, params, state, t) for a in expr.args])
    raise TypeError(f"not an expression node: {expr!r}")


def mass_action_expr(kinetics: str, reactants) -> Expr | None:
    """h(x), the mass-action term of ``reactants`` ((name, stoichiometry), ...) under a kinetics
    convention, as an expression; None when there are no reactants (h = 1). The one definition
    of h: the kernel compiles it, this interpreter evaluates it, SBML export writes it.

        binomial: prod_i C(x_i, s_i) = x (x-1)...(x-s+1) / s!    falling: x (x-1)...(x-s+1)
        power:    prod_i x_i^s_i
    """
    if kinetics not in KINETICS:
        raise ValueError(f"unknown kinetics {kinetics!r}")
    factors: list[Expr] = []
    divisor = 1
    for name, s in reactants:
        x = SpeciesRef(name)
        if kinetics == "power":
            factors.append(x if s == 1 else Binary("^", x, Const(float(s))))
            continue
        factors.append(x)
        factors += [Binary("-", x, Const(float(j))) for j in range(1, s)]
        if kinetics == "binomial":
            divisor *= math.factorial(s)
    if not factors:
        return None
    h = factors[0]
    for f in factors[1:]:
        h = Binary("*", h, f)
    return Binary("/", h, Const(float(divisor))) if divisor != 1 else h


def mass_action_term(kinetics: str, reactants, state: Mapping[str, float]) -> float:
    """h(x) at one full state (``mass_action_expr`` evaluated)."""
    h = mass_action_expr(kinetics, reactants)
    return 1.0 if h is None else float(evaluate(h, {}, state))


def propensity(model: Model, reaction: Reaction, state: Mapping[str, float], t: float = 0.0) -> float:
    """a_k(x): the untruncated propensity of one reaction at one full state."""
    rate = evaluate(reaction.rate, model.param_values, state, t)
    if not reaction.mass_action:
        return float(rate)
    return float(rate) * mass_action_term(model.kinetics, reaction.reactants, state)


_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}


def interval_region(expr: Expr, params: Mapping[str, float]) -> dict[str, tuple[float, float]] | None:
    """The condition ``expr`` as a product of per-species intervals of counts,
    {species: (lo, hi)} (inclusive; -inf/inf where open), when it is one: an ``and`` of
    comparisons between one species and a constant (``X <= 15``, ``3 < Y``, ``X == 4``,
    ``not (X > 3)``), as ``all(X <= 15)`` on a lattice lowers to. None for anything else
    (``or``, two species in one comparison, ``t``, ``!=``)."""
    region: dict[str, tuple[float, float]] = {}
    for term in _and_terms(expr):
        bounds = _comparison_interval(term, params)
        if bounds is None:
            return None
        if bounds is True:
            continue
        name, lo, hi = bounds
        old_lo, old_hi = region.get(name, (-math.inf, math.inf))
        region[name] = (max(lo, old_lo), min(hi, old_hi))
    return region


def _and_terms(expr: Expr) -> list[Expr]:
    if isinstance(expr, Logic) and expr.op == "and":
        return [t for arg in expr.args for t in _and_terms(arg)]
    return [expr]


def _comparison_interval(term: Expr, params):
    """(species, lo, hi) of one comparison with a constant; True for a constant true term;
    None when the term is not of that form."""
    if not _reads_state(term):                   # a constant term: true is no constraint
        try:
            return True if bool(evaluate(term, params)) else None
        except (ArithmeticError, ValueError, KeyError):
            return None
    negate = False
    if isinstance(term, Unary) and term.op == "not":
        negate, term = True, term.arg
    if not isinstance(term, Compare):
        return None
    op, left, right = term.op, term.left, term.right
    if isinstance(right, SpeciesRef) and not isinstance(left, SpeciesRef):
        op, left, right = _FLIPPED[op], right, left
    if not isinstance(left, SpeciesRef) or _reads_state(right):
        return None
    op = _NEGATED[op] if negate else op
    try:
        c = float(evaluate(right, params))
    except (ArithmeticError, ValueError, KeyError):
        return None
    intervals = {"<": (-math.inf, math.ceil(c) - 1), "<=": (-math.inf, math.floor(c)),
                 ">": (math.floor(c) + 1, math.inf), ">=": (math.ceil(c), math.inf),
                 "==": (c, c) if c == int(c) else (1.0, 0.0)}
    if op not in intervals:
        return None
    lo, hi = intervals[op]
    return left.name, lo, hi


def _reads_state(expr: Expr) -> bool:
    from .ir import species_in, uses_time

    return bool(species_in(expr)) or uses_time(expr)
