"""IR expressions -> vectorised torch source code.

Every subexpression that reads neither a species nor ``t`` is folded to a Python literal at
emit time with the reference interpreter (``crnlang.model.semantics.evaluate``), so the
generated code and the oracle agree on every constant. Species are read through a caller-given
``column(name) -> code`` (e.g. ``xf[:, 3]``): user names never become identifiers.

The generated code assumes these locals: ``dtype`` (the float dtype of the computation) and,
for time-dependent expressions, ``t`` (a 0-d tensor of that dtype).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Mapping

from ..errors import CRNSemanticError
from ..model.ir import (Binary, Call, Compare, Const, Expr, Logic, SpeciesRef, TimeRef,
                        Unary, children, species_in, uses_time)
from ..model.semantics import evaluate

_UNARY_CALLS = {"exp": "torch.exp", "log": "torch.log", "sqrt": "torch.sqrt",
                "sin": "torch.sin", "cos": "torch.cos", "abs": "torch.abs"}
_BINARY_OPS = {"+": "+", "-": "-", "*": "*", "/": "/", "^": "**"}


def float_literal(value: float) -> str:
    """Python source for a float, exactly (repr round-trips); negatives parenthesised."""
    value = float(value)
    if math.isnan(value):
        return "math.nan"
    if math.isinf(value):
        return "math.inf" if value > 0 else "(-math.inf)"
    text = repr(value)
    return f"({text})" if text.startswith("-") else text


def constant_literal(value) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return float_literal(value)


def _sum_terms(expr: Expr) -> list[Expr]:
    """The leaves of a tree of ``+`` (``sum(X)`` lowers to a balanced one), left to right."""
    if isinstance(expr, Binary) and expr.op == "+":
        return _sum_terms(expr.left) + _sum_terms(expr.right)
    return [expr]


def _with_children(expr: Expr, args: list[Expr]) -> Expr:
    """The same node over new operands."""
    if isinstance(expr, Unary):
        return replace(expr, arg=args[0])
    if isinstance(expr, (Binary, Compare)):
        return replace(expr, left=args[0], right=args[1])
    return replace(expr, args=tuple(args))


@dataclass(frozen=True)
class Piece:
    """Compiled code of one subexpression.

    ``constant``: the code is a Python literal (``value`` holds it); otherwise it is a tensor
    expression (shape (B,) or 0-d for ``t``-only parts). ``boolean``: a truth value.
    """

    code: str
    constant: bool
    boolean: bool
    value: float | bool | None = None

    def numeric(self) -> str:
        """Code for the value as a number (booleans become 0.0 / 1.0)."""
        if self.constant:
            return float_literal(float(self.value))
        return f"{self.code}.to(dtype)" if self.boolean else self.code

    def truth(self) -> str:
        """Code for the value as a truth value."""
        if self.constant:
            return constant_literal(bool(self.value))
        return self.code if self.boolean else f"({self.code} != 0)"


class ExprCompiler:
    """Compiles IR expressions of one model to torch code.

    ``params``: parameter values; ``column(species_name) -> code`` reads a species' count as a
    float tensor of shape (B,).
    """

    def __init__(self, params: Mapping[str, float], column: Callable[[str], str],
                 block: Callable[[list[str]], str] | None = None):
        self.params = dict(params)
        self.column = column
        self.block = block

    def compile(self, expr: Expr) -> Piece:
        if not species_in(expr) and not uses_time(expr):
            return self._fold(expr)
        if isinstance(expr, SpeciesRef):
            return Piece(self.column(expr.name), constant=False, boolean=False)
        if isinstance(expr, TimeRef):
            return Piece("t", constant=False, boolean=False)
        reduced = self._reduction(expr) if self.block is not None else None
        if reduced is not None:
            return reduced
        if isinstance(expr, Logic):
            return self._logic(expr)
        # a node whose operands all folded (an `and`/`or` can fold around a species) folds too
        args = [self.compile(child) for child in children(expr)]
        if args and all(a.constant for a in args):
            return self._fold(_with_children(expr, [Const(a.value) for a in args]))
        if isinstance(expr, Unary):
            return self._unary(expr, *args)
        if isinstance(expr, Binary):
            left, right = args
            return Piece(f"({left.numeric()} {_BINARY_OPS[expr.op]} {right.numeric()})",
                         constant=False, boolean=False)
        if isinstance(expr, Compare):
            return self._compare(expr, *args)
        if isinstance(expr, Call):
            return self._call(expr, args)
        raise TypeError(f"not an expression node: {expr!r}")

    # ------------------------------------------------------------ reductions over blocks
    def _reduction(self, expr: Expr) -> Piece | None:
        """``all``/``any``/``sum`` over many terms that are one template over other species
        (a lattice's sites): the template once over blocks of rows, reduced over the block's
        first axis. None when the terms differ."""
        if isinstance(expr, Logic):
            terms, reduce = list(expr.args), (".all(0)" if expr.op == "and" else ".any(0)")
        elif isinstance(expr, Binary) and expr.op == "+":
            terms, reduce = _sum_terms(expr), ".sum(0)"
        else:
            return None
        piece = self.over_blocks(terms)
        if piece is None:
            return None
        if isinstance(expr, Logic):
            return Piece(f"({piece.truth()}){reduce}", constant=False, boolean=True)
        return Piece(f"({piece.numeric()}){reduce}", constant=False, boolean=False)

    def over_blocks(self, terms: list[Expr]) -> Piece | None:
        """Three or more terms that are one template over other species, as one (n, B) piece:
        slot j of the template reads ``block(species of slot j in each term)``, e.g.
        ``f[0:64]``. None without a block reader, or when the terms differ or are constant."""
        if self.block is None or len(terms) < 3:
            return None
        templates = [self._template(term) for term in terms]
        (code, n_slots), boolean = templates[0][0], templates[0][2]
        if n_slots == 0 or any((t[0], t[2]) != ((code, n_slots), boolean) for t in templates):
            return None
        for j in range(n_slots):
            code = code.replace(f"\x00{j}\x00", self.block([t[1][j] for t in templates]))
        return Piece(code, constant=False, boolean=boolean)

    def _template(self, term: Expr) -> tuple[tuple[str, int], list[str], bool]:
        """((code with slot markers, number of slots), the species of each slot, boolean)."""
        slots: list[str] = []

        def col(name):
            if name not in slots:
                slots.append(name)
            return f"\x00{slots.index(name)}\x00"

        piece = ExprCompiler(self.params, col).compile(term)
        if piece.constant:
            return ("", 0), slots, piece.boolean
        return (piece.code, len(slots)), slots, piece.boolean

    # ------------------------------------------------------------ node kinds
    def _fold(self, expr: Expr) -> Piece:
        try:
            value = evaluate(expr, self.params)
        except (ArithmeticError, ValueError) as err:
            raise CRNSemanticError(f"cannot evaluate a constant expression: {err}",
                                   getattr(expr, "loc", None)) from None
        if isinstance(value, bool):
            return Piece(constant_literal(value), constant=True, boolean=True, value=value)
        if isinstance(value, complex):
            raise CRNSemanticError("a constant expression has a complex value",
                                   getattr(expr, "loc", None))
        value = float(value)
        return Piece(float_literal(value), constant=True, boolean=False, value=value)

    def _unary(self, expr: Unary, arg: Piece) -> Piece:
        if expr.op == "not":
            return Piece(f"(~{arg.truth()})", constant=False, boolean=True)
        return Piece(f"(-{arg.numeric()})", constant=False, boolean=False)

    def _compare(self, expr: Compare, left: Piece, right: Piece) -> Piece:
        if left.boolean and right.boolean and expr.op in ("==", "!="):
            a, b = left.truth(), right.truth()
        else:
            a, b = left.numeric(), right.numeric()
        return Piece(f"({a} {expr.op} {b})", constant=False, boolean=True)

    def _logic(self, expr: Logic) -> Piece:
        is_and = expr.op == "and"
        parts = []
        for arg in expr.args:
            piece = self.compile(arg)
            if piece.constant:
                if bool(piece.value) != is_and:     # False in an `and`, True in an `or`
                    return Piece(constant_literal(not is_and), True, True, not is_and)
                continue                            # True in an `and`, False in an `or`
            parts.append(piece.truth())
        if not parts:
            return Piece(constant_literal(is_and), True, True, is_and)
        if len(parts) == 1:
            return Piece(parts[0], constant=False, boolean=True)
        joiner = " & " if is_and else " | "
        return Piece(f"({joiner.join(parts)})", constant=False, boolean=True)

    def _call(self, expr: Call, args: list[Piece]) -> Piece:
        if expr.func in _UNARY_CALLS:
            (arg,) = args
            return Piece(f"{_UNARY_CALLS[expr.func]}({arg.numeric()})", False, False)
        if expr.func in ("min", "max"):
            return self._min_max(expr.func, args)
        raise CRNSemanticError(f"unknown function {expr.func!r}", getattr(expr, "loc", None))

    @staticmethod
    def _min_max(func: str, args: list[Piece]) -> Piece:
        constants = [float(a.value) for a in args if a.constant]
        tensors = [a.numeric() for a in args if not a.constant]
        pairwise = "torch.minimum" if func == "min" else "torch.maximum"
        code = tensors[-1]
        for other in reversed(tensors[:-1]):
            code = f"{pairwise}({other}, {code})"
        if constants:
            bound = min(constants) if func == "min" else max(constants)
            side = "max" if func == "min" else "min"
            code = f"torch.clamp({code}, {side}={float_literal(bound)})"
        return Piece(code, constant=False, boolean=False)
