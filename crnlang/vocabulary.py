"""The words of the solver annotations, defined once: every module that checks or lists
them (settings, dispatch, the CLI, the runtime, the docs' tables) imports them from here.

Pure data, no imports: the front end and the backends may both read it.
"""

NEURAL_METHODS = ("tdvp", "ngd", "adam")
METHODS = NEURAL_METHODS + ("fsp", "ssa", "auto")

# Time integrators of tdvp. euler/heun/rk4 are explicit fixed steps of dt (with a guard that
# splits a step moving log P too far); adaptive is heun with an euler error estimate;
# implicit is the linearly implicit projected backward-Euler step with error control
# (runtime/implicit.py), stable at any step length: the one for stiff models (lattices).
INTEGRATORS = ("euler", "heun", "rk4", "adaptive", "implicit")
STEP_CONTROLLED = ("adaptive", "implicit")        # integrators that choose their own step

NETWORKS = ("nade", "gru", "transformer")
PROPOSALS = ("plain", "alpha", "diffusive", "mixture", "defensive")
SAMPLINGS = ("auto",) + PROPOSALS
DTYPES = ("float32", "float64")
