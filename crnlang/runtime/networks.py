"""Autoregressive networks over the reduced species: exact sampling, exact normalised log P.

P(x) = prod_i P(x_i | x_<i); every conditional is a softmax over the species' outcomes
lower_i .. upper_i (M_i = upper_i - lower_i + 1 of them), so P is normalised by construction
and can be sampled exactly, species by species.

Shapes: B batch, L species, M_max = max_i M_i, H hidden width. States ``x`` are (B, L) int64
copy numbers (values, not offsets from ``lower``).

Three kinds of conditionals:

* ``nade`` (the default, METHOD.md): h_i = sigmoid(c + W[:, :i] x_<i) with raw counts as
  inputs, logits_i = Phi_i (b_i + V_i h_i). Parameters W (H, L), c (H,), V (sum J_i, H),
  b (sum J_i,): H (L + 1 + sum J_i) + sum J_i in all (J_i = M_i for one-hot heads).
* ``gru``: a gated recurrent unit reads the previous species' scaled value (and the position)
  and its hidden state gives the next conditional.
* ``transformer``: causal self-attention over the same inputs, with learned positions.

All three share the output heads V, b: species i's logits are Phi_i (b_i + V_i h_i), with
Phi_i (M_i, J_i) the head's basis over the outcomes (rows coef_offset_i .. + J_i of V, b).

* ``onehot`` head (the default): Phi_i is the identity (J_i = M_i), one free logit per
  outcome, so any conditional is representable, a point mass included.
* ``smooth`` head: for a species with more than SMOOTH_MIN_SIZE outcomes, Phi_i holds
  Gaussian bumps evenly spaced in sqrt(n) (SMOOTH_SPACING apart, about one Poisson standard
  deviation at every n) and the linear function n. The logits are then smooth in n: the
  conditionals cannot hold a wiggle one count wide, and the CME's fastest modes, which are
  such wiggles (they decay at the exit rate, ~1e4 per Schlögl site), leave the projected
  flow. An explicit step is then limited by the slow modes: on the 2-site Schlögl chain rk4
  runs at dt = 1e-3 instead of ~2e-5 (docs/solvers.md). It cannot hold a point mass: such
  a start is fitted as closely as the basis allows (the result reports the KL).

Species of equal size share one batched matmul, and no padding outcome is ever evaluated
in ``log_prob``. ``log_prob_shifted(x, x - nu)`` gives log P at the K neighbours of every
sample (the CME's in-flux) for a fraction of a flat ``log_prob``: repeated samples are
evaluated once and NADE reuses x's conditionals up to the first changed species.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn

from ..boxes import encode, radix_strides
from ..errors import CRNSolverError
from ..vocabulary import HEADS, NETWORKS as KINDS

SMOOTH_MIN_SIZE = 24      # species with at most this many outcomes keep one-hot heads
SMOOTH_SPACING = 0.5      # spacing of the smooth basis' bumps in sqrt(n)

Transform = Callable[[torch.Tensor, int], torch.Tensor]
"""transform(probs (n, M_max), i) -> (n, M_max) proposal weights for species i (need not sum to 1)."""


class AutoregressiveNet(nn.Module):
    """Base class: bounds, output heads, log-probabilities, exact and proposal sampling.

    Subclasses implement ``hidden_states(x) -> (B, L, H)`` (the state that produces the
    conditional of species i from x_<i only) and may override ``sample`` for speed.
    """

    kind = "base"

    def __init__(self, lower: Sequence[int], upper: Sequence[int], hidden: int,
                 dtype: torch.dtype, generator: torch.Generator | None = None, head: str = "onehot"):
        super().__init__()
        lower_t = torch.as_tensor(list(lower), dtype=torch.int64)
        upper_t = torch.as_tensor(list(upper), dtype=torch.int64)
        if lower_t.ndim != 1 or lower_t.shape != upper_t.shape or lower_t.numel() == 0:
            raise CRNSolverError("a network needs one lower and one upper bound per species",
                                 hint="give lower and upper as equal-length lists of ints")
        if bool((upper_t < lower_t).any()):
            raise CRNSolverError("a species has upper bound below its lower bound",
                                 hint="check the species bounds of the model")
        sizes = upper_t - lower_t + 1
        self.register_buffer("lower", lower_t)
        self.register_buffer("sizes", sizes)
        self.n_species = int(lower_t.numel())
        self.max_size = int(sizes.max())
        self.hidden = int(hidden)
        self.equal_sizes = bool((sizes == self.max_size).all())
        offsets = torch.cumsum(sizes, 0) - sizes
        outcome = torch.arange(self.max_size)
        valid = outcome[None, :] < sizes[:, None]                              # (L, M_max)
        # row of the flat head for (species i, outcome m); padding points at row 0 (masked)
        rows = torch.where(valid, offsets[:, None] + outcome[None, :], torch.zeros((), dtype=torch.int64))
        # derived from the bounds: not part of the state_dict (lower and sizes are)
        self.register_buffer("valid", valid, persistent=False)
        self.register_buffer("head_rows", rows, persistent=False)
        self.register_buffer("head_offsets", offsets, persistent=False)
        self._head_slices = [(int(o), int(m)) for o, m in zip(offsets, sizes)]   # no device syncs
        # species grouped by size: one batched matmul per distinct M_i, no padding
        self.n_groups = 0
        for size in sorted(set(sizes.tolist())):
            members = torch.nonzero(sizes == size).flatten()
            self.register_buffer(f"_group{self.n_groups}_species", members, persistent=False)
            self.register_buffer(f"_group{self.n_groups}_rows",
                                 offsets[members][:, None] + torch.arange(size), persistent=False)
            self.n_groups += 1
        bases = [head_basis(int(lo), int(m), head, dtype) for lo, m in zip(lower_t, sizes)]
        self.smooth = any(phi is not None for phi in bases)
        coef_sizes = torch.tensor([m if phi is None else phi.shape[1] for phi, m in zip(bases, sizes.tolist())])
        self.register_buffer("coef_sizes", coef_sizes, persistent=False)
        self.max_coef = int(coef_sizes.max())
        coef_offsets = torch.cumsum(coef_sizes, 0) - coef_sizes
        self.register_buffer("coef_valid", torch.arange(self.max_coef)[None, :] < coef_sizes[:, None],
                             persistent=False)                                 # (L, J_max)
        self._coef_slices = [(int(o), int(j)) for o, j in zip(coef_offsets, coef_sizes)]
        if self.smooth:
            # Phi padded to (L, M_max, J_max); identity blocks for the one-hot species
            basis = torch.zeros(self.n_species, self.max_size, self.max_coef, dtype=dtype)
            for i, (phi, m) in enumerate(zip(bases, sizes.tolist())):
                basis[i, :m, :coef_sizes[i]] = torch.eye(m, dtype=dtype) if phi is None else phi
            self.register_buffer("basis", basis, persistent=False)
        self._make_heads(coef_sizes, dtype, generator)

    def _make_heads(self, coef_sizes: torch.Tensor, dtype, generator) -> None:
        """The output heads V (sum J_i, H) and b (sum J_i,), one block per species."""
        total = int(coef_sizes.sum())
        scale = 0.1 / math.sqrt(self.hidden)
        self.V = nn.Parameter(_uniform((total, self.hidden), scale, dtype, generator))
        self.b = nn.Parameter(torch.zeros(total, dtype=dtype))

    # -- the part a subclass provides -------------------------------------------------------
    def hidden_states(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L) int64 -> (B, L, H): state i depends on x_<i only."""
        raise NotImplementedError

    # -- shared machinery ---------------------------------------------------------------------
    def outcome_heads(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The heads over the outcomes, (sum M_i, H) and (sum M_i,): V and b themselves for a
        one-hot head, Phi_i V_i and Phi_i b_i per species for a smooth one."""
        if not self.smooth:
            return self.V, self.b
        V, b = self.padded_coefficients()
        Vb = torch.bmm(self.basis, torch.cat([V, b.unsqueeze(-1)], dim=-1))    # (L, M_max, H + 1)
        Vb = Vb[self.valid]
        return Vb[:, :-1], Vb[:, -1]

    def padded_coefficients(self) -> tuple[torch.Tensor, torch.Tensor]:
        """V, b as (L, J_max, H) and (L, J_max), zero padded."""
        L, J = self.n_species, self.max_coef
        if bool(self.coef_valid.all()):
            return self.V.view(L, J, self.hidden), self.b.view(L, J)
        V = self.V.new_zeros(L, J, self.hidden)
        b = self.b.new_zeros(L, J)
        V[self.coef_valid] = self.V
        b[self.coef_valid] = self.b
        return V, b

    def padded_heads(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The outcome heads as (L, M_max, H) and (L, M_max); padded entries are arbitrary (masked)."""
        L, M = self.n_species, self.max_size
        V, b = self.outcome_heads()
        if self.equal_sizes:
            return V.view(L, M, self.hidden), b.view(L, M)
        rows = self.head_rows.reshape(-1)
        return V[rows].view(L, M, self.hidden), b[rows].view(L, M)

    def padded_heads_augmented(self) -> torch.Tensor:
        """The heads as one (L, M_max, H + 1) tensor [V_i | b_i] (padding arbitrary)."""
        V, b = self.padded_heads()
        return torch.cat([V, b.unsqueeze(-1)], dim=-1)

    def head(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Species i's output head over its outcomes: (M_i, H), (M_i,) (views of V and b for a
        one-hot head, Phi_i V_i and Phi_i b_i for a smooth one)."""
        start, size = self._coef_slices[i]
        V, b = self.V[start:start + size], self.b[start:start + size]
        phi = self.coefficient_basis(i)
        return (V, b) if phi is None else (phi @ V, phi @ b)

    def coefficient_basis(self, i: int) -> torch.Tensor | None:
        """Phi_i (M_i, J_i) of species i, or None for a one-hot head."""
        if not self.smooth:
            return None
        return self.basis[i, :self._head_slices[i][1], :self._coef_slices[i][1]]

    def size_groups(self):
        """Yield (species (n_g,) int64 or None for all, V_g (n_g, s, H), b_g (n_g, s)) per
        distinct species size s."""
        V, b = self.outcome_heads()
        if self.equal_sizes:
            L, M = self.n_species, self.max_size
            yield None, V.view(L, M, self.hidden), b.view(L, M)
            return
        for g in range(self.n_groups):
            members, rows = getattr(self, f"_group{g}_species"), getattr(self, f"_group{g}_rows")
            yield members, V[rows], b[rows]

    def hidden_by_species(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (L, B, H): ``hidden_states`` in species-major layout (for batched matmuls)."""
        return self.hidden_states(x).transpose(0, 1)

    def raw_logits(self, h: torch.Tensor) -> torch.Tensor:
        """(L, B, H) species-major hidden states -> (L, B, M_max) unnormalised logits,
        -inf beyond M_i: one batched matmul with the bias fused in."""
        V, b = self.padded_heads()
        if not self.equal_sizes:
            b = b.masked_fill(~self.valid, float("-inf"))
        return torch.baddbmm(b.unsqueeze(1), h, V.transpose(1, 2))

    def logits_from_hidden(self, h: torch.Tensor) -> torch.Tensor:
        """(B, L, H) -> (B, L, M_max) normalised log-probabilities (-inf beyond M_i)."""
        return torch.log_softmax(self.raw_logits(h.transpose(0, 1)), dim=-1).transpose(0, 1)

    def conditional_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L) int64 -> (B, L, M_max): log P(x_i = lower_i + m | x_<i), -inf for m >= M_i."""
        return self.logits_from_hidden(self.hidden_states(x))

    def offsets_of(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) values -> (offsets clamped into the box (B, L), inside (B,) bool)."""
        k = x.to(torch.int64) - self.lower
        inside = ((k >= 0) & (k < self.sizes)).all(dim=-1)
        return torch.minimum(k.clamp(min=0), self.sizes - 1), inside

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B,) exact normalised log P(x); -inf outside the box.

        sum_i raw_i[k_i] - logsumexp(raw_i): no normalised (B, L, M) tensor is written.
        """
        k, inside = self.offsets_of(x)
        h = self.hidden_by_species(k + self.lower)                              # (L, B, H)
        h = torch.cat([h, h.new_ones(*h.shape[:2], 1)], dim=-1)                 # bias input
        kt = k.t()
        log_p = h.new_zeros(x.shape[0])
        for members, V, b in self.size_groups():
            h_g, k_g = (h, kt) if members is None else (h[members], kt[members])
            heads = torch.cat([V, b.unsqueeze(-1)], dim=-1)                   # (n_g, s, H + 1)
            raw = torch.bmm(h_g, heads.transpose(1, 2))                        # (n_g, B, s)
            log_p = log_p + log_softmax_at(raw, k_g).sum(0)
        return log_p.masked_fill(~inside, float("-inf"))

    def log_prob_shifted(self, x: torch.Tensor, shifted: torch.Tensor,
                         fast: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, L), shifted (B, K, L) -> (log P(x) (B,), log P(shifted) (B, K)).

        What the CME's in-flux needs: P at the K neighbours x - nu_k of every sample. The
        generic version is one batched ``log_prob``; NADE reuses x's conditionals where a
        neighbour shares x's prefix. ``fast``: a float64 network may evaluate the neighbours'
        recomputed conditionals in float32 (NADE does; log P(shifted) then carries errors of
        ~1e-7 relative per species, against 1e-16; log P(x) stays exact).
        """
        if not (torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters())):
            first, inverse = unique_row_index(x)
            if first.shape[0] < 0.9 * x.shape[0]:           # repeated samples: evaluate each once
                their_shifted = shifted[first]
                if torch.equal(their_shifted[inverse], shifted):
                    log_p, log_ps = self._log_prob_shifted(x[first], their_shifted, fast)
                    return log_p[inverse], log_ps[inverse]
        return self._log_prob_shifted(x, shifted, fast)

    def _log_prob_shifted(self, x, shifted, fast=False):
        B, K, L = shifted.shape
        both = self.log_prob(torch.cat([x, shifted.reshape(B * K, L)]))
        return both[:B], both[B:].view(B, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_prob(x)

    def _proposal(self, logp_i: torch.Tensor, i: int, transform: Transform | None) -> torch.Tensor:
        """(n, M_max) log-probabilities of species i -> (n, M_max) proposal, normalised, 0 beyond M_i."""
        if transform is None:
            return logp_i.exp()
        if _log_space_alpha(transform):                       # p^alpha, renormalised
            return torch.softmax(transform.alpha * logp_i, dim=-1)
        q = transform(logp_i.exp(), i)
        q = torch.where(self.valid[i], q, torch.zeros((), dtype=q.dtype, device=q.device))
        return q / q.sum(-1, keepdim=True)

    def _draw(self, probs: torch.Tensor, i: int, generator: torch.Generator | None) -> torch.Tensor:
        """(n, M_max) probabilities -> (n,) int64 outcome offsets by the inverse CDF."""
        cdf = probs.cumsum(-1)
        u = torch.rand(probs.shape[0], 1, dtype=probs.dtype, device=probs.device, generator=generator)
        k = (cdf < u * cdf[:, -1:]).sum(-1)
        return k.clamp(max=self._head_slices[i][1] - 1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               transform: Transform | None = None) -> torch.Tensor:
        """(n, L) int64 exact ancestral samples (of the proposal when ``transform`` is given).

        Generic version: one full pass per species (L passes); subclasses override it with an
        incremental one.
        """
        x = self.lower.expand(n, -1).clone()
        for i in range(self.n_species):
            logp_i = self.conditional_logits(x)[:, i]
            x[:, i] = self.lower[i] + self._draw(self._proposal(logp_i, i, transform), i, generator)
        return x

    @torch.no_grad()
    def box_log_probs(self, chunk: int = 1 << 22) -> torch.Tensor:
        """(S,) log P of every state of the box, in ``box_states`` order (last species fastest).

        The box is enumerated as a tree of prefixes: species i's conditional is evaluated once
        per distinct prefix x_<i (prod_{j<i} M_j of them), not once per state, so the cost is
        that of the last-but-one level instead of S full passes (the toggle switch's 25,600
        states: 320 conditionals of Py). ``chunk`` bounds the entries of one (n, L, M) call.
        """
        prefixes = self.lower[None, :].clone()                               # (1, L)
        log_p = torch.zeros(1, dtype=self.V.dtype, device=self.lower.device)
        rows = max(1, chunk // (self.n_species * self.max_size))
        for i, (_, size) in enumerate(self._head_slices):
            conditional = torch.cat([self.conditional_logits(part)[:, i, :size]
                                     for part in torch.split(prefixes, rows)])   # (N, M_i)
            log_p = (log_p[:, None] + conditional).reshape(-1)
            prefixes = prefixes.repeat_interleave(size, dim=0)
            prefixes[:, i] = self.lower[i] + torch.arange(size, device=prefixes.device).repeat(
                prefixes.shape[0] // size)
        return log_p

    def proposal_log_prob(self, x: torch.Tensor, transform: Transform | None) -> torch.Tensor:
        """(B, L) -> (B,) log q(x) of the proposal that ``sample(..., transform=transform)`` draws."""
        if transform is None:
            return self.log_prob(x)
        k, inside = self.offsets_of(x)
        logp = self.conditional_logits(k + self.lower)
        total = torch.zeros(x.shape[0], dtype=logp.dtype, device=logp.device)
        for i in range(self.n_species):
            if _log_space_alpha(transform):
                log_q = torch.log_softmax(transform.alpha * logp[:, i], dim=-1)
            else:
                log_q = self._proposal(logp[:, i], i, transform).log()
            total = total + log_q.gather(-1, k[:, i:i + 1]).squeeze(-1)
        return total.masked_fill(~inside, float("-inf"))

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class NADE(AutoregressiveNet):
    """h_i = sigmoid(c + W[:, :i] x_<i) (raw counts in), logits_i = b_i + V_i h_i."""

    kind = "nade"
    structured = True       # natgrad may use the structured scores (NadeScores)

    def __init__(self, lower, upper, hidden=16, dtype=torch.float64, generator=None, head="onehot"):
        super().__init__(lower, upper, hidden, dtype, generator, head)
        L = self.n_species
        scale_w = 1.0 / (max(self.max_size - 1, 1) * math.sqrt(L))
        self.W = nn.Parameter(_uniform((hidden, L), scale_w, dtype, generator))
        self.c = nn.Parameter(_uniform((hidden,), 1.0, dtype, generator))

    PREFIX_MATMUL_MAX_SPECIES = 32

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (L, B, H) species-major: c + sum_{j<i} W[:, j] x_j for all i at once.

        Up to PREFIX_MATMUL_MAX_SPECIES species: one batched matmul with the strictly
        lower-triangular masked weights (B L^2 H multiply-adds, one pass); beyond that an
        exclusive cumulative sum (B L H, several passes).
        """
        L, H = self.n_species, self.hidden
        xf = x.to(self.W.dtype)
        if L <= self.PREFIX_MATMUL_MAX_SPECIES:
            before = torch.ones(L, L, dtype=torch.bool, device=xf.device).tril(-1)
            masked = self.W.t().unsqueeze(0) * before.unsqueeze(-1)   # (L, L, H): W[:, j], j < i
            return torch.baddbmm(self.c.view(1, 1, H), xf.expand(L, *xf.shape), masked)
        contrib = xf.t().unsqueeze(-1) * self.W.t().unsqueeze(1)    # (L, B, H)
        return torch.cumsum(contrib, dim=0) - contrib + self.c

    def hidden_by_species(self, x):
        return torch.sigmoid(self.pre_activations(x))

    def hidden_states(self, x):
        return self.hidden_by_species(x).transpose(0, 1)

    def _log_prob_shifted(self, x, shifted, fast=False):
        """As the base method, exactly, but species i of a neighbour that agrees with x on
        species 0..j (j >= i-1) has x's hidden state h_i, so its conditional is read off x's
        logits; only species after the first changed one are recomputed, from x's
        pre-activation plus the (sparse) change. A reaction that changes only the last
        species costs a gather. Memory stays O(B K (L + H)).

        ``fast`` (float64 nets): the recomputed conditionals (the (n, M_i) logits and their
        logsumexp, nearly all of the cost) in float32, 2.7x faster; the pre-activations and
        everything read off x stay float64."""
        recompute = torch.float32 if fast and self.c.dtype == torch.float64 else self.c.dtype
        B, K, L = shifted.shape
        k, inside_x = self.offsets_of(x)
        ks, inside = self.offsets_of(shifted.reshape(B * K, L))
        change = (ks.view(B, K, L) - k.unsqueeze(1)).view(B * K, L)
        moved = change != 0
        first = torch.where(moved.any(-1), moved.to(torch.uint8).argmax(-1), L)
        # rows sorted by their first changed species: those species i must recompute
        # (first < i) are then a leading slice [0, n_i)
        order = torch.argsort(first, stable=True)
        n_before = torch.bincount(first, minlength=L + 1).cumsum(0).tolist()
        # (index_select everywhere: much faster than advanced indexing)
        ks_t = ks.index_select(0, order).t().contiguous()             # (L, B K)
        change = change.index_select(0, order)
        parent = torch.div(order, K, rounding_mode="floor")
        pre_x = self.pre_activations(k + self.lower)                  # (L, B, H)
        change = change.to(pre_x.dtype)
        log_p = pre_x.new_zeros(B)
        log_ps = pre_x.new_zeros(B * K)
        for i in range(L):
            V, b = self.head(i)
            size = V.shape[0]
            raw = torch.addmm(b, torch.sigmoid(pre_x[i]), V.t())     # (B, M_i)
            term = raw.view(-1).index_select(0, parent * size + ks_t[i])
            picked = raw.gather(-1, k[:, i:i + 1]).squeeze(-1)
            lse = logsumexp_(raw)
            log_p = log_p + picked - lse
            term -= lse.index_select(0, parent)
            n = n_before[i - 1] if i else 0
            if n:
                pre = torch.addmm(pre_x[i].index_select(0, parent[:n]), change[:n, :i],
                                  self.input_weights(i))
                raw_new = torch.addmm(b.to(recompute), torch.sigmoid(pre.to(recompute)),
                                      V.t().to(recompute))
                term[:n] = log_softmax_at(raw_new, ks_t[i, :n]).to(term.dtype)
            log_ps += term
        log_ps = torch.empty_like(log_ps).index_copy_(0, order, log_ps)
        return (log_p.masked_fill(~inside_x, float("-inf")),
                log_ps.masked_fill(~inside, float("-inf")).view(B, K))

    def input_weights(self, i: int) -> torch.Tensor:
        """(i, H): the weight of x_j (j < i) in species i's pre-activation."""
        return self.W[:, :i].t()

    def next_pre_activation(self, a: torch.Tensor | None, x: torch.Tensor, i: int) -> torch.Tensor:
        """(n, H) pre-activation of species i while sampling, from species i-1's (``a``;
        None for i = 0) and the drawn x_<i: one rank-one update."""
        if a is None:
            return self.c.expand(x.shape[0], -1).clone()
        return a + x[:, i - 1:i].to(a.dtype) * self.W[:, i - 1]

    @torch.no_grad()
    def sample(self, n, generator=None, transform=None):
        """Incremental ancestral sampling: one (n, H) update per species."""
        x = self.lower.expand(n, -1).clone()
        a = None
        for i in range(self.n_species):
            a = self.next_pre_activation(a, x, i)
            V, b = self.head(i)
            raw = torch.addmm(b, torch.sigmoid(a), V.t())                # (n, M_i)
            if transform is None:
                probs = torch.softmax(raw, -1)
            else:
                padded = raw.new_full((n, self.max_size), float("-inf"))
                padded[:, :raw.shape[1]] = raw
                probs = self._proposal(torch.log_softmax(padded, -1), i, transform)
            k = self._draw(probs, i, generator)
            x[:, i] = self.lower[i] + k
        return x


class SharedNADE(NADE):
    """NADE whose weights are shared across sites, like a masked convolution over the sites:
    a_i = c_i + sum_{j<i} U[i - j - 1] x_j (U (L-1, H): one weight vector per distance in the
    species order, c (L, H) a bias per site), and one output head per class of species (the
    same declared species, bounds and basis: X at every site of a lattice). Everything else
    (exact sampling, log P, the neighbours' log P from x's conditionals) is NADE's; the
    natural gradient uses the generic dense scores (few parameters: H (2 L - 1) + the heads
    of one site)."""

    kind = "shared"
    structured = False

    def __init__(self, lower, upper, hidden=16, dtype=torch.float64, generator=None,
                 head="onehot", classes: Sequence | None = None):
        self._class_names = None if classes is None else list(classes)
        AutoregressiveNet.__init__(self, lower, upper, hidden, dtype, generator, head)
        L = self.n_species
        scale_w = 1.0 / (max(self.max_size - 1, 1) * math.sqrt(L))
        self.U = nn.Parameter(_uniform((max(L - 1, 1), hidden), scale_w, dtype, generator))
        self.c = nn.Parameter(_uniform((L, hidden), 1.0, dtype, generator))
        distance = (torch.arange(L)[:, None] - torch.arange(L)[None, :] - 1).clamp(min=0)
        self.register_buffer("distance", distance, persistent=False)              # (L, L)
        self.register_buffer("before", torch.ones(L, L, dtype=torch.bool).tril(-1),
                             persistent=False)

    def _make_heads(self, coef_sizes, dtype, generator) -> None:
        """One head table per class of species; ``head_source`` (sum J_i,) maps each
        species' head rows to the rows of its class."""
        names = self._class_names or [None] * self.n_species
        keys = [(names[i], int(self.lower[i]), int(self.sizes[i]), int(coef_sizes[i]))
                for i in range(self.n_species)]
        first: dict = {}
        rows, start = [], 0
        for key in keys:
            if key not in first:
                first[key] = start
                start += key[3]
            rows.append(torch.arange(first[key], first[key] + key[3]))
        self.register_buffer("head_source", torch.cat(rows), persistent=False)
        scale = 0.1 / math.sqrt(self.hidden)
        self.V_shared = nn.Parameter(_uniform((start, self.hidden), scale, dtype, generator))
        self.b_shared = nn.Parameter(torch.zeros(start, dtype=dtype))

    @property
    def V(self) -> torch.Tensor:
        return self.V_shared.index_select(0, self.head_source)

    @property
    def b(self) -> torch.Tensor:
        return self.b_shared.index_select(0, self.head_source)

    def weights(self) -> torch.Tensor:
        """(L, L, H): the weight of x_j in species i's pre-activation (0 for j >= i)."""
        return self.U[self.distance] * self.before.unsqueeze(-1)

    def pre_activations(self, x):
        L = self.n_species
        xf = x.to(self.c.dtype)
        return torch.baddbmm(self.c.unsqueeze(1), xf.expand(L, *xf.shape), self.weights())

    def input_weights(self, i):
        return self.U[:i].flip(0)

    def next_pre_activation(self, a, x, i):
        return self.c[i] + x[:, :i].to(self.c.dtype) @ self.input_weights(i)


class GRUNet(AutoregressiveNet):
    """Stacked GRU over the sequence (start, x_0, .., x_{L-2}); state i gives species i."""

    kind = "gru"

    def __init__(self, lower, upper, hidden=16, layers=1, dtype=torch.float64, generator=None,
                 head="onehot"):
        super().__init__(lower, upper, hidden, dtype, generator, head)
        L = self.n_species
        n_in = 1 + L                                    # scaled previous value, one-hot position
        s = 1.0 / math.sqrt(hidden)
        self.weight_ih = nn.ParameterList()
        self.weight_hh = nn.ParameterList()
        self.bias_ih = nn.ParameterList()
        self.bias_hh = nn.ParameterList()
        for layer in range(layers):
            width = n_in if layer == 0 else hidden
            self.weight_ih.append(nn.Parameter(_uniform((3 * hidden, width), s, dtype, generator)))
            self.weight_hh.append(nn.Parameter(_uniform((3 * hidden, hidden), s, dtype, generator)))
            self.bias_ih.append(nn.Parameter(_uniform((3 * hidden,), s, dtype, generator)))
            self.bias_hh.append(nn.Parameter(_uniform((3 * hidden,), s, dtype, generator)))
        self.layers = layers

    def _cell(self, layer: int, inp: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        gi = inp @ self.weight_ih[layer].t() + self.bias_ih[layer]
        gh = h @ self.weight_hh[layer].t() + self.bias_hh[layer]
        ir, iz, inn = gi.chunk(3, -1)
        hr, hz, hn = gh.chunk(3, -1)
        r = torch.sigmoid(ir + hr)
        z = torch.sigmoid(iz + hz)
        cand = torch.tanh(inn + r * hn)
        return (1 - z) * cand + z * h

    def _step(self, inp: torch.Tensor, states: list[torch.Tensor]) -> list[torch.Tensor]:
        new = []
        for layer in range(self.layers):
            inp = self._cell(layer, inp, states[layer])
            new.append(inp)
        return new

    def hidden_states(self, x):
        feats = _sequence_inputs(self, x)                           # (B, L, 1 + L)
        states = [feats.new_zeros(x.shape[0], self.hidden) for _ in range(self.layers)]
        outs = []
        for i in range(self.n_species):
            states = self._step(feats[:, i], states)
            outs.append(states[-1])
        return torch.stack(outs, dim=1)

    @torch.no_grad()
    def sample(self, n, generator=None, transform=None):
        V, b = self.padded_heads()
        x = self.lower.expand(n, -1).clone()
        dtype = V.dtype
        states = [torch.zeros(n, self.hidden, dtype=dtype, device=V.device) for _ in range(self.layers)]
        prev = torch.zeros(n, dtype=dtype, device=V.device)
        for i in range(self.n_species):
            pos = torch.zeros(n, self.n_species, dtype=dtype, device=V.device)
            pos[:, i] = 1
            states = self._step(torch.cat([prev[:, None], pos], -1), states)
            raw = (states[-1] @ V[i].t() + b[i]).masked_fill(~self.valid[i], float("-inf"))
            k = self._draw(self._proposal(torch.log_softmax(raw, -1), i, transform), i, generator)
            x[:, i] = self.lower[i] + k
            prev = k.to(dtype) / max(int(self.sizes[i]) - 1, 1)
        return x


class TransformerNet(AutoregressiveNet):
    """Pre-norm causal transformer (one head per layer) over (start, x_0, .., x_{L-2})."""

    kind = "transformer"

    def __init__(self, lower, upper, hidden=16, layers=1, dtype=torch.float64, generator=None,
                 head="onehot"):
        super().__init__(lower, upper, hidden, dtype, generator, head)
        L, H = self.n_species, hidden
        s = 1.0 / math.sqrt(H)
        self.embed = nn.Parameter(_uniform((H, 1 + L), 1.0, dtype, generator))
        self.position = nn.Parameter(_uniform((L, H), 0.1, dtype, generator))
        self.blocks = nn.ModuleList()
        for _ in range(layers):
            block = nn.Module()
            block.norm1 = nn.LayerNorm(H, dtype=dtype)
            block.qkv = nn.Parameter(_uniform((3 * H, H), s, dtype, generator))
            block.proj = nn.Parameter(_uniform((H, H), s, dtype, generator))
            block.norm2 = nn.LayerNorm(H, dtype=dtype)
            block.up = nn.Parameter(_uniform((2 * H, H), s, dtype, generator))
            block.up_bias = nn.Parameter(torch.zeros(2 * H, dtype=dtype))
            block.down = nn.Parameter(_uniform((H, 2 * H), s / math.sqrt(2), dtype, generator))
            block.down_bias = nn.Parameter(torch.zeros(H, dtype=dtype))
            self.blocks.append(block)
        self.norm = nn.LayerNorm(H, dtype=dtype)
        self.register_buffer("causal", torch.ones(L, L, dtype=torch.bool).tril())

    def hidden_states(self, x):
        feats = _sequence_inputs(self, x)                           # (B, L, 1 + L)
        z = feats @ self.embed.t() + self.position                   # (B, L, H)
        scale = 1.0 / math.sqrt(self.hidden)
        for block in self.blocks:
            q, k, v = (block.norm1(z) @ block.qkv.t()).chunk(3, -1)
            scores = (q @ k.transpose(-1, -2)) * scale
            scores = scores.masked_fill(~self.causal, float("-inf"))
            z = z + torch.softmax(scores, -1) @ v @ block.proj.t()
            u = torch.tanh(block.norm2(z) @ block.up.t() + block.up_bias)
            z = z + u @ block.down.t() + block.down_bias
        return self.norm(z)


def unique_row_index(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L) int64 -> (first (U,), inverse (B,)): x[first] are the unique rows in
    lexicographic order (as torch.unique(x, dim=0)) and x == x[first][inverse].

    Rows are packed into one int64 key (mixed radix over each column's range) when that
    fits, so the sort is one-dimensional (several times faster than sorting rows).
    """
    B = x.shape[0]
    positions = torch.arange(B, device=x.device)
    if B == 0 or x.dtype.is_floating_point:
        unique, inverse = torch.unique(x, dim=0, return_inverse=True)
    else:
        low = x.amin(0)
        strides = radix_strides((x.amax(0) - low + 1).tolist())
        if strides is None:
            unique, inverse = torch.unique(x, dim=0, return_inverse=True)
        else:
            keys = encode(x, low, torch.tensor(strides, dtype=torch.int64, device=x.device))
            unique, inverse = torch.unique(keys, return_inverse=True)
    U = unique.shape[0]                 # (the sort's own size: no further host read)
    first = torch.empty(U, dtype=torch.int64, device=x.device).scatter_(0, inverse, positions)
    return first, inverse


def _log_space_alpha(transform) -> bool:
    """Whether ``transform`` is p^alpha with alpha > 0 (then softmax(alpha log p) is q)."""
    alpha = getattr(transform, "alpha", None)
    return alpha is not None and alpha > 0


def log_softmax_at(raw: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(..., M) logits, (...) int64 -> (...) log_softmax(raw)[index].

    Without autograd it works in place on ``raw`` (consumed): no temporaries the size of raw.
    """
    picked = raw.gather(-1, index.unsqueeze(-1)).squeeze(-1)
    return picked - logsumexp_(raw)


def logsumexp_(raw: torch.Tensor) -> torch.Tensor:
    """(..., M) -> (...) logsumexp over the last dim; in place on ``raw`` (consumed) when
    autograd is off, torch.logsumexp otherwise."""
    if torch.is_grad_enabled() and raw.requires_grad:
        return torch.logsumexp(raw, dim=-1)
    top = raw.amax(dim=-1, keepdim=True)
    return raw.sub_(top).exp_().sum(dim=-1).log_() + top.squeeze(-1)


def _sequence_inputs(net: AutoregressiveNet, x: torch.Tensor) -> torch.Tensor:
    """(B, L) -> (B, L, 1 + L): input i = [scaled offset of species i-1 (0 for i=0), onehot(i)]."""
    B, L = x.shape
    dtype = net.V.dtype
    scaled = (x.to(torch.int64) - net.lower).to(dtype) / (net.sizes - 1).clamp(min=1).to(dtype)
    prev = torch.cat([scaled.new_zeros(B, 1), scaled[:, :-1]], dim=1)
    pos = torch.eye(L, dtype=dtype, device=x.device).expand(B, L, L)
    return torch.cat([prev.unsqueeze(-1), pos], dim=-1)


def _uniform(shape, scale: float, dtype: torch.dtype, generator: torch.Generator | None) -> torch.Tensor:
    return (2 * torch.rand(shape, dtype=dtype, generator=generator) - 1) * scale


def head_basis(lower: int, size: int, head: str, dtype: torch.dtype) -> torch.Tensor | None:
    """Phi (size, J) of a smooth head over the values lower .. lower + size - 1, or None (a
    one-hot head: the identity). Columns: Gaussian bumps centred SMOOTH_SPACING apart in
    sqrt(n), as wide as their spacing, then n scaled to 0..1."""
    if head not in HEADS:
        raise CRNSolverError(f"unknown network head '{head}'", hint=f"use one of {', '.join(HEADS)}")
    if head == "onehot" or size <= SMOOTH_MIN_SIZE:
        return None
    n = torch.arange(lower, lower + size, dtype=torch.float64)
    root = n.sqrt()
    span = float(root[-1] - root[0])
    count = max(2, math.ceil(span / SMOOTH_SPACING) + 1)
    centres = torch.linspace(float(root[0]), float(root[-1]), count, dtype=torch.float64)
    width = span / (count - 1)
    bumps = torch.exp(-0.5 * ((root[:, None] - centres[None, :]) / width) ** 2)
    linear = ((n - lower) / (size - 1))[:, None]
    return torch.cat([bumps, linear], dim=1).to(dtype)


def make_network(kind: str, lower: Sequence[int], upper: Sequence[int], hidden: int = 16,
                 layers: int = 1, dtype: torch.dtype = torch.float64,
                 generator: torch.Generator | None = None, head: str = "onehot",
                 classes: Sequence | None = None) -> AutoregressiveNet:
    """A fresh autoregressive network over species with values lower_i..upper_i (inclusive).

    ``generator`` (optional) makes the initial parameters reproducible. NADE has one hidden
    layer by construction (``layers`` applies to gru and transformer). ``head``: onehot or
    smooth (see the module docstring). ``classes`` (one name per species, e.g. the declared
    species of each lattice site) tells ``shared`` which species share a head.
    """
    if dtype not in (torch.float32, torch.float64):
        raise CRNSolverError(f"unsupported network dtype {dtype}", hint="use float32 or float64")
    if hidden < 1 or layers < 1:
        raise CRNSolverError("network hidden width and layers must be at least 1")
    if kind == "nade":
        return NADE(lower, upper, hidden, dtype, generator, head)
    if kind == "shared":
        return SharedNADE(lower, upper, hidden, dtype, generator, head, classes)
    if kind == "gru":
        return GRUNet(lower, upper, hidden, layers, dtype, generator, head)
    if kind == "transformer":
        return TransformerNet(lower, upper, hidden, layers, dtype, generator, head)
    from ..errors import did_you_mean

    raise CRNSolverError(f"unknown network '{kind}'",
                         hint=did_you_mean(kind, KINDS) or f"use one of {', '.join(KINDS)}")
