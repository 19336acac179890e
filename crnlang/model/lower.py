"""Lowering: syntax tree -> ``Model`` (the IR).

    parse(text, filename="<string>") -> Model
    load(path) -> Model
    check_file(path) -> list[CRNError]          (empty when the file is clean)
    (``params.with_params(model, {name: value})`` replaces params of a lowered Model)

Steps: imports and `use` are spliced in and module calls expanded (``imports``); then
declarations are collected, params folded in order, user funcs inlined, lattice species and
reactions expanded per site, hop reactions added per directed lattice edge, and init /
observables / annotations checked and converted (here; expressions in ``expressions``,
the annotations in ``settings``). Independent problems are collected and raised together
(``CRNMultipleErrors``).
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Callable

from ..errors import CRNError, CRNImportError, CRNMultipleErrors, CRNNameError, CRNSemanticError, Loc
from ..syntax import ast
from ..syntax.parser import parse_text
from . import ir
from .expressions import ExpressionLowerer, PoisonedName, Scope
from .imports import Splicer
from .lattice import directed_edges, hop_label, lattice_from_args, site_label, sites_of
from .names import check_name
from .semantics import evaluate
from .settings import settings_from_annotations
from .source import Source, error_at, read_source, suggest, with_article

MAX_STOICHIOMETRY = 10 ** 6      # molecules of one species a single reaction may move


# ---------------------------------------------------------------- declarations
class Lowerer(ExpressionLowerer):
    """Lowers the flat statement list of one model: declarations, reactions, init,
    observables and annotations (expressions through ``ExpressionLowerer``)."""

    def __init__(self, flat: list[tuple[ast.Stmt, Source]], main: Source, default_name: str,
                 errors: list[CRNError]):
        super().__init__()
        self.flat = flat
        self.main = main
        self.default_name = default_name
        self.errors = errors
        self.params: list[ir.Param] = []
        self.species_decl: list[tuple[ast.SpeciesItem, Source]] = []
        self.bounds: dict[str, tuple[int, int | None]] = {}
        self.kinetics = "binomial"
        self.name = default_name
        self.kinetics_at: Loc | None = None     # where `kinetics` / `model` were first set
        self.model_at: Loc | None = None
        self.diffusing: set[str] = set()

    # -------------------------------------------------------- helpers
    def attempt(self, fn: Callable, *args):
        """Run one independent step; record its error and go on."""
        try:
            return fn(*args)
        except PoisonedName:
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
        self._set_once("name", "model_at", stmt.name, src, stmt.pos, stmt.pos,
                       f"a second model name '{stmt.name}' (already '{self.name}')",
                       "first named at {first}; keep one `model` statement")

    def kinetics_stmt(self, stmt: ast.KineticsStmt, src: Source) -> None:
        if stmt.kind not in ir.KINETICS:
            raise error_at(CRNSemanticError, f"unknown kinetics '{stmt.kind}'", src, stmt.kind_pos,
                           suggest(stmt.kind, ir.KINETICS) or f"use one of {', '.join(ir.KINETICS)}")
        self._set_once("kinetics", "kinetics_at", stmt.kind, src, stmt.pos, stmt.kind_pos,
                       f"kinetics {stmt.kind} contradicts kinetics {self.kinetics}",
                       "first set at {first}; a model has one mass-action convention")

    def _set_once(self, attr: str, at_attr: str, value, src: Source, pos, error_pos,
                  conflict: str, hint: str) -> None:
        """A model-wide statement (``model``, ``kinetics``) may repeat only with the same value:
        set ``attr`` and remember where, or raise ``conflict`` at ``error_pos``."""
        first = getattr(self, at_attr)
        if first is not None and value != getattr(self, attr):
            raise error_at(CRNSemanticError, conflict, src, error_pos, hint.format(first=first))
        setattr(self, at_attr, src.loc(pos))
        setattr(self, attr, value)

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
            raise error_at(CRNSemanticError, f"param '{item.name}' must be a number, not a condition",
                           src, item.expr.pos)
        try:
            value = float(evaluate(expr, self.param_values))
        except (ValueError, ZeroDivisionError, OverflowError, TypeError) as e:
            raise error_at(CRNSemanticError, f"cannot evaluate param '{item.name}': {e}",
                           src, item.expr.pos) from None
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
                if v > MAX_STOICHIOMETRY:
                    raise error_at(CRNSemanticError, f"stoichiometry {term.coef.text} is more than "
                                   f"{MAX_STOICHIOMETRY:,}", src, term.pos,
                                   "a reaction moves at most that many molecules of a species")
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
            raise PoisonedName(name)
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
                out.append(ir.Reaction(hop_label(n.name, a, b), ((site_label(n.name, a), 1),), ((site_label(n.name, b), 1),),
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
                raise PoisonedName(n.name)
            raise error_at(CRNNameError, f"unknown observable '{n.name}'", src, n.pos,
                           suggest(n.name, self.observables) or "define it with `observe NAME = CONDITION`")
        if not obs.boolean:
            raise error_at(CRNSemanticError, f"observable '{n.name}' is a number; only a condition can be absorbing",
                           src, n.pos, f"e.g. observe {n.name}_high = ... > 10")
        self.observables[n.name] = replace(obs, absorbing=True)

    def settings(self, annotations) -> ir.Settings:
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
        text = read_source(path)
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
