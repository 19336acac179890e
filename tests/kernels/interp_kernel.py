"""TEMPORARY STAND-IN (reference helper, issue 5): an interpreted kernel for tests.

Builds an object with the names of the kernel contract (crnlang/runtime/kernel.py) from a
``Model`` by interpreting its expressions with torch. No conservation-law elimination
(L == L_full): the reduced state is the full state. Used only until ``crnlang.compile``
lands; the FSP/SSA tests then compile the same models with the real code generator.
"""
from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import torch

from crnlang.model.ir import (Binary, Call, Compare, Const, Logic, Model, ParamRef, SpeciesRef,
                              TimeRef, Unary, uses_time)
from crnlang.runtime.kernel import KernelInfo

_CALLS = {"exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt, "sin": torch.sin,
          "cos": torch.cos, "abs": torch.abs}


def _eval(expr, params, cols, t, like):
    """Value of ``expr`` on a batch: cols name -> (B,) float tensor."""
    if isinstance(expr, Const):
        return torch.full_like(like, float(expr.value))
    if isinstance(expr, ParamRef):
        return torch.full_like(like, float(params[expr.name]))
    if isinstance(expr, SpeciesRef):
        return cols[expr.name]
    if isinstance(expr, TimeRef):
        return torch.full_like(like, float(t))
    sub = [(_eval(c, params, cols, t, like)) for c in
           ((expr.arg,) if isinstance(expr, Unary) else
            (expr.left, expr.right) if isinstance(expr, (Binary, Compare)) else expr.args)]
    if isinstance(expr, Unary):
        return ~sub[0].bool() if expr.op == "not" else -sub[0]
    if isinstance(expr, Binary):
        a, b = sub
        return {"+": a + b, "-": a - b, "*": a * b}.get(expr.op) if expr.op in "+-*" else (
            a / b if expr.op == "/" else a ** b)
    if isinstance(expr, Compare):
        a, b = sub
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b,
                "!=": a != b}[expr.op]
    if isinstance(expr, Logic):
        out = sub[0].bool()
        for s in sub[1:]:
            out = (out & s.bool()) if expr.op == "and" else (out | s.bool())
        return out
    if isinstance(expr, Call):
        if expr.func in ("min", "max"):
            out = sub[0]
            for s in sub[1:]:
                out = torch.minimum(out, s) if expr.func == "min" else torch.maximum(out, s)
            return out
        return _CALLS[expr.func](sub[0])
    raise TypeError(expr)


def _mass_action(kinetics, reactants, cols):
    like = next(iter(cols.values()))
    h = torch.ones_like(like)
    for name, s in reactants:
        x = cols[name]
        if kinetics == "power":
            h = h * x ** s
        else:
            f = torch.ones_like(x)
            for j in range(s):
                f = f * (x - j)
            h = h * (f / math.factorial(s) if kinetics == "binomial" else f)
            h = torch.where(x >= s, h, torch.zeros_like(h))
    return h


def _init_values(dist, lo, hi):
    """(values, log-probabilities) of one species' initial distribution within lo..hi."""
    if dist.kind == "fixed":
        return [int(dist.args[0])], [0.0]
    top = hi if hi is not None else 10_000
    vals = list(range(lo, top + 1))
    if dist.kind == "poisson":
        lam = dist.args[0]
        lps = [-lam + v * math.log(lam) - math.lgamma(v + 1) for v in vals]
    elif dist.kind == "uniform":
        a, b = int(dist.args[0]), int(dist.args[1])
        vals = list(range(a, b + 1))
        lps = [-math.log(b - a + 1)] * len(vals)
    elif dist.kind == "binomial":
        n, p = int(dist.args[0]), dist.args[1]
        vals = list(range(0, n + 1))
        lps = [math.log(math.comb(n, v)) + v * math.log(p) + (n - v) * math.log1p(-p) for v in vals]
    else:
        raise ValueError(dist.kind)
    keep = [(v, lp) for v, lp in zip(vals, lps) if lp > -745]
    return [v for v, _ in keep], [lp for _, lp in keep]


def build_kernel(model: Model):
    """A namespace following the kernel contract, interpreting ``model``."""
    names = model.species_names
    L = len(names)
    params = model.param_values
    lower = tuple(s.lo for s in model.species)
    upper = tuple(s.hi for s in model.species)
    change = torch.zeros(len(model.reactions), L, dtype=torch.int64)
    for k, r in enumerate(model.reactions):
        for name, d in r.change().items():
            change[k, names.index(name)] = d
    lo_t = torch.tensor(lower, dtype=torch.int64)
    hi_t = torch.tensor([h if h is not None else 2**62 for h in upper], dtype=torch.int64)

    def _float(x):
        return x.to(torch.float64) if not x.is_floating_point() else x

    def _cols(x):
        xf = _float(x)
        return {n: xf[:, i] for i, n in enumerate(names)}

    def full_state(x):
        return x

    def in_support(x):
        xi = x.to(torch.int64)
        return ((xi >= lo_t) & (xi <= hi_t)).all(dim=1)

    def propensities(x, t=0.0):
        cols = _cols(x)
        like = next(iter(cols.values()))
        out = []
        for r in model.reactions:
            rate = _eval(r.rate, params, cols, t, like)
            out.append(rate * _mass_action(model.kinetics, r.reactants, cols) if r.mass_action else rate)
        return torch.stack(out, dim=1)

    def fires(x):
        nxt = x.to(torch.int64)[:, None, :] + change[None]
        return ((nxt >= lo_t) & (nxt <= hi_t)).all(dim=2)

    def absorbing(x):
        cols = _cols(x)
        like = next(iter(cols.values()))
        out = torch.zeros(x.shape[0], dtype=torch.bool)
        for o in model.observables:
            if o.absorbing:
                out |= _eval(o.expr, params, cols, 0.0, like).bool()
        return out

    def out_rates(x, t=0.0):
        a = propensities(x, t) * fires(x)
        return torch.where(absorbing(x)[:, None], torch.zeros_like(a), a)

    def observables(x, t=0.0):
        cols = _cols(x)
        like = next(iter(cols.values()))
        res = {}
        for o in model.observables:
            v = _eval(o.expr, params, cols, t, like)
            res[o.name] = v.bool() if o.boolean else v.to(like.dtype)
        return res

    per_species = [_init_values(model.init_of(n), s.lo, s.hi) for n, s in zip(names, model.species)]

    def init_support():
        grids = [vals for vals, _ in per_species]
        if math.prod(len(g) for g in grids) > 2_000_000:
            return None
        return torch.tensor(list(itertools.product(*grids)), dtype=torch.int64).reshape(-1, L)

    def init_log_prob(x):
        xi = x.to(torch.int64)
        out = torch.zeros(x.shape[0], dtype=torch.float64)
        for i, (vals, lps) in enumerate(per_species):
            table = dict(zip(vals, lps))
            out += torch.tensor([table.get(int(v), -math.inf) for v in xi[:, i]], dtype=torch.float64)
        return out

    def init_sample(n, generator=None):
        cols = []
        for vals, lps in per_species:
            w = torch.tensor(lps, dtype=torch.float64).exp()
            idx = torch.multinomial(w / w.sum(), n, replacement=True, generator=generator)
            cols.append(torch.tensor(vals, dtype=torch.int64)[idx])
        return torch.stack(cols, dim=1)

    info = KernelInfo(name=model.name, source=model.source, crnlang_version="stand-in",
                      kinetics=model.kinetics, settings=model.settings.to_dict(), lattice=None)
    return SimpleNamespace(
        NAME=model.name, SPECIES=names, ALL_SPECIES=names, ELIMINATED={}, LOWER=lower, UPPER=upper,
        FULL_LOWER=lower, FULL_UPPER=upper, REACTIONS=tuple(r.label for r in model.reactions),
        CHANGE=change, CHANGE_FULL=change,
        TIME_DEPENDENT=any(uses_time(r.rate) for r in model.reactions),
        OBSERVABLES=tuple(o.name for o in model.observables),
        BOOLEAN=tuple(o.boolean for o in model.observables),
        ABSORBING=tuple(o.name for o in model.observables if o.absorbing), MODEL=info,
        full_state=full_state, in_support=in_support, propensities=propensities, fires=fires,
        out_rates=out_rates, observables=observables, absorbing=absorbing,
        init_log_prob=init_log_prob, init_sample=init_sample, init_support=init_support)


def kernel_for(model: Model):
    """crnlang.compile(model) once the code generator exists, else this stand-in."""
    try:
        import crnlang.codegen.emit  # noqa: F401
    except ImportError:
        return build_kernel(model)
    import crnlang

    return crnlang.compile(model)
