"""The words of the language and of the solver annotations, defined once: every module that
checks or lists them imports them from here (the parser, lowering and the .crn writer the
reserved words; settings, dispatch, the CLI, the runtime and the docs' tables the rest).

Pure data, no crnlang imports: the front end and the backends may both read it.
"""
import keyword

# ---------------------------------------------------------------- the language
# the statement keywords: the grammar's words (grammar/crn.lark), never read as a name
KEYWORDS = frozenset(("model", "kinetics", "param", "func", "species", "use", "import", "module",
                      "lattice", "diffuse", "init", "observe", "absorb", "and", "or", "not", "in"))
CONSTANTS = ("t", "pi", "true", "false")     # the time, pi, the truth values of annotations
BUILTIN_FUNCS: dict[str, int] = {            # name -> arity (-1: variadic, at least 1)
    "exp": 1, "log": 1, "sqrt": 1, "sin": 1, "cos": 1, "abs": 1, "min": -1, "max": -1,
}
REDUCTIONS = ("sum", "mean", "all", "any")   # over the sites of a lattice
# every word that cannot name anything (lowering refuses it, the .crn writer escapes it): the
# above and Python's keywords
RESERVED_WORDS = (KEYWORDS | frozenset(CONSTANTS) | frozenset(BUILTIN_FUNCS) | frozenset(REDUCTIONS)
                  | frozenset(keyword.kwlist))

# ---------------------------------------------------------------- the solver annotations
NEURAL_METHODS = ("tdvp", "ngd", "adam")
SIMULATION_METHODS = ("ssa", "tau")      # sampled paths: no truncation needed
METHODS = NEURAL_METHODS + ("fsp",) + SIMULATION_METHODS + ("auto",)

# Time integrators of tdvp. euler/heun/rk4 are explicit fixed steps of dt (with a guard that
# splits a step moving log P too far); adaptive is heun with an euler error estimate;
# rkc is the second-order Runge-Kutta-Chebyshev step, its stages set from an estimate of the
# flow's spectral radius (stable interval ~0.65 stages^2: long steps on stiff models, e.g.
# lattices); implicit is the linearly implicit projected backward-Euler step with error
# control (runtime/implicit.py), stable at any step length.
INTEGRATORS = ("euler", "heun", "rk4", "rkc", "adaptive", "implicit")
STEP_CONTROLLED = ("adaptive", "implicit")        # integrators that choose their own step

NETWORKS = ("nade", "shared", "gru", "transformer")
# output heads: one free logit per outcome, or logits smooth in n (runtime/networks.py)
HEADS = ("onehot", "smooth")
PROPOSALS = ("plain", "alpha", "diffusive", "mixture", "defensive")
SAMPLINGS = ("auto",) + PROPOSALS
DTYPES = ("float32", "float64")
