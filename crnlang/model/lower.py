"""Lowering: syntax tree -> ``Model`` (the IR).

    parse(text, filename="<string>") -> Model
    load(path) -> Model
    with_params(model, {name: value}) -> Model
    check_file(path) -> list[CRNError]          (empty when the file is clean)

Steps: imports and `use` are spliced in (cycles are errors, a file is merged once); module
calls are expanded by substitution; then declarations are collected, params folded in order,
user funcs inlined, lattice species and reactions expanded per site, hop reactions added per
directed lattice edge, and init / observables / annotations checked and converted.
Independent problems are collected and raised together (``CRNMultipleErrors``).
"""
from __future__ import annotations

import keyword
import math
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping

from ..errors import (CRNError, CRNImportError, CRNMultipleErrors, CRNNameError, CRNSemanticError,
                      Loc)
from ..syntax import ast
from ..syntax.parser import parse_text
from . import ir
from .lattice import directed_edges, lattice_from_args, site_label, sites_of
from .semantics import evaluate
from .source import Source, error_at, suggest, with_article

STDLIB_DIR = Path(__file__).resolve().parents[1] / "stdlib"

REDUCTIONS = ("sum", "mean", "all", "any")
KEYWORDS = frozenset({"model", "kinetics", "param", "func", "species", "use", "import", "module",
                      "lattice", "diffuse", "init", "observe", "absorb", "and", "or", "not", "in"})
RESERVED = KEYWORDS | {"t", "pi", "true", "false"} | set(ir.BUILTIN_FUNCS) | set(REDUCTIONS)
MAX_MODULE_DEPTH = 32
MAX_FUNC_DEPTH = 16
MAX_NODES = 2_000_000  # expression nodes in the whole lowered model (funcs inline by copying)


class _Poisoned(Exception):
    """A name whose own definition already failed: skip silently (the first error is reported)."""


# ---------------------------------------------------------------- names
def check_name(name: str, what: str, src: Source, pos: ast.Pos) -> None:
    """Declared names must be plain identifiers, not reserved words or builtins."""
    if name.startswith("__"):
        raise error_at(CRNNameError, f"the name '{name}' is reserved (names may not start with '__')",
                       src, pos, "rename it")
    if name in ir.BUILTIN_FUNCS or name in REDUCTIONS:
        raise error_at(CRNNameError, f"{what} '{name}' has the name of a builtin function", src, pos,
                       f"rename it, e.g. '{name}_'")
    if name in RESERVED or keyword.iskeyword(name):
        raise error_at(CRNNameError, f"'{name}' is a reserved word and cannot name a {what}", src, pos,
                       f"rename it, e.g. '{name}_'")
    if unicodedata.normalize("NFKC", name) != name:
        raise error_at(CRNNameError, f"the name '{name}' is not in normal form (NFKC)", src, pos,
                       f"write it as '{unicodedata.normalize('NFKC', name)}'")
    if not name.isidentifier():  # pragma: no cover - the grammar only produces identifiers
        raise error_at(CRNNameError, f"'{name}' is not a valid name", src, pos)


# ---------------------------------------------------------------- stage 1: files, imports, modules
@dataclass
class _Module:
    definition: ast.ModuleDef
    src: Source
    instances: int = 0


class Splicer:
    """Reads the main file and everything it imports into one flat list of (statement, Source)."""

    def __init__(self, errors: list[CRNError]):
        self.errors = errors
        self.merged: set[str] = set()
        self.stack: list[str] = []
        self.modules: dict[str, _Module] = {}
        self.flat: list[tuple[ast.Stmt, Source]] = []

    def add_file(self, file: ast.File, key: str, main: bool) -> None:
        src = Source(file.path, file.text)
        self.stack.append(key)
        self.merged.add(key)
        try:
            for stmt in file.statements:
                if isinstance(stmt, (ast.UseStmt, ast.ImportStmt)):
                    self._include(stmt, src)
                elif isinstance(stmt, ast.ModuleDef):
                    self._define(stmt, src)
                elif isinstance(stmt, ast.ModelStmt) and not main:
                    continue  # an imported file's name is not the model's name
                else:
                    self.flat.append((stmt, src))
        finally:
            self.stack.pop()

    def _define(self, stmt: ast.ModuleDef, src: Source) -> None:
        try:
            check_name(stmt.name, "module", src, stmt.pos)
            if stmt.name in self.modules:
                raise error_at(CRNNameError, f"module '{stmt.name}' is defined twice", src, stmt.pos,
                               f"first defined at {self.modules[stmt.name].src.loc(self.modules[stmt.name].definition.pos)}")
            seen: set[str] = set()
            for p in stmt.params:
                check_name(p.name, "module parameter", src, p.pos)
                if p.name in seen:
                    raise error_at(CRNNameError, f"module parameter '{p.name}' appears twice", src, p.pos)
                seen.add(p.name)
            for inner in stmt.body:
                if not isinstance(inner, (ast.ReactionStmt, ast.DiffuseStmt, ast.ModuleCall)):
                    raise error_at(CRNSemanticError, "a module body may contain only reactions, `diffuse` and "
                                   "module calls", src, inner.pos, "declare species and params outside the module")
        except CRNError as e:
            self.errors.append(e)
            return
        self.modules[stmt.name] = _Module(stmt, src)

    def _include(self, stmt, src: Source) -> None:
        if isinstance(stmt, ast.UseStmt):
            path = STDLIB_DIR / f"{stmt.name}.crn"
            if not path.is_file():
                names = sorted(p.stem for p in STDLIB_DIR.glob("*.crn"))
                self.errors.append(error_at(CRNImportError, f"no stdlib module '{stmt.name}'", src, stmt.pos,
                                            suggest(stmt.name, names) or f"available: {', '.join(names)}"))
                return
        else:
            base = Path(src.path).parent if src.path != "<string>" else Path.cwd()
            path = base / stmt.path
        key = str(path.resolve())
        if key in self.stack:
            chain = " -> ".join(Path(k).name for k in self.stack[self.stack.index(key):] + [key])
            self.errors.append(error_at(CRNImportError, f"import cycle: {chain}", src, stmt.pos,
                                        "remove one of these imports"))
            return
        if key in self.merged:
            return
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            self.errors.append(error_at(CRNImportError, f"cannot read '{stmt.path if isinstance(stmt, ast.ImportStmt) else path}': "
                                        f"{getattr(e, 'strerror', None) or e}", src, stmt.pos,
                                        "paths are relative to the importing file"))
            return
        try:
            file = parse_text(text, str(path))
        except CRNError as e:
            self.errors.append(e)
            return
        self.add_file(file, key, main=False)

    # -------------------------------------------------------- module expansion
    def expand(self) -> list[tuple[ast.Stmt, Source]]:
        out: list[tuple[ast.Stmt, Source]] = []
        for stmt, src in self.flat:
            if isinstance(stmt, ast.ModuleCall):
                try:
                    out.extend(self._expand_call(stmt, src, depth=0))
                except CRNError as e:
                    self.errors.append(e)
            else:
                out.append((stmt, src))
        return out

    def _expand_call(self, call: ast.ModuleCall, src: Source, depth: int):
        mod = self.modules.get(call.name)
        if mod is None:
            hint = suggest(call.name, self.modules)
            if call.name in ir.BUILTIN_FUNCS or call.name in REDUCTIONS:
                hint = f"'{call.name}' is a function; a statement cannot be a bare expression"
            raise error_at(CRNNameError, f"unknown module '{call.name}'", src, call.pos,
                           hint or "define it with `module NAME(...) { ... }` or `use` a stdlib module")
        if depth > MAX_MODULE_DEPTH:
            raise error_at(CRNSemanticError, f"module '{call.name}' expands itself without end", src, call.pos,
                           "a module may not call itself")
        params = mod.definition.params
        if len(call.args) != len(params):
            raise error_at(CRNSemanticError,
                           f"module '{call.name}' takes {len(params)} argument(s), got {len(call.args)}", src,
                           call.pos, f"{call.name}({', '.join(p.name for p in params)})")
        mod.instances += 1
        prefix = f"{call.name}{mod.instances}"
        subst = {p.name: a for p, a in zip(params, call.args)}
        out = []
        for stmt in mod.definition.body:
            if isinstance(stmt, ast.ReactionStmt):
                out.append((_subst_reaction(stmt, subst, prefix, mod.src, src, call), mod.src))
            elif isinstance(stmt, ast.DiffuseStmt):
                names = tuple(_subst_species(n.name, n.pos, subst, mod.src, src, call) for n in stmt.names)
                out.append((replace(stmt, names=tuple(ast.Name(n, p.pos) for n, p in zip(names, stmt.names)),
                                    rate=subst_expr(stmt.rate, subst)), mod.src))
            elif isinstance(stmt, ast.ModuleCall):
                inner = replace(stmt, args=tuple(subst_expr(a, subst) for a in stmt.args))
                out.extend(self._expand_call(inner, mod.src, depth + 1))
            else:
                raise error_at(CRNSemanticError, "a module body may contain only reactions, `diffuse` and "
                               "module calls", mod.src, stmt.pos, "declare species and params outside the module")
        return out


def subst_expr(e: ast.Node, subst: Mapping[str, ast.Node]) -> ast.Node:
    """``e`` with every ``Name`` in ``subst`` replaced by its expression."""
    if isinstance(e, ast.Name):
        return subst.get(e.name, e)
    if isinstance(e, ast.Num):
        return e
    if isinstance(e, ast.IndexExpr):
        target = subst.get(e.name)
        name = target.name if isinstance(target, ast.Name) else e.name
        return replace(e, name=name, indices=tuple(subst_expr(i, subst) for i in e.indices))
    if isinstance(e, ast.CallExpr):
        return replace(e, args=tuple(subst_expr(a, subst) for a in e.args))
    if isinstance(e, ast.LogicExpr):
        return replace(e, args=tuple(subst_expr(a, subst) for a in e.args))
    if isinstance(e, ast.UnaryExpr):
        return replace(e, arg=subst_expr(e.arg, subst))
    return replace(e, left=subst_expr(e.left, subst), right=subst_expr(e.right, subst))


def _subst_species(name: str, pos, subst, mod_src: Source, call_src: Source, call: ast.ModuleCall) -> str:
    arg = subst.get(name)
    if arg is None:
        return name
    if not isinstance(arg, ast.Name):
        raise error_at(CRNSemanticError, f"module '{call.name}' uses '{name}' as a species, so its argument "
                       "must be a species name", call_src, getattr(arg, "pos", call.pos),
                       f"pass a species here (used at {mod_src.loc(pos)})")
    return arg.name


def _subst_reaction(stmt: ast.ReactionStmt, subst, prefix: str, mod_src, call_src, call) -> ast.ReactionStmt:
    def side(terms):
        return tuple(replace(t, name=_subst_species(t.name, t.pos, subst, mod_src, call_src, call))
                     if t.name is not None else t for t in terms)

    label = f"{prefix}_{stmt.label}" if stmt.label else None
    return replace(stmt, label=label, lhs=side(stmt.lhs), rhs=side(stmt.rhs),
                   rates=tuple(subst_expr(r, subst) for r in stmt.rates))


def balanced_sum(terms: list[ir.Expr], loc: Loc | None) -> ir.Expr:
    """t0 + t1 + ... as a balanced tree (depth log2 n, so big lattices do not nest deeply)."""
    if len(terms) == 1:
        return terms[0]
    mid = len(terms) // 2
    return ir.Binary("+", balanced_sum(terms[:mid], loc), balanced_sum(terms[mid:], loc), loc)


# ---------------------------------------------------------------- stage 2: expressions
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


class Lowerer:
    def __init__(self, flat: list[tuple[ast.Stmt, Source]], main: Source, default_name: str,
                 errors: list[CRNError]):
        self.flat = flat
        self.main = main
        self.default_name = default_name
        self.errors = errors
        self.kinds: dict[str, tuple[str, Source, ast.Pos]] = {}  # name -> (kind, where)
        self.poisoned: set[str] = set()
        self.params: list[ir.Param] = []
        self.param_values: dict[str, float] = {}
        self.funcs: dict[str, tuple[ast.FuncStmt, Source]] = {}
        self.species_decl: list[tuple[ast.SpeciesItem, Source]] = []
        self.bounds: dict[str, tuple[int, int | None]] = {}
        self.lattice: ir.Lattice | None = None
        self.kinetics = "binomial"
        self.name = default_name
        self.kinetics_at: Loc | None = None     # where `kinetics` / `model` were first set
        self.model_at: Loc | None = None
        self.observables: dict[str, ir.Observable] = {}
        self.nodes = 0
        self.diffusing: set[str] = set()

    # -------------------------------------------------------- helpers
    def attempt(self, fn: Callable, *args):
        """Run one independent step; record its error and go on."""
        try:
            return fn(*args)
        except _Poisoned:
            return None
        except CRNError as e:
            self.errors.append(e)
            return None

    def declare(self, name: str, kind: str, src: Source, pos: ast.Pos) -> None:
        check_name(name, kind, src, pos)
        if name in self.kinds:
            old_kind, old_src, old_pos = self.kinds[name]
            what = f"{kind} '{name}' is declared twice" if old_kind == kind else \
                f"'{name}' is already {with_article(old_kind)}; it cannot also be {with_article(kind)}"
            raise error_at(CRNNameError, what, src, pos, f"first declared at {old_src.loc(old_pos)}")
        self.kinds[name] = (kind, src, pos)

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

    def integer(self, node: ast.Node, src: Source, what: str, lo: int | None = 0) -> int:
        value = self.constant(node, src, what)
        if value != int(value) or (lo is not None and value < lo):
            need = "a whole number" if lo is None else ("a non-negative whole number" if lo == 0 else
                                                        f"a whole number >= {lo}")
            raise error_at(CRNSemanticError, f"{what} must be {need}, got {value:g}", src, node.pos)
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
            raise _Poisoned(name)
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
        if kind == "func" or name in ir.BUILTIN_FUNCS or name in REDUCTIONS:
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
            raise _Poisoned(name)
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
                           f"{len(indices)}", src, pos, f"write {name}[i]" if len(shape) == 1 else f"write {name}[r, c]")
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
            raise _Poisoned(name)
        kind = self.kinds.get(name, (None,))[0]
        if kind == "func":
            return self.inline(node, src, scope)
        if name in ir.BUILTIN_FUNCS:
            arity = ir.BUILTIN_FUNCS[name]
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
        funcs = [n for n, v in self.kinds.items() if v[0] == "func"] + list(ir.BUILTIN_FUNCS) + list(REDUCTIONS)
        raise error_at(CRNNameError, f"unknown function '{name}'", src, node.pos,
                       suggest(name, funcs) or f"builtins: {', '.join(ir.BUILTIN_FUNCS)}")

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

    # -------------------------------------------------------- the whole model
    def try_declare(self, name: str, kind: str, src: Source, pos: ast.Pos) -> bool:
        try:
            self.declare(name, kind, src, pos)
            return True
        except CRNError as e:
            self.errors.append(e)
            return False

    def run(self) -> ir.Model | None:
        stmts = self.flat
        for stmt, src in stmts:  # header-like statements first: they shape everything else
            if isinstance(stmt, ast.ModelStmt):
                self.attempt(self.model_stmt, stmt, src)
            elif isinstance(stmt, ast.KineticsStmt):
                self.attempt(self.kinetics_stmt, stmt, src)
        params: list[tuple[ast.ParamItem, Source]] = []
        observes: list[tuple[ast.ObserveStmt, Source]] = []
        for stmt, src in stmts:  # declarations, in order
            if isinstance(stmt, ast.SpeciesStmt):
                for item in stmt.items:
                    if self.try_declare(item.name, "species", src, item.pos):
                        self.species_decl.append((item, src))
            elif isinstance(stmt, ast.FuncStmt):
                self.attempt(self.func_decl, stmt, src)
            elif isinstance(stmt, ast.ParamStmt):
                for item in stmt.items:
                    if self.try_declare(item.name, "param", src, item.pos):
                        params.append((item, src))
            elif isinstance(stmt, ast.ObserveStmt):
                if self.try_declare(stmt.name, "observable", src, stmt.pos):
                    observes.append((stmt, src))
        # params in order (each sees only the params above it), then the lattice, func bodies
        defined: set[str] = set()
        for item, src in params:
            if self.attempt(self.param, item, src, set(defined)) is None and item.name not in self.param_values:
                self.poisoned.add(item.name)
            defined.add(item.name)
        self.attempt(self.lattice_stmts, [(s, src) for s, src in stmts if isinstance(s, ast.LatticeStmt)])
        for fname, (fdef, fsrc) in self.funcs.items():
            self.attempt(self.check_func, fdef, fsrc)
        species: list[ir.Species] = []
        for item, src in self.species_decl:
            result = self.attempt(self.species, item, src)
            if result is None:
                self.poisoned.add(item.name)
            else:
                species.extend(result)
        reactions = self.reactions(stmts)
        init = self.init(stmts)
        for stmt, src in observes:
            self.attempt(self.observe, stmt, src)
            if stmt.name not in self.observables:
                self.poisoned.add(stmt.name)
        for stmt, src in stmts:
            if isinstance(stmt, ast.AbsorbStmt):
                for n in stmt.names:
                    self.attempt(self.absorb, n, src)
        settings = self.settings([(s, src) for s, src in stmts if isinstance(s, ast.Annotation)])
        if self.errors:
            return None
        return ir.Model(name=self.name, kinetics=self.kinetics, params=tuple(self.params),
                        species=tuple(species), reactions=tuple(reactions), init=init,
                        observables=tuple(self.observables.values()), settings=settings,
                        lattice=self.lattice, source=self.main.path, source_text=self.main.text)

    def model_stmt(self, stmt: ast.ModelStmt, src: Source) -> None:
        check_name(stmt.name, "model", src, stmt.pos)
        first = self.model_at
        if first is not None and stmt.name != self.name:
            raise error_at(CRNSemanticError, f"a second model name '{stmt.name}' (already '{self.name}')",
                           src, stmt.pos, f"first named at {first}; keep one `model` statement")
        self.model_at = src.loc(stmt.pos)
        self.name = stmt.name

    def kinetics_stmt(self, stmt: ast.KineticsStmt, src: Source) -> None:
        if stmt.kind not in ir.KINETICS:
            raise error_at(CRNSemanticError, f"unknown kinetics '{stmt.kind}'", src, stmt.kind_pos,
                           suggest(stmt.kind, ir.KINETICS) or f"use one of {', '.join(ir.KINETICS)}")
        first = self.kinetics_at
        if first is not None and stmt.kind != self.kinetics:
            raise error_at(CRNSemanticError, f"kinetics {stmt.kind} contradicts kinetics {self.kinetics}",
                           src, stmt.kind_pos, f"first set at {first}; a model has one mass-action convention")
        self.kinetics_at = src.loc(stmt.pos)
        self.kinetics = stmt.kind

    def lattice_stmts(self, items) -> None:
        if not items:
            return
        if len(items) > 1:
            stmt, src = items[1]
            raise error_at(CRNSemanticError, "a model has at most one lattice", src, stmt.pos,
                           f"first declared at {items[0][1].loc(items[0][0].pos)}")
        stmt, src = items[0]
        self.lattice = lattice_from_args(stmt, src, self)

    def func_decl(self, stmt: ast.FuncStmt, src: Source) -> None:
        self.declare(stmt.name, "func", src, stmt.name_pos)
        seen = set()
        for a in stmt.args:
            check_name(a.name, "func argument", src, a.pos)
            if a.name in seen:
                raise error_at(CRNNameError, f"argument '{a.name}' appears twice", src, a.pos)
            seen.add(a.name)
        self.funcs[stmt.name] = (stmt, src)

    def check_func(self, fdef: ast.FuncStmt, src: Source) -> None:
        """Report unknown names in a func body even when the func is never called."""
        dummy = {a.name: ir.Const(1.0) for a in fdef.args}
        scope = Scope("func", site=sites_of(self.lattice)[0], locals=dummy, inlining=(fdef.name,))
        self.expr(fdef.body, src, scope)

    def param(self, item: ast.ParamItem, src: Source, visible: set[str]) -> None:
        expr = self.expr(item.expr, src, Scope("param", species=False, time=False, params=visible))
        if ir.is_boolean(expr):
            raise error_at(CRNSemanticError, f"param '{item.name}' must be a number, not a condition", src, item.expr.pos)
        try:
            value = float(evaluate(expr, self.param_values))
        except (ValueError, ZeroDivisionError, OverflowError, TypeError) as e:
            raise error_at(CRNSemanticError, f"cannot evaluate param '{item.name}': {e}", src, item.expr.pos) from None
        if not math.isfinite(value):
            raise error_at(CRNSemanticError, f"param '{item.name}' is not finite ({value})", src, item.expr.pos)
        self.params.append(ir.Param(item.name, expr, value, src.loc(item.pos)))
        self.param_values[item.name] = value

    def species(self, item: ast.SpeciesItem, src: Source) -> list[ir.Species]:
        lo = self.integer(item.lo, src, f"the lower bound of '{item.name}'") if item.lo is not None else 0
        hi = self.integer(item.hi, src, f"the upper bound of '{item.name}'") if item.hi is not None else None
        if hi is not None and hi < lo:
            raise error_at(CRNSemanticError, f"empty range {lo}..{hi} for species '{item.name}'", src,
                           (item.lo or item.hi).pos, "the lower bound must not exceed the upper bound")
        self.bounds[item.name] = (lo, hi)
        loc = src.loc(item.pos)
        return [ir.Species(site_label(item.name, s), lo, hi, item.name,
                           s if self.lattice is not None else None, loc) for s in sites_of(self.lattice)]

    # -------------------------------------------------------- reactions
    def reactions(self, stmts) -> list[ir.Reaction]:
        user_labels: dict[str, tuple[Source, ast.Pos]] = {}
        for stmt, src in stmts:
            if isinstance(stmt, ast.ReactionStmt) and stmt.label:
                try:
                    check_name(stmt.label, "reaction label", src, stmt.label_pos)
                    if stmt.label in user_labels:
                        s0, p0 = user_labels[stmt.label]
                        raise error_at(CRNNameError, f"reaction label '{stmt.label}' is used twice", src,
                                       stmt.label_pos, f"first used at {s0.loc(p0)}")
                except CRNError as e:
                    self.errors.append(e)
                user_labels.setdefault(stmt.label, (src, stmt.label_pos))
        taken = set(user_labels) | {f"{label}_{d}" for label in user_labels for d in ("fwd", "rev")}
        out: list[ir.Reaction] = []
        counter = 0
        for stmt, src in stmts:
            if isinstance(stmt, ast.ReactionStmt):
                label = stmt.label
                if label is None:
                    counter += 1
                    while {f"r{counter}", f"r{counter}_fwd", f"r{counter}_rev"} & taken:
                        counter += 1
                    label = f"r{counter}"
                got = self.attempt(self.reaction, stmt, src, label)
                out.extend(got or ())
            elif isinstance(stmt, ast.DiffuseStmt):
                out.extend(self.attempt(self.diffuse, stmt, src) or ())
        first: dict[str, ir.Reaction] = {}
        for r in out:
            if r.label in first:
                where = f"first at {first[r.label].loc}" if first[r.label].loc else None
                self.errors.append(CRNNameError(f"two reactions end up with the label '{r.label}'", r.loc,
                                                (where + "; " if where else "") + "rename one of the labels"))
            first.setdefault(r.label, r)
        return out

    def side(self, terms: tuple[ast.Term, ...], src: Source) -> list[tuple[str, int, ast.Pos]]:
        out: dict[str, list] = {}
        for term in terms:
            if term.name is None:
                if term.coef.value != 0:
                    raise error_at(CRNSemanticError, f"'{term.coef.text}' is not a species", src, term.pos,
                                   "write '0' (or '∅') for the empty side")
                if len(terms) > 1:
                    raise error_at(CRNSemanticError, "'0' is the empty side and cannot be added to species",
                                   src, term.pos, "drop the '0'")
                continue
            self.species_name(term.name, src, term.pos)
            s = 1
            if term.coef is not None:
                v = term.coef.value
                if v != int(v) or v < 0:
                    raise error_at(CRNSemanticError, f"stoichiometry must be a non-negative whole number, "
                                   f"got '{term.coef.text}'", src, term.pos, "write e.g. '2 X'")
                s = int(v)
            if s == 0:
                continue
            if term.name in out:
                out[term.name][1] += s
            else:
                out[term.name] = [term.name, s, term.pos]
        return [tuple(v) for v in out.values()]

    def species_name(self, name: str, src: Source, pos: ast.Pos) -> None:
        if name in self.poisoned:
            raise _Poisoned(name)
        kind = self.kinds.get(name, (None,))[0]
        if kind == "species":
            return
        if kind is not None:
            raise error_at(CRNSemanticError, f"'{name}' is {with_article(kind)}, not a species", src, pos)
        raise error_at(CRNNameError, f"unknown species '{name}'", src, pos,
                       suggest(name, [n for n, v in self.kinds.items() if v[0] == "species"])
                       or f"declare it: species {name}")

    def reaction(self, stmt: ast.ReactionStmt, src: Source, label: str) -> list[ir.Reaction]:
        lhs, rhs = self.side(stmt.lhs, src), self.side(stmt.rhs, src)
        want = 2 if stmt.arrow == "<->" else 1
        if len(stmt.rates) != want:
            hint = "give a forward and a backward rate: @ kf, kb" if want == 2 else "give one rate: @ k"
            raise error_at(CRNSemanticError, f"a '{stmt.arrow}' reaction takes {want} rate(s), got {len(stmt.rates)}",
                           src, stmt.rates[0].pos if stmt.rates else stmt.arrow_pos, hint)
        mass_action = stmt.arrow != "=>"
        forms = [(label, lhs, rhs, stmt.rates[0])]
        if stmt.arrow == "<->":
            forms = [(f"{label}_fwd", lhs, rhs, stmt.rates[0]), (f"{label}_rev", rhs, lhs, stmt.rates[1])]
        out = []
        loc = src.loc(stmt.pos)
        for site in sites_of(self.lattice):
            for lab, a, b, rate_node in forms:
                rate = self.rate(rate_node, src, site)
                out.append(ir.Reaction(
                    site_label(lab, site) if self.lattice is not None else lab,
                    tuple((site_label(n, site), s) for n, s, _ in a),
                    tuple((site_label(n, site), s) for n, s, _ in b),
                    rate, mass_action, loc))
        return out

    def rate(self, node: ast.Node, src: Source, site, species: bool = True) -> ir.Expr:
        expr = self.expr(node, src, Scope("rate", species=species, site=site))
        if ir.is_boolean(expr):
            raise error_at(CRNSemanticError, "a rate must be a number, not a condition", src, node.pos)
        if not ir.species_in(expr) and not ir.uses_time(expr):
            value = self.fold(expr, node, src, "cannot evaluate this rate", "rate is not finite")
            if value < 0:
                raise error_at(CRNSemanticError, f"rate is negative ({value:g})", src, node.pos,
                               "rates are non-negative; write the reaction the other way round")
        return expr

    def diffuse(self, stmt: ast.DiffuseStmt, src: Source) -> list[ir.Reaction]:
        if self.lattice is None:
            raise error_at(CRNSemanticError, "`diffuse` needs a lattice", src, stmt.pos,
                           "declare `lattice chain(N)` or `lattice grid(R, C)` first")
        for n in stmt.names:
            self.species_name(n.name, src, n.pos)
            if n.name in self.diffusing:
                raise error_at(CRNSemanticError, f"'{n.name}' already diffuses", src, n.pos,
                               "give each species one `diffuse` statement")
            self.diffusing.add(n.name)
        rate = self.rate(stmt.rate, src, None, species=False)
        loc = src.loc(stmt.pos)
        out = []
        for n in stmt.names:
            for a, b in directed_edges(self.lattice):
                label = f"{n.name}_hop_{'_'.join(map(str, a + b))}"
                out.append(ir.Reaction(label, ((site_label(n.name, a), 1),), ((site_label(n.name, b), 1),),
                                       rate, True, loc))
        return out

    # -------------------------------------------------------- init, observables, settings
    def init(self, stmts) -> dict[str, ir.InitDist]:
        general: dict[str, tuple[ir.InitDist, Source, ast.Pos]] = {}
        specific: dict[str, tuple[ir.InitDist, Source, ast.Pos]] = {}
        for stmt, src in stmts:
            if isinstance(stmt, ast.InitStmt):
                for item in stmt.items:
                    self.attempt(self.init_item, item, src, general, specific)
        out: dict[str, ir.InitDist] = {}
        for base, (dist, _, _) in general.items():
            for s in sites_of(self.lattice):
                out[site_label(base, s)] = dist
        for name, (dist, _, _) in specific.items():
            out[name] = dist
        return out

    def init_item(self, item: ast.InitItem, src: Source, general, specific) -> None:
        self.species_name(item.name, src, item.pos)
        if item.indices is not None:
            key = site_label(item.name, self.site_index(item.name, item.indices, src, item.pos))
            table = specific
        else:
            key, table = item.name, general
        if key in table:
            raise error_at(CRNSemanticError, f"initial value of '{key}' is given twice", src, item.pos,
                           f"first given at {table[key][1].loc(table[key][2])}")
        lo, hi = self.bounds.get(item.name, (0, None))
        bounds = f"{lo}..{hi}" if hi is not None else f">= {lo}"

        def inside(v: int, node) -> None:
            if v < lo or (hi is not None and v > hi):
                raise error_at(CRNSemanticError, f"initial value {v} of '{key}' is outside its bounds {bounds}",
                               src, node.pos, f"'{item.name}' is declared with bounds {bounds}")

        args = item.args
        if item.kind == "fixed":
            v = self.integer(args[0], src, f"the initial value of '{key}'")
            inside(v, args[0])
            dist = ir.InitDist("fixed", (v,), src.loc(item.pos))
        else:
            arity = {"poisson": 1, "uniform": 2, "binomial": 2}
            if item.kind not in arity:
                raise error_at(CRNSemanticError, f"unknown initial distribution '{item.kind}'", src, item.kind_pos,
                               suggest(item.kind, arity) or "use poisson(lam), uniform(lo, hi) or binomial(n, p)")
            if len(args) != arity[item.kind]:
                raise error_at(CRNSemanticError, f"{item.kind}() takes {arity[item.kind]} argument(s), got {len(args)}",
                               src, item.kind_pos)
            if item.kind in ("poisson", "binomial") and lo > 0:
                raise error_at(CRNSemanticError, f"{item.kind}() puts probability on 0, below the lower bound of "
                               f"'{item.name}' ({bounds})", src, item.kind_pos,
                               "use uniform(lo, hi) or a fixed value inside the bounds")
            if item.kind == "poisson":
                lam = self.constant(args[0], src, "the Poisson mean")
                if lam < 0:
                    raise error_at(CRNSemanticError, f"the Poisson mean must be >= 0, got {lam:g}", src, args[0].pos)
                dist = ir.InitDist("poisson", (lam,), src.loc(item.pos))
            elif item.kind == "uniform":
                a = self.integer(args[0], src, "the lower end of uniform()")
                b = self.integer(args[1], src, "the upper end of uniform()")
                if b < a:
                    raise error_at(CRNSemanticError, f"empty range uniform({a}, {b})", src, args[0].pos,
                                   "the lower end must not exceed the upper end")
                inside(a, args[0])
                inside(b, args[1])
                dist = ir.InitDist("uniform", (a, b), src.loc(item.pos))
            else:
                n = self.integer(args[0], src, "the number of trials of binomial()")
                p = self.constant(args[1], src, "the probability of binomial()")
                if not 0 <= p <= 1:
                    raise error_at(CRNSemanticError, f"a probability must be in 0..1, got {p:g}", src, args[1].pos)
                if hi is not None and n > hi:
                    inside(n, args[0])
                dist = ir.InitDist("binomial", (n, p), src.loc(item.pos))
        table[key] = (dist, src, item.pos)

    def observe(self, stmt: ast.ObserveStmt, src: Source) -> None:
        expr = self.expr(stmt.expr, src, Scope("observable"))
        self.observables[stmt.name] = ir.Observable(stmt.name, expr, ir.is_boolean(expr), False, src.loc(stmt.pos))

    def absorb(self, n: ast.Name, src: Source) -> None:
        obs = self.observables.get(n.name)
        if obs is None:
            if n.name in self.poisoned or self.kinds.get(n.name, (None,))[0] == "observable":
                raise _Poisoned(n.name)
            raise error_at(CRNNameError, f"unknown observable '{n.name}'", src, n.pos,
                           suggest(n.name, self.observables) or "define it with `observe NAME = CONDITION`")
        if not obs.boolean:
            raise error_at(CRNSemanticError, f"observable '{n.name}' is a number; only a condition can be absorbing",
                           src, n.pos, f"e.g. observe {n.name}_high = ... > 10")
        self.observables[n.name] = replace(obs, absorbing=True)

    def settings(self, annotations) -> ir.Settings:
        from .settings import settings_from_annotations

        return settings_from_annotations(annotations, self)


# ---------------------------------------------------------------- entry points
def _lower(text: str, filename: str, default_name: str) -> ir.Model:
    main = parse_text(text, filename)
    errors: list[CRNError] = []
    splicer = Splicer(errors)
    key = str(Path(filename).resolve()) if filename != "<string>" else "<string>"
    splicer.add_file(main, key, main=True)
    flat = splicer.expand()
    lowerer = Lowerer(flat, Source(filename, text), default_name, errors)
    model = lowerer.run()
    if errors:
        unique = {}
        for e in errors:
            unique.setdefault((type(e), e.message, e.loc), e)
        errors = list(unique.values())
        if len(errors) == 1:
            raise errors[0]
        raise CRNMultipleErrors(sorted(errors, key=_error_order))
    assert model is not None
    return model


def _error_order(e: CRNError):
    loc = e.loc or Loc()
    return (loc.file, loc.line, loc.col)


def parse(text: str, filename: str = "<string>") -> ir.Model:
    """Parse and lower .crn text to a ``Model``; the name defaults to the file stem ("model")."""
    default = "model" if filename == "<string>" else Path(filename).stem
    return _lower(text, filename, default)


def load(path) -> ir.Model:
    """Read, parse and lower a .crn file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CRNImportError(f"cannot read '{path}': {getattr(e, 'strerror', None) or e}",
                             Loc(str(path), 0, 0)) from None
    return parse(text, filename=str(path))


def check_file(path) -> list[CRNError]:
    """Every problem in a .crn file (empty list when it is clean)."""
    try:
        load(path)
    except CRNMultipleErrors as e:
        return list(e.errors)
    except CRNError as e:
        return [e]
    return []


def with_params(model: ir.Model, values: Mapping[str, float]) -> ir.Model:
    """``model`` with some params set; params defined from them are re-evaluated in order."""
    known = [p.name for p in model.params]
    for name in values:
        if name not in known:
            raise CRNNameError(f"unknown param '{name}'", None,
                               suggest(name, known) or (f"params: {', '.join(known)}" if known else
                                                             "this model has no params"))
    current: dict[str, float] = {}
    params = []
    for p in model.params:
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
        current[p.name] = value
        params.append(replace(p, expr=expr, value=value))
    for r in model.reactions:
        if not ir.species_in(r.rate) and not ir.uses_time(r.rate):
            try:
                rate = float(evaluate(r.rate, current))
            except (ValueError, ZeroDivisionError, OverflowError) as e:
                raise CRNSemanticError(f"cannot evaluate the rate of '{r.label}': {e}", r.loc) from None
            if not math.isfinite(rate) or rate < 0:
                raise CRNSemanticError(f"the rate of '{r.label}' becomes {rate:g}", r.loc,
                                       "rates must be finite and non-negative")
    return replace(model, params=tuple(params))
