"""SBML import and export (python-libsbml).

Import (``import_sbml(path) -> (crn_text, warnings)``):

* species are counted as amounts. An initial concentration c in a compartment of size V
  becomes the amount c*V; a species with ``hasOnlySubstanceUnits=false`` means its
  concentration where it appears in a law, so it is read there as ``X / V`` (dropped when
  V = 1). Both conversions are stated in comments at the top of the output.
* boundary or constant species, compartments (when a formula uses them), global parameters
  and local parameters all become ``param``; a local parameter keeps its name unless another
  id uses it, then it becomes ``<reaction>_<name>``. Parameter initial assignments become
  parameter expressions.
* kinetic laws that are mass action in the reactants (``k * X * (X - 1) / 2`` ...) become
  ``@ rate``, under the one kinetics convention (binomial, falling, power) that makes the most
  laws mass action without a numeric correction (ties: binomial). Every other law becomes
  ``=> law``. A reversible reaction whose law is ``forward - backward`` with mass-action
  halves becomes two reactions ``<id>_fwd`` and ``<id>_rev``.
* SBML ids that are crnlang keywords, builtins or Python keywords get a trailing ``_``
  (``t`` -> ``t_``, ``lambda`` -> ``lambda_``), ids starting with ``__`` an ``n`` in front;
  each rename is stated in a comment (see ``crn_writer.safe_identifier``).
* events, rules, delays, non-integer stoichiometry, piecewise and other MathML with no
  crnlang counterpart raise one ``CRNError`` that lists each by SBML id; ``lenient=True``
  turns them into warnings and comments (the offending element is left out).

Export (``export_sbml(model) -> str``): SBML Level 3 Version 2, amounts
(``hasOnlySubstanceUnits=true``), one compartment of size 1, each reaction's law the rate
times its mass-action term written out (binomial ``k * X * (X - 1) / 2``). Lattice models are
written site by site (``X[1,2]`` -> id ``X_1_2``). What SBML cannot say (bounds, kinetics,
lattice, observables, init distributions, settings, exact parameter values, original names)
travels in an ``<annotation>`` element in the namespace ``NAMESPACE``, which import reads back.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from xml.sax.saxutils import quoteattr

import libsbml

from ..errors import CRNError, Loc
from ..model.ir import (Binary, Const, Expr, InitDist, Lattice, Model, Observable, Param,
                        ParamRef, Reaction, Settings, Species, SpeciesRef, children, species_in)
from ..model.semantics import evaluate, mass_action_expr
from .crn_writer import is_identifier, safe_identifier, site_safe_name, write_crn
from .massaction import split_mass_action
from .mathml import (MathReader, Unsupported, canonical, chain_items, constants_in, to_ast,
                     written_value)

NAMESPACE = "https://crnlang.org/sbml/1"
PREFIX = "crnlang"
MATHML_NS = "http://www.w3.org/1998/Math/MathML"

def crn_identifier(name: str, taken: set[str]) -> str:
    """A crnlang identifier for the SBML id ``name``, not in ``taken`` (which it is added to)."""
    return safe_identifier(name, taken)


def sbml_id(name: str, taken: set[str]) -> str:
    """An SBML SId ([A-Za-z_][A-Za-z0-9_]*) for ``name``, not in ``taken`` (which it is added to)."""
    safe = re.sub(r"[^A-Za-z0-9_]", "_", name) or "x"
    if safe[0].isdigit():
        safe = "_" + safe
    out, n = safe, 2
    while out in taken:
        out, n = f"{safe}_{n}", n + 1
    taken.add(out)
    return out


# ---------------------------------------------------------------- reading the document
def _read_document(source) -> libsbml.SBMLDocument:
    reader = libsbml.SBMLReader()
    if isinstance(source, str) and source.lstrip().startswith("<"):
        doc = reader.readSBMLFromString(source)
        where = "<string>"
    else:
        where = str(source)
        if not os.path.exists(where):
            raise CRNError(f"no such SBML file: {where}")
        doc = reader.readSBMLFromFile(where)
    problems = []
    for i in range(doc.getNumErrors()):
        err = doc.getError(i)
        if err.getSeverity() >= libsbml.LIBSBML_SEV_ERROR:
            problems.append(f"line {err.getLine()}: {err.getShortMessage()}: "
                            f"{err.getMessage().strip().splitlines()[0] if err.getMessage().strip() else ''}")
    if problems or doc.getModel() is None:
        raise CRNError(f"{where} is not a readable SBML model:\n  " + "\n  ".join(problems or ["no <model>"]),
                       hint="check the file with an SBML validator")
    return doc


@dataclass
class _Annotation:
    """crnlang's own annotation, as read back from an exported file."""

    name: str | None = None
    kinetics: str | None = None
    lattice: Lattice | None = None
    species: dict[str, dict] = field(default_factory=dict)      # SBML id -> attributes
    init: dict[str, InitDist] = field(default_factory=dict)     # SBML id -> distribution
    params: dict[str, float] = field(default_factory=dict)      # SBML id -> exact value
    reactions: dict[str, dict] = field(default_factory=dict)    # SBML id -> attributes
    observables: list[tuple[dict, object]] = field(default_factory=list)  # (attrs, math ASTNode)
    settings: dict[str, str] = field(default_factory=dict)
    exact: dict[float, float] = field(default_factory=dict)     # 15-digit value -> exact float


def _attrs(node) -> dict[str, str]:
    return {node.getAttrName(i): node.getAttrValue(i) for i in range(node.getAttributesLength())}


def _read_annotation(sbml_model) -> _Annotation | None:
    ann = sbml_model.getAnnotation()
    if ann is None:
        return None
    for i in range(ann.getNumChildren()):
        top = ann.getChild(i)
        if top.getURI() == NAMESPACE and top.getName() == "model":
            break
    else:
        return None
    out = _Annotation()
    a = _attrs(top)
    out.name, out.kinetics = a.get("name"), a.get("kinetics")
    for j in range(top.getNumChildren()):
        node = top.getChild(j)
        if node.isText():
            continue
        kind, a = node.getName(), _attrs(node)
        if kind == "lattice":
            out.lattice = Lattice(a["kind"], tuple(int(v) for v in a["shape"].split(",")),
                                  a.get("periodic") == "true")
        elif kind == "species":
            out.species[a["id"]] = a
        elif kind == "init":
            out.init[a["species"]] = InitDist(a["kind"], tuple(float(v) for v in a["args"].split(",")))
        elif kind == "param":
            out.params[a["id"]] = float(a["value"])
        elif kind == "reaction":
            out.reactions[a["id"]] = a
        elif kind == "observable":
            math_node = next((node.getChild(k) for k in range(node.getNumChildren())
                              if node.getChild(k).getName() == "math"), None)
            ast = libsbml.readMathMLFromString(math_node.toXMLString()) if math_node is not None else None
            out.observables.append((a, ast))
        elif kind == "settings":
            out.settings = a
        elif kind == "const":
            out.exact[float(a["approx"])] = float(a["exact"])
    return out


def _settings_from(attrs: dict[str, str]) -> Settings:
    default = Settings()
    changes = {}
    for f in fields(Settings):
        if f.name not in attrs:
            continue
        text, current = attrs[f.name], getattr(default, f.name)
        if f.name == "rare":
            changes[f.name] = tuple(v for v in text.split(",") if v)
        elif isinstance(current, bool):
            changes[f.name] = text == "true"
        elif isinstance(current, int) or f.name == "epochs":
            changes[f.name] = int(text)
        elif isinstance(current, float):
            changes[f.name] = float(text)
        else:
            changes[f.name] = text
    return default.updated(**changes)


# ---------------------------------------------------------------- import
@dataclass
class _SpeciesInfo:
    sbml_id: str
    name: str
    compartment: str
    amount: float | None
    as_param: bool              # boundary or constant species
    concentration: bool         # hasOnlySubstanceUnits == false


class _Importer:
    def __init__(self, sbml_model, lenient: bool, default_bound: int | None, stem: str,
                 source: str = "<string>"):
        self.m = sbml_model
        self.source = source
        self.lenient = lenient
        self.default_bound = default_bound
        self.stem = stem
        self.problems: list[str] = []
        self.first_line = 0                        # line of the first problem, for the error's Loc
        self.warnings: list[str] = []
        self.comments: list[str] = []
        self.ann = _read_annotation(sbml_model)
        self.taken: set[str] = set()
        self.names: dict[str, str] = {}            # SBML id -> crnlang name (not reactions)
        self.labels: set[str] = set()              # reaction labels given so far
        self.sizes: dict[str, float] = {}
        self.species: dict[str, _SpeciesInfo] = {}
        self.param_defs: dict[str, Expr] = {}      # crn name -> expression (Const for values)
        self.compartment_names: set[str] = set()
        self.unsized: set[str] = set()             # compartments without a size (taken as 1)
        self.initial: dict[str, object] = {}       # SBML id -> initial-assignment ASTNode
        functions = {}
        for fd in sbml_model.getListOfFunctionDefinitions():
            functions[fd.getId()] = ([fd.getArgument(i).getName() for i in range(fd.getNumArguments())],
                                     fd.getBody())
        self.functions = functions

    # -- problems
    def problem(self, text: str, where=None) -> None:
        """Record an unsupported feature; ``where``: the SBML element (for its line number)."""
        line = where.getLine() if where is not None else 0
        if line:
            text += f" (line {line})"
            self.first_line = self.first_line or line
        self.problems.append(text)

    def note(self, text: str) -> None:
        self.comments.append(text)

    # -- names and values
    def _name(self, sid: str, wanted: str | None = None) -> str:
        """The crnlang name of an SBML id (``wanted``: the original name from our annotation)."""
        if wanted is not None:
            name = wanted
            self.taken.add(name)
        else:
            name = crn_identifier(sid, self.taken)
            if name != sid:
                self.note(f"SBML id '{sid}' is '{name}' here")
        self.names[sid] = name
        return name

    def reader(self, local: dict[str, str] | None = None) -> MathReader:
        local = local or {}

        def resolve(sid: str) -> Expr:
            if sid in local:
                return ParamRef(local[sid])
            if sid in self.species:
                info = self.species[sid]
                ref = ParamRef(info.name) if info.as_param else SpeciesRef(info.name)
                if info.concentration and self.sizes.get(info.compartment, 1.0) != 1.0:
                    return Binary("/", ref, ParamRef(self.names[info.compartment]))
                return ref
            if sid in self.names:
                return ParamRef(self.names[sid])
            raise Unsupported(f"a reference to '{sid}' (not a species, parameter or compartment)")

        return MathReader(resolve, self.functions, self.ann.exact if self.ann else None)

    # -- the steps
    def scan_unsupported(self) -> None:
        m = self.m
        for e in m.getListOfEvents():
            self.problem(f"event '{e.getId() or e.getMetaId() or '(no id)'}'", e)
        for i, r in enumerate(m.getListOfRules()):
            if r.isAlgebraic():
                self.problem(f"algebraic rule #{i + 1}", r)
            elif r.isRate():
                self.problem(f"rate rule for '{r.getVariable()}'", r)
            else:
                self.problem(f"assignment rule for '{r.getVariable()}'", r)
        for c in m.getListOfConstraints():
            self.warnings.append(f"constraint '{c.getMetaId() or '(no id)'}' ignored")
        for ia in m.getListOfInitialAssignments():
            self.initial[ia.getSymbol()] = ia.getMath()

    def read_compartments(self) -> None:
        for c in self.m.getListOfCompartments():
            sid = c.getId()
            size = c.getSize() if c.isSetSize() and not math.isnan(c.getSize()) else None
            if size is None and sid not in self.initial:
                self.unsized.add(sid)
            self.sizes[sid] = size if size is not None else 1.0
            self.compartment_names.add(self._name(sid))

    def read_species(self) -> None:
        ann = self.ann.species if self.ann else {}
        for s in self.m.getListOfSpecies():
            sid = s.getId()
            comp = s.getCompartment()
            volume = self.sizes.get(comp, 1.0)
            amount = None
            if s.isSetInitialAmount():
                amount = s.getInitialAmount()
            elif s.isSetInitialConcentration():
                amount = s.getInitialConcentration() * volume
                self.note(f"initial amount of '{sid}' = initial concentration "
                          f"{s.getInitialConcentration():g} x volume {volume:g} of '{comp}'")
            as_param = s.getBoundaryCondition() or s.getConstant()
            concentration = not s.getHasOnlySubstanceUnits()
            if concentration and volume != 1.0:
                self.note(f"'{sid}' is a concentration in its laws: read as {sid} / {comp} (copies per volume)")
            wanted = ann.get(sid, {}).get("name")
            name = self._name(sid, wanted)
            self.species[sid] = _SpeciesInfo(sid, name, comp, amount, as_param, concentration)
            if as_param:
                self.note(f"species '{sid}' is {'a boundary' if s.getBoundaryCondition() else 'a constant'} "
                          f"species: a parameter here")

    def read_parameters(self) -> None:
        for p in self.m.getListOfParameters():
            sid = p.getId()
            self._name(sid)
            if not p.isSetValue() and sid not in self.initial:
                self.problem(f"parameter '{sid}' has no value")

    def build_params(self) -> tuple[Param, ...]:
        reader = self.reader()
        defs: dict[str, Expr] = {}
        exact = self.ann.params if self.ann else {}
        for c in self.m.getListOfCompartments():
            defs[self.names[c.getId()]] = self._initial_or(c.getId(), Const(self.sizes[c.getId()]), reader)
        for sid, info in self.species.items():
            if info.as_param:
                defs[info.name] = Const(float(info.amount or 0.0))
        for p in self.m.getListOfParameters():
            sid = p.getId()
            value = exact.get(sid, p.getValue() if p.isSetValue() else 0.0)
            defs[self.names[sid]] = self._initial_or(sid, Const(float(value)), reader)
        defs.update(self.param_defs)   # local parameters
        used = self._used_names(defs)
        for sid in sorted(self.unsized):
            if self.names[sid] in used:
                self.warnings.append(f"compartment '{sid}' has no size; taken as 1")
        order = _topological([n for n in defs if n not in self.compartment_names or n in used], defs)
        if order is None:
            self.problem("initial assignments that depend on each other in a cycle")
            order = [n for n in defs]
        params, values = [], {}
        for name in order:
            expr = defs[name]
            try:
                value = float(evaluate(expr, values))
            except (KeyError, ArithmeticError, ValueError) as exc:
                self.problem(f"parameter '{name}' cannot be computed ({exc})")
                value = 0.0
            if not math.isfinite(value):
                self.problem(f"parameter '{name}' has the value {value}")
                value = 0.0
            values[name] = value
            params.append(Param(name, expr, value))
        self.param_values = values
        return tuple(params)

    def _initial_or(self, sid: str, default: Expr, reader: MathReader) -> Expr:
        if sid not in self.initial:
            return default
        try:
            expr = reader.read(self.initial[sid])
        except Unsupported as exc:
            self.problem(f"initial assignment to '{sid}': {exc}")
            return default
        if species_in(expr):
            self.problem(f"initial assignment to '{sid}' reads species")
            return default
        return expr

    def _used_names(self, defs: dict[str, Expr]) -> set[str]:
        """Parameter names read by reactions, observables or (transitively) other params."""
        used: set[str] = set()
        stack = [r.rate for r in self.reactions] + [o.expr for o in self.observables]
        stack += [e for n, e in defs.items() if n not in self.compartment_names]
        while stack:
            e = stack.pop()
            if isinstance(e, ParamRef):
                if e.name not in used:
                    used.add(e.name)
                    if e.name in defs:
                        stack.append(defs[e.name])
            stack.extend(children(e))
        return used

    def read_reactions(self) -> None:
        candidates = []
        for r in self.m.getListOfReactions():
            rid = r.getId()
            ann = self.ann.reactions.get(rid, {}) if self.ann else {}
            label = ann.get("label") or safe_identifier(rid, self.labels)
            local = self._local_params(r)
            reactants = self._side(r, r.getListOfReactants(), "reactant")
            products = self._side(r, r.getListOfProducts(), "product")
            if reactants is None or products is None:
                continue
            if not r.isSetKineticLaw() or r.getKineticLaw().getMath() is None:
                self.problem(f"reaction '{rid}' has no kinetic law", r)
                continue
            try:
                law = self.reader(local).read(r.getKineticLaw().getMath())
            except Unsupported as exc:
                self.problem(f"reaction '{rid}': {exc}", r)
                continue
            candidates.append((rid, label, reactants, products, law, r.getReversible(), ann))
        self.kinetics = (self.ann.kinetics if self.ann and self.ann.kinetics else
                         _choose_kinetics(candidates))
        self.reactions = []
        for cand in candidates:
            self.reactions += self._reactions_of(*cand)

    def _local_params(self, r) -> dict[str, str]:
        local = {}
        if not r.isSetKineticLaw():
            return local
        kl = r.getKineticLaw()
        items = list(kl.getListOfLocalParameters()) if self.m.getLevel() >= 3 else list(kl.getListOfParameters())
        for p in items:
            pid = p.getId()
            name = pid
            if name in self.taken or not is_identifier(name):
                name = crn_identifier(f"{r.getId()}_{pid}", self.taken)
                self.note(f"local parameter '{pid}' of reaction '{r.getId()}' is '{name}' here")
            else:
                self.taken.add(name)
            local[pid] = name
            self.param_defs[name] = Const(float(p.getValue()) if p.isSetValue() else 0.0)
            if not p.isSetValue():
                self.problem(f"local parameter '{pid}' of reaction '{r.getId()}' has no value")
        return local

    def _side(self, r, refs, what: str):
        merged: dict[str, int] = {}
        ok = True
        for ref in refs:
            sid = ref.getSpecies()
            if ref.isSetStoichiometryMath() if hasattr(ref, "isSetStoichiometryMath") else False:
                self.problem(f"reaction '{r.getId()}': stoichiometryMath for {what} '{sid}'", ref)
                ok = False
                continue
            s = ref.getStoichiometry() if ref.isSetStoichiometry() else (1.0 if self.m.getLevel() < 3 else math.nan)
            if math.isnan(s) or s <= 0 or not float(s).is_integer():
                self.problem(f"reaction '{r.getId()}': non-integer stoichiometry {s:g} of {what} '{sid}'", ref)
                ok = False
                continue
            info = self.species.get(sid)
            if info is None:
                self.problem(f"reaction '{r.getId()}': unknown species '{sid}'", ref)
                ok = False
                continue
            if info.as_param:
                continue
            merged[info.name] = merged.get(info.name, 0) + int(s)
        return tuple(merged.items()) if ok else None

    def _reactions_of(self, rid, label, reactants, products, law, reversible, ann) -> list[Reaction]:
        kin = self.kinetics
        if ann:
            fast = _annotated_split(law, reactants, kin, ann)
            if fast is not None:
                rate, mass_action = fast
                return [Reaction(label, reactants, products, rate, mass_action)]
        if reversible:
            halves = _reversible_halves(law, reactants, products, kin)
            if halves is not None:
                fwd, rev = halves
                return [Reaction(f"{label}_fwd", reactants, products, fwd),
                        Reaction(f"{label}_rev", products, reactants, rev)]
            if isinstance(law, Binary) and law.op == "-":
                self.problem(f"reversible reaction '{rid}': its law is not forward minus backward mass action")
                return []
            self.warnings.append(f"reaction '{rid}' is marked reversible but its law is one-way; "
                                 f"taken as the forward propensity")
        split = split_mass_action(law, reactants, kin)
        if split is not None:
            return [Reaction(label, reactants, products, split[0], True)]
        return [Reaction(label, reactants, products, law, False)]

    def build(self) -> Model:
        self.scan_unsupported()
        self.read_compartments()
        self.read_species()
        self.read_parameters()
        self.read_reactions()
        self.observables = self._observables()
        params = self.build_params()
        species = self._species_list()
        init = self._init(species)
        if self.problems:
            if not self.lenient:
                loc = Loc(self.source, self.first_line, 1) if self.first_line else None
                raise CRNError("unsupported SBML features: " + "; ".join(self.problems), loc,
                               hint="crnlang cannot express these; --lenient (lenient=True) leaves them "
                                    "out with a warning")
            self.warnings += [f"left out: {p}" for p in self.problems]
        ann = self.ann
        name = (ann.name if ann and ann.name else None) or safe_identifier(self.m.getId() or self.stem)
        settings = _settings_from(ann.settings) if ann else Settings()
        lattice = ann.lattice if ann else None
        return Model(name=name, kinetics=self.kinetics, params=params, species=species,
                     reactions=tuple(self.reactions), init=init, observables=tuple(self.observables),
                     settings=settings, lattice=lattice)

    def _species_list(self) -> tuple[Species, ...]:
        out = []
        ann = self.ann.species if self.ann else {}
        for sid, info in self.species.items():
            if info.as_param:
                continue
            a = ann.get(sid, {})
            lo = int(a["lo"]) if "lo" in a else 0
            hi = int(a["hi"]) if a.get("hi") not in (None, "") else self.default_bound
            if hi is not None and "hi" not in a and self.default_bound is not None:
                amount = info.amount or 0
                hi = max(hi, int(math.ceil(amount)))
            base = a.get("base", info.name if self.ann is None or "base" not in a else a["base"])
            site = tuple(int(v) for v in a["site"].split(",")) if a.get("site") else None
            out.append(Species(info.name, lo, hi, base if site is not None else info.name, site))
        if self.default_bound is not None:
            self.note(f"species without a bound are kept in 0..{self.default_bound} (default_bound)")
        return tuple(out)

    def _init(self, species) -> dict[str, InitDist]:
        init: dict[str, InitDist] = {}
        ann = self.ann
        reader = self.reader()
        for sid, info in self.species.items():
            if info.as_param:
                continue
            if ann and sid in ann.init:
                init[info.name] = ann.init[sid]
                continue
            amount = info.amount
            if sid in self.initial:
                try:
                    expr = reader.read(self.initial[sid])
                    amount = float(evaluate(expr, self._values_for_init()))
                    if info.concentration:
                        amount *= self.sizes.get(info.compartment, 1.0)
                except (Unsupported, KeyError, ArithmeticError, ValueError) as exc:
                    self.problem(f"initial assignment to species '{sid}': {exc}")
                    continue
            if amount is None:
                self.problem(f"species '{sid}' has no initial amount")
                continue
            if not float(amount).is_integer():
                self.warnings.append(f"initial amount {amount:g} of '{sid}' rounded to {round(amount)}")
                amount = round(amount)
            listed = ann is not None and ann.species.get(sid, {}).get("init") == "listed"
            if amount != 0 or listed:
                init[info.name] = InitDist("fixed", (int(amount),))
        return init

    def _values_for_init(self) -> dict[str, float]:
        return getattr(self, "param_values", {})

    def _observables(self) -> list[Observable]:
        out = []
        if not self.ann:
            return out
        reader = self.reader()
        for attrs, ast in self.ann.observables:
            try:
                expr = reader.read(ast)
            except Unsupported as exc:
                self.problem(f"observable '{attrs.get('name')}': {exc}")
                continue
            out.append(Observable(attrs["name"], expr, attrs.get("boolean") == "true",
                                  attrs.get("absorbing") == "true"))
        return out


def _topological(names: list[str], defs: dict[str, Expr]) -> list[str] | None:
    """``names`` ordered so each comes after the params its expression reads; None on a cycle."""
    wanted = set(names)
    order: list[str] = []
    state: dict[str, int] = {}

    def deps(e: Expr) -> set[str]:
        out = {e.name} if isinstance(e, ParamRef) else set()
        for c in children(e):
            out |= deps(c)
        return out

    def visit(n: str) -> bool:
        if state.get(n) == 2:
            return True
        if state.get(n) == 1:
            return False
        state[n] = 1
        for d in sorted(deps(defs[n]) & wanted, key=names.index):
            if not visit(d):
                return False
        state[n] = 2
        order.append(n)
        return True

    for n in names:
        if not visit(n):
            return None
    return order


def _annotated_split(law: Expr, reactants, kinetics: str, ann: dict):
    """(rate, mass_action) for a law written by ``export_sbml`` (rate * h, or the whole law)."""
    if ann.get("mass_action") == "false":
        return law, False
    if ann.get("mass_action") != "true":
        return None
    h = mass_action_expr(kinetics, reactants)
    if h is None:
        return law, True
    factors, tail = chain_items(law, "*"), chain_items(canonical(h), "*")
    if len(factors) > len(tail) and factors[-len(tail):] == tail:
        rate = factors[0]
        for f in factors[1:-len(tail)]:
            rate = Binary("*", rate, f)
        return rate, True
    return None


def _reversible_halves(law: Expr, reactants, products, kinetics: str):
    if not (isinstance(law, Binary) and law.op == "-"):
        return None
    fwd = split_mass_action(law.left, reactants, kinetics)
    rev = split_mass_action(law.right, products, kinetics)
    if fwd is None or rev is None:
        return None
    return fwd[0], rev[0]


def _choose_kinetics(candidates) -> str:
    """The convention making the most laws mass action, then the most without a numeric factor."""
    best, best_score = "binomial", None
    for kin in ("binomial", "falling", "power"):
        mass, clean = 0, 0
        for _rid, _label, reactants, products, law, reversible, _ann in candidates:
            parts = [(law, reactants)]
            if reversible and isinstance(law, Binary) and law.op == "-":
                parts = [(law.left, reactants), (law.right, products)]
            for expr, side in parts:
                split = split_mass_action(expr, side, kin)
                if split is not None:
                    mass += 1
                    clean += split[1]
        score = (mass, clean)
        if best_score is None or score > best_score:
            best, best_score = kin, score
    return best


def read_sbml_model(source, lenient: bool = False, default_bound: int | None = None) -> tuple[Model, list[str], list[str]]:
    """(Model, comments, warnings) from an SBML file path or SBML text."""
    doc = _read_document(source)
    stem = Path(str(source)).stem if not str(source).lstrip().startswith("<") else "model"
    where = "<string>" if str(source).lstrip().startswith("<") else str(source)
    imp = _Importer(doc.getModel(), lenient, default_bound, stem, where)
    model = imp.build()
    return model, imp.comments, imp.warnings


def import_sbml(path, lenient: bool = False, default_bound: int | None = None) -> tuple[str, list[str]]:
    """(.crn text, warnings) for the SBML model at ``path`` (or SBML text).

    ``default_bound``: an upper bound for every species without one (FSP needs bounds).
    Raises ``CRNError`` listing every unsupported feature by SBML id unless ``lenient``.
    """
    model, comments, warnings = read_sbml_model(path, lenient, default_bound)
    where = str(path) if not str(path).lstrip().startswith("<") else "SBML text"
    head = [f"imported from {Path(where).name if where != 'SBML text' else where} by crnlang"]
    head += comments
    head += [f"warning: {w}" for w in warnings]
    return write_crn(model, head), warnings


# ---------------------------------------------------------------- export
def _check(status: int, what: str) -> None:
    if status != libsbml.LIBSBML_OPERATION_SUCCESS:
        raise CRNError(f"SBML export failed at {what}: {libsbml.OperationReturnValue_toString(status)}")


def _fmt(v: float) -> str:
    v = float(v)
    return str(int(v)) if v.is_integer() and abs(v) < 1e16 else repr(v)


def _initial_amount(dist: InitDist) -> float:
    if dist.kind == "fixed":
        return float(dist.args[0])
    if dist.kind == "poisson":
        return float(dist.args[0])
    if dist.kind == "uniform":
        return (dist.args[0] + dist.args[1]) / 2
    if dist.kind == "binomial":
        return dist.args[0] * dist.args[1]
    return 0.0


def export_sbml(model: Model) -> str:
    """``model`` as SBML Level 3 Version 2 text (see the module docstring)."""
    doc = libsbml.SBMLDocument(3, 2)
    m = doc.createModel()
    taken: set[str] = set()
    _check(m.setId(sbml_id(model.name, taken)), "model id")
    m.setName(model.name)
    comp_id = sbml_id("cell", taken)
    comp = m.createCompartment()
    comp.setId(comp_id)
    comp.setSize(1.0)
    comp.setConstant(True)
    comp.setSpatialDimensions(3)

    ids: dict[str, str] = {}
    for p in model.params:
        ids[p.name] = sbml_id(p.name, taken)
    for s in model.species:
        ids[s.name] = sbml_id(site_safe_name(s.name), taken)

    def name_of(e) -> str:
        return ids[e.name]

    for s in model.species:
        sp = m.createSpecies()
        _check(sp.setId(ids[s.name]), f"species {s.name}")
        sp.setName(s.name)
        sp.setCompartment(comp_id)
        sp.setInitialAmount(_initial_amount(model.init_of(s.name)))
        sp.setHasOnlySubstanceUnits(True)
        sp.setBoundaryCondition(False)
        sp.setConstant(False)
    for p in model.params:
        par = m.createParameter()
        par.setId(ids[p.name])
        par.setValue(p.value)
        par.setConstant(True)
        if not isinstance(p.expr, Const):
            ia = m.createInitialAssignment()
            ia.setSymbol(ids[p.name])
            _check(ia.setMath(to_ast(p.expr, name_of)), f"param {p.name}")
    for r in model.reactions:
        rx = m.createReaction()
        rid = sbml_id(site_safe_name(r.label), taken)
        ids["reaction:" + r.label] = rid
        _check(rx.setId(rid), f"reaction {r.label}")
        rx.setReversible(False)
        for name, s in r.reactants:
            ref = rx.createReactant()
            ref.setSpecies(ids[name])
            ref.setStoichiometry(s)
            ref.setConstant(True)
        for name, s in r.products:
            ref = rx.createProduct()
            ref.setSpecies(ids[name])
            ref.setStoichiometry(s)
            ref.setConstant(True)
        reactant_names = {n for n, _ in r.reactants}
        for name in sorted(species_in(r.rate) - reactant_names):
            mod = rx.createModifier()
            mod.setSpecies(ids[name])
        law = r.rate
        if r.mass_action:
            h = mass_action_expr(model.kinetics, r.reactants)
            law = r.rate if h is None else Binary("*", r.rate, h)
        kl = rx.createKineticLaw()
        _check(kl.setMath(to_ast(law, name_of)), f"kinetic law of {r.label}")
    _check(m.setAnnotation(_annotation_xml(model, ids, name_of)), "crnlang annotation")
    return libsbml.writeSBMLToString(doc)


def _annotation_xml(model: Model, ids: dict[str, str], name_of) -> str:
    q = quoteattr
    lines = [f"<{PREFIX}:model xmlns:{PREFIX}={q(NAMESPACE)} name={q(model.name)} "
             f"kinetics={q(model.kinetics)}>"]
    if model.lattice is not None:
        lat = model.lattice
        lines.append(f"<{PREFIX}:lattice kind={q(lat.kind)} shape={q(','.join(map(str, lat.shape)))} "
                     f"periodic={q('true' if lat.periodic else 'false')}/>")
    for s in model.species:
        attrs = f"id={q(ids[s.name])} name={q(s.name)} lo={q(str(s.lo))}"
        if s.hi is not None:
            attrs += f" hi={q(str(s.hi))}"
        if s.site is not None:
            attrs += f" base={q(s.base)} site={q(','.join(map(str, s.site)))}"
        if s.name in model.init:
            attrs += ' init="listed"'
        lines.append(f"<{PREFIX}:species {attrs}/>")
    for name, dist in model.init.items():
        if not dist.is_fixed:
            lines.append(f"<{PREFIX}:init species={q(ids[name])} kind={q(dist.kind)} "
                         f"args={q(','.join(_fmt(a) for a in dist.args))}/>")
    for p in model.params:
        lines.append(f"<{PREFIX}:param id={q(ids[p.name])} value={q(repr(float(p.value)))}/>")
    for r in model.reactions:
        lines.append(f"<{PREFIX}:reaction id={q(ids['reaction:' + r.label])} label={q(r.label)} "
                     f"mass_action={q('true' if r.mass_action else 'false')}/>")
    for ob in model.observables:
        mathml = libsbml.writeMathMLToString(to_ast(ob.expr, name_of))
        mathml = re.sub(r"^<\?xml[^>]*\?>\s*", "", mathml)
        lines.append(f"<{PREFIX}:observable name={q(ob.name)} boolean={q('true' if ob.boolean else 'false')} "
                     f"absorbing={q('true' if ob.absorbing else 'false')}>{mathml}</{PREFIX}:observable>")
    exprs = [r.rate for r in model.reactions] + [p.expr for p in model.params]
    exprs += [o.expr for o in model.observables]
    for h in (mass_action_expr(model.kinetics, r.reactants) for r in model.reactions):
        exprs += [h] if h is not None else []
    for value in sorted(set().union(*[constants_in(e) for e in exprs]) if exprs else ()):
        approx = written_value(value)
        if approx != value:
            lines.append(f"<{PREFIX}:const approx={q(repr(approx))} exact={q(repr(value))}/>")
    default = Settings()
    changed = []
    for f in fields(Settings):
        v = getattr(model.settings, f.name)
        if v == getattr(default, f.name):
            continue
        if f.name == "rare":
            text = ",".join(v)
        elif isinstance(v, bool):
            text = "true" if v else "false"
        elif isinstance(v, float):
            text = repr(v)
        else:
            text = str(v)
        changed.append(f"{f.name}={q(text)}")
    if changed:
        lines.append(f"<{PREFIX}:settings {' '.join(changed)}/>")
    lines.append(f"</{PREFIX}:model>")
    return "\n".join(lines)
