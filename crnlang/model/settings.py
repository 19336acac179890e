"""Solver annotations (``@solve``, ``@network``, ``@sampling``, ``@rare``) -> ``ir.Settings``.

Each annotation key has a type: an enum (a bare word), a float, an int or a bool; a wrong key
or value is a ``CRNSemanticError`` that lists what is valid.
"""
from __future__ import annotations

import math

from ..errors import CRNError, CRNNameError, CRNSemanticError, did_you_mean
from ..syntax import ast
from ..vocabulary import DTYPES, HEADS, INTEGRATORS, METHODS, NETWORKS, SAMPLINGS
from .ir import Settings
from .source import error_at

# annotation -> (positional key or None, {key: type}); a type is a tuple of words (an enum),
# or one of "float+" (> 0), "float0" (>= 0), "float", "int+" (> 0), "int0" (>= 0), "bool", "unit" (0..1)
ANNOTATIONS: dict[str, tuple[str | None, dict[str, object]]] = {
    "solve": ("method", {
        "method": METHODS, "dt": "float+", "t_end": "float+", "batch": "int+", "lr": "float+",
        "lambda": "float+", "integrator": INTEGRATORS, "dtype": DTYPES,
        "seed": "int0", "save_every": "int+", "epochs": "int+", "epsilon": "float+",
    }),
    "network": ("network", {"network": NETWORKS, "hidden": "int+", "layers": "int+", "head": HEADS}),
    "sampling": ("sampling", {
        "sampling": SAMPLINGS, "alpha": "float+", "kernel": "int+",
        "uniform": "unit", "reweight": "bool",
    }),
    "rare": (None, {}),
}
_FIELD = {"lambda": "lam"}
MAX_SETTING_INTEGER = 2 ** 31 - 1
# integer keys with a tighter ceiling: (largest value, hint)
LIMITS = {
    "batch": (10 ** 8, "batch is samples per step (neural) or runs (ssa, tau); split a larger "
                       "SSA ensemble into several runs with different seeds"),
    "hidden": (10 ** 5, None), "layers": (1000, None),
}


def settings_from_annotations(annotations, lowerer) -> Settings:
    """Fold the annotations, in source order, into ``Settings`` (errors go to ``lowerer.errors``)."""
    changes: dict[str, object] = {}
    rare: list[str] = []
    for stmt, src in annotations:
        try:
            if stmt.name not in ANNOTATIONS:
                raise lowerer_err(CRNNameError, f"unknown annotation '@{stmt.name}'", src, stmt.pos,
                                  did_you_mean(stmt.name, ANNOTATIONS) or
                                  "valid annotations: " + ", ".join("@" + a for a in ANNOTATIONS))
            if stmt.name == "rare":
                rare.extend(_rare_names(stmt, src, lowerer))
                continue
            positional, keys = ANNOTATIONS[stmt.name]
            used_positional = False
            for arg in stmt.args:
                try:
                    key = arg.key
                    if key is None:
                        if used_positional:
                            raise lowerer_err(CRNSemanticError, f"@{stmt.name} takes one unnamed argument",
                                              src, arg.pos, "name the others, e.g. hidden = 16")
                        used_positional = True
                        key = positional
                    if key not in keys:
                        raise lowerer_err(CRNNameError, f"unknown key '{key}' in @{stmt.name}", src, arg.pos,
                                          (did_you_mean(key, keys) or "") + " valid keys: " + ", ".join(keys))
                    changes[_FIELD.get(key, key)] = _value(key, keys[key], arg.value, src, lowerer, stmt.name)
                except CRNError as e:
                    lowerer.errors.append(e)
        except CRNError as e:
            lowerer.errors.append(e)
    if rare:
        changes["rare"] = tuple(dict.fromkeys(rare))
    return Settings().updated(**changes)


def lowerer_err(cls, message, src, pos, hint=None):
    return error_at(cls, message, src, pos, hint.strip() if hint else None)


def _value(key: str, kind, node: ast.Node, src, lowerer, ann: str):
    if isinstance(kind, tuple):
        if not isinstance(node, ast.Name) or node.name not in kind:
            got = node.name if isinstance(node, ast.Name) else "an expression"
            hint = (did_you_mean(got, kind) or "") if isinstance(node, ast.Name) else ""
            raise lowerer_err(CRNSemanticError, f"@{ann} {key} must be one of {' | '.join(kind)}, got '{got}'"
                              if isinstance(node, ast.Name) else
                              f"@{ann} {key} must be one of {' | '.join(kind)}", src, node.pos,
                              hint or f"use one of {', '.join(kind)}")
        return node.name
    if kind == "bool":
        if isinstance(node, ast.Name) and node.name in ("true", "false"):
            return node.name == "true"
        raise lowerer_err(CRNSemanticError, f"@{ann} {key} must be true or false", src, node.pos)
    if isinstance(node, ast.Name) and node.name in ("true", "false"):
        raise lowerer_err(CRNSemanticError, f"@{ann} {key} must be a number, got '{node.name}'", src, node.pos)
    what = f"@{ann} {key}"
    if kind.startswith("int"):
        hi, hint = LIMITS.get(key, (MAX_SETTING_INTEGER, None))
        return lowerer.integer(node, src, what, lo=1 if kind == "int+" else 0, hi=hi, hint=hint)
    value = lowerer.constant(node, src, what)
    if (kind == "float+" and value <= 0) or (kind == "float0" and value < 0) or \
            (kind == "unit" and not 0 <= value <= 1):
        need = {"float+": "> 0", "float0": ">= 0", "unit": "in 0..1"}[kind]
        raise lowerer_err(CRNSemanticError, f"{what} must be {need}, got {value:g}", src, node.pos)
    return value


def _rare_names(stmt: ast.Annotation, src, lowerer) -> list[str]:
    if not stmt.args:
        raise lowerer_err(CRNSemanticError, "@rare needs the name of a boolean observable", src, stmt.pos,
                          "e.g. @rare(low)")
    names = []
    for arg in stmt.args:
        node = arg.value
        if arg.key is not None or not isinstance(node, ast.Name):
            raise lowerer_err(CRNSemanticError, "@rare takes observable names", src, arg.pos, "e.g. @rare(low)")
        obs = lowerer.observables.get(node.name)
        if obs is None:
            if node.name in lowerer.poisoned or lowerer.kinds.get(node.name, (None,))[0] == "observable":
                continue
            raise lowerer_err(CRNNameError, f"unknown observable '{node.name}' in @rare", src, node.pos,
                              did_you_mean(node.name, lowerer.observables) or
                              "define it with `observe NAME = CONDITION`")
        if not obs.boolean:
            raise lowerer_err(CRNSemanticError, f"observable '{node.name}' is a number; @rare needs a condition",
                              src, node.pos)
        names.append(node.name)
    return names


def _key_types() -> dict[str, object]:
    """Settings field -> value type, over every annotation."""
    types: dict[str, object] = {}
    for _, keys in ANNOTATIONS.values():
        for key, kind in keys.items():
            types[_FIELD.get(key, key)] = kind
    return types


def check_setting(field: str, value):
    """Validate one override (``crnlang.solve`` keyword or ``--set``) like its annotation would.

    Returns the value converted to the field's type; raises ``CRNError`` with the valid values.
    """
    kind = _key_types().get(field)
    if field == "rare":
        names = (value,) if isinstance(value, str) else tuple(value)
        return tuple(str(n) for n in names)
    if kind is None:
        return value
    if isinstance(kind, tuple):
        if value not in kind:
            raise CRNError(f"setting {field} must be one of {' | '.join(kind)}, got {value!r}",
                           hint=did_you_mean(str(value), kind) or f"use one of {', '.join(kind)}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise CRNError(f"setting {field} must be true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CRNError(f"setting {field} must be a number, got {value!r}")
    if kind.startswith("int"):
        if not math.isfinite(float(value)) or float(value) != int(value):
            raise CRNError(f"setting {field} must be a whole number, got {value!r}")
        value = int(value)
        if value < (1 if kind == "int+" else 0):
            raise CRNError(f"setting {field} must be {'> 0' if kind == 'int+' else '>= 0'}, got {value}")
        hi, hint = LIMITS.get(field, (MAX_SETTING_INTEGER, None))
        if value > hi:
            raise CRNError(f"setting {field} is {value:.3g}, more than the largest allowed, {hi:,}",
                           hint=hint)
        return value
    value = float(value)
    if not math.isfinite(value) or (kind == "float+" and value <= 0) or \
            (kind == "float0" and value < 0) or (kind == "unit" and not 0 <= value <= 1):
        need = {"float+": "> 0", "float0": ">= 0", "unit": "in 0..1"}.get(kind, "finite")
        raise CRNError(f"setting {field} must be {need}, got {value:g}")
    return value
