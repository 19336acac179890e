"""What the analysis hands to every backend (the "ReducedModel" of ARCHITECTURE.md).

The codegen, FSP, SSA and neural solvers read an ``Analysis``: the state vector of the
reduced model is ``reduced_species`` (in the model's species order, eliminated ones left out);
each eliminated species is rebuilt from its conservation law.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..model.ir import Model
from .report import report as readable_report


@dataclass(frozen=True)
class ConservationLaw:
    """sum_i coefficients[i] * x_i == total for every reachable state.

    ``total`` is None when the initial distribution makes it random (then the law is
    reported but never used to eliminate a species).
    """

    coefficients: Mapping[str, int]
    total: int | None

    @property
    def semi_positive(self) -> bool:
        return all(c >= 0 for c in self.coefficients.values())

    def to_dict(self) -> dict:
        return {"coefficients": dict(self.coefficients), "total": self.total}


@dataclass(frozen=True)
class Elimination:
    """``species`` is not a variable of the reduced model: it is rebuilt as
    (law.total - sum_{j != species} law.coefficients[j] * x_j) / law.coefficients[species]."""

    species: str
    law: ConservationLaw
    reason: str = ""

    def rebuild_terms(self) -> tuple[int, dict[str, int], int]:
        """(total, {other species: coefficient}, own coefficient)."""
        own = self.law.coefficients[self.species]
        others = {k: v for k, v in self.law.coefficients.items() if k != self.species and v != 0}
        return int(self.law.total), others, own


@dataclass(frozen=True)
class Analysis:
    """The facts every backend needs, plus the report of ``crnlang analyze``."""

    model: Model
    species: tuple[str, ...]                       # all species, model order
    stoichiometry: np.ndarray                      # (n_species, n_reactions) int64, net change
    rank: int
    conservation_laws: tuple[ConservationLaw, ...]
    eliminations: tuple[Elimination, ...]
    reduced_species: tuple[str, ...]               # the state vector of every backend
    bounds: Mapping[str, tuple[int, int | None]]   # every species -> (lo, hi or None)
    log10_box: float | None                        # log10 of the box before reduction (None: unbounded)
    log10_reduced: float | None                    # after elimination
    reachable_states: int | None = None            # exact count where feasible, else None
    graph: Mapping[str, Any] = field(default_factory=dict)  # components, deficiency, ...

    @property
    def eliminated(self) -> tuple[str, ...]:
        return tuple(e.species for e in self.eliminations)

    def unbounded(self) -> tuple[str, ...]:
        """Reduced species with no upper bound: FSP and the neural solvers refuse these."""
        return tuple(s for s in self.reduced_species if self.bounds[s][1] is None)

    def to_dict(self) -> dict:
        """What ``crnlang analyze --json`` prints: the LANGUAGE.md fields (species, reactions,
        conservation_laws, eliminated, bounds, log10_states) and a few more (rank,
        reachable_states, deficiency, components, ...). Plain JSON types only."""
        g = self.graph
        return {
            "species": list(self.species),
            "reactions": len(self.model.reactions),
            "conservation_laws": [law.to_dict() for law in self.conservation_laws],
            "eliminated": list(self.eliminated),
            "bounds": {name: [int(lo), None if hi is None else int(hi)]
                       for name, (lo, hi) in self.bounds.items()},
            "log10_states": {"box": self.log10_box, "reduced": self.log10_reduced},
            "reduced_species": list(self.reduced_species),
            "eliminations": [{"species": e.species, "law": e.law.to_dict(), "reason": e.reason}
                             for e in self.eliminations],
            "rank": int(self.rank),
            "reachable_states": self.reachable_states,
            "components": [list(c) for c in g.get("components", [])],
            "complexes": g.get("n_complexes"),
            "linkage_classes": g.get("n_linkage_classes"),
            "deficiency": g.get("deficiency"),
            "weakly_reversible": g.get("weakly_reversible"),
        }

    def report(self) -> str:
        """The readable text ``crnlang analyze FILE`` prints."""
        return readable_report(self)
