"""MathML (libsbml ASTs) <-> crnlang expressions (the IR's ``Expr`` nodes).

Import walks libsbml's ``ASTNode`` tree; nothing is ever evaluated from formula strings.
A construct crnlang cannot express raises ``Unsupported`` with a short description.
"""
from __future__ import annotations

import math
from typing import Callable

import libsbml

from ..model.ir import (Binary, Call, Compare, Const, Expr, Logic, ParamRef, SpeciesRef, TimeRef,
                        Unary, children)

AVOGADRO = 6.02214076e23
MAX_INLINE_DEPTH = 50


class Unsupported(Exception):
    """A MathML construct with no crnlang counterpart (the message says which)."""


_BINARY = {libsbml.AST_PLUS: "+", libsbml.AST_MINUS: "-", libsbml.AST_TIMES: "*",
           libsbml.AST_DIVIDE: "/", libsbml.AST_POWER: "^", libsbml.AST_FUNCTION_POWER: "^"}
_CALL = {libsbml.AST_FUNCTION_EXP: "exp", libsbml.AST_FUNCTION_LN: "log",
         libsbml.AST_FUNCTION_ABS: "abs", libsbml.AST_FUNCTION_SIN: "sin",
         libsbml.AST_FUNCTION_COS: "cos", libsbml.AST_FUNCTION_MAX: "max",
         libsbml.AST_FUNCTION_MIN: "min"}
_COMPARE = {libsbml.AST_RELATIONAL_LT: "<", libsbml.AST_RELATIONAL_LEQ: "<=",
            libsbml.AST_RELATIONAL_GT: ">", libsbml.AST_RELATIONAL_GEQ: ">=",
            libsbml.AST_RELATIONAL_EQ: "==", libsbml.AST_RELATIONAL_NEQ: "!="}
_LOGIC = {libsbml.AST_LOGICAL_AND: "and", libsbml.AST_LOGICAL_OR: "or"}
_NAMED_UNSUPPORTED = {libsbml.AST_FUNCTION_DELAY: "delay", libsbml.AST_FUNCTION_PIECEWISE: "piecewise",
                      libsbml.AST_FUNCTION_RATE_OF: "rateOf", libsbml.AST_FUNCTION_FLOOR: "floor",
                      libsbml.AST_FUNCTION_CEILING: "ceiling", libsbml.AST_FUNCTION_FACTORIAL: "factorial",
                      libsbml.AST_FUNCTION_QUOTIENT: "quotient", libsbml.AST_FUNCTION_REM: "rem",
                      libsbml.AST_LOGICAL_XOR: "xor", libsbml.AST_LAMBDA: "lambda"}


def _chain(op: str, items: list[Expr]) -> Expr:
    out = items[0]
    for item in items[1:]:
        out = Binary(op, out, item)
    return out


class MathReader:
    """Converts libsbml ASTs to ``Expr``.

    ``resolve(sbml_id) -> Expr`` maps a name (species, parameter, compartment, local parameter)
    to its crnlang meaning; it raises ``Unsupported`` for names it cannot map.
    ``functions``: function-definition id -> (argument names, body ASTNode), inlined at calls.
    """

    def __init__(self, resolve: Callable[[str], Expr], functions: dict | None = None,
                 exact: dict[float, float] | None = None):
        self.resolve = resolve
        self.functions = functions or {}
        self.exact = exact or {}

    def read(self, node, env: dict[str, Expr] | None = None, depth: int = 0) -> Expr:
        if node is None:
            raise Unsupported("missing math")
        if depth > MAX_INLINE_DEPTH:
            raise Unsupported("function definitions nested too deeply (recursive?)")
        env = env or {}
        t = node.getType()
        kids = [node.getChild(i) for i in range(node.getNumChildren())]

        def sub(child) -> Expr:
            return self.read(child, env, depth)

        if t == libsbml.AST_INTEGER:
            return Const(float(node.getInteger()))
        if t in (libsbml.AST_REAL, libsbml.AST_REAL_E):
            value = float(node.getReal())
            return Const(self.exact.get(value, value))
        if t == libsbml.AST_RATIONAL:
            return Const(node.getNumerator() / node.getDenominator())
        if t == libsbml.AST_NAME:
            name = node.getName()
            return env[name] if name in env else self.resolve(name)
        if t == libsbml.AST_NAME_TIME:
            return TimeRef()
        if t == libsbml.AST_NAME_AVOGADRO:
            return Const(AVOGADRO)
        if t == libsbml.AST_CONSTANT_PI:
            return Const(math.pi)
        if t == libsbml.AST_CONSTANT_E:
            return Call("exp", (Const(1.0),))
        if t in (libsbml.AST_PLUS, libsbml.AST_TIMES):
            if not kids:
                return Const(0.0 if t == libsbml.AST_PLUS else 1.0)
            return _chain(_BINARY[t], [sub(k) for k in kids])
        if t == libsbml.AST_MINUS:
            if len(kids) == 1:
                return Unary("-", sub(kids[0]))
            return _chain("-", [sub(k) for k in kids])
        if t in (libsbml.AST_DIVIDE, libsbml.AST_POWER, libsbml.AST_FUNCTION_POWER):
            if len(kids) != 2:
                raise Unsupported(f"'{_BINARY[t]}' with {len(kids)} arguments")
            return Binary(_BINARY[t], sub(kids[0]), sub(kids[1]))
        if t in _CALL:
            return Call(_CALL[t], tuple(sub(k) for k in kids))
        if t == libsbml.AST_FUNCTION_ROOT:
            if len(kids) == 2:
                degree, arg = sub(kids[0]), sub(kids[1])
                if isinstance(degree, Const) and degree.value == 2:
                    return Call("sqrt", (arg,))
                return Binary("^", arg, Binary("/", Const(1.0), degree))
            return Call("sqrt", (sub(kids[0]),))
        if t == libsbml.AST_FUNCTION_LOG:
            if len(kids) == 2:
                base, arg = sub(kids[0]), sub(kids[1])
            else:
                base, arg = Const(10.0), sub(kids[0])
            return Binary("/", Call("log", (arg,)), Call("log", (base,)))
        if t == libsbml.AST_FUNCTION_TAN:
            arg = sub(kids[0])
            return Binary("/", Call("sin", (arg,)), Call("cos", (arg,)))
        if t in _COMPARE:
            parts = [sub(k) for k in kids]
            pairs = [Compare(_COMPARE[t], a, b) for a, b in zip(parts, parts[1:])]
            if not pairs:
                raise Unsupported("a comparison with fewer than two arguments")
            return pairs[0] if len(pairs) == 1 else Logic("and", tuple(pairs))
        if t in _LOGIC:
            return Logic(_LOGIC[t], tuple(sub(k) for k in kids))
        if t == libsbml.AST_LOGICAL_NOT:
            return Unary("not", sub(kids[0]))
        if t == libsbml.AST_CONSTANT_TRUE:
            return Compare("==", Const(0.0), Const(0.0))
        if t == libsbml.AST_CONSTANT_FALSE:
            return Compare("!=", Const(0.0), Const(0.0))
        if t == libsbml.AST_FUNCTION:
            return self._inline(node.getName(), [sub(k) for k in kids], depth)
        if t in _NAMED_UNSUPPORTED:
            raise Unsupported(f"the MathML function '{_NAMED_UNSUPPORTED[t]}'")
        raise Unsupported(f"the MathML element '{node.getName() or libsbml.formulaToL3String(node)}'")

    def _inline(self, name: str, args: list[Expr], depth: int) -> Expr:
        if name not in self.functions:
            raise Unsupported(f"a call of the undefined function '{name}'")
        params, body = self.functions[name]
        if len(params) != len(args):
            raise Unsupported(f"function '{name}' called with {len(args)} arguments, defined with {len(params)}")
        return self.read(body, dict(zip(params, args)), depth + 1)


def canonical(expr: Expr) -> Expr:
    """``expr`` as it comes back from MathML: libsbml writes nested ``*`` (and ``+``) as one
    n-ary ``<times/>`` and reads that back as a left-associated chain, so ``a * (b * c)``
    returns as ``a * b * c``. Round trips through SBML are exact up to this."""
    if isinstance(expr, Binary) and expr.op in ("*", "+"):
        return _chain(expr.op, [canonical(e) for e in chain_items(expr, expr.op)])
    if isinstance(expr, Unary):
        return Unary(expr.op, canonical(expr.arg))
    if isinstance(expr, Binary):
        return Binary(expr.op, canonical(expr.left), canonical(expr.right))
    if isinstance(expr, Compare):
        return Compare(expr.op, canonical(expr.left), canonical(expr.right))
    if isinstance(expr, (Logic, Call)):
        return type(expr)(expr.func if isinstance(expr, Call) else expr.op,
                          tuple(canonical(a) for a in expr.args))
    return expr


def chain_items(expr: Expr, op: str) -> list[Expr]:
    """The operands of a nested ``op`` chain (both sides), left to right."""
    if isinstance(expr, Binary) and expr.op == op:
        return chain_items(expr.left, op) + chain_items(expr.right, op)
    return [expr]


def written_value(value: float) -> float:
    """``value`` after a trip through libsbml's MathML writer (which keeps 15 digits)."""
    n = libsbml.ASTNode(libsbml.AST_REAL)
    n.setValue(float(value))
    return float(libsbml.readMathMLFromString(libsbml.writeMathMLToString(n)).getReal())


def constants_in(expr: Expr) -> set[float]:
    if isinstance(expr, Const):
        return {float(expr.value)}
    out: set[float] = set()
    for c in children(expr):
        out |= constants_in(c)
    return out


# ---------------------------------------------------------------- export
_OUT_BINARY = {"+": libsbml.AST_PLUS, "-": libsbml.AST_MINUS, "*": libsbml.AST_TIMES,
               "/": libsbml.AST_DIVIDE, "^": libsbml.AST_POWER}
_OUT_CALL = {v: k for k, v in _CALL.items()}
_OUT_COMPARE = {v: k for k, v in _COMPARE.items()}
_OUT_LOGIC = {v: k for k, v in _LOGIC.items()}


def to_ast(expr: Expr, name_of: Callable[[Expr], str]):
    """A libsbml ``ASTNode`` for ``expr``; ``name_of(ParamRef | SpeciesRef) -> SBML id``."""

    def node(kind, *children):
        n = libsbml.ASTNode(kind)
        for c in children:
            n.addChild(c)
        return n

    def go(e: Expr):
        if isinstance(e, Const):
            v = float(e.value)
            if v.is_integer() and abs(v) < 2**31:
                n = libsbml.ASTNode(libsbml.AST_INTEGER)
                n.setValue(int(v))
                return n
            n = libsbml.ASTNode(libsbml.AST_REAL)
            n.setValue(v)
            return n
        if isinstance(e, (ParamRef, SpeciesRef)):
            n = libsbml.ASTNode(libsbml.AST_NAME)
            n.setName(name_of(e))
            return n
        if isinstance(e, TimeRef):
            n = libsbml.ASTNode(libsbml.AST_NAME_TIME)
            n.setName("t")
            return n
        if isinstance(e, Unary):
            return node(libsbml.AST_LOGICAL_NOT if e.op == "not" else libsbml.AST_MINUS, go(e.arg))
        if isinstance(e, Binary):
            return node(_OUT_BINARY[e.op], go(e.left), go(e.right))
        if isinstance(e, Compare):
            return node(_OUT_COMPARE[e.op], go(e.left), go(e.right))
        if isinstance(e, Logic):
            return node(_OUT_LOGIC[e.op], *[go(a) for a in e.args])
        if isinstance(e, Call):
            if e.func == "sqrt":
                return node(libsbml.AST_FUNCTION_ROOT, go(e.args[0]))
            return node(_OUT_CALL[e.func], *[go(a) for a in e.args])
        raise TypeError(f"not an expression node: {e!r}")

    return go(expr)
