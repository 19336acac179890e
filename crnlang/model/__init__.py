"""The IR (``ir``) and the lowering from syntax to IR (``lower``; its stages in ``imports``,
``expressions``, ``lattice``, ``settings``, the name rules in ``names``, error positions in
``source``; ``params`` sets params of a lowered model)."""
from .ir import *  # noqa: F401,F403
