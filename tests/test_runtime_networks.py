"""Autoregressive networks: exact normalisation, causality, sampling, proposals."""
import itertools

import pytest
import torch

from crnlang.errors import CRNSolverError
from crnlang.runtime.networks import KINDS, make_network

LOWER, UPPER = [0, 1, 2], [2, 3, 5]          # sizes 3, 3, 4: unequal, non-zero lower bounds


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small tensors: threads only add overhead (and stall badly on a loaded machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def whole_box(lower=LOWER, upper=UPPER):
    """(S, L) every state of the box, in lexicographic order."""
    return torch.tensor(list(itertools.product(*[range(a, b + 1) for a, b in zip(lower, upper)])))


def peaked(kind, dtype=torch.float64, seed=0, layers=1):
    """A network with parameters scaled up so that its distribution is far from uniform."""
    g = torch.Generator().manual_seed(seed)
    net = make_network(kind, LOWER, UPPER, hidden=6, layers=layers, dtype=dtype, generator=g)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=dtype) * 1.5)
    return net


def chi_square(counts, probs):
    expected = probs * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_log_prob_is_normalised_over_the_box(kind, dtype):
    net = peaked(kind, dtype, layers=2)
    total = net.log_prob(whole_box()).detach().double().exp().sum()
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert abs(float(total) - 1.0) < tol


@pytest.mark.parametrize("kind", KINDS)
def test_outside_the_box_has_log_prob_minus_inf(kind):
    net = peaked(kind)
    x = torch.tensor([[3, 1, 2], [0, 0, 2], [0, 1, 6], [2, 3, 5]])
    lp = net.log_prob(x)
    assert torch.isinf(lp[:3]).all() and (lp[:3] < 0).all()
    assert torch.isfinite(lp[3])


@pytest.mark.parametrize("kind", KINDS)
def test_conditionals_agree_with_marginalised_joint(kind):
    """P(x_i | x_<i) from summing the joint over x_>i equals exp(conditional_logits): this
    fails if a conditional peeks at x_i or later species (not causal)."""
    net = peaked(kind, layers=2)
    box = whole_box()
    joint = net.log_prob(box).exp().detach().reshape(3, 3, 4)
    cond = net.conditional_logits(box).exp().detach()              # (S, L, M_max)
    marg1 = joint.sum((1, 2))
    marg12 = joint.sum(2)
    for s, (a, b, c) in enumerate((box - torch.tensor(LOWER)).tolist()):
        assert torch.allclose(cond[s, 0, :3], marg1, atol=1e-12)
        assert torch.allclose(cond[s, 1, :3], marg12[a] / marg1[a], atol=1e-12)
        assert torch.allclose(cond[s, 2, :4], joint[a, b] / marg12[a, b], atol=1e-12)
    assert (cond[:, 0, 3] == 0).all() and (cond[:, 1, 3] == 0).all()   # beyond M_i


@pytest.mark.parametrize("kind", KINDS)
def test_sample_frequencies_match_log_prob(kind):
    net = peaked(kind)
    box = whole_box()
    probs = net.log_prob(box).exp().detach()
    x = net.sample(40000, generator=torch.Generator().manual_seed(5))
    assert x.dtype == torch.int64 and x.shape == (40000, 3)
    index = ((x - torch.tensor(LOWER)) * torch.tensor([12, 4, 1])).sum(1)
    counts = torch.bincount(index, minlength=36).double()
    keep = probs * 40000 > 5
    # 35 degrees of freedom: the 0.9999 quantile is about 73
    assert chi_square(counts[keep], probs[keep] / probs[keep].sum()) < 73


def alpha(a):
    return lambda probs, i: probs ** a


def box_kernel(width):
    def transform(probs, i):
        padded = torch.nn.functional.pad(probs[:, None], (width, width))
        return torch.nn.functional.avg_pool1d(padded, 2 * width + 1, stride=1)[:, 0]
    return transform


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("transform", [alpha(0.3), box_kernel(1)], ids=["alpha", "box"])
def test_proposal_log_prob_matches_the_transformed_conditionals(kind, transform):
    net = peaked(kind)
    box = whole_box()
    joint = net.log_prob(box).exp().detach().reshape(3, 3, 4)
    sizes = [3, 3, 4]

    def q_of(p, i):                  # the proposal conditional from an exact conditional p
        padded = torch.zeros(1, 4, dtype=p.dtype)
        padded[0, :sizes[i]] = p
        q = transform(padded, i)[0, :sizes[i]]
        return q / q.sum()

    expected = []
    for a, b, c in (box - torch.tensor(LOWER)).tolist():
        p0 = joint.sum((1, 2))
        p1 = joint[a].sum(1) / joint[a].sum()
        p2 = joint[a, b] / joint[a, b].sum()
        expected.append(q_of(p0, 0)[a] * q_of(p1, 1)[b] * q_of(p2, 2)[c])
    expected = torch.stack(expected)
    got = net.proposal_log_prob(box, transform).exp().detach()
    assert torch.allclose(got, expected, atol=1e-12)
    assert abs(float(got.sum()) - 1) < 1e-12

    x = net.sample(30000, generator=torch.Generator().manual_seed(2), transform=transform)
    index = ((x - torch.tensor(LOWER)) * torch.tensor([12, 4, 1])).sum(1)
    counts = torch.bincount(index, minlength=36).double()
    keep = got * 30000 > 5
    assert chi_square(counts[keep], got[keep] / got[keep].sum()) < 73


def test_nade_parameter_count_formula():
    g = torch.Generator().manual_seed(0)
    net = make_network("nade", [0] * 4, [79] * 4, hidden=16, generator=g)
    assert net.n_parameters() == 5520                         # METHOD.md: toggle switch
    net = make_network("nade", [0] * 16, [9] * 16, hidden=16, generator=g)
    assert net.n_parameters() == 2992                         # METHOD.md: MAPK
    net = make_network("nade", LOWER, UPPER, hidden=7, generator=g)
    assert net.n_parameters() == 7 * (3 + 1 + 10) + 10


@pytest.mark.parametrize("kind", KINDS)
def test_float32_sampling_and_shapes(kind):
    net = peaked(kind, torch.float32)
    x = net.sample(100, generator=torch.Generator().manual_seed(0))
    assert x.dtype == torch.int64
    assert ((x >= torch.tensor(LOWER)) & (x <= torch.tensor(UPPER))).all()
    assert net.conditional_logits(x).shape == (100, 3, 4)
    assert net.log_prob(x).dtype == torch.float32


def test_nade_incremental_sampler_equals_generic():
    from crnlang.runtime.networks import AutoregressiveNet

    net = peaked("nade")
    a = net.sample(500, generator=torch.Generator().manual_seed(9))
    b = AutoregressiveNet.sample(net, 500, generator=torch.Generator().manual_seed(9))
    assert torch.equal(a, b)


def test_bad_network_settings_are_reported():
    with pytest.raises(CRNSolverError) as err:
        make_network("nadee", [0], [3])
    assert "nade" in err.value.hint
    with pytest.raises(CRNSolverError):
        make_network("nade", [0, 2], [3, 1])
    with pytest.raises(CRNSolverError):
        make_network("nade", [0], [3], dtype=torch.float16)


@pytest.mark.parametrize("kind", KINDS)
def test_log_prob_shifted_equals_log_prob_of_the_neighbours(kind):
    net = peaked(kind)
    x = net.sample(50, generator=torch.Generator().manual_seed(1))
    change = torch.tensor([[0, 0, 1], [0, 0, -1], [0, 1, 0], [1, -2, 0], [-1, 0, 3], [0, 0, 0]])
    shifted = x[:, None, :] - change                                   # some leave the box
    x = torch.cat([x, x[:30]])                     # repeated samples take the merged path
    shifted = x[:, None, :] - change
    with torch.no_grad():
        log_p, log_ps = net.log_prob_shifted(x, shifted)
        log_p_all, log_ps_all = type(net)._log_prob_shifted(net, x, shifted)   # no merging
    assert torch.equal(log_p, log_p_all) or torch.allclose(log_p, log_p_all, atol=1e-13)
    assert torch.allclose(log_p, net.log_prob(x).detach(), atol=1e-12)
    expected = net.log_prob(shifted.reshape(-1, 3)).detach().view(80, 6)
    assert torch.equal(torch.isinf(log_ps), torch.isinf(expected))
    finite = torch.isfinite(expected)
    assert finite.sum() > 100 and (~finite).sum() > 0
    assert torch.allclose(log_ps[finite], expected[finite], atol=1e-12)
    assert torch.allclose(log_ps_all[finite], expected[finite], atol=1e-12)


@pytest.mark.parametrize("head", ["onehot", "smooth"])
def test_fast_shifted_log_probs_are_float32_close_and_log_p_exact(head):
    """fast = True: the neighbours' recomputed conditionals in float32 (within ~1e-6 of
    float64, far below any sampling noise; an error of 1e-3, a wrong logit, fails), x's
    own log P exact."""
    net = make_network("nade", [0, 0, 0], [40, 40, 40], hidden=8, head=head,
                       generator=torch.Generator().manual_seed(4))
    x = net.sample(300, generator=torch.Generator().manual_seed(5))
    change = torch.tensor([[0, 0, 1], [0, 1, 0], [1, -1, 0], [-1, 0, 0], [0, 0, -2]])
    shifted = x[:, None, :] - change
    with torch.no_grad():
        log_p, log_ps = net.log_prob_shifted(x, shifted)
        fast_p, fast_ps = net.log_prob_shifted(x, shifted, fast=True)
    assert fast_ps.dtype == torch.float64
    assert torch.equal(log_p, fast_p)
    assert torch.equal(torch.isinf(log_ps), torch.isinf(fast_ps))
    finite = torch.isfinite(log_ps)
    error = (fast_ps[finite] - log_ps[finite]).abs()
    assert 0 < float(error.max()) < 1e-5 * (1 + float(log_ps[finite].abs().max()))


def test_nade_prefix_matmul_equals_cumulative_sum():
    net = peaked("nade")
    x = net.sample(200, generator=torch.Generator().manual_seed(3))
    by_matmul = net.pre_activations(x)
    net.PREFIX_MATMUL_MAX_SPECIES = 0
    by_cumsum = net.pre_activations(x)
    direct = torch.stack([net.c + x[:, :i].double() @ net.W[:, :i].t() for i in range(3)])
    assert torch.allclose(by_matmul, direct, atol=1e-12)
    assert torch.allclose(by_cumsum, direct, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_log_prob_without_autograd_equals_with(kind):
    """The no-grad path normalises in place; it must agree with the autograd path."""
    net = peaked(kind)
    box = whole_box()
    with_grad = net.log_prob(box)
    assert with_grad.requires_grad
    with torch.no_grad():
        without = net.log_prob(box)
    assert torch.allclose(with_grad.detach(), without, atol=1e-13)
    assert abs(float(without.exp().sum()) - 1) < 1e-12


@pytest.mark.parametrize("kind", KINDS)
def test_state_dict_round_trip(kind):
    net = peaked(kind, layers=2)
    fresh = make_network(kind, LOWER, UPPER, hidden=6, layers=2)
    fresh.load_state_dict(net.state_dict())
    box = whole_box()
    assert torch.equal(fresh.log_prob(box), net.log_prob(box))
    assert set(net.state_dict()) >= {"lower", "sizes"}


# -- smooth heads ------------------------------------------------------------------------------
SMOOTH_LOWER, SMOOTH_UPPER = [0, 2, 1], [30, 40, 4]    # two smoothed species (31, 39 outcomes), one one-hot


def smooth_net(kind="nade", seed=0):
    g = torch.Generator().manual_seed(seed)
    net = make_network(kind, SMOOTH_LOWER, SMOOTH_UPPER, hidden=5, dtype=torch.float64, generator=g,
                       head="smooth")
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    return net


@pytest.mark.parametrize("kind", KINDS)
def test_smooth_head_is_normalised_and_smooth(kind):
    net = smooth_net(kind)
    box = whole_box(SMOOTH_LOWER, SMOOTH_UPPER)
    assert abs(float(net.log_prob(box).detach().exp().sum()) - 1.0) < 1e-12
    # the two wide species get fewer coefficients than outcomes; the narrow one keeps one-hot
    assert net.coef_sizes.tolist()[2] == 4 and all(j < m for j, m in zip(net.coef_sizes.tolist()[:2], [31, 39]))
    # every conditional's log-probabilities lie in the span of the basis (and the constant)
    phi = net.coefficient_basis(0)
    span = torch.cat([phi, torch.ones(31, 1, dtype=phi.dtype)], dim=1)
    with torch.no_grad():
        logits = net.conditional_logits(box[::97])[:, 0, :31]                  # (n, 31)
        fit = torch.linalg.lstsq(span, logits.t()).solution
        assert (span @ fit - logits.t()).abs().max() < 1e-8
        # and the bumps are about one Poisson sd apart: 2..3 counts near 10, 5..6 near 30
        assert 12 <= phi.shape[1] <= 14


def test_smooth_head_parameters_are_the_basis_coefficients():
    net = smooth_net()
    onehot = make_network("nade", SMOOTH_LOWER, SMOOTH_UPPER, hidden=5)
    J = sum(net.coef_sizes.tolist())
    assert net.n_parameters() == 5 * (3 + 1) + J * (5 + 1)
    assert net.n_parameters() < onehot.n_parameters()


def test_smooth_nade_shifted_log_probs_and_sampler_agree_with_log_prob():
    net = smooth_net()
    x = net.sample(400, torch.Generator().manual_seed(3))
    nu = torch.tensor([[1, 0, 0], [0, -1, 0], [0, 0, 1], [2, 0, -1]])
    shifted = x[:, None, :] - nu[None]
    log_p, log_ps = net.log_prob_shifted(x, shifted)
    assert torch.allclose(log_p, net.log_prob(x), atol=1e-12)
    flat = net.log_prob(shifted.reshape(-1, 3)).view(400, 4)
    assert torch.equal(torch.isinf(log_ps), torch.isinf(flat))
    finite = torch.isfinite(flat)
    assert torch.allclose(log_ps[finite], flat[finite], atol=1e-10)
    # the sampler draws from log_prob: first-species marginal against the exact one
    box = whole_box(SMOOTH_LOWER, SMOOTH_UPPER)
    exact = torch.zeros(31, dtype=torch.float64).index_add_(0, box[:, 0], net.log_prob(box).detach().exp())
    draws = net.sample(20000, torch.Generator().manual_seed(4))[:, 0]
    counts = torch.bincount(draws, minlength=31).double()
    keep = exact * 20000 > 5
    assert chi_square(counts[keep], exact[keep] / exact[keep].sum()) < 3 * int(keep.sum())


def test_unknown_head_is_reported():
    with pytest.raises(CRNSolverError, match="head"):
        make_network("nade", SMOOTH_LOWER, SMOOTH_UPPER, head="spline")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("head", ["onehot", "smooth"])
def test_box_log_probs_enumerates_the_box_in_box_states_order(kind, head):
    """The prefix-tree enumeration equals log_prob state by state (same order, chunked or
    not) and sums to 1 over the box."""
    from crnlang.runtime.estimates import box_states

    lower, upper = [0, 2, 0], [1, 30, 24]
    g = torch.Generator().manual_seed(4)
    net = make_network(kind, lower, upper, hidden=6, generator=g, head=head)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
        states = box_states(lower, upper)
        expected = net.log_prob(states)
        for chunk in (1 << 22, 500):
            got = net.box_log_probs(chunk=chunk)
            assert got.shape == expected.shape
            assert torch.allclose(got, expected, rtol=0, atol=1e-12)
        assert abs(float(torch.logsumexp(got, 0))) < 1e-12


def test_shared_network_shares_heads_across_sites():
    """One head per declared species: adding sites adds only a bias and a distance weight
    (2 H per site), where NADE adds a whole head; classes keep X and Y apart."""
    H = 8
    def count(kind, sites, classes=None):
        return make_network(kind, [0] * sites, [40] * sites, hidden=H, head="smooth",
                            classes=classes).n_parameters()
    assert count("shared", 6) - count("shared", 2) == 4 * 2 * H
    per_site_nade = count("nade", 3) - count("nade", 2)
    assert count("nade", 6) - count("nade", 2) == 4 * per_site_nade > 4 * 2 * H * 5
    two_kinds = count("shared", 4, ["X", "X", "Y", "Y"]) - count("shared", 4, ["X"] * 4)
    head = count("shared", 1) - H * 2          # one site: V, b of one head (+ c, U of one row)
    assert two_kinds == head
    net = make_network("shared", [0, 0, 0], [5, 5, 5], hidden=H, classes=["X"] * 3)
    assert torch.equal(net.head(0)[0], net.head(2)[0])
