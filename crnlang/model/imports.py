"""Stage 1 of lowering: files, imports and modules.

``Splicer`` reads the main file and everything it imports (``use NAME`` from the stdlib,
``import "path"`` relative to the importing file) into one flat list of (statement, Source):
an import cycle is an error, a file is merged once, an imported file's ``model`` name is
dropped. Module definitions are collected, and ``expand`` replaces every module call by the
module's body with the arguments substituted (labels prefixed per instance).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

from ..errors import CRNError, CRNImportError, CRNNameError, CRNSemanticError
from ..syntax import ast
from ..syntax.parser import parse_text
from ..vocabulary import BUILTIN_FUNCS, REDUCTIONS
from .names import check_name
from .source import Source, error_at, read_source, suggest

STDLIB_DIR = Path(__file__).resolve().parents[1] / "stdlib"
MAX_MODULE_DEPTH = 32


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
                first = self.modules[stmt.name]
                raise error_at(CRNNameError, f"module '{stmt.name}' is defined twice", src, stmt.pos,
                               f"first defined at {first.src.loc(first.definition.pos)}")
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
            text = read_source(path)
        except (OSError, UnicodeDecodeError) as e:
            shown = stmt.path if isinstance(stmt, ast.ImportStmt) else path
            self.errors.append(error_at(CRNImportError, f"cannot read '{shown}': "
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
            if call.name in BUILTIN_FUNCS or call.name in REDUCTIONS:
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
