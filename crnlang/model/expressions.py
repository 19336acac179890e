"""Stage 2 of lowering, expressions: ``ast`` expression nodes -> ``ir.Expr``.

Names are resolved in a ``Scope`` (params, species, time, func arguments, the lattice site);
user funcs are inlined by copying, ``pi`` becomes a constant, ``X[i]`` a site's species, and
the lattice reductions ``sum/mean/all/any`` chains over the sites (balanced ``+`` trees).
Constant expressions fold to numbers (``constant``, ``integer``) with the params' values.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Mapping

from ..errors import CRNNameError, CRNSemanticError, Loc
from ..syntax import ast
from ..vocabulary import BUILTIN_FUNCS, REDUCTIONS
from . import ir
from .lattice import site_label, sites_of
from .semantics import evaluate
from .source import Source, error_at, suggest, with_article

MAX_FUNC_DEPTH = 16
MAX_NODES = 2_000_000  # expression nodes in the whole lowered model (funcs inline by copying)
MAX_INTEGER = 2 ** 31 - 1   # counts, bounds and stoichiometries: trajectories hold int32 counts
INTEGER_HINT = "copy numbers, bounds and stoichiometries are at most 2^31 - 1"


class PoisonedName(Exception):
    """A name whose own definition already failed: skip silently (the first error is reported)."""


def balanced_sum(terms: list[ir.Expr], loc: Loc | None) -> ir.Expr:
    """t0 + t1 + ... as a balanced tree (depth log2 n, so big lattices do not nest deeply)."""
    if len(terms) == 1:
        return terms[0]
    mid = len(terms) // 2
    return ir.Binary("+", balanced_sum(terms[:mid], loc), balanced_sum(terms[mid:], loc), loc)


@dataclass
class Scope:
    """What names an expression may use, and where it lives.

    ``site``: the lattice site whose species copies bare species names mean (None: outside any
    site, so a bare lattice species is an error). ``locals``: func arguments, already lowered.
    """

    what: str                       # "rate", "param", "observable", ... (for messages)
    species: bool = True
    time: bool = True
    params: set[str] | None = None  # visible params (None: all)
    site: tuple[int, ...] | None = None
    locals: Mapping[str, ir.Expr] = field(default_factory=dict)
    inlining: tuple[str, ...] = ()


class ExpressionLowerer:
    """Lowers expressions (``ast`` nodes) to ``ir.Expr`` against the names declared so far.

    The declaration stage (``lower.Lowerer``, a subclass) fills the tables: ``kinds`` (name
    -> (kind, where)), ``poisoned``, ``param_values``, ``funcs``, ``lattice``, ``observables``.
    """

    def __init__(self):
        self.kinds: dict[str, tuple[str, Source, ast.Pos]] = {}  # name -> (kind, where)
        self.poisoned: set[str] = set()
        self.param_values: dict[str, float] = {}
        self.funcs: dict[str, tuple[ast.FuncStmt, Source]] = {}
        self.lattice: ir.Lattice | None = None
        self.observables: dict[str, ir.Observable] = {}
        self.nodes = 0

    # -------------------------------------------------------- constants
    def constant(self, node: ast.Node, src: Source, what: str) -> float:
        """Fold an expression of numbers, params and funcs to a float."""
        expr = self.expr(node, src, Scope(what, species=False, time=False))
        if ir.is_boolean(expr):
            raise error_at(CRNSemanticError, f"{what} must be a number, not a condition", src, node.pos)
        return self.fold(expr, node, src, f"cannot evaluate {what}", f"{what} is not finite")

    def fold(self, expr: ir.Expr, node: ast.Node, src: Source, cannot: str, not_finite: str) -> float:
        """The finite float value of a constant expression; ``cannot``/``not_finite`` start
        the error messages."""
        try:
            value = float(evaluate(expr, self.param_values))
        except (ValueError, ZeroDivisionError, OverflowError, TypeError) as e:
            raise error_at(CRNSemanticError, f"{cannot}: {e}", src, node.pos) from None
        if not math.isfinite(value):
            raise error_at(CRNSemanticError, f"{not_finite} ({value})", src, node.pos)
        return value

    def integer(self, node: ast.Node, src: Source, what: str, lo: int | None = 0,
                hi: int = MAX_INTEGER, hint: str | None = INTEGER_HINT) -> int:
        value = self.constant(node, src, what)
        if not math.isfinite(value) or value != int(value) or (lo is not None and value < lo):
            need = "a whole number" if lo is None else ("a non-negative whole number" if lo == 0 else
                                                        f"a whole number >= {lo}")
            raise error_at(CRNSemanticError, f"{what} must be {need}, got {value:g}", src, node.pos)
        if abs(value) > hi:
            raise error_at(CRNSemanticError, f"{what} is {value:.3g}, more than the largest allowed, "
                           f"{hi:,}", src, node.pos, hint)
        return int(value)

    # -------------------------------------------------------- expressions
    def expr(self, node: ast.Node, src: Source, scope: Scope) -> ir.Expr:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise error_at(CRNSemanticError, f"the model's expressions grow past {MAX_NODES} nodes", src, node.pos,
                           "funcs are inlined by copying; avoid funcs that call other funcs many times")
        loc = src.loc(node.pos)
        if isinstance(node, ast.Num):
            return ir.Const(node.value, loc)
        if isinstance(node, ast.Name):
            return self.name_ref(node, src, scope)
        if isinstance(node, ast.IndexExpr):
            return self.site_ref(node, src, scope)
        if isinstance(node, ast.CallExpr):
            return self.call(node, src, scope)
        if isinstance(node, ast.UnaryExpr):
            arg = self.expr(node.arg, src, scope)
            self.expect(arg, node.op == "not", src, node.arg, f"the operand of '{node.op}'")
            return ir.Unary(node.op, arg, loc)
        if isinstance(node, ast.BinaryExpr):
            left, right = self.expr(node.left, src, scope), self.expr(node.right, src, scope)
            self.expect(left, False, src, node.left, f"an operand of '{node.op}'")
            self.expect(right, False, src, node.right, f"an operand of '{node.op}'")
            return ir.Binary(node.op, left, right, loc)
        if isinstance(node, ast.CompareExpr):
            left, right = self.expr(node.left, src, scope), self.expr(node.right, src, scope)
            self.expect(left, False, src, node.left, f"an operand of '{node.op}'")
            self.expect(right, False, src, node.right, f"an operand of '{node.op}'")
            return ir.Compare(node.op, left, right, loc)
        if isinstance(node, ast.LogicExpr):
            args = tuple(self.expr(a, src, scope) for a in node.args)
            for a, n in zip(args, node.args):
                self.expect(a, True, src, n, f"an operand of '{node.op}'")
            return ir.Logic(node.op, args, loc)
        raise TypeError(f"not an expression: {node!r}")  # pragma: no cover

    def expect(self, e: ir.Expr, boolean: bool, src: Source, node: ast.Node, what: str) -> None:
        if ir.is_boolean(e) != boolean:
            kind = "a condition" if boolean else "a number"
            raise error_at(CRNSemanticError, f"{what} must be {kind}", src, node.pos,
                           "compare numbers with < <= > >= == != and combine conditions with and/or/not")

    def name_ref(self, node: ast.Name, src: Source, scope: Scope) -> ir.Expr:
        name, loc = node.name, src.loc(node.pos)
        if name in scope.locals:
            return scope.locals[name]
        if name in self.poisoned:
            raise PoisonedName(name)
        if name == "pi":
            return ir.Const(math.pi, loc)
        kind = self.kinds.get(name, (None,))[0]
        if name == "t" and kind is None:
            if not scope.time:
                raise error_at(CRNSemanticError, f"a {scope.what} cannot depend on the time 't'", src, node.pos)
            return ir.TimeRef(loc)
        if kind == "param":
            if scope.params is not None and name not in scope.params:
                raise error_at(CRNNameError, f"param '{name}' is used before it is defined", src, node.pos,
                               "a param may use only params defined above it")
            return ir.ParamRef(name, loc)
        if kind == "species":
            if not scope.species:
                raise error_at(CRNSemanticError, f"a {scope.what} cannot depend on species '{name}'", src, node.pos,
                               "use a constant here, or a `=>` reaction for a state-dependent propensity")
            if self.lattice is not None and scope.site is None:
                raise error_at(CRNSemanticError, f"'{name}' lives on every lattice site; say which", src, node.pos,
                               f"use sum({name}), mean({name}), all(...), any(...) or a site like "
                               f"{name}[{', '.join('0' for _ in self.lattice.shape)}]")
            return ir.SpeciesRef(site_label(name, scope.site), loc)
        if kind == "func" or name in BUILTIN_FUNCS or name in REDUCTIONS:
            raise error_at(CRNSemanticError, f"'{name}' is a function; call it with arguments", src, node.pos,
                           f"{name}(...)")
        if kind == "observable" and scope.what == "observable":
            if name in self.observables:
                return self.observables[name].expr
            raise error_at(CRNNameError, f"observable '{name}' is used before it is defined", src, node.pos,
                           "an observable may use only observables defined above it")
        if kind is not None:
            raise error_at(CRNSemanticError, f"'{name}' is {with_article(kind)}, not a value", src, node.pos)
        visible = [n for n, (k, _, _) in self.kinds.items() if k in ("param", "species")] + ["t", "pi"]
        visible += list(scope.locals)
        raise error_at(CRNNameError, f"unknown name '{name}'", src, node.pos,
                       suggest(name, visible) or "declare it with `param` or `species`")

    def site_ref(self, node: ast.IndexExpr, src: Source, scope: Scope) -> ir.Expr:
        name = node.name
        if name in self.poisoned:
            raise PoisonedName(name)
        if self.kinds.get(name, (None,))[0] != "species":
            raise error_at(CRNNameError, f"'{name}[...]' indexes something that is not a species", src, node.pos,
                           suggest(name, [n for n, v in self.kinds.items() if v[0] == "species"]))
        if not scope.species:
            raise error_at(CRNSemanticError, f"a {scope.what} cannot depend on species '{name}'", src, node.pos)
        site = self.site_index(name, node.indices, src, node.pos)
        return ir.SpeciesRef(site_label(name, site), src.loc(node.pos))

    def site_index(self, name: str, indices, src: Source, pos) -> tuple[int, ...]:
        if self.lattice is None:
            raise error_at(CRNSemanticError, f"'{name}[...]' needs a lattice", src, pos,
                           "declare `lattice chain(N)` or `lattice grid(R, C)`")
        shape = self.lattice.shape
        if len(indices) != len(shape):
            raise error_at(CRNSemanticError, f"a site of a {self.lattice.kind} has {len(shape)} index(es), got "
                           f"{len(indices)}", src, pos,
                           f"write {name}[i]" if len(shape) == 1 else f"write {name}[r, c]")
        site = []
        for i, (ix, n) in enumerate(zip(indices, shape)):
            k = self.integer(ix, src, "a site index", lo=None)
            if not 0 <= k < n:
                raise error_at(CRNSemanticError, f"site index {k} is out of range", src, ix.pos,
                               f"indices along this axis run 0..{n - 1}")
            site.append(k)
        return tuple(site)

    def call(self, node: ast.CallExpr, src: Source, scope: Scope) -> ir.Expr:
        name, loc = node.func, src.loc(node.pos)
        if name in self.poisoned:
            raise PoisonedName(name)
        kind = self.kinds.get(name, (None,))[0]
        if kind == "func":
            return self.inline(node, src, scope)
        if name in BUILTIN_FUNCS:
            arity = BUILTIN_FUNCS[name]
            if (arity >= 0 and len(node.args) != arity) or (arity < 0 and not node.args):
                need = f"{arity} argument" + ("s" if arity != 1 else "") if arity >= 0 else "at least 1 argument"
                raise error_at(CRNSemanticError, f"{name}() takes {need}, got {len(node.args)}", src, node.pos)
            args = tuple(self.expr(a, src, scope) for a in node.args)
            for a, n in zip(args, node.args):
                self.expect(a, False, src, n, f"an argument of {name}()")
            return ir.Call(name, args, loc)
        if name in REDUCTIONS:
            return self.reduction(node, src, scope)
        if kind is not None:
            raise error_at(CRNSemanticError, f"'{name}' is {with_article(kind)}, not a function", src, node.pos,
                           f"{with_article(kind)} is used by its name, without (...)")
        funcs = [n for n, v in self.kinds.items() if v[0] == "func"] + list(BUILTIN_FUNCS) + list(REDUCTIONS)
        raise error_at(CRNNameError, f"unknown function '{name}'", src, node.pos,
                       suggest(name, funcs) or f"builtins: {', '.join(BUILTIN_FUNCS)}")

    def inline(self, node: ast.CallExpr, src: Source, scope: Scope) -> ir.Expr:
        fdef, fsrc = self.funcs[node.func]
        if node.func in scope.inlining:
            raise error_at(CRNSemanticError, f"func '{node.func}' calls itself", fsrc, fdef.pos,
                           "funcs are inlined, so they cannot be recursive")
        if len(scope.inlining) >= MAX_FUNC_DEPTH:
            raise error_at(CRNSemanticError, f"funcs call each other more than {MAX_FUNC_DEPTH} levels deep", src,
                           node.pos, "simplify the chain of funcs")
        if len(node.args) != len(fdef.args):
            raise error_at(CRNSemanticError, f"{node.func}() takes {len(fdef.args)} argument(s), got "
                           f"{len(node.args)}", src, node.pos,
                           f"{node.func}({', '.join(a.name for a in fdef.args)})")
        args = {}
        for p, a in zip(fdef.args, node.args):
            args[p.name] = self.expr(a, src, scope)
        inner = replace(scope, locals=args, inlining=scope.inlining + (node.func,))
        return self.expr(fdef.body, fsrc, inner)

    def reduction(self, node: ast.CallExpr, src: Source, scope: Scope) -> ir.Expr:
        name, loc = node.func, src.loc(node.pos)
        if len(node.args) != 1:
            raise error_at(CRNSemanticError, f"{name}() takes 1 argument, got {len(node.args)}", src, node.pos)
        if not scope.species:
            raise error_at(CRNSemanticError, f"a {scope.what} cannot depend on species ({name}(...))", src, node.pos)
        sites = sites_of(self.lattice)
        terms = [self.expr(node.args[0], src, replace(scope, site=s)) for s in sites]
        boolean = name in ("all", "any")
        self.expect(terms[0], boolean, src, node.args[0], f"the argument of {name}()")
        if boolean:
            return ir.Logic("and" if name == "all" else "or", tuple(terms), loc) if len(terms) > 1 else terms[0]
        total = balanced_sum(terms, loc)
        if name == "mean" and len(terms) > 1:
            return ir.Binary("/", total, ir.Const(float(len(terms)), loc), loc)
        return total
