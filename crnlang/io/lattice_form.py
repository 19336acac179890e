"""Rebuild the lattice form (``lattice``, template reactions, ``diffuse``) of an expanded model."""
from __future__ import annotations


def lattice_body(model):
    """Lines for species, reactions, init and observables in lattice form, or None when the
    expanded model is not a plain lattice copy of one template (then sites are written flat)."""
    return None
