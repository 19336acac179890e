"""Network analysis: stoichiometry, conservation laws, bounds, elimination, graph facts."""
from .types import Analysis, ConservationLaw, Elimination  # noqa: F401
