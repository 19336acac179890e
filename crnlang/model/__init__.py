"""The IR (``ir``) and the lowering from syntax to IR (``lower``)."""
from .ir import *  # noqa: F401,F403
