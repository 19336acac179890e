"""The syntax tree of a .crn file: what the parser produces and lowering consumes.

Every node carries ``pos = (line, col)`` (1-based) of its first character. Names are still
unresolved strings here; numbers are floats. Nothing is evaluated.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

Pos = tuple[int, int]


# ---------------------------------------------------------------- expressions
@dataclass(frozen=True)
class Num:
    value: float
    pos: Pos = (0, 0)
    text: str = ""


@dataclass(frozen=True)
class Name:
    name: str
    pos: Pos = (0, 0)


@dataclass(frozen=True)
class CallExpr:
    func: str
    args: tuple["Node", ...]
    pos: Pos = (0, 0)


@dataclass(frozen=True)
class IndexExpr:
    """``X[i]`` / ``X[r, c]``: one lattice site of a species."""

    name: str
    indices: tuple["Node", ...]
    pos: Pos = (0, 0)


@dataclass(frozen=True)
class UnaryExpr:
    op: str  # "-" or "not"
    arg: "Node"
    pos: Pos = (0, 0)


@dataclass(frozen=True)
class BinaryExpr:
    op: str  # + - * / ^
    left: "Node"
    right: "Node"
    pos: Pos = (0, 0)


@dataclass(frozen=True)
class CompareExpr:
    op: str
    left: "Node"
    right: "Node"
    pos: Pos = (0, 0)


@dataclass(frozen=True)
class LogicExpr:
    op: str  # "and" / "or"
    args: tuple["Node", ...]
    pos: Pos = (0, 0)


Node = Union[Num, Name, CallExpr, IndexExpr, UnaryExpr, BinaryExpr, CompareExpr, LogicExpr]


def expr_children(e: Node) -> tuple[Node, ...]:
    if isinstance(e, (CallExpr, LogicExpr)):
        return e.args
    if isinstance(e, IndexExpr):
        return e.indices
    if isinstance(e, UnaryExpr):
        return (e.arg,)
    if isinstance(e, (BinaryExpr, CompareExpr)):
        return (e.left, e.right)
    return ()


# ---------------------------------------------------------------- statements
@dataclass(frozen=True)
class ModelStmt:
    name: str
    pos: Pos = (0, 0)


@dataclass(frozen=True)
class KineticsStmt:
    kind: str
    pos: Pos = (0, 0)
    kind_pos: Pos = (0, 0)


@dataclass(frozen=True)
class ParamItem:
    name: str
    expr: Node
    pos: Pos = (0, 0)


@dataclass(frozen=True)
class ParamStmt:
    items: tuple[ParamItem, ...]
    pos: Pos = (0, 0)


@dataclass(frozen=True)
class FuncStmt:
    name: str
    args: tuple[Name, ...]
    body: Node
    pos: Pos = (0, 0)
    name_pos: Pos = (0, 0)


@dataclass(frozen=True)
class SpeciesItem:
    """``X``, ``X <= hi`` or ``X in lo..hi`` (bounds are unevaluated expressions)."""

    name: str
    lo: Node | None = None
    hi: Node | None = None
    pos: Pos = (0, 0)


@dataclass(frozen=True)
class SpeciesStmt:
    items: tuple[SpeciesItem, ...]
    pos: Pos = (0, 0)


@dataclass(frozen=True)
class Term:
    """One term of a reaction side: ``2 X`` (coef Num(2)), ``X`` (coef None), or a bare number."""

    name: str | None
    coef: Num | None
    pos: Pos = (0, 0)


@dataclass(frozen=True)
class ReactionStmt:
    label: str | None
    lhs: tuple[Term, ...]
    arrow: str  # "->", "<->" or "=>"
    rhs: tuple[Term, ...]
    rates: tuple[Node, ...]
    pos: Pos = (0, 0)
    arrow_pos: Pos = (0, 0)
    label_pos: Pos = (0, 0)


@dataclass(frozen=True)
class UseStmt:
    name: str
    pos: Pos = (0, 0)


@dataclass(frozen=True)
class ImportStmt:
    path: str
    pos: Pos = (0, 0)


@dataclass(frozen=True)
class ModuleDef:
    name: str
    params: tuple[Name, ...]
    body: tuple["Stmt", ...]
    pos: Pos = (0, 0)


@dataclass(frozen=True)
class ModuleCall:
    name: str
    args: tuple[Node, ...]
    pos: Pos = (0, 0)


@dataclass(frozen=True)
class LatticeStmt:
    kind: str
    args: tuple[Node, ...]
    pos: Pos = (0, 0)
    kind_pos: Pos = (0, 0)


@dataclass(frozen=True)
class DiffuseStmt:
    names: tuple[Name, ...]
    rate: Node
    pos: Pos = (0, 0)


@dataclass(frozen=True)
class InitItem:
    """``X = 5`` (kind "fixed", args (expr,)) or ``X ~ poisson(3)``; ``indices`` for ``X[i] = ..``."""

    name: str
    indices: tuple[Node, ...] | None
    kind: str
    args: tuple[Node, ...]
    pos: Pos = (0, 0)
    kind_pos: Pos = (0, 0)


@dataclass(frozen=True)
class InitStmt:
    items: tuple[InitItem, ...]
    pos: Pos = (0, 0)


@dataclass(frozen=True)
class ObserveStmt:
    name: str
    expr: Node
    pos: Pos = (0, 0)


@dataclass(frozen=True)
class AbsorbStmt:
    names: tuple[Name, ...]
    pos: Pos = (0, 0)


@dataclass(frozen=True)
class AnnArg:
    key: str | None  # None for a positional argument
    value: Node
    pos: Pos = (0, 0)


@dataclass(frozen=True)
class Annotation:
    name: str
    args: tuple[AnnArg, ...]
    pos: Pos = (0, 0)


Stmt = Union[ModelStmt, KineticsStmt, ParamStmt, FuncStmt, SpeciesStmt, ReactionStmt, UseStmt,
             ImportStmt, ModuleDef, ModuleCall, LatticeStmt, DiffuseStmt, InitStmt, ObserveStmt,
             AbsorbStmt, Annotation]


@dataclass(frozen=True)
class File:
    """One parsed source file."""

    path: str
    text: str
    statements: tuple[Stmt, ...] = field(default=())
