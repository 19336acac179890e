"""The code generator: ``emit(model, analysis) -> str``, a pure function of the model and its
analysis (``loader.load_kernel`` imports the text).

The generated module implements exactly the contract of ``crnlang/runtime/kernel.py``. It is
rendered from ``templates/kernel.py.j2``; everything model-specific is computed here as small
strings of code. User text (names, labels, paths) reaches the generated source only as
``repr``'d string literals or inside comments with every non-printable character replaced;
identifiers and column indices are derived from positions, never from names.

Layout of the generated code: states are read as rows ``f[j]`` of the full state
(L_full, B), one per species in model order (``_full_rows``), and per-reaction results are
written to rows of (K, B) buffers, one straight line of torch code per reaction; the public
(B, K) results are transposed views of those buffers. ``shifted`` evaluates reaction k's
propensity (and support and absorbing tests) only at its own x - CHANGE[k], by reading the
rows shifted by the change, so it costs O(B K) beyond building x_prev.
"""
from __future__ import annotations

import math
import numbers
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from ..errors import CRNAnalysisError, CRNSemanticError
from ..model.initial import check_initial
from ..model.ir import Logic, Model, Reaction, species_in, uses_time
from ..model.semantics import interval_region, mass_action_expr
from .. import version
from .exprs import ExprCompiler, Piece, float_literal

TEMPLATE = "kernel.py.j2"


# ---------------------------------------------------------------- safe text
def comment_text(text: str, limit: int = 200) -> str:
    """User text made safe for a ``#`` comment: one line, printable characters only."""
    safe = "".join(c if c.isprintable() else "?" for c in str(text))
    return safe if len(safe) <= limit else safe[: limit - 3] + "..."


def py_literal(value: Any) -> str:
    """Python source for a plain value (str, int, float, bool, None, list/tuple/dict of them)."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, numbers.Integral):
        return repr(int(value))
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isnan(value):
            return "math.nan"
        if math.isinf(value):
            return "math.inf" if value > 0 else "(-math.inf)"
        return repr(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, tuple):
        inner = ", ".join(py_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(py_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{py_literal(k)}: {py_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no literal for {type(value).__name__}")


# ---------------------------------------------------------------- the model-specific code
class KernelSource:
    """Everything the template needs for one model, as code strings and literals."""

    def __init__(self, model: Model, analysis):
        self.model = model
        self.analysis = analysis
        self.all_species = tuple(s.name for s in model.species)
        self.full_index = {name: j for j, name in enumerate(self.all_species)}
        self.reduced = tuple(analysis.reduced_species)
        self.reduced_index = {name: r for r, name in enumerate(self.reduced)}
        self.eliminations = self._ordered_eliminations()
        self.bounds = {name: self._bounds_of(name) for name in self.all_species}
        self.params = model.param_values

    # ------------------------------------------------------------ inputs
    def _bounds_of(self, name: str) -> tuple[int, int | None]:
        """(lo, hi) from the analysis (declared or derived), hi None when unbounded."""
        if name in self.analysis.bounds:
            lo, hi = self.analysis.bounds[name]
        else:
            declared = self.model.species_by_name(name)
            lo, hi = declared.lo, declared.hi
        return int(lo), (None if hi is None else int(hi))

    def _ordered_eliminations(self):
        """Eliminations in an order where each is rebuilt from kept or earlier-rebuilt species."""
        pending = {e.species: e for e in self.analysis.eliminations}
        done: list = []
        known = set(self.reduced)
        while pending:
            ready = [name for name, e in pending.items()
                     if set(e.rebuild_terms()[1]) <= known]
            if not ready:
                raise CRNAnalysisError("eliminated species depend on each other cyclically: "
                                       + ", ".join(sorted(pending)))
            for name in sorted(ready, key=self.full_index.get):
                done.append(pending.pop(name))
                known.add(name)
        return tuple(done)

    def change_full(self, reaction: Reaction) -> list[int]:
        delta = reaction.change()
        return [int(delta.get(name, 0)) for name in self.all_species]

    # ------------------------------------------------------------ code pieces
    def _rebuild_parts(self, elimination, col: Callable[[str], str]) -> tuple[str, int]:
        """(numerator code, own coefficient > 0): species = numerator / own."""
        total, others, own = elimination.rebuild_terms()
        total, own, others = int(total), int(own), {k: int(v) for k, v in others.items()}
        if own < 0:
            total, others, own = -total, {k: -v for k, v in others.items()}, -own
        code = str(total)
        for name in sorted(others, key=self.full_index.get):
            coeff = others[name]
            sign = "-" if coeff > 0 else "+"
            term = col(name) if abs(coeff) == 1 else f"{abs(coeff)} * {col(name)}"
            code += f" {sign} {term}"
        return code, own

    def rebuild_code(self, elimination, col: Callable[[str], str]) -> str:
        """Code of an eliminated species from its conservation law (floor division, exact
        on the support; ``in_support`` checks divisibility where the coefficient is not 1)."""
        code, own = self._rebuild_parts(elimination, col)
        if not elimination.rebuild_terms()[1]:          # the law fixes the species alone
            return f"_ks.constant_row({int(code) // own}, r)"
        return f"({code})" if own == 1 else f"(({code}) // {own})"

    def divisibility_checks(self, col: Callable[[str], str]) -> list[str]:
        """Conditions that a rebuilt species is an integer (own coefficient not +-1)."""
        checks = []
        for e in self.eliminations:
            code, own = self._rebuild_parts(e, col)
            if own != 1:
                checks.append(f"(({code}) % {own} == 0)")
        return checks

    def row(self, name: str) -> str:
        """Code of a species' counts in the generated functions: row j of ``f`` (L_full, B)."""
        return f"f[{self.full_index[name]}]"

    def propensity_code(self, reaction: Reaction, col: Callable[[str], str]) -> str:
        """rate * h(x) (or the rate alone for ``=>``), constants folded."""
        compiler = ExprCompiler(self.params, col)
        rate = compiler.compile(reaction.rate)
        term = mass_action_expr(self.model.kinetics, reaction.reactants) if reaction.mass_action else None
        if term is None:
            return rate.numeric()
        h = compiler.compile(term).numeric()
        if rate.constant and float(rate.value) == 1.0:
            return h
        return f"{rate.numeric()} * {h}"

    def rate_constants(self) -> str:
        """RATE_CONSTANTS: c_k for each reaction whose propensity is c_k * h(x) with a constant
        c_k (mass action, a rate that reads neither species nor t), else None; as source."""
        values = []
        for reaction in self.model.reactions:
            rate = ExprCompiler(self.params, self.row).compile(reaction.rate)
            constant = reaction.mass_action and rate.constant and not rate.boolean
            values.append(float_literal(float(rate.value)) if constant else "None")
        return "(" + "".join(f"{v}, " for v in values) + ")"

    def reaction_comment(self, reaction: Reaction) -> str:
        def side(terms):
            return " + ".join(f"{s} {n}" if s != 1 else n for n, s in terms) or "0"
        arrow = "->" if reaction.mass_action else "=>"
        return comment_text(f"{reaction.label}: {side(reaction.reactants)} {arrow} "
                            f"{side(reaction.products)}")

    # ------------------------------------------------------------ functions
    def full_rows(self):
        """_full_rows(x): the rebuilt eliminated species (locals) and one row per species."""
        def col(name):
            if name in self.reduced_index:
                return f"r[{self.reduced_index[name]}]"
            return f"e{self.full_index[name]}"

        locals_ = [{"var": f"e{self.full_index[e.species]}",
                    "code": self.rebuild_code(e, col),
                    "comment": comment_text(e.species)} for e in self.eliminations]
        rows = [{"code": col(name), "comment": comment_text(name)} for name in self.all_species]
        return locals_, rows

    def propensity_lines(self):
        """propensities(x, t): one line per reaction on the float rows f (L_full, B)."""
        return [{"k": k, "code": self.propensity_code(r, self.row),
                 "comment": self.reaction_comment(r)} for k, r in enumerate(self.model.reactions)]

    def propensity_prev_lines(self):
        """Reaction k's propensity at x - CHANGE[k]: the rows of f shifted by the change."""
        return [{"k": k, "code": self.propensity_code(r, self.shifted_col(r)),
                 "comment": self.reaction_comment(r)} for k, r in enumerate(self.model.reactions)]

    def fires_lines(self):
        """fires(x): per reaction, the conditions that x + CHANGE[k] stays in the bounds."""
        return self._step_lines(sign=+1)

    def came_from_lines(self):
        """shifted(x): per reaction, the conditions that x - CHANGE[k] is in the bounds."""
        return self._step_lines(sign=-1)

    def _step_lines(self, sign: int):
        lines = []
        for k, r in enumerate(self.model.reactions):
            conds = []
            for j, d in enumerate(self.change_full(r)):
                d *= sign
                lo, hi = self.bounds[self.all_species[j]]
                if d > 0 and hi is not None:
                    conds.append(f"(f[{j}] <= {hi - d})")
                elif d < 0:
                    conds.append(f"(f[{j}] >= {lo - d})")
            lines.append({"k": k, "code": " & ".join(["ok"] + conds),
                          "comment": self.reaction_comment(r)})
        return lines

    def observable_lines(self):
        out = []
        for obs in self.model.observables:
            piece: Piece = ExprCompiler(self.params, self.row).compile(obs.expr)
            code = piece.truth() if obs.boolean else piece.numeric()
            out.append({"name": py_literal(obs.name), "code": code, "boolean": obs.boolean,
                        "comment": comment_text(obs.name)})
        return out

    def absorbing_lines(self):
        out = []
        for obs in self.model.observables:
            if not obs.absorbing:
                continue
            if uses_time(obs.expr):
                raise CRNSemanticError(f"absorbing region {obs.name!r} must not depend on t",
                                       obs.loc)
            piece = ExprCompiler(self.params, self.row).compile(obs.expr)
            out.append({"code": piece.truth(), "comment": comment_text(obs.name)})
        return out

    def shifted_col(self, reaction: Reaction) -> Callable[[str], str]:
        """Rows of f read at x - CHANGE[k]: ``(f[j] - d)`` for the species k changes."""
        change = self.change_full(reaction)

        def col(name):
            d = change[self.full_index[name]]
            if d == 0:
                return self.row(name)
            return f"({self.row(name)} - {d})" if d > 0 else f"({self.row(name)} + {-d})"
        return col

    def absorbing_prev(self):
        """_absorbing_prev(x): is x - CHANGE[k] absorbed, for every k, in O(B K) work.

        A region is an ``and``/``or`` of terms (a single condition is an ``and`` of one).
        At x we count the deciding terms (false ones for ``and``, true ones for ``or``); at
        x - CHANGE[k] only the terms that read a species k changes can differ, so their
        count is corrected term by term. Returns (count locals, one line per reaction)."""
        regions = []
        for i, obs in enumerate(o for o in self.model.observables if o.absorbing):
            expr = obs.expr
            op, terms = (expr.op, expr.args) if isinstance(expr, Logic) else ("and", (expr,))
            compiled = []
            for term in terms:
                piece = ExprCompiler(self.params, self.row).compile(term)
                compiled.append((term, piece))
            regions.append((i, op, compiled, comment_text(obs.name)))

        def indicator(op, piece):
            if piece.constant:
                return "1" if bool(piece.value) != (op == "and") else "0"
            return f"(~{piece.truth()})" if op == "and" else piece.truth()

        counts = [{"var": f"n{i}", "comment": name,
                   "code": "_ks.count(x.shape[0], x.device, "
                           + ", ".join(indicator(op, p) for _, p in compiled) + ")"}
                  for i, op, compiled, name in regions]
        lines = []
        for k, reaction in enumerate(self.model.reactions):
            changed = {n for n, d in reaction.change().items() if d != 0}
            col = self.shifted_col(reaction)
            parts = []
            for i, op, compiled, _ in regions:
                affected = [(t, p) for t, p in compiled
                            if not p.constant and species_in(t) & changed]
                test = "== 0" if op == "and" else "> 0"
                if not affected:
                    parts.append(f"(n{i} {test})")
                    continue
                code = f"n{i}"
                for term, piece in affected:
                    moved = ExprCompiler(self.params, col).compile(term)
                    code += (f" - {indicator(op, piece)}.to(torch.int32)"
                             f" + _ks.as_count({indicator(op, moved)})")
                parts.append(f"(({code}) {test})")
            lines.append({"k": k, "code": " | ".join(parts),
                          "comment": self.reaction_comment(reaction)})
        return counts, lines

    def interval_regions(self) -> dict:
        """Boolean observables that are products of per-species intervals of state-vector
        species: {name: {species: (lo, hi)}}, clipped to the species' bounds."""
        out = {}
        for obs in self.model.observables:
            region = interval_region(obs.expr, self.params) if obs.boolean else None
            if region is None or not set(region) <= set(self.reduced):
                continue
            clipped = {}
            for name, (lo, hi) in region.items():
                low, high = self.bounds[name]
                top = min(hi, math.inf if high is None else high)
                clipped[name] = (int(max(lo, low)), None if top == math.inf else int(top))
            out[obs.name] = clipped
        return out

    def init_marginals(self):
        """One marginal constructor per species (code), validated here."""
        out = []
        for name in self.all_species:
            dist = self.model.init_of(name)
            lo, hi = self.bounds[name]
            try:
                ctor, args = self._marginal(dist)
                check_initial(ctor, args, lo, hi)
            except (ValueError, TypeError) as err:
                loc = getattr(dist, "loc", None) or self.model.species_by_name(name).loc
                raise CRNSemanticError(
                    f"initial distribution of {name!r}: {err}", loc,
                    hint=f"give {name!r} an initial value inside {lo}..{'' if hi is None else hi}"
                    f" (init {name} = N)") from None
            arg_code = ", ".join(py_literal(a) for a in args)
            out.append({"code": f"_ks.{ctor}({arg_code}, lo={lo}, hi={py_literal(hi)})",
                        "comment": comment_text(f"{name} ~ {dist.kind}{tuple(dist.args)}")})
        return out

    @staticmethod
    def _marginal(dist) -> tuple[str, tuple]:
        def integer(v):
            if float(v) != int(v):
                raise ValueError(f"{v!r} is not an integer")
            return int(v)

        kind, args = dist.kind, tuple(dist.args)
        if kind == "fixed":
            return "Fixed", (integer(args[0]),)
        if kind == "poisson":
            lam = float(args[0])
            return ("Fixed", (0,)) if lam == 0.0 else ("Poisson", (lam,))
        if kind == "uniform":
            return "Uniform", (integer(args[0]), integer(args[1]))
        if kind == "binomial":
            n, p = integer(args[0]), float(args[1])
            if p == 0.0:
                return "Fixed", (0,)
            if p == 1.0:
                return "Fixed", (n,)
            return "Binomial", (n, p)
        raise ValueError(f"unknown initial distribution {kind!r}")

    # ------------------------------------------------------------ all of it
    def context(self) -> dict:
        m = self.model
        full_locals, full_rows = self.full_rows()
        absorb_counts, absorb_prev_lines = self.absorbing_prev()
        eliminated_map = {}
        for e in self.eliminations:
            total, others, own = e.rebuild_terms()
            eliminated_map[e.species] = (int(total), {k: int(v) for k, v in others.items()},
                                         int(own))
        time_dependent = any(uses_time(r.rate) for r in m.reactions)
        lattice = None
        if m.lattice is not None:
            lattice = {"kind": m.lattice.kind, "shape": list(m.lattice.shape),
                       "periodic": bool(m.lattice.periodic)}
        info = {
            "name": m.name, "crnlang_version": version.__version__, "kinetics": m.kinetics,
            "lattice": lattice,
            "species_base": {s.name: (s.base or s.name) for s in m.species},
        }
        reduced_full_index = tuple(self.full_index[n] for n in self.reduced)
        return {
            "version": version.__version__,
            "name_comment": comment_text(m.name),
            "n_full": len(self.all_species), "n_reduced": len(self.reduced),
            "n_reactions": len(m.reactions), "kinetics_comment": comment_text(m.kinetics),
            "name": py_literal(m.name),
            "species": py_literal(self.reduced),
            "all_species": py_literal(self.all_species),
            "eliminated": py_literal(eliminated_map),
            "lower": py_literal(tuple(self.bounds[n][0] for n in self.reduced)),
            "upper": py_literal(tuple(self.bounds[n][1] for n in self.reduced)),
            "full_lower": py_literal(tuple(self.bounds[n][0] for n in self.all_species)),
            "full_upper": py_literal(tuple(self.bounds[n][1] for n in self.all_species)),
            "declared_upper": py_literal({s.name: int(s.hi) for s in m.species
                                          if s.hi is not None}),
            "reactions": py_literal(tuple(r.label for r in m.reactions)),
            "change_full": [self.change_full(r) for r in m.reactions],
            "reactants_full": [[int(dict(r.reactants).get(n, 0)) for n in self.all_species]
                               for r in m.reactions],
            "change": [[row[self.full_index[n]] for n in self.reduced]
                       for row in (self.change_full(r) for r in m.reactions)],
            "reaction_comments": [self.reaction_comment(r) for r in m.reactions],
            "rate_constants": self.rate_constants(),
            "time_dependent": time_dependent,
            "observables": py_literal(tuple(o.name for o in m.observables)),
            "boolean": py_literal(tuple(bool(o.boolean) for o in m.observables)),
            "absorbing_names": py_literal(tuple(o.name for o in m.observables if o.absorbing)),
            "intervals": py_literal(self.interval_regions()),
            "model_info": {k: py_literal(v) for k, v in info.items()},
            "has_eliminations": bool(self.eliminations),
            "full_locals": full_locals, "full_rows": full_rows,
            "divisibility": self.divisibility_checks(self.row),
            "prop_lines": self.propensity_lines(),
            "prev_lines": self.propensity_prev_lines(),
            "fires_lines": self.fires_lines(),
            "came_from_lines": self.came_from_lines(),
            "observable_lines": self.observable_lines(),
            "observables_use_time": any(uses_time(o.expr) for o in m.observables),
            "absorbing_lines": self.absorbing_lines(),
            "absorb_counts": absorb_counts, "absorb_prev_lines": absorb_prev_lines,
            "init_marginals": self.init_marginals(),
            "reduced_full_index": py_literal(reduced_full_index),
        }


@lru_cache(maxsize=1)
def _template():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).with_name("templates"))),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
        trim_blocks=True, lstrip_blocks=True, autoescape=False)
    return env.get_template(TEMPLATE)


def emit(model: Model, analysis) -> str:
    """The generated kernel module of ``model``, as Python source: a pure function of the
    model and its ``Analysis`` (the same text on every machine and in every folder)."""
    return _template().render(**KernelSource(model, analysis).context())
