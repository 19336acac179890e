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
from .groups import ReactionGroup, contiguous, edge_rows_code, group_reactions, labels_code

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


# ---------------------------------------------------------------- absorbing regions
def _indicator(op: str, piece: Piece) -> str:
    """A term's indicator of deciding its region: false for ``and``, true for ``or``."""
    if piece.constant:
        return "1" if bool(piece.value) != (op == "and") else "0"
    return f"(~{piece.truth()})" if op == "and" else piece.truth()


def _interleaved(starred: list[str]) -> str:
    """One starred entry of a tuple display from each group's starred entry ("*seq"): the
    entry itself for one group, else the groups' items interleaved (a block of step m)."""
    if len(starred) == 1:
        return starred[0]
    return "*_ks.interleave(" + ", ".join(code[1:] for code in starred) + ")"


def _absorbed_test(op: str, count: str, corrected: bool) -> str:
    """Is the region entered, from its count of deciding terms (corrected: an expression)."""
    test = "== 0" if op == "and" else "> 0"
    return f"(({count}) {test})" if corrected else f"({count} {test})"


def _terms_by_species(terms, params) -> dict[str, int] | None:
    """{species: term index} when every term reads exactly one species, each species in one
    term, and all terms are one template (``X[s] <= 15`` at every site); else None."""
    by_species: dict[str, int] = {}
    for t, term in enumerate(terms):
        names = species_in(term)
        if len(names) != 1 or uses_time(term):
            return None
        (name,) = names
        if name in by_species:
            return None
        by_species[name] = t
    templates = {ExprCompiler(params, lambda _: "s0")._template(term)[0] for term in terms}
    return by_species if len(templates) == 1 and templates.pop()[1] == 1 else None


# ---------------------------------------------------------------- the model-specific code
class KernelSource:
    """Everything the template needs for one model, as code strings and literals."""

    def __init__(self, model: Model, analysis, grouped: bool = True):
        self.model = model
        self.grouped = grouped
        self.analysis = analysis
        self.all_species = tuple(s.name for s in model.species)
        self.full_index = {name: j for j, name in enumerate(self.all_species)}
        self.reduced = tuple(analysis.reduced_species)
        self.reduced_index = {name: r for r, name in enumerate(self.reduced)}
        self.eliminations = self._ordered_eliminations()
        self.bounds = {name: self._bounds_of(name) for name in self.all_species}
        self.params = model.param_values
        self.base = {s.name: (s.base or s.name) for s in model.species}
        self.blocks = group_reactions(model.reactions, self.template_of)
        self.groups = [group for block in self.blocks for group in block]
        self.row_tables, self.slot_layout = self._slot_layout()

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
        c_k (mass action, a rate that reads neither species nor t), else None; as source
        (one starred entry per block of groups)."""
        def code(group):
            reaction = group.reactions[0]
            rate = ExprCompiler(self.params, self.row).compile(reaction.rate)
            constant = reaction.mass_action and rate.constant and not rate.boolean
            value = float_literal(float(rate.value)) if constant else "None"
            return f"*({value},)" if group.size == 1 else f"*(({value},) * {group.size})"
        return "(" + "".join(f"{_interleaved([code(g) for g in b])}, " for b in self.blocks) + ")"

    def reaction_comment(self, reaction: Reaction) -> str:
        def side(terms):
            return " + ".join(f"{s} {n}" if s != 1 else n for n, s in terms) or "0"
        arrow = "->" if reaction.mass_action else "=>"
        return comment_text(f"{reaction.label}: {side(reaction.reactants)} {arrow} "
                            f"{side(reaction.products)}")

    # ------------------------------------------------------------ reaction groups
    def template_of(self, reaction: Reaction) -> tuple[tuple, tuple[str, ...]]:
        """(key, slots): the reaction's propensity code with species read from slots s0, s1,
        ... (the species it reads, then the other reactants and products), with each slot's
        change, reactant order, declared species and bounds. Equal keys: one line of code."""
        slots: list[str] = []

        def col(name):
            if name not in slots:
                slots.append(name)
            return f"s{slots.index(name)}"

        code = self.propensity_code(reaction, col)
        for name, _ in reaction.reactants + reaction.products:
            if name not in slots:
                slots.append(name)
        change, order = reaction.change(), dict(reaction.reactants)
        if not self.grouped:
            return id(reaction), tuple(slots)
        key = (code, reaction.mass_action,
               tuple((change.get(n, 0), order.get(n, 0), self.base[n], self.bounds[n])
                     for n in slots))
        return key, tuple(slots)

    def _slot_layout(self):
        """(_ROWS entries as code, per group and slot (code reading the rows of f, the rows
        as a _GROUPS entry)): one row f[j], a slice f[a:b], or a gather f[_ROWS[n]]."""
        tables: list[str] = []
        layout = []
        for group in self.groups:
            per_slot = []
            for j in range(len(group.slots[0])):
                rows = [self.full_index[name] for name in group.column(j)]
                if group.size == 1:
                    per_slot.append((f"f[{rows[0]}]", str(rows[0])))
                elif contiguous(rows):
                    per_slot.append((f"f[{rows[0]}:{rows[0] + group.size}]", str(rows[0])))
                else:
                    tables.append(edge_rows_code(rows, self.model.lattice)
                                  or f"torch.tensor({py_literal(rows)})")
                    ref = f"_ROWS[{len(tables) - 1}]"
                    per_slot.append((f"f[{ref}]", ref))
            layout.append(per_slot)
        return tables, layout

    def group_col(self, index: int, shift: int = 0) -> Callable[[str], str]:
        """Code reading group ``index``'s slots (by the species of its first reaction), at
        x - shift * CHANGE[k]."""
        group = self.groups[index]
        names = group.slots[0]
        change = group.reactions[0].change()

        def col(name):
            code = self.slot_layout[index][names.index(name)][0]
            d = shift * change.get(name, 0)
            if d == 0:
                return code
            return f"({code} - {d})" if d > 0 else f"({code} + {-d})"
        return col

    @staticmethod
    def target(group: ReactionGroup) -> str:
        """The rows of a (K, B) buffer the group writes: "3", "0:9" or "0:17:2"."""
        if group.size == 1:
            return str(group.start)
        step = "" if group.step == 1 else f":{group.step}"
        return f"{group.start}:{group.stop}{step}"

    def group_comment(self, group: ReactionGroup) -> str:
        first = self.reaction_comment(group.reactions[0])
        if group.size == 1:
            return first
        return comment_text(f"{first} ... {group.reactions[-1].label} ({group.size} reactions)")

    def group_lines(self, code_of: Callable[[int, ReactionGroup], str]) -> list[dict]:
        return [{"k": self.target(g), "code": code_of(i, g), "comment": self.group_comment(g)}
                for i, g in enumerate(self.groups)]

    def groups_table(self) -> list[dict]:
        """_GROUPS: (start, stop, step, rows per slot, change per slot, reactant order per
        slot)."""
        out = []
        for group, layout in zip(self.groups, self.slot_layout):
            r = group.reactions[0]
            change, order = r.change(), dict(r.reactants)
            names = group.slots[0]
            specs = [spec for _, spec in layout]
            rows = "(" + ", ".join(specs) + ("," if len(specs) == 1 else "") + ")"
            out.append({"code": f"({group.start}, {group.stop}, {group.step}, {rows}, "
                                f"{py_literal(tuple(change.get(n, 0) for n in names))}, "
                                f"{py_literal(tuple(order.get(n, 0) for n in names))})",
                        "comment": self.group_comment(group)})
        return out

    def reaction_labels(self) -> list[str]:
        """REACTIONS, one starred entry per block (its groups interleaved)."""
        def code(g):
            return labels_code([r.label for r in g.reactions],
                               self.base[g.slots[0][0]] if g.slots[0] else "",
                               self.model.lattice, py_literal)
        return [_interleaved([code(g) for g in block]) for block in self.blocks]

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
        """propensities(x, t): one line per reaction group on the float rows f (L_full, B)."""
        return self.group_lines(lambda i, g: self.propensity_code(g.reactions[0], self.group_col(i)))

    def propensity_prev_lines(self):
        """Each group's propensity at x - CHANGE[k]: its rows shifted by the change."""
        return self.group_lines(
            lambda i, g: self.propensity_code(g.reactions[0], self.group_col(i, shift=1)))

    def fires_lines(self):
        """fires(x): per reaction, the conditions that x + CHANGE[k] stays in the bounds."""
        return self._step_lines(sign=+1)

    def came_from_lines(self):
        """shifted(x): per reaction, the conditions that x - CHANGE[k] is in the bounds."""
        return self._step_lines(sign=-1)

    def _step_lines(self, sign: int):
        def code(index, group):
            conds = []
            change = group.reactions[0].change()
            for name, (col, _) in zip(group.slots[0], self.slot_layout[index]):
                d = sign * change.get(name, 0)
                lo, hi = self.bounds[name]
                if d > 0 and hi is not None:
                    conds.append(f"({col} <= {hi - d})")
                elif d < 0:
                    conds.append(f"({col} >= {lo - d})")
            return " & ".join(["ok"] + conds)
        return self.group_lines(code)

    def block(self, names: list[str]) -> str:
        """Code of the rows of several species as one (n, B) block: a slice when they are
        contiguous (a species at every site), else a gather."""
        rows = [self.full_index[name] for name in names]
        if contiguous(rows):
            return f"f[{rows[0]}:{rows[0] + len(rows)}]"
        return f"f[{py_literal(rows)}]"

    def observable_lines(self):
        out = []
        for obs in self.model.observables:
            piece: Piece = ExprCompiler(self.params, self.row, self.block).compile(obs.expr)
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
            piece = ExprCompiler(self.params, self.row, self.block).compile(obs.expr)
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
        count is corrected term by term. Returns (count locals, one line per reaction group,
        or per reaction where a group's slots do not map onto one template of terms)."""
        regions = []
        for i, obs in enumerate(o for o in self.model.observables if o.absorbing):
            expr = obs.expr
            op, terms = (expr.op, expr.args) if isinstance(expr, Logic) else ("and", (expr,))
            compiled = [(term, ExprCompiler(self.params, self.row).compile(term)) for term in terms]
            regions.append((i, op, compiled, comment_text(obs.name),
                            _terms_by_species(terms, self.params)))
        counts = [{"var": f"n{i}", "comment": name, "code": self._count_code(op, compiled)}
                  for i, op, compiled, name, _ in regions]
        lines = []
        for index, group in enumerate(self.groups):
            code = self._absorbed_group_code(index, group, regions) if group.size > 1 else None
            if code is not None:
                lines.append({"k": self.target(group), "code": code,
                              "comment": self.group_comment(group)})
                continue
            for k, reaction in zip(group.indices, group.reactions):
                lines.append({"k": k, "code": self._absorbed_code(reaction, regions),
                              "comment": self.reaction_comment(reaction)})
        return counts, lines

    def _count_code(self, op, compiled) -> str:
        """The number of deciding terms at x, (B,) int32: one reduction over blocks of rows
        when the terms are one template over other species, else a sum of indicators."""
        block = ExprCompiler(self.params, self.row, self.block).over_blocks([t for t, _ in compiled])
        if block is not None:
            return f"{_indicator(op, block)}.sum(0, dtype=torch.int32)"
        return ("_ks.count(x.shape[0], x.device, "
                + ", ".join(_indicator(op, p) for _, p in compiled) + ")")

    def _absorbed_code(self, reaction: Reaction, regions) -> str:
        changed = {n for n, d in reaction.change().items() if d != 0}
        col = self.shifted_col(reaction)
        parts = []
        for i, op, compiled, _, _ in regions:
            affected = [(t, p) for t, p in compiled
                        if not p.constant and species_in(t) & changed]
            code = f"n{i}"
            for term, piece in affected:
                moved = ExprCompiler(self.params, col).compile(term)
                code += (f" - {_indicator(op, piece)}.to(torch.int32)"
                         f" + _ks.as_count({_indicator(op, moved)})")
            parts.append(_absorbed_test(op, code, bool(affected)))
        return " | ".join(parts)

    def _absorbed_group_code(self, index: int, group: ReactionGroup, regions) -> str | None:
        """The group's line of _absorbing_prev: each changed slot whose species all lie in a
        region's terms corrects the count by the term at the slot's rows; None when a slot's
        species are partly in a region or a region's terms are not one template."""
        change = group.reactions[0].change()
        parts = []
        for i, op, compiled, _, by_species in regions:
            code, corrected = f"n{i}", False
            for j, name in enumerate(group.slots[0]):
                if change.get(name, 0) == 0:
                    continue
                inside = {n in (by_species or ()) for n in group.column(j)}
                if by_species is None and any(name in species_in(t) for t, _ in compiled):
                    return None
                if inside == {False}:
                    continue
                if inside != {True}:
                    return None
                term = compiled[by_species[name]][0]
                here = ExprCompiler(self.params, self.group_col(index)).compile(term)
                moved = ExprCompiler(self.params, self.group_col(index, shift=1)).compile(term)
                code += (f" - {_indicator(op, here)}.to(torch.int32)"
                         f" + _ks.as_count({_indicator(op, moved)})")
                corrected = True
            parts.append(_absorbed_test(op, code, corrected))
        return " | ".join(parts)

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

    def init_runs(self):
        """init_marginals with runs of equal marginals (a species at every site) written once,
        starred: ``*((_ks.Fixed(50, lo=0, hi=84),) * 64)``."""
        runs: list[list] = []
        for name, m in zip(self.all_species, self.init_marginals()):
            if runs and runs[-1][0]["code"] == m["code"]:
                runs[-1][1].append(name)
            else:
                runs.append([m, [name]])
        out = []
        for m, names in runs:
            if len(names) == 1:
                out.append(m)
            else:
                out.append({"code": f"*(({m['code']},) * {len(names)})",
                            "comment": comment_text(f"{names[0]} ... {names[-1]}: "
                                                    + m["comment"].split(" ~ ", 1)[-1])})
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
            "reaction_labels": self.reaction_labels(),
            "row_tables": self.row_tables,
            "groups": self.groups_table(),
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
            "init_marginals": self.init_runs(),
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


def emit(model: Model, analysis, grouped: bool = True) -> str:
    """The generated kernel module of ``model``, as Python source: a pure function of the
    model and its ``Analysis`` (the same text on every machine and in every folder).
    ``grouped=False``: a line per reaction, no reaction groups (the baseline of
    benchmarks/bench_lattice.py and a cross-check in the tests)."""
    return _template().render(**KernelSource(model, analysis, grouped).context())
