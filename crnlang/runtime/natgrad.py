"""The natural-gradient linear algebra shared by NGD and TDVP.

Shapes: B samples, P parameters, L species, M = M_max outcomes, H hidden width.

The score matrix O (B, P) holds O_b = grad_theta log P_theta(x_b). Both NGD and TDVP solve

    delta = argmin_d ||O~ d - v~||^2 + lam ||d||^2 = (O~^T O~ + lam I)^-1 O~^T v~

with normalised weights w (sum 1), centred scores O~_b = sqrt(w_b) (O_b - sum_b' w_b' O_b')
and centred values v~_b = sqrt(w_b) (v_b - sum_b' w_b' v_b').  (``solve_sr``.)

Repeated samples are merged first (exact: equal states have equal score rows; see
``merge_duplicates``), so B below is the number of distinct samples, which for the
concentrated distributions of a CME is often far below the batch size.

Solvers
  "cholesky"    materialise O (B, P); when B < P factor the sample-space matrix
                O~ O~^T + lam I (B x B) and use Woodbury, delta = O~^T (O~ O~^T + lam I)^-1 v~;
                otherwise factor O~^T O~ + lam I (P x P).
  "structured"  NADE only: the B x B Gram O O^T from the network's structure (the output
                layer's per-sample gradient is the Kronecker product (e_{k_i} - p_i) x h_i, so
                its Gram block is sum_i [(e_k - p)(e_k' - p')] [h h' + 1]); the hidden layer's
                scores (B, H(L+1)) are materialised. Only the lower triangle is built, in
                row blocks that stay in cache, with the centring as one rank-2 update;
                O~^T u is formed without O. B^2 (L (M + H) + HL) / 2 instead of B^2 P.
  "mixed"       "structured" with the Gram built and factored in float32 and iterative
                refinement in float64 (the residual v~ - (K + lam) u from the matrix-free
                products O d, O^T u) to a relative residual of MIXED_TOL: 1.6-1.9x faster
                than "structured" on the toggle switch's 1100-1600 distinct samples, delta
                within ~1e-4 (relative) of it (benchmarks/bench_natgrad.py). A float32 Gram
                that fails to factor, or whose refinement does not reach MIXED_TOL in
                MIXED_REFINEMENTS steps (the epidemic's start, where |theta_dot| ~ 1e10), falls
                back to "structured".
  "cg"          matrix-free conjugate gradient on (O~^T O~ + lam I) d = O~^T v~ with the
                products O d and O^T u only (structured for NADE, jvp/vjp otherwise).
  "auto"        the fastest measured choice (benchmarks/bench_natgrad.py): for NADE while
                B < P, "mixed" for a float64 network from MIXED_ROWS merged samples on and
                "structured" below; otherwise "cholesky". CG needs ~100-200 iterations at
                lam = 1e-3 on a trained toggle-switch NADE, slower than the direct solve.

Precision: everything is computed in the network's dtype. In float32 the Gram entries carry
relative errors ~1e-7 |O|^2, so lam should stay well above 1e-7 * max diag(O~ O~^T); a
float32 system that fails to factor is retried in float64. On the benchmark network the
float32 structured solve agrees with float64 to < 1e-4 (relative), CG (tol 1e-5) to ~1e-3.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..errors import CRNSolverError
from .guards import read, require
from .networks import NADE, AutoregressiveNet, unique_row_index

SOLVERS = ("auto", "cholesky", "structured", "mixed", "cg")
# float32 factorisations that failed and were redone in float64 since the counter was last
# reset (``run_neural`` resets it, and warns when a float32 run needed any)
FLOAT32_REFACTORED = {"count": 0}
MIXED_ROWS = 256          # from this many merged samples "auto" builds the NADE Gram in float32
MIXED_TOL = 1e-3          # relative residual |v~ - (K + lam) u| / |v~| a mixed solve must reach
MIXED_REFINEMENTS = 3     # float64 refinement steps before a mixed solve falls back to float64
DENSE_HEAD_SIZE = 4       # a head with at most this many outputs enters the Gram as explicit scores
GRAM_BLOCK = 512          # rows per block of the structured Gram (toggle switch, 1100-1600 rows: 256 and 1024 are 1.1-1.3x slower)


# -- flat parameter vectors -----------------------------------------------------------------

def flat_parameters(net: torch.nn.Module) -> torch.Tensor:
    """(P,) copy of all parameters, in ``net.parameters()`` order."""
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()]).clone()


def _parameter_pieces(net: torch.nn.Module, vector: torch.Tensor):
    """(parameter, the slice of the (P,) ``vector`` shaped like it), in flat_parameters order."""
    _check_length(net, vector)
    start = 0
    for p in net.parameters():
        yield p, vector[start:start + p.numel()].view_as(p)
        start += p.numel()


@torch.no_grad()
def set_flat_parameters(net: torch.nn.Module, theta: torch.Tensor) -> None:
    """Overwrite the parameters with the (P,) vector ``theta``."""
    for p, piece in _parameter_pieces(net, theta):
        p.copy_(piece)


@torch.no_grad()
def add_flat_(net: torch.nn.Module, delta: torch.Tensor) -> None:
    """theta += delta in place ((P,) vector in ``flat_parameters`` order)."""
    for p, piece in _parameter_pieces(net, delta):
        p.add_(piece)


def _check_length(net, vec):
    n = sum(p.numel() for p in net.parameters())
    if vec.shape != (n,):
        raise ValueError(f"expected a flat vector of {n} parameters, got shape {tuple(vec.shape)}")


def _flatten_named(net: torch.nn.Module, parts: dict[str, torch.Tensor]) -> torch.Tensor:
    """Concatenate per-parameter pieces (each p.shape, or (B,) + p.shape) in parameter order."""
    pieces = []
    for name, p in net.named_parameters():
        piece = parts[name]
        lead = piece.shape[:piece.ndim - p.ndim]
        pieces.append(piece.reshape(*lead, p.numel()))
    return torch.cat(pieces, dim=-1)


# -- score matrices --------------------------------------------------------------------------

def score_matrix(net: AutoregressiveNet, x: torch.Tensor) -> torch.Tensor:
    """(B, L) -> (B, P) per-sample gradients of log P(x_b), generic torch.func vmap(grad)."""
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in net.named_parameters()}
    buffers = dict(net.named_buffers())

    def one(p, xb):
        return functional_call(net, (p, buffers), (xb.unsqueeze(0),)).squeeze(0)

    grads = vmap(grad(one), in_dims=(None, 0))(params, x)
    return _flatten_named(net, grads)


@dataclass
class NadeScores:
    """The factors of a NADE's per-sample scores at a batch x (computed once, no autograd).

    d (L, B, J)        Phi_i^T (e_{k_i} - p_i) (zero beyond J_i): the output layer's factor
                       (J = M and Phi the identity for a one-hot head)
    h (L, B, H + 1)    hidden states h_i with a trailing 1 (the input of the bias b)
    hidden (B, Q)      scores of the hidden layer, Q = H L + H, in the order [W (H, L), c]

    The score of sample b for the head [V_i | b_i] (J_i, H + 1) is the outer product
    d[i, b] x h[i, b]; species-major layouts make every product a batched matmul.
    """

    net: NADE
    d: torch.Tensor
    h: torch.Tensor
    hidden: torch.Tensor

    @staticmethod
    @torch.no_grad()
    def of(net: NADE, x: torch.Tensor) -> "NadeScores":
        k, inside = net.offsets_of(x)
        require(inside.all(), lambda: CRNSolverError(
            "a sample lies outside the network's box (log P = -inf)",
            hint="samples must come from the network's own support"))
        B, L, H = x.shape[0], net.n_species, net.hidden
        xv = (k + net.lower).t()                                     # (L, B)
        W = net.W
        h = torch.ones(L, B, H + 1, dtype=W.dtype, device=W.device)
        torch.sigmoid(net.pre_activations(k + net.lower), out=h[..., :H])
        h_ = h[..., :H]
        Vb = net.padded_heads_augmented()                            # (L, M, H + 1)
        d = torch.softmax(net.raw_logits(h_), dim=-1).neg_()         # (L, B, M)
        d.scatter_add_(-1, k.t().unsqueeze(-1), torch.ones(L, B, 1, dtype=d.dtype, device=d.device))
        g = torch.bmm(d, Vb[..., :H]) * h_ * (1 - h_)               # d log P / d pre_i (L, B, H)
        if net.smooth:                                               # d log P / d coefficients
            d = torch.bmm(d, net.basis)                              # (L, B, J_max)
        after = g.sum(0) - torch.cumsum(g, dim=0)                    # sum_{i>j} g_i
        grad_W = (after * xv.to(g.dtype).unsqueeze(-1)).permute(1, 2, 0)   # (B, H, L)
        hidden = torch.cat([grad_W.reshape(B, H * L), g.sum(0)], dim=1)
        return NadeScores(net, d, h, hidden)

    def _flat(self, grad_W, grad_c, grad_Vb) -> torch.Tensor:
        """Per-parameter pieces (optionally with a leading batch dim) -> flat vectors."""
        net = self.net
        H = net.hidden
        Vb = grad_Vb[..., net.coef_valid, :]                         # (..., sum J_i, H + 1)
        parts = {"W": grad_W, "c": grad_c, "V": Vb[..., :H], "b": Vb[..., H]}
        return _flatten_named(net, parts)

    def dense(self) -> torch.Tensor:
        """(B, P) the full score matrix."""
        H, L = self.net.hidden, self.net.n_species
        B = self.hidden.shape[0]
        grad_Vb = (self.d.unsqueeze(-1) * self.h.unsqueeze(-2)).transpose(0, 1)   # (B, L, M, H+1)
        return self._flat(self.hidden[:, :H * L].view(B, H, L), self.hidden[:, H * L:], grad_Vb)

    def gram(self, scale: torch.Tensor | None = None, lower_only: bool = False,
             block: int = GRAM_BLOCK) -> torch.Tensor:
        """(B, B) S O O^T S with S = diag(scale) (identity when None), from the structure.

        Costs B^2 (L (M + H + 1) + Q) multiply-adds instead of B^2 P; with ``lower_only``
        only the lower triangle (diagonal included) is computed, half of that, and the strict
        upper triangle is left uninitialised. Row blocks keep the work in cache.
        """
        d, h, hidden = self.d, self.h, self.hidden
        if scale is not None:
            d = d * scale[:, None]
            hidden = hidden * scale[:, None]
        B = hidden.shape[0]
        sizes = [size for _, size in self.net._coef_slices]       # (no host read)
        # a species with few outcomes (a gene on/off) joins the dense block as its explicit
        # scores d_i x h_i: one wider product instead of two thin ones and a Hadamard pass
        few = [i for i, size in enumerate(sizes) if size <= DENSE_HEAD_SIZE]
        if few:
            hidden = torch.cat([hidden] + [(d[i, :, :sizes[i], None] * h[i, :, None, :]).reshape(B, -1)
                                           for i in few], dim=1)
        G = torch.empty(B, B, dtype=d.dtype, device=d.device)
        for start in range(0, B, block):
            stop = min(start + block, B)
            cols = stop if lower_only else B
            rows = G[start:stop, :cols]
            torch.mm(hidden[start:stop], hidden[:cols].t(), out=rows)
            for i, size in enumerate(sizes):
                if i in few:
                    continue
                di = d[i, :, :size]                                  # no padding columns
                rows.addcmul_(di[start:stop] @ di[:cols].t(), h[i, start:stop] @ h[i, :cols].t())
        return G

    def rmatvec(self, z: torch.Tensor) -> torch.Tensor:
        """(B,) -> (P,) O^T z."""
        H, L = self.net.hidden, self.net.n_species
        grad_Vb = torch.bmm((self.d * z[:, None]).transpose(1, 2), self.h)       # (L, M, H + 1)
        hid = z @ self.hidden
        return self._flat(hid[:H * L].view(H, L), hid[H * L:], grad_Vb)

    def matvec(self, delta: torch.Tensor) -> torch.Tensor:
        """(P,) -> (B,) O delta."""
        net = self.net
        H, L, J = net.hidden, net.n_species, net.max_coef
        parts = _split_named(net, delta)
        Vb = delta.new_zeros(L, J, H + 1)
        Vb[net.coef_valid] = torch.cat([parts["V"], parts["b"][:, None]], dim=1)
        out = (torch.bmm(self.d, Vb) * self.h).sum((0, 2))
        hid = torch.cat([parts["W"].reshape(-1), parts["c"].reshape(-1)])
        return out + self.hidden @ hid


def _split_named(net: torch.nn.Module, vec: torch.Tensor) -> dict[str, torch.Tensor]:
    out, start = {}, 0
    for name, p in net.named_parameters():
        out[name] = vec[start:start + p.numel()].view_as(p)
        start += p.numel()
    return out


def _structured(net: AutoregressiveNet) -> bool:
    """Does ``NadeScores`` describe the network's scores (a plain NADE)?"""
    return isinstance(net, NADE) and net.structured


def dense_scores(net: AutoregressiveNet, x: torch.Tensor) -> torch.Tensor:
    """(B, L) -> (B, P) the score matrix O, from the structure for NADE."""
    if _structured(net):
        return NadeScores.of(net, x).dense()
    return score_matrix(net, x)


def gram_matrix(net: AutoregressiveNet, x: torch.Tensor) -> torch.Tensor:
    """(B, L) -> (B, B) O O^T of the raw (uncentred, unweighted) scores."""
    if _structured(net):
        return NadeScores.of(net, x).gram()
    O = score_matrix(net, x)
    return O @ O.t()


# -- the SR / least-squares solve ------------------------------------------------------------

def solve_sr(net: AutoregressiveNet, x: torch.Tensor, weights: torch.Tensor | None,
             values: torch.Tensor, lam: float, solver: str = "auto", *, tol: float | None = None,
             max_iter: int | None = None, merge: bool = True,
             return_info: bool = False) -> torch.Tensor | tuple[torch.Tensor, "SolveInfo"]:
    """delta (P,) = argmin ||O~ d - v~||^2 + lam ||d||^2 (see the module docstring).

    Repeated samples are merged first (``merge_duplicates``, exact; ``merge=False`` skips it).
    With ``return_info`` the result is (delta, SolveInfo): the solver used, the rows solved,
    CG iterations and the unexplained fraction ||O~ delta - v~||^2 / ||v~||^2 (for TDVP the
    part of the CME's motion the network cannot follow; near 1 means the fit failed).

    x (B, L) samples; weights (B,) non-negative (None: uniform), normalised here to sum 1;
    values (B,). ``tol``/``max_iter`` are for "cg" (relative residual; defaults 1e-10 in
    float64, 1e-5 in float32; at most min(10 B, 2000) iterations).
    Raises CRNSolverError when the system or the result is not finite / not positive definite.
    """
    if solver not in SOLVERS:
        raise CRNSolverError(f"unknown linear solver '{solver}'", hint=f"use one of {', '.join(SOLVERS)}")
    if x.ndim != 2 or x.shape[0] == 0 or values.shape != (x.shape[0],):
        raise ValueError(f"solve_sr needs x (B, L) with B >= 1 and values (B,), got "
                         f"{tuple(x.shape)} and {tuple(values.shape)}")
    w, values = _checked_inputs(net, x, weights, values, lam)
    centred = values - w @ values
    norm = w @ (centred * centred)                        # ||v~||^2 over all samples
    if merge:
        if not bool((w > 0).all()):                 # zero-weight rows of O~ are zero rows
            keep = w > 0
            x, w, values = x[keep], w[keep], values[keep]
        x, w, values = merge_duplicates(x, w, values)
    sw = w.sqrt()
    v_tilde = sw * (values - w @ values)
    if solver == "auto":
        solver = _auto_solver(net, x.shape[0])
    with torch.no_grad():
        if solver == "cholesky":
            delta, misfit, iterations = _solve_dense(net, x, w, sw, v_tilde, lam)
        elif solver == "structured":
            if not _structured(net):
                raise CRNSolverError(f"the structured solver needs a NADE network, not {net.kind}",
                                     hint="use solver 'cholesky' or 'cg'")
            delta, misfit, iterations = _solve_structured(NadeScores.of(net, x), w, sw, v_tilde, lam)
        elif solver == "mixed":
            if not _structured(net):
                raise CRNSolverError(f"the mixed solver needs a NADE network, not {net.kind}",
                                     hint="use solver 'cholesky' or 'cg'")
            delta, misfit, iterations = _solve_mixed(NadeScores.of(net, x), w, sw, v_tilde, lam)
        else:
            delta, misfit, iterations = _solve_cg(net, x, w, sw, v_tilde, lam, tol, max_iter)
    require(torch.isfinite(delta).all(), lambda: CRNSolverError(
        "the natural-gradient update (delta theta) is not finite",
        hint="use a smaller dt, or a larger lambda"))
    if not return_info:
        return delta
    # merging drops the spread of values within groups of equal samples: add it back
    norm = float(norm)
    misfit = float(misfit) + max(norm - float(v_tilde @ v_tilde), 0.0)
    return delta, SolveInfo(solver, x.shape[0], iterations, misfit / norm if norm > 0 else 0.0)


SPLIT_GRAM_LIMIT = 4096   # parameters up to which a distributed solve in parameter space sums
                          # the P x P normal matrix (128 MB in float64); above, conjugate gradients


def solve_sr_split(net: AutoregressiveNet, x: torch.Tensor, weights: torch.Tensor | None,
                   values: torch.Tensor, lam: float, *, tol: float | None = None,
                   max_iter: int | None = None) -> torch.Tensor:
    """``solve_sr``'s delta (P,) for a batch shared by the processes of a distributed run.

    x (B, L), weights (B,) and values (B,) are the whole batch, the same in every process.
    Each process forms the centred score rows O~_r of its own samples
    (``distributed.row_slice``, duplicates merged), with the weighted mean score summed
    over the processes. Then, as ``solve_sr`` chooses in one process:

    * fewer rows than parameters (B < P, sample space): the rows are gathered, each process
      forms its rows of K = O~ O~^T, the rows of K are gathered, and every process solves
      (K + lam) u = v~ and forms delta = O~^T u;
    * otherwise (parameter space): the normal equations (O~^T O~ + lam) delta = O~^T v~
      summed over the processes (one all-reduce of the P x P matrix while P <=
      SPLIT_GRAM_LIMIT, then Cholesky), or applied matrix-free by conjugate gradients with
      one all-reduce of a P-vector per iteration.

    Every process gets the same delta."""
    from ..distributed import gather_rows, row_slice, sum_over_processes, total

    w, values = _checked_inputs(net, x, weights, values, lam)
    dtype = w.dtype
    mean_value = w @ values
    part = row_slice(x.shape[0])
    x_r, w_r, v_r = x[part], w[part], values[part]
    keep = w_r > 0
    x_r, w_r, v_r = merge_duplicates(x_r[keep], w_r[keep], v_r[keep])
    rows_total = total(x_r.shape[0])             # the rows of the gathered sample-space system
    n_parameters = net.n_parameters()
    with torch.no_grad():
        O = dense_scores(net, x_r).to(dtype) if x_r.shape[0] else torch.zeros(0, n_parameters, dtype=dtype)
        mean_score = sum_over_processes(w_r @ O)                                  # (P,)
        sw = w_r.sqrt()
        O_tilde = sw[:, None] * (O - mean_score)                                  # (B_r, P)
        v_tilde = sw * (v_r - mean_value)                                         # (B_r,)
        if rows_total < n_parameters:
            O_all = gather_rows(O_tilde)                                          # (B_m, P)
            K = gather_rows(O_tilde @ O_all.t())                                  # (B_m, B_m)
            K.diagonal().add_(lam)
            u = _cholesky_solve(K, gather_rows(v_tilde), "sample-space")
            delta = O_all.t() @ u
        elif n_parameters <= SPLIT_GRAM_LIMIT:
            A = sum_over_processes(O_tilde.t() @ O_tilde)
            A.diagonal().add_(lam)
            delta = _cholesky_solve(A, sum_over_processes(O_tilde.t() @ v_tilde), "natural-gradient")
        else:
            if tol is None:
                tol = 1e-10 if dtype == torch.float64 else 1e-5
            delta, _ = conjugate_gradient(
                lambda d: sum_over_processes(O_tilde.t() @ (O_tilde @ d)) + lam * d,
                sum_over_processes(O_tilde.t() @ v_tilde), tol, max_iter or min(10 * x.shape[0], 2000))
    require(torch.isfinite(delta).all(), lambda: CRNSolverError(
        "the natural-gradient update (delta theta) is not finite",
        hint="use a smaller dt, or a larger lambda"))
    return delta


@dataclass(frozen=True)
class SolveInfo:
    """What ``solve_sr(..., return_info=True)`` reports besides delta."""

    solver: str          # the solver used ("auto" resolved)
    rows: int            # samples solved for, after merging duplicates
    iterations: int      # conjugate-gradient iterations (0 for the direct solvers)
    residual: float      # ||O~ delta - v~||^2 / ||v~||^2, in [0, 1]


def merge_duplicates(x: torch.Tensor, w: torch.Tensor, values: torch.Tensor):
    """Merge repeated samples: (x (U, L), w (U,), values (U,)) with U unique rows.

    Exact for the weighted least-squares problem: equal states have equal score rows, so
    sum_b w_b (o.d - v_b)^2 over a group equals W (o.d - vbar)^2 + const, with the group's
    total weight W and weighted mean value vbar. The weighted means of O and v are unchanged.
    Concentrated distributions (most CME states early on) repeat many samples; the
    sample-space solve is cubic in the number of rows.
    """
    unique, inverse = unique_rows(x)
    if unique.shape[0] == x.shape[0]:
        return x, w, values
    total = torch.zeros(unique.shape[0], dtype=w.dtype, device=w.device).index_add_(0, inverse, w)
    summed = torch.zeros_like(total).index_add_(0, inverse, w * values)
    mean = torch.where(total > 0, summed / torch.where(total > 0, total, 1), 0)
    return unique, total, mean


def unique_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L) int64 -> (unique rows (U, L), inverse (B,)) as torch.unique(x, dim=0), faster
    (see ``networks.unique_row_index``)."""
    first, inverse = unique_row_index(x)
    return x[first], inverse


def _auto_solver(net: AutoregressiveNet, rows: int) -> str:
    """The fastest choice that keeps float64 accuracy: the structured NADE Gram while the
    (merged) batch has fewer rows than the network has parameters (built in float32 and
    refined when it is large, "mixed"); dense scores otherwise (parameter space)."""
    if _structured(net) and rows < net.n_parameters():
        return "mixed" if net.V.dtype == torch.float64 and rows >= MIXED_ROWS else "structured"
    return "cholesky"


def _checked_inputs(net, x, weights, values, lam) -> tuple[torch.Tensor, torch.Tensor]:
    """(w (B,) normalised to sum 1, values (B,)) in the network's dtype, after refusing a
    non-positive lam and non-finite values (CRNSolverError)."""
    if lam <= 0:
        raise CRNSolverError("the regularisation lambda must be positive", hint="use e.g. lam = 1e-3")
    dtype = next(net.parameters()).dtype
    w = _normalised_weights(weights, x.shape[0], dtype, x.device)
    values = values.to(dtype)
    require(torch.isfinite(values).all(), lambda: CRNSolverError(
        "non-finite values (right-hand side) in the natural-gradient solve",
        hint="use a smaller dt, or a larger lambda"))
    return w, values


def _normalised_weights(weights, B, dtype, device) -> torch.Tensor:
    if weights is None:
        return torch.full((B,), 1.0 / B, dtype=dtype, device=device)
    w = weights.to(dtype)
    total = w.sum()
    require(torch.isfinite(w).all() & (w >= 0).all() & (total > 0), lambda: CRNSolverError(
        "importance weights must be finite, non-negative and not all zero",
        hint="use a proposal closer to the network (smaller alpha change)"))
    return w / total


def _cholesky_solve(A: torch.Tensor, rhs: torch.Tensor, what: str, rebuild=None) -> torch.Tensor:
    """Solve A y = rhs for symmetric positive definite A (n, n), rhs (n,); only A's lower
    triangle is read. A float32 matrix that fails to factor is factored again in float64:
    ``rebuild()`` (A made again from float64 factors) when given, else A itself widened. A
    float32 Gram's own rounding errors, of order eps32 times its largest eigenvalue, can
    leave it indefinite where lam is small: on the 3x3 Schlögl grid eigenvalues up to 2.6e4
    with lam = 1e-5 came out with a smallest eigenvalue of -1.5e-3, which no widening of
    the float32 numbers mends."""
    factor, info = torch.linalg.cholesky_ex(A)
    # a NaN anywhere propagates to the diagonal; the strict upper part may be garbage
    # (one host read: the float32 retry is a decision)
    if not read((info == 0) & torch.isfinite(factor.diagonal()).all()):
        if A.dtype == torch.float32:
            FLOAT32_REFACTORED["count"] += 1
            wide = rebuild() if rebuild is not None else A.double()
            return _cholesky_solve(wide, rhs.double(), what).to(A.dtype)
        raise CRNSolverError(f"the {what} matrix is not positive definite (Cholesky failed)",
                             hint="use a larger lambda, or a smaller dt")
    return cholesky_apply(factor, rhs)


def cholesky_apply(factor: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """(L L^T)^-1 rhs for a lower Cholesky factor (n, n) and rhs (n,): two triangular
    solves (3-5x faster than torch.cholesky_solve for one right-hand side)."""
    y = torch.linalg.solve_triangular(factor, rhs.unsqueeze(-1), upper=False)
    return torch.linalg.solve_triangular(factor.mT, y, upper=True).squeeze(-1)


# Each _solve_* returns (delta (P,), ||O~ delta - v~||^2, CG iterations). In sample space
# (K + lam) u = v~ and delta = O~^T u give O~ delta - v~ = K u - v~ = -lam u: the misfit is free.

def solve_rows(rows: torch.Tensor, w: torch.Tensor, values: torch.Tensor,
               lam: float) -> tuple[torch.Tensor, float]:
    """delta (P,) = argmin sum_b w_b (rows_b . d - values_b - c)^2 + lam |d|^2 over d and the
    free constant c, for explicit rows (B, P), normalised weights w (B,) and values (B,);
    also the unexplained fraction ||O~ delta - v~||^2 / ||v~||^2 (as SolveInfo.residual)."""
    sw = w.sqrt()
    v_tilde = sw * (values - w @ values)
    delta, misfit, _ = _solve_dense_rows(rows, w, sw, v_tilde, lam)
    norm = float(v_tilde @ v_tilde)
    return delta, float(misfit) / norm if norm > 0 else 0.0


def _solve_dense(net, x, w, sw, v_tilde, lam):
    return _solve_dense_rows(dense_scores(net, x), w, sw, v_tilde, lam)


def _solve_dense_rows(O, w, sw, v_tilde, lam):
    O_tilde = sw[:, None] * (O - w @ O)
    B, P = O_tilde.shape
    if B < P:
        K = O_tilde @ O_tilde.t()
        K.diagonal().add_(lam)
        u = _cholesky_solve(K, v_tilde, "sample-space Gram")
        return O_tilde.t() @ u, lam ** 2 * (u @ u), 0
    A = O_tilde.t() @ O_tilde
    A.diagonal().add_(lam)
    delta = _cholesky_solve(A, O_tilde.t() @ v_tilde, "parameter-space Fisher")
    misfit = O_tilde @ delta - v_tilde
    return delta, misfit @ misfit, 0


def centred_gram(G: torch.Tensor, w: torch.Tensor, sw: torch.Tensor) -> torch.Tensor:
    """O~ O~^T from the raw Gram O O^T (B, B), normalised weights w and sw = sqrt(w)."""
    Gw = G @ w
    K = G - Gw[:, None] - Gw[None, :] + w @ Gw
    return K * sw[:, None] * sw[None, :]


def _solve_structured(scores: NadeScores, w, sw, v_tilde, lam, block: int = GRAM_BLOCK):
    """Sample-space solve with the structured Gram, touching only its lower triangle
    (``_sample_space_matrix``)."""
    G = _sample_space_matrix(scores, sw, lam, block)

    def in_float64():
        wide = NadeScores(scores.net, scores.d.double(), scores.h.double(), scores.hidden.double())
        return _sample_space_matrix(wide, sw.double(), lam, block)

    u = _cholesky_solve(G, v_tilde, "sample-space Gram", rebuild=in_float64)
    y = sw * u
    return scores.rmatvec(y - w * y.sum()), lam ** 2 * (u @ u), 0   # O~^T u = O^T C^T S u


def _sample_space_matrix(scores: NadeScores, sw: torch.Tensor, lam: float, block: int) -> torch.Tensor:
    """K + lam I (B, B), lower triangle only, in the dtype of ``scores``' factors.

    K = O~ O~^T = S C G C^T S with C = I - 1 w^T, S = diag(sw); with G_s = S G S (the
    structured Gram of sw-scaled factors), K = G_s + u sw^T + sw u^T where
    u = (sw^T G_s sw / 2) sw - G_s sw: one rank-2 update, no B x B temporaries.
    """
    G = scores.gram(scale=sw, lower_only=True, block=block)
    Gs = _symv_lower(G, sw, block)
    u = (sw @ Gs / 2) * sw - Gs
    left = torch.stack([u, sw], dim=1)                                 # (B, 2)
    right = torch.stack([sw, u], dim=1)
    B = G.shape[0]
    for start in range(0, B, block):
        stop = min(start + block, B)
        G[start:stop, :stop].addmm_(left[start:stop], right[:stop].t())
    G.diagonal().add_(lam)
    return G


def _solve_mixed(scores: NadeScores, w, sw, v_tilde, lam, block: int = GRAM_BLOCK):
    """``_solve_structured`` with K + lam built and factored in float32, then iterative
    refinement in float64: u += (K + lam)_32^-1 (v~ - (K + lam) u), where (K + lam) u =
    O~ O~^T u + lam u comes from the float64 products (no B x B matrix), until the residual
    is below MIXED_TOL |v~| (at least one step, at most MIXED_REFINEMENTS; else the float64
    solve)."""
    single = NadeScores(scores.net, scores.d.float(), scores.h.float(), scores.hidden.float())
    K32 = _sample_space_matrix(single, sw.float(), lam, block)
    factor, info = torch.linalg.cholesky_ex(K32)
    if not read((info == 0) & torch.isfinite(factor.diagonal()).all()):
        return _solve_structured(scores, w, sw, v_tilde, lam, block)

    def solve(r: torch.Tensor) -> torch.Tensor:
        return cholesky_apply(factor, r.float()).to(v_tilde.dtype)

    centred_matvec, centred_rmatvec = centred_products(scores.matvec, scores.rmatvec, w, sw)
    u = solve(v_tilde)
    target = MIXED_TOL * v_tilde.norm()
    for refinements in range(MIXED_REFINEMENTS + 1):
        delta = centred_rmatvec(u)
        residual = v_tilde - centred_matvec(delta) - lam * u            # v~ - (K + lam) u
        if refinements > 0 and read(residual.norm() <= target):       # refined at least once
            misfit = residual + lam * u                                  # v~ - O~ delta
            return delta, misfit @ misfit, 0
        if refinements < MIXED_REFINEMENTS:
            u = u + solve(residual)
    return _solve_structured(scores, w, sw, v_tilde, lam, block)


def _symv_lower(G: torch.Tensor, v: torch.Tensor, block: int) -> torch.Tensor:
    """G v for symmetric G (B, B) as ``NadeScores.gram(lower_only=True, block=block)`` leaves
    it: row block [s, e) is valid in columns [0, e) (diagonal blocks in full)."""
    B = G.shape[0]
    out = torch.zeros_like(v)
    for start in range(0, B, block):
        stop = min(start + block, B)
        rows = G[start:stop, :stop]
        out[start:stop] += rows @ v[:stop]
        out[:start] += rows[:, :start].t() @ v[start:stop]
    return out


def _solve_cg(net, x, w, sw, v_tilde, lam, tol, max_iter):
    centred_matvec, centred_rmatvec = centred_products(*_products(net, x), w, sw)
    dtype = v_tilde.dtype
    rhs = centred_rmatvec(v_tilde)
    if tol is None:
        tol = 1e-10 if dtype == torch.float64 else 1e-5
    if max_iter is None:
        max_iter = min(10 * x.shape[0], 2000)
    delta, iterations = conjugate_gradient(lambda d: centred_rmatvec(centred_matvec(d)) + lam * d,
                                           rhs, tol, max_iter)
    misfit = centred_matvec(delta) - v_tilde
    return delta, misfit @ misfit, iterations


def centred_products(matvec, rmatvec, w: torch.Tensor, sw: torch.Tensor):
    """The products of the centred scores, (d -> O~ d (B,), u -> O~^T u (P,)), from those
    of the raw scores O (``matvec``: d -> O d, ``rmatvec``: z -> O^T z), with normalised
    weights w (B,) and sw = sqrt(w)."""
    def centred_matvec(d: torch.Tensor) -> torch.Tensor:
        o = matvec(d)
        return sw * (o - w @ o)

    def centred_rmatvec(u: torch.Tensor) -> torch.Tensor:
        y = sw * u
        return rmatvec(y - w * y.sum())

    return centred_matvec, centred_rmatvec


def conjugate_gradient(apply: Callable[[torch.Tensor], torch.Tensor], rhs: torch.Tensor,
                       tol: float, max_iter: int) -> tuple[torch.Tensor, int]:
    """Solve A y = rhs for SPD A given as ``apply``; stops at ||r|| <= tol ||rhs||.

    Returns (y, iterations). Raises CRNSolverError when it does not converge.
    """
    y = torch.zeros_like(rhs)
    r = rhs.clone()
    p = r.clone()
    rr = r @ r
    stop = (tol * rhs.norm()) ** 2
    for it in range(1, max_iter + 1):
        if rr <= stop:
            return y, it - 1
        Ap = apply(p)
        pAp = p @ Ap
        if not pAp > 0:
            raise CRNSolverError("conjugate gradient met a non-positive curvature (not finite?)",
                                 hint="use a larger lambda, or a smaller dt")
        alpha = rr / pAp
        y += alpha * p
        r -= alpha * Ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    if rr <= stop:
        return y, max_iter
    raise CRNSolverError(f"conjugate gradient did not converge in {max_iter} iterations "
                         f"(relative residual {float(rr.sqrt() / rhs.norm()):.2e})",
                         hint="use a larger lambda, or solver 'cholesky'")


def _products(net: AutoregressiveNet, x: torch.Tensor):
    """(matvec d -> O d (B,), rmatvec z -> O^T z (P,)) without forming O."""
    if _structured(net):
        scores = NadeScores.of(net, x)
        return scores.matvec, scores.rmatvec
    from torch.func import functional_call, jvp, vjp

    names = [k for k, _ in net.named_parameters()]
    params = tuple(p.detach() for _, p in net.named_parameters())
    buffers = dict(net.named_buffers())

    def log_prob(*ps):
        return functional_call(net, (dict(zip(names, ps)), buffers), (x,))

    _, pullback = vjp(log_prob, *params)

    def matvec(d):
        tangents = tuple(_split_named(net, d)[n] for n in names)
        return jvp(log_prob, params, tangents)[1]

    def rmatvec(z):
        return torch.cat([g.reshape(-1) for g in pullback(z)])

    return matvec, rmatvec
