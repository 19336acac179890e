"""Natural-gradient linear algebra: scores, Gram matrices and the SR solve against dense oracles."""
import numpy as np
import pytest
import torch

from crnlang.errors import CRNSolverError
from crnlang.runtime import natgrad as ng
from crnlang.runtime.networks import KINDS, make_network

LOWER, UPPER = [0, 1, 2], [4, 3, 9]          # sizes 5, 3, 8

# torch.func.jvp loads its decompositions through torch.jit.script, which warns (torch's own)
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small tensors: threads only add overhead (and stall badly on a loaded machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def network(kind, dtype=torch.float64, seed=0, hidden=5, lower=LOWER, upper=UPPER):
    g = torch.Generator().manual_seed(seed)
    net = make_network(kind, lower, upper, hidden=hidden, dtype=dtype, generator=g)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=dtype))
    return net


def batch(net, B, seed=1):
    return net.sample(B, generator=torch.Generator().manual_seed(seed))


def autograd_scores(net, x):
    """(B, P) by one backward pass per sample: the plain oracle."""
    rows = []
    for xb in x:
        lp = net.log_prob(xb[None])[0]
        grads = torch.autograd.grad(lp, list(net.parameters()))
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def lstsq_reference(O, w, v, lam):
    """argmin ||O~ d - v~||^2 + lam ||d||^2 by numpy lstsq on the stacked system."""
    O, w, v = O.double().numpy(), w.double().numpy(), v.double().numpy()
    w = w / w.sum()
    Ot = np.sqrt(w)[:, None] * (O - w @ O)
    vt = np.sqrt(w) * (v - w @ v)
    P = O.shape[1]
    A = np.vstack([Ot, np.sqrt(lam) * np.eye(P)])
    return np.linalg.lstsq(A, np.concatenate([vt, np.zeros(P)]), rcond=None)[0]


def test_flat_parameters_round_trip():
    net = network("nade")
    theta = ng.flat_parameters(net)
    assert theta.shape == (net.n_parameters(),)
    ng.add_flat_(net, torch.ones_like(theta))
    assert torch.equal(ng.flat_parameters(net), theta + 1)
    ng.set_flat_parameters(net, theta)
    assert torch.equal(ng.flat_parameters(net), theta)
    theta[0] += 5                                     # a copy: the net is unchanged
    assert not torch.equal(ng.flat_parameters(net), theta)
    with pytest.raises(ValueError):
        ng.set_flat_parameters(net, theta[:-1])


@pytest.mark.parametrize("kind", KINDS)
def test_score_matrix_matches_autograd_loop(kind):
    net = network(kind)
    x = batch(net, 12)
    assert torch.allclose(ng.score_matrix(net, x), autograd_scores(net, x), atol=1e-12)


@pytest.mark.parametrize("upper", [UPPER, [6, 8, 8]], ids=["unequal", "equal"])
def test_structured_nade_scores_and_gram_equal_generic(upper):
    net = network("nade", upper=upper)
    x = batch(net, 64)
    O = ng.score_matrix(net, x)
    scores = ng.NadeScores.of(net, x)
    assert torch.allclose(scores.dense(), O, atol=1e-12)
    G = O @ O.t()
    assert (ng.gram_matrix(net, x) - G).abs().max() < 1e-10
    d = torch.randn(O.shape[1], dtype=O.dtype)
    z = torch.randn(O.shape[0], dtype=O.dtype)
    assert torch.allclose(scores.matvec(d), O @ d, atol=1e-10)
    assert torch.allclose(scores.rmatvec(z), O.t() @ z, atol=1e-10)


def test_centred_gram_matches_centred_scores():
    net = network("nade")
    x = batch(net, 40)
    O = ng.score_matrix(net, x)
    w = torch.rand(40, dtype=torch.float64)
    w = w / w.sum()
    Ot = w.sqrt()[:, None] * (O - w @ O)
    assert torch.allclose(ng.centred_gram(O @ O.t(), w, w.sqrt()), Ot @ Ot.t(), atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("B", [30, 1500], ids=["B<P", "B>=P"])
def test_solve_sr_solvers_agree_with_lstsq(kind, B):
    if B < 100:
        net = network(kind)
    else:                               # a wide box and a small net: more unique samples than P
        net = network(kind, hidden=2, lower=[0, 0, 0], upper=[11, 11, 11])
    x = batch(net, B)
    P = net.n_parameters()
    assert (torch.unique(x, dim=0).shape[0] < P) == (B < 100)
    g = torch.Generator().manual_seed(3)
    w = torch.rand(B, dtype=torch.float64, generator=g) + 0.1
    v = torch.randn(B, dtype=torch.float64, generator=g) + 0.5 * x[:, 0]
    lam = 1e-3
    ref = lstsq_reference(ng.score_matrix(net, x), w, v, lam)
    solvers = ["auto", "cholesky", "cg"] + (["structured", "mixed"] if kind == "nade" else [])
    for solver in solvers:
        delta = ng.solve_sr(net, x, w, v, lam, solver).numpy()
        err = np.abs(delta - ref).max() / np.abs(ref).max()
        assert err < 1e-7, (solver, err)


def test_uniform_weights_by_default():
    net = network("nade")
    x = batch(net, 50)
    v = torch.randn(50, dtype=torch.float64)
    a = ng.solve_sr(net, x, None, v, 1e-3, "structured")
    b = ng.solve_sr(net, x, torch.full((50,), 7.0), v, 1e-3, "structured")
    assert torch.allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("solver", ["cholesky", "structured", "cg"])
def test_float32_solve_is_close_to_float64(solver):
    net64 = network("nade", hidden=8)
    net32 = network("nade", dtype=torch.float32, hidden=8)
    ng.set_flat_parameters(net32, ng.flat_parameters(net64).float())
    x = batch(net64, 200)
    v = torch.randn(200, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    ref = ng.solve_sr(net64, x, None, v, 1e-2, "cholesky")
    got = ng.solve_sr(net32, x, None, v.float(), 1e-2, solver)
    assert got.dtype == torch.float32
    assert (got.double() - ref).abs().max() / ref.abs().max() < 1e-3


def test_conjugate_gradient_converges_on_a_known_system():
    g = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(50, 50, dtype=torch.float64, generator=g))
    A = Q @ torch.diag(torch.logspace(-3, 1, 50, dtype=torch.float64)) @ Q.t()
    b = torch.randn(50, dtype=torch.float64, generator=g)
    y, iters = ng.conjugate_gradient(lambda p: A @ p, b, 1e-12, 500)
    assert torch.allclose(y, torch.linalg.solve(A, b), atol=1e-8)
    assert iters <= 250                 # 50 in exact arithmetic; rounding costs more
    with pytest.raises(CRNSolverError):
        ng.conjugate_gradient(lambda p: A @ p, b, 1e-12, 3)


def test_non_finite_problems_raise_solver_errors():
    net = network("nade")
    x = batch(net, 20)
    v = torch.randn(20, dtype=torch.float64)
    v[3] = float("nan")
    with pytest.raises(CRNSolverError) as err:
        ng.solve_sr(net, x, None, v, 1e-3)
    assert "dt" in err.value.hint and "lambda" in err.value.hint
    with pytest.raises(CRNSolverError):
        ng.solve_sr(net, x, None, torch.zeros(20), 0.0)
    with pytest.raises(CRNSolverError):
        ng.solve_sr(net, x, None, torch.zeros(20), 1e-3, solver="qr")
    with pytest.raises(CRNSolverError):
        ng.solve_sr(make_network("gru", LOWER, UPPER), x, None, torch.zeros(20), 1e-3, "structured")
    with pytest.raises(CRNSolverError):
        ng.solve_sr(make_network("gru", LOWER, UPPER), x, None, torch.zeros(20), 1e-3, "mixed")


def test_mixed_precision_solve_is_float64_accurate_where_float32_alone_is_not():
    """The float32 Gram with one float64 refinement: 600 distinct samples at the small lambda
    of the shipped runs (1e-5). Refined it agrees with the float64 solve to ~1e-5; a float32
    network's solve is ~2e-3 off. "auto" picks it from MIXED_ROWS rows for float64 NADE."""
    net = network("nade", hidden=8, lower=[0, 0, 0], upper=[30, 30, 30])
    x = torch.unique(batch(net, 3000), dim=0)[:600]
    assert x.shape[0] == 600 and 600 < net.n_parameters()
    g = torch.Generator().manual_seed(11)
    w = torch.rand(600, dtype=torch.float64, generator=g) + 0.1
    v = torch.randn(600, dtype=torch.float64, generator=g) + 0.1 * x[:, 0]
    ref = ng.solve_sr(net, x, w, v, 1e-5, "structured")
    delta, info = ng.solve_sr(net, x, w, v, 1e-5, "auto", return_info=True)
    assert info.solver == "mixed" and delta.dtype == torch.float64
    net32 = network("nade", dtype=torch.float32, hidden=8, lower=[0, 0, 0], upper=[30, 30, 30])
    ng.set_flat_parameters(net32, ng.flat_parameters(net).float())
    single = ng.solve_sr(net32, x, w.float(), v.float(), 1e-5, "structured").double()
    assert float((delta - ref).norm() / ref.norm()) < 3e-5 < 1e-3 < float((single - ref).norm() / ref.norm())
    assert ng.solve_sr(net, x[:ng.MIXED_ROWS - 1], w[:ng.MIXED_ROWS - 1], v[:ng.MIXED_ROWS - 1],
                       1e-5, "auto", return_info=True)[1].solver == "structured"


def test_mixed_solve_falls_back_to_float64_when_float32_does_not_factor(monkeypatch):
    net = network("nade")
    x = batch(net, 40)
    v = torch.randn(40, dtype=torch.float64, generator=torch.Generator().manual_seed(12))
    ref = ng.solve_sr(net, x, None, v, 1e-3, "structured")
    factor = torch.linalg.cholesky_ex

    def fail_in_float32(A, **kw):
        L, info = factor(A, **kw)
        return L, (torch.ones_like(info) if A.dtype == torch.float32 else info)

    monkeypatch.setattr(torch.linalg, "cholesky_ex", fail_in_float32)
    assert torch.allclose(ng.solve_sr(net, x, None, v, 1e-3, "mixed"), ref, rtol=0, atol=1e-12)


def test_duplicate_samples_are_merged_exactly():
    """Repeating samples (with weights) gives the same delta as the dense oracle on all rows."""
    net = network("nade")
    base = batch(net, 25)
    x = torch.cat([base, base[:10], base[:3]])                      # 38 rows, 25 unique at most
    g = torch.Generator().manual_seed(8)
    w = torch.rand(38, dtype=torch.float64, generator=g)
    w[[0, 30]] = 0                                                   # dropped rows
    v = torch.randn(38, dtype=torch.float64, generator=g)
    ref = lstsq_reference(ng.score_matrix(net, x), w, v, 1e-3)
    for solver in ["structured", "mixed", "cholesky", "cg"]:
        delta = ng.solve_sr(net, x, w, v, 1e-3, solver).numpy()
        assert np.abs(delta - ref).max() / np.abs(ref).max() < 1e-7, solver
    xu, wu, vu = ng.merge_duplicates(x, w / w.sum(), v)
    assert xu.shape[0] == torch.unique(x, dim=0).shape[0] and abs(float(wu.sum()) - 1) < 1e-12
    assert abs(float(wu @ vu - (w / w.sum()) @ v)) < 1e-12


@pytest.mark.parametrize("solver", ["structured", "mixed", "cholesky", "cg"])
def test_solve_info_reports_the_misfit(solver):
    net = network("nade")
    x = batch(net, 40)
    g = torch.Generator().manual_seed(6)
    w = torch.rand(40, dtype=torch.float64, generator=g)
    v = torch.randn(40, dtype=torch.float64, generator=g)
    delta, info = ng.solve_sr(net, x, w, v, 1e-3, solver, return_info=True)
    O = ng.score_matrix(net, x)
    wn = w / w.sum()
    Ot = wn.sqrt()[:, None] * (O - wn @ O)
    vt = wn.sqrt() * (v - wn @ v)
    expected = float((Ot @ delta - vt).norm() ** 2 / vt.norm() ** 2)
    assert info.solver == solver and info.rows == torch.unique(x, dim=0).shape[0]
    assert abs(info.residual - expected) < 1e-9 and 0 <= info.residual <= 1
    assert (info.iterations > 0) == (solver == "cg")


def test_unique_rows_matches_torch_unique():
    g = torch.Generator().manual_seed(0)
    for x in [torch.randint(-3, 4, (500, 3), generator=g),
              torch.randint(0, 2 ** 40, (300, 2), generator=g),       # keys would overflow
              torch.tensor([[5, 5]])]:
        x = torch.cat([x, x[: len(x) // 2]])
        unique, inverse = ng.unique_rows(x)
        expected, expected_inverse = torch.unique(x, dim=0, return_inverse=True)
        assert torch.equal(unique, expected) and torch.equal(inverse, expected_inverse)


def test_indefinite_system_raises_with_a_remedy():
    A = torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=torch.float64)     # eigenvalues 3, -1
    for dtype in (torch.float64, torch.float32):
        with pytest.raises(CRNSolverError) as err:
            ng._cholesky_solve(A.to(dtype), torch.ones(2, dtype=dtype), "test")
        assert "positive definite" in err.value.message and "lambda" in err.value.hint


def birth_death_generator(size, birth, death):
    """(S, S) CME generator of 0 -> X @ birth, X -> 0 @ death x on 0..size-1 (reflecting)."""
    A = torch.zeros(size, size, dtype=torch.float64)
    for n in range(size):
        if n + 1 < size:
            A[n + 1, n] += birth
            A[n, n] -= birth
        if n > 0:
            A[n - 1, n] += death * n
            A[n, n] -= death * n
    return A


@pytest.mark.parametrize("hidden, solver", [(8, "structured"), (8, "cg"), (2, "cholesky")],
                         ids=["sample-space", "cg", "parameter-space"])
def test_tdvp_flow_on_the_whole_box_follows_the_exact_cme(hidden, solver):
    """Two independent birth-death species: the exact P(t) is a product, which NADE holds
    exactly (W = 0), so theta_dot from solve_sr with every state of the box as a sample
    (weights P_theta) must reproduce dP/dt; Euler steps then track expm(tA) p0."""
    size = 10
    A1 = birth_death_generator(size, 2.0, 0.5)
    A2 = birth_death_generator(size, 1.0, 0.4)
    eye = torch.eye(size, dtype=torch.float64)
    A = torch.kron(A1, eye) + torch.kron(eye, A2)                    # state index 10 a + b
    box = torch.tensor([[a, b] for a in range(size) for b in range(size)])
    net = make_network("nade", [0, 0], [size - 1] * 2, hidden=hidden,
                       generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        net.W.zero_()                                               # start from a product
    p0 = net.log_prob(box).detach().exp()
    dt, steps = 0.002, 250
    for _ in range(steps):
        with torch.no_grad():
            p = net.log_prob(box).exp()
        E = (A @ p) / p                                             # d log P / dt at every state
        delta = ng.solve_sr(net, box, p, E, 1e-9, solver)
        ng.add_flat_(net, dt * delta)
    exact = torch.linalg.matrix_exp(A * dt * steps) @ p0
    got = net.log_prob(box).detach().exp()
    hellinger = float(((got.sqrt() - exact.sqrt()) ** 2).sum().sqrt() / 2 ** 0.5)
    moved = float(((p0.sqrt() - exact.sqrt()) ** 2).sum().sqrt() / 2 ** 0.5)
    assert moved > 0.1                     # the distribution really changed
    assert hellinger < 2e-3, hellinger     # measured 1.3e-4: Euler error only


@pytest.mark.parametrize("kind", KINDS)
def test_smooth_head_scores_equal_autograd(kind):
    """A smooth head's structured scores (NADE) and generic ones equal the autograd loop."""
    g = torch.Generator().manual_seed(0)
    net = make_network(kind, [0, 2, 1], [30, 40, 4], hidden=4, head="smooth", generator=g)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    x = batch(net, 40)
    O = autograd_scores(net, x)
    assert torch.allclose(ng.score_matrix(net, x), O, atol=1e-12)
    if kind == "nade":
        scores = ng.NadeScores.of(net, x)
        assert torch.allclose(scores.dense(), O, atol=1e-12)
        assert (ng.gram_matrix(net, x) - O @ O.t()).abs().max() < 1e-10
        d = torch.randn(O.shape[1], dtype=O.dtype)
        z = torch.randn(O.shape[0], dtype=O.dtype)
        assert torch.allclose(scores.matvec(d), O @ d, atol=1e-10)
        assert torch.allclose(scores.rmatvec(z), O.t() @ z, atol=1e-10)


def test_mixed_solve_falls_back_when_its_refinement_does_not_converge(monkeypatch):
    """A refinement that cannot reach MIXED_TOL (here: tolerance 0) gives
    the float64 solve itself; with the defaults the residual meets MIXED_TOL."""
    net = network("nade", hidden=8, lower=[0, 0, 0], upper=[30, 30, 30])
    x = torch.unique(batch(net, 3000), dim=0)[:400]
    v = torch.randn(400, dtype=torch.float64, generator=torch.Generator().manual_seed(13))
    ref = ng.solve_sr(net, x, None, v, 1e-5, "structured")
    delta, info = ng.solve_sr(net, x, None, v, 1e-5, "mixed", return_info=True)
    O = ng.score_matrix(net, x)
    Ot = (O - O.mean(0)) / 20.0                                       # sqrt(w) = 1/20
    vt = (v - v.mean()) / 20.0
    u = torch.linalg.solve(Ot @ Ot.t() + 1e-5 * torch.eye(400, dtype=torch.float64), vt)
    assert float((delta - Ot.t() @ u).norm()) <= 10 * ng.MIXED_TOL * float((Ot.t() @ u).norm())
    monkeypatch.setattr(ng, "MIXED_TOL", 0.0)
    monkeypatch.setattr(ng, "MIXED_REFINEMENTS", 1)
    assert torch.allclose(ng.solve_sr(net, x, None, v, 1e-5, "mixed"), ref, rtol=0, atol=1e-12)
