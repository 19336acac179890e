"""The IR: one ``Model`` that every backend reads (FSP, SSA, the neural solver, SBML export).

A ``Model`` is what lowering produces from the syntax tree: names resolved, imports and
modules expanded, lattices expanded into per-site species and reactions, user funcs inlined.
All dataclasses are frozen. Source positions (``loc``) never take part in equality.

Expressions (``Expr``) after lowering use only these nodes:

    Const(value)                      a number (``pi`` becomes Const(math.pi))
    ParamRef(name)                    a named constant; its value is ``model.param_values[name]``
    SpeciesRef(name)                  the copy number of a species (full name, e.g. "X[1,2]")
    TimeRef()                         the time ``t``
    Unary(op, arg)                    op in {"-", "not"}
    Binary(op, left, right)           op in {"+", "-", "*", "/", "^"}
    Compare(op, left, right)          op in {"<", "<=", ">", ">=", "==", "!="}
    Logic(op, args)                   op in {"and", "or"}, n-ary
    Call(func, args)                  func in ``vocabulary.BUILTIN_FUNCS`` (user funcs are inlined)

Lattice reductions are expanded by lowering: ``sum(X)`` to a "+" chain over sites,
``mean(X)`` to that sum / N, ``all(C)`` / ``any(C)`` to Logic over the sites, ``X[i]`` to
SpeciesRef("X[i]").

Propensity of a reaction (evaluated in exactly one place per backend kind, the generated
kernel; ``crnlang.model.semantics`` holds the slow reference interpreter used as test oracle):

    mass_action=True :  rate(x, t) * h(x)   with h by ``model.kinetics``:
        binomial: prod_i C(x_i, s_i)     falling: prod_i x_i (x_i-1)...(x_i-s_i+1)     power: prod_i x_i^s_i
    mass_action=False:  rate(x, t)        (the ``=>`` form: the expression is the whole propensity)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Mapping, Union

from ..errors import Loc

KINETICS = ("binomial", "falling", "power")


# ---------------------------------------------------------------- expressions
@dataclass(frozen=True)
class Const:
    value: float
    loc: Loc | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ParamRef:
    name: str
    loc: Loc | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class SpeciesRef:
    name: str
    loc: Loc | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class TimeRef:
    loc: Loc | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Unary:
    op: str
    arg: "Expr"
    loc: Loc | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Binary:
    op: str
    left: "Expr"
    right: "Expr"
    loc: Loc | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Compare:
    op: str
    left: "Expr"
    right: "Expr"
    loc: Loc | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Logic:
    op: str
    args: tuple["Expr", ...]
    loc: Loc | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple["Expr", ...]
    loc: Loc | None = field(default=None, compare=False, repr=False)


Expr = Union[Const, ParamRef, SpeciesRef, TimeRef, Unary, Binary, Compare, Logic, Call]


def is_boolean(expr: Expr) -> bool:
    """True when the expression's value is a truth value (comparison, and/or/not)."""
    if isinstance(expr, (Compare, Logic)):
        return True
    return isinstance(expr, Unary) and expr.op == "not"


def species_in(expr: Expr) -> set[str]:
    """Names of the species an expression reads."""
    if isinstance(expr, SpeciesRef):
        return {expr.name}
    out: set[str] = set()
    for child in children(expr):
        out |= species_in(child)
    return out


def uses_time(expr: Expr) -> bool:
    return isinstance(expr, TimeRef) or any(uses_time(c) for c in children(expr))


def children(expr: Expr) -> tuple[Expr, ...]:
    if isinstance(expr, Unary):
        return (expr.arg,)
    if isinstance(expr, (Binary, Compare)):
        return (expr.left, expr.right)
    if isinstance(expr, (Logic, Call)):
        return tuple(expr.args)
    return ()


# ---------------------------------------------------------------- model parts
@dataclass(frozen=True)
class Param:
    """``param name = expr``; ``value`` is the folded float (after any override)."""

    name: str
    expr: Expr
    value: float
    loc: Loc | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Species:
    """A species after lattice expansion.

    ``name`` is the full name ("X", or on a lattice "X[3]" / "X[1,2]", 0-based, no spaces).
    ``lo``/``hi`` are the declared bounds (copy numbers kept in lo..hi inclusive); ``hi`` is
    None when none was declared (analysis may still derive one from a conservation law).
    ``base`` is the name as declared ("X"), ``site`` the lattice site index or None.
    """

    name: str
    lo: int = 0
    hi: int | None = None
    base: str = ""
    site: tuple[int, ...] | None = None
    loc: Loc | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Reaction:
    """One irreversible reaction (``<->`` lowers to two; ``diffuse`` to one per directed edge).

    ``reactants``/``products``: tuples of (species name, stoichiometry > 0), each species once,
    in source order. ``label``: the user's label, or a generated one ("r1", "bind_y_fwd",
    "bind_y_rev", "X_hop_0_1" ...), unique within the model.
    """

    label: str
    reactants: tuple[tuple[str, int], ...]
    products: tuple[tuple[str, int], ...]
    rate: Expr
    mass_action: bool = True
    loc: Loc | None = field(default=None, compare=False, repr=False)

    def change(self) -> dict[str, int]:
        """Net change per species (zero entries dropped)."""
        delta: dict[str, int] = {}
        for name, s in self.reactants:
            delta[name] = delta.get(name, 0) - s
        for name, s in self.products:
            delta[name] = delta.get(name, 0) + s
        return {k: v for k, v in delta.items() if v != 0}


@dataclass(frozen=True)
class InitDist:
    """Initial distribution of one species (independent across species and sites).

    kind / args:  "fixed" (value,)   "poisson" (lam,)   "uniform" (lo, hi) integers lo..hi inclusive
                  "binomial" (n, p)
    """

    kind: str
    args: tuple[float, ...]
    loc: Loc | None = field(default=None, compare=False, repr=False)

    @property
    def is_fixed(self) -> bool:
        return self.kind == "fixed"


@dataclass(frozen=True)
class Observable:
    """``observe name = expr``; ``boolean`` when expr is a condition; ``absorbing`` after ``absorb name``."""

    name: str
    expr: Expr
    boolean: bool
    absorbing: bool = False
    loc: Loc | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Lattice:
    """``lattice chain(N)`` -> kind "chain", shape (N,); ``grid(R, C)`` -> "grid", (R, C)."""

    kind: str
    shape: tuple[int, ...]
    periodic: bool = False

    @property
    def n_sites(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Settings:
    """Solver settings: defaults < the file's annotations < overrides (``crnlang.solve`` kwargs, ``--set``).

    Keys match the annotation keys of LANGUAGE.md; ``lambda`` is spelled ``lam`` here.
    """

    # @solve
    method: str = "auto"          # one of vocabulary.METHODS
    dt: float = 1e-3
    t_end: float = 10.0
    batch: int = 2000
    lr: float = 1.0
    lam: float | None = None      # None: the method's default (tdvp 1e-5, ngd and adam 1e-3)
    integrator: str = "euler"     # one of vocabulary.INTEGRATORS
    dtype: str = "float64"        # float32 | float64
    seed: int = 0
    save_every: int = 10
    epochs: int | None = None     # optimiser epochs per step (None: method default)
    epsilon: float = 0.005        # tau: the largest relative change of a propensity per leap
    # @network
    network: str = "nade"         # nade | shared | gru | transformer
    hidden: int = 16
    layers: int = 1
    head: str = "onehot"          # onehot | smooth (logits smooth in n: runtime/networks.py)
    # @sampling
    sampling: str = "auto"        # auto | plain | alpha | diffusive | mixture | defensive
                                  # (auto: from a single-state start, where plain samples all
                                  # coincide, alpha then defensive (sampling.SpreadingStart);
                                  # else plain)
    alpha: float = 0.3
    kernel: int = 10
    uniform: float = 0.1
    reweight: bool = True
    # @rare
    rare: tuple[str, ...] = ()

    def updated(self, **changes) -> "Settings":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        from dataclasses import asdict

        d = asdict(self)
        d["rare"] = list(self.rare)
        return d


@dataclass(frozen=True)
class Model:
    """The whole lowered model. Species order is declaration order (sites of one species
    consecutive, row-major on a grid), and is the order of every full state vector."""

    name: str
    kinetics: str
    params: tuple[Param, ...]
    species: tuple[Species, ...]
    reactions: tuple[Reaction, ...]
    init: Mapping[str, InitDist]           # species name -> distribution; missing = fixed 0
    observables: tuple[Observable, ...] = ()
    settings: Settings = field(default_factory=Settings)
    lattice: Lattice | None = None
    source: str = "<string>"               # file path (or "<string>")
    source_text: str | None = field(default=None, compare=False, repr=False)

    @property
    def species_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.species)

    @property
    def param_values(self) -> dict[str, float]:
        return {p.name: p.value for p in self.params}

    def species_by_name(self, name: str) -> Species:
        for s in self.species:
            if s.name == name:
                return s
        raise KeyError(name)

    def init_of(self, name: str) -> InitDist:
        return self.init.get(name, InitDist("fixed", (0,)))

    def with_settings(self, **changes) -> "Model":
        return replace(self, settings=self.settings.updated(**changes))
