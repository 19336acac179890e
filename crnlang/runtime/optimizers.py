"""Fitting P_theta to a target: the epoch-based methods (adam, ngd) and the t = 0 fit.

Per time step (METHOD.md): the target is T P_t = P_t (1 + dt E) of the frozen network P_t;
the per-sample loss is l(n) = log P_theta(n) - log T P_t(n) on samples n of P_theta (or of
a proposal, with importance weights w).

* ``adam``: REINFORCE, grad = mean(w (l - mean_w l) grad log P_theta), Adam steps
  (NNCME-1's optimiser), many epochs per time step.
* ``ngd``:  theta -= lr * solve_sr(values = l): the natural-gradient (stochastic
  reconfiguration) step, a few epochs per time step.

Shapes: B batch, L reduced species, P parameters.
"""
from __future__ import annotations

import copy
import math

import torch

from ..distributed import row_slice, sum_over_processes, world
from .guards import read, read_many
from .stepping import StepPlace, check_finite, get_theta, log_target, rms_change, set_theta

ADAM_LR = 1e-3          # the adam learning rate when the model leaves lr at its default (1.0)
MAX_TARGET_CHANGE = 0.05   # rms change of log P one step's Euler target may ask for (centred, weighted)
MAX_EULER_OUT = 0.5        # h * (total out-rate) on every sample, so the target's stay factor is 1 - h out


def frozen_copy(net):
    """A parameter-frozen copy of ``net``: the P_t of one time step."""
    frozen = copy.deepcopy(net)
    for p in frozen.parameters():
        p.requires_grad_(False)
    return frozen


def substeps_needed(net, kernel, sampler, t: float, dt: float, batch: int, generator,
                    max_substeps: int = 100) -> int:
    """How many equal substeps the Euler target of a step of dt needs (at most max_substeps).

    * The target may move log P by at most MAX_TARGET_CHANGE (weighted rms over fresh
      samples, centred), like the tdvp step guard (stricter: the epochs only approach the
      target). Many substeps in the first steps from a single-state start, where mass
      leaves the state at its full out-rate.
    * h * out(n) <= MAX_EULER_OUT on every sample, so the target's stay factor is the
      mass-conserving 1 - h out(n). Where it is not, log_target falls back to exp(-h out),
      which keeps more mass the larger out(n) is: on the toggle switch at dt = 0.005
      (dt out = 0.8) ngd's Py then ran away (mean 61 against 31 at t = 1); split, it stays
      within Hellinger 0.033 of FSP.
    """
    x, w = sampler.draw(net, batch, generator)
    with torch.no_grad():
        log_p = net.log_prob(x)
        rms, out = read_many(rms_change(log_target(net, kernel, x, t, dt, log_p) - log_p, w),
                             kernel.out_rates(x, t).to(torch.float64).sum(-1).max())
    if not math.isfinite(rms):
        return max_substeps
    needed = max(rms / MAX_TARGET_CHANGE, dt * out / MAX_EULER_OUT)
    return max(1, min(max_substeps, math.ceil(needed)))


def adam_epochs(net, optimizer, kernel, sampler, t: float, dt: float, batch: int, epochs: int,
                generator, place: StepPlace) -> torch.Tensor:
    """Advance P_theta from P_t to T P_t by ``epochs`` REINFORCE/Adam steps; returns the last
    weighted mean loss (an estimate of KL(P_theta || T P_t)), a tensor (not read here)."""
    frozen = frozen_copy(net)
    loss_value = torch.full((), math.nan, device=net.lower.device)
    for _ in range(epochs):
        x, w = sampler.draw(net, batch, generator)
        target = log_target(frozen, kernel, x, t, dt)
        part = row_slice(x.shape[0])          # (all rows in one process; a share under torchrun)
        log_p = net.log_prob(x[part])
        if log_p.shape[0] == x.shape[0]:
            loss = log_p.detach() - target
        else:
            with torch.no_grad():
                loss = net.log_prob(x) - target
        check_finite(loss, "the loss", place)
        centred = loss - (w * loss).sum() / w.sum()
        surrogate = (w[part] * centred[part] * log_p).sum() / x.shape[0]
        optimizer.zero_grad(set_to_none=True)
        surrogate.backward()
        sum_gradients(net)                    # the processes' shares: the whole batch's gradient
        optimizer.step()
        loss_value = ((w * loss).sum() / w.sum()).detach()
    check_finite(get_theta(net), "the network parameters", place)
    return loss_value


def sum_gradients(net) -> None:
    """Sum the parameters' gradients over the processes of a distributed run (one
    all-reduce of the flattened gradient); nothing in one process."""
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    if world()[1] == 1 or not grads:
        return
    flat = sum_over_processes(torch.cat([g.reshape(-1) for g in grads]))
    for g, piece in zip(grads, torch.split(flat, [g.numel() for g in grads])):
        g.copy_(piece.view_as(g))


def ngd_reach(lr: float, epochs: int) -> float:
    """The fraction of a step's move that ``epochs`` natural-gradient epochs at ``lr`` make.

    Each epoch closes a fraction lr of what is left of the (linearised) move to the target,
    so from P_t the epochs make 1 - (1 - lr)^epochs of it: 97 % at the reference's lr = 0.5
    and 5 epochs. The next step starts from where this one stopped, so the 3 % is never
    made up: the solution falls behind the CME by 3 % of its motion, step after step (the
    toggle switch to t = 1 at lr = 0.5: Hellinger 0.040 of FSP). The solver therefore aims
    each step's target at dt / reach, and the epochs then make the move of dt (0.014 by t = 1). At
    lr = 1 the reach is 1 (the first epoch is the whole Gauss-Newton step)."""
    if not 0.0 < lr < 2.0:
        return 1.0
    return 1.0 - (1.0 - lr) ** max(int(epochs), 1)


LM_GROWTH = 10.0        # an ngd epoch that fits its own samples worse is retried at lam x this ...
LM_MAX_LAMBDA = 1e-1    # ... up to this; then it is taken as it is


def ngd_epochs(net, solve_sr, kernel, sampler, t: float, dt: float, batch: int, epochs: int,
               lr: float, lam: float, generator, place: StepPlace) -> torch.Tensor:
    """Advance P_theta from P_t to T P_t by ``epochs`` natural-gradient steps; returns the
    last weighted mean loss (a tensor, not read here).

    Each epoch is a Levenberg-Marquardt step: lam is the least damping; an epoch whose move
    leaves the loss on its own samples further from constant (weighted rms, centred) than
    before is undone and solved again with lam x LM_GROWTH. A small lam follows the CME
    (``resolve_defaults``), but from the single-state start, where the samples are few
    distinct states and the Fisher matrix is nearly singular, an undamped epoch can throw
    the network away (the toggle switch to t = 0.05, B = 1000, seed 2, lam 1e-5: Hellinger
    0.73 of FSP without the retry)."""
    frozen = frozen_copy(net)
    loss_value = torch.full((), math.nan, device=net.lower.device)
    for _ in range(epochs):
        x, w = sampler.draw(net, batch, generator)
        with torch.no_grad():
            target = log_target(frozen, kernel, x, t, dt)
            loss = net.log_prob(x) - target
        check_finite(loss, "the loss", place)
        before, theta, damping = rms_change(loss, w), get_theta(net), lam
        while True:
            delta = solve_sr(net, x, w, loss, damping)
            check_finite(delta, "the natural-gradient step", place)
            set_theta(net, theta - lr * delta)
            if damping >= LM_MAX_LAMBDA:
                break
            with torch.no_grad():
                after = rms_change(net.log_prob(x) - target, w)
            if read(torch.isfinite(after) & (after <= before)):    # (one host read per try)
                break
            damping *= LM_GROWTH
        loss_value = (w * loss).sum() / w.sum()
    check_finite(get_theta(net), "the network parameters", place)
    return loss_value


# ------------------------------------------------------------------ t = 0
def initial_marginals(kernel, lower, upper) -> list[torch.Tensor]:
    """Per reduced species i, the (M_i,) float64 initial marginal over lower_i..upper_i
    (truncated to the box and renormalised).

    The initial distribution is independent per species (LANGUAGE.md), so the marginal of
    species i is P0 along the line through one in-box support state, varying x_i.
    """
    draws = kernel.init_sample(256, generator=torch.Generator().manual_seed(0))
    lo = torch.as_tensor(lower, device=draws.device)
    hi = torch.as_tensor(upper, device=draws.device)
    inside = ((draws >= lo) & (draws <= hi)).all(-1)
    if not bool(inside.any()):
        from ..errors import CRNSolverError

        raise CRNSolverError("the initial distribution puts (almost) no mass inside the species bounds",
                             hint="raise the bounds (X <= N) above the initial copy numbers")
    base = draws[inside][0]
    marginals = []
    for i, (a, b) in enumerate(zip(lower, upper)):
        line = base.repeat(b - a + 1, 1)
        line[:, i] = torch.arange(a, b + 1, device=line.device)
        logp = kernel.init_log_prob(line).to(torch.float64)
        marginals.append(torch.softmax(logp, 0))
    return marginals


def smoothed(marginals: list[torch.Tensor], spread: float) -> list[torch.Tensor]:
    """(1 - spread) p_i + spread / M_i per species: log P finite everywhere in the box."""
    return [(1 - spread) * p + spread / p.numel() for p in marginals]


def set_product_distribution(net, marginals: list[torch.Tensor], keep_v: float = 0.0) -> bool:
    """Make ``net`` exactly the product of ``marginals`` by zeroing the output weights V and
    setting the output biases b to log p_i. Returns False when the network has no V/b heads.

    ``keep_v`` > 0 keeps that fraction of the random output weights instead: P_theta is then
    the product only approximately, but the hidden layer's gradient (which is proportional
    to V) is not zero, so correlations between species can build up from the first step."""
    V, b, rows = getattr(net, "V", None), getattr(net, "b", None), getattr(net, "head_rows", None)
    if V is None or b is None or rows is None or getattr(net, "smooth", False):
        return False          # (a smooth head is fitted by fit_product)
    with torch.no_grad():
        V.mul_(keep_v)
        for i, p in enumerate(marginals):
            b[rows[i, :p.numel()]] = torch.log(p).to(b.device, b.dtype)
    return True


def fit_product(net, marginals: list[torch.Tensor], generator, epochs: int = 2000,
                batch: int = 2000, lr: float = 0.05) -> None:
    """Generic fallback: maximum likelihood (forward KL) to the product of ``marginals`` with
    Adam on fresh samples of the target."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    for _ in range(epochs):
        x = sample_product(marginals, net.lower, batch, generator)
        loss = -net.log_prob(x).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()


def sample_product(marginals: list[torch.Tensor], lower: torch.Tensor, n: int, generator) -> torch.Tensor:
    """(n, L) int64 samples of prod_i p_i (values lower_i + offset)."""
    cols = [torch.multinomial(p, n, replacement=True, generator=generator) for p in marginals]
    return torch.stack(cols, 1) + lower.to(torch.int64)


def product_kl(net, marginals: list[torch.Tensor], generator, n: int = 20000) -> float:
    """Monte Carlo KL(target || P_theta) of the product target, from n target samples."""
    x = sample_product(marginals, net.lower, n, generator)
    with torch.no_grad():
        log_target_p = sum(torch.log(p[x[:, i] - int(net.lower[i])]) for i, p in enumerate(marginals))
        return float((log_target_p - net.log_prob(x).to(torch.float64)).mean())


def fit_initial(net, kernel, lower, upper, spread: float, generator, keep_v: float = 0.0) -> dict:
    """Fit P_theta to the initial distribution (smoothed by ``spread``); returns
    {"init_kl": KL(target || P_theta), "init_spread": spread, "init_fit": "exact" | "adam",
    "init_point_mass": every species starts (almost) at one value}."""
    exact = initial_marginals(kernel, lower, upper)
    point_mass = all(float(p.max()) > 0.99 for p in exact)
    device = net.lower.device                 # (the fit runs where the network is)
    marginals = [p.to(device) for p in smoothed(exact, spread)]
    how = "exact"
    if not set_product_distribution(net, marginals, keep_v):
        fit_product(net, marginals, generator)
        how = "adam"
    return {"init_kl": product_kl(net, marginals, generator), "init_spread": spread, "init_fit": how,
            "init_point_mass": point_mass}


__all__ = ["adam_epochs", "ngd_epochs", "substeps_needed", "fit_initial", "frozen_copy", "ADAM_LR", "set_theta"]
