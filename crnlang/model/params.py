"""The parameter transform: ``with_params(model, {name: value})`` -> the model with those
params set, the params defined from them re-evaluated in order and the constant rates
checked again (finite, non-negative).
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Mapping

from ..errors import CRNNameError, CRNSemanticError
from . import ir
from .semantics import evaluate
from .source import suggest


def with_params(model: ir.Model, values: Mapping[str, float]) -> ir.Model:
    """``model`` with some params set; params defined from them are re-evaluated in order."""
    _check_known(model, values)
    current: dict[str, float] = {}
    params = []
    for p in model.params:
        expr, value = _new_value(p, values, current)
        current[p.name] = value
        params.append(replace(p, expr=expr, value=value))
    _check_constant_rates(model, current)
    return replace(model, params=tuple(params))


def _check_known(model: ir.Model, values: Mapping[str, float]) -> None:
    """Every name in ``values`` is a param of ``model``."""
    known = [p.name for p in model.params]
    for name in values:
        if name not in known:
            raise CRNNameError(f"unknown param '{name}'", None,
                               suggest(name, known) or (f"params: {', '.join(known)}" if known else
                                                             "this model has no params"))


def _new_value(p: ir.Param, values: Mapping[str, float],
               current: Mapping[str, float]) -> tuple[ir.Expr, float]:
    """(expression, finite value) of param ``p``: the given value, or its own expression
    evaluated with the params above it (``current``)."""
    if p.name in values:
        try:
            value = float(values[p.name])
        except (TypeError, ValueError):
            raise CRNSemanticError(f"param '{p.name}' must be a number, got {values[p.name]!r}") from None
        expr: ir.Expr = ir.Const(value, p.loc)
    else:
        expr = p.expr
        try:
            value = float(evaluate(expr, current))
        except (ValueError, ZeroDivisionError, OverflowError) as e:
            raise CRNSemanticError(f"cannot evaluate param '{p.name}': {e}", p.loc) from None
    if not math.isfinite(value):
        raise CRNSemanticError(f"param '{p.name}' is not finite ({value})", p.loc)
    return expr, value


def _check_constant_rates(model: ir.Model, param_values: Mapping[str, float]) -> None:
    """Rates that depend on no species and not on time stay finite and non-negative."""
    for r in model.reactions:
        if not ir.species_in(r.rate) and not ir.uses_time(r.rate):
            try:
                rate = float(evaluate(r.rate, param_values))
            except (ValueError, ZeroDivisionError, OverflowError) as e:
                raise CRNSemanticError(f"cannot evaluate the rate of '{r.label}': {e}", r.loc) from None
            if not math.isfinite(rate) or rate < 0:
                raise CRNSemanticError(f"the rate of '{r.label}' becomes {rate:g}", r.loc,
                                       "rates must be finite and non-negative")
