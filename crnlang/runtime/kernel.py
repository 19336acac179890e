"""The contract between a generated model module ("kernel") and the generic backends.

``crnlang.emit(model)`` writes, and ``crnlang.compile(model)`` imports, a module with exactly
these names. FSP, SSA and the neural solver use nothing else of the model, so they cannot
disagree about a propensity, a bound or the truncation rule.

Shapes: B batch, L reduced species (the state vector), L_full all species, K reactions.
States ``x`` are tensors of copy numbers of the reduced species, (B, L), dtype int64 or a
float dtype holding integers; float results come back in x's float dtype (float64 for
int64 input). ``t`` is a float (or 0-d tensor). Everything works on CPU and CUDA.

Constants
    NAME: str                          model name
    SPECIES: tuple[str, ...]           reduced species, state-vector order (L)
    ALL_SPECIES: tuple[str, ...]       all species, model order (L_full)
    ELIMINATED: dict[str, tuple[int, dict[str, int], int]]
                                       species -> (total, {kept species: coeff}, own coeff)
    LOWER, UPPER: tuple[int, ...]      bounds of the reduced species (UPPER entry None: unbounded)
    FULL_LOWER, FULL_UPPER             the same for ALL_SPECIES
    DECLARED_UPPER: dict[str, int]     species -> its declared upper bound (the truncation whose
                                       edge FSP and the neural estimates watch; a bound that a
                                       conservation law implies is not an edge)
    REACTIONS: tuple[str, ...]         reaction labels (K)
    CHANGE: torch.Tensor               (K, L) int64, change vectors on the reduced species
    CHANGE_FULL: torch.Tensor          (K, L_full) int64
    REACTANTS: torch.Tensor            (K, L_full) int64 reactant stoichiometry (tau-leaping's
                                       step selection reads each species' highest order)
    RATE_CONSTANTS: tuple              (K) c_k where propensity k is c_k * h(x) with a constant
                                       c_k (mass action under MODEL.kinetics), None for any
                                       other rate law (the compiled SSA reads them)
    TIME_DEPENDENT: bool               some rate reads t
    OBSERVABLES: tuple[str, ...]       observable names, BOOLEAN: tuple[bool, ...] alongside
    ABSORBING: tuple[str, ...]         names of absorbing observables (may be empty)
    INTERVALS: dict[str, dict[str, tuple[int, int | None]]]
                                       the boolean observables that are products of intervals of
                                       state-vector species, {name: {species: (lo, hi)}} (hi None:
                                       unbounded); the sequential rare-event estimator reads them
    MODEL: KernelInfo                  description for the runtime (name, kinetics, lattice)

Functions
    full_state(x) -> (B, L_full)       eliminated species rebuilt from the conservation laws
    in_support(x) -> (B,) bool         every species (eliminated included) inside its bounds
    propensities(x, t) -> (B, K)       untruncated a_k(x), rate laws with constants folded
    fires(x) -> (B, K) bool            the support rule: x + CHANGE[k] stays in support
    out_rates(x, t) -> (B, K)          propensities * fires, and 0 for every k where x is in an
                                       absorbing region: the out-flux every backend uses
    shifted(x, t) -> (x_prev, a_in)    x_prev = x - CHANGE[k]: (B, K, L) int64;
                                       a_in: (B, K) out_rates(x_prev)[k], 0 where x_prev is not
                                       in support. The in-flux of the CME in one batched call.
    observables(x, t) -> dict[str, (B,) tensor]   float for numeric, bool for boolean ones
    absorbing(x) -> (B,) bool          x inside any absorbing region (False when none)
    init_log_prob(x) -> (B,) float     log P(x) at t = 0 (-inf outside its support)
    init_sample(n, generator=None) -> (n, L) int64   exact samples of the initial distribution
    init_support() -> (S, L) int64 or None           all states with P > 0 at t = 0 when the
                                                     support is small (for FSP), else None
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class KernelInfo:
    """What a generated module says about itself, beyond the tensors and functions."""

    name: str
    crnlang_version: str
    kinetics: str
    lattice: dict[str, Any] | None   # {"kind": "grid", "shape": [3, 3], "periodic": False} or None
    species_base: dict[str, str] = field(default_factory=dict)   # full name -> declared name
