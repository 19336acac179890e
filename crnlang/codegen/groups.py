"""Reaction groups: runs of consecutive reactions that one line of generated code evaluates.

A lattice model lowers one reaction statement to one reaction per site (and ``diffuse`` to one
per directed edge), all with the same rate law over other species. The code generator keeps
that structure: consecutive reactions whose propensity is the same code over *slots* (the
species a reaction reads or changes, in a fixed order) form a group, and a group is evaluated
in one line over a (G, B) block of rows instead of G lines of (B,) rows. Slot j of the group
reads one species per reaction: its *rows*, the column ``slots[:, j]`` of full-species indices.

How a column of rows reaches the generated module, smallest first:
* contiguous rows a, a+1, ... (a species at every site, in site order): the int ``a``, read as
  the slice ``f[a:a+G]`` (a view, no copy);
* rows along the lattice's directed edges (``diffuse``): ``_ks.edge_rows(MODEL.lattice, end,
  offset)``, rebuilt from the lattice when the module is imported;
* anything else: a literal list.
So the generated text of an 8x8 grid is as long as that of a 2x2 one. A model without a
lattice has groups of one reaction, whose code is the plain per-reaction line.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Hashable, Sequence

from ..model.ir import Lattice, Reaction
from ..model.lattice import directed_edges, hop_label, site_label, site_number, sites_of


MAX_INTERLEAVE = 4   # a lattice's ``A <-> B`` lowers to fwd, rev at site 0, fwd, rev at site 1 ...


@dataclass(frozen=True)
class ReactionGroup:
    """Reactions ``start, start + step, ...`` (``size`` of them): one template; ``slots[g][j]``
    is the species that the g-th of them reads or changes in slot j."""

    start: int
    step: int
    reactions: tuple[Reaction, ...]
    slots: tuple[tuple[str, ...], ...]

    @property
    def size(self) -> int:
        return len(self.reactions)

    @property
    def stop(self) -> int:
        """One past the last reaction index (a slice's stop)."""
        return self.start + self.step * (self.size - 1) + 1

    @property
    def indices(self) -> range:
        return range(self.start, self.stop, self.step)

    def column(self, j: int) -> list[str]:
        """The species of slot j, one per reaction of the group."""
        return [row[j] for row in self.slots]


def group_reactions(reactions: Sequence[Reaction],
                    template: Callable[[Reaction], tuple[Hashable, tuple[str, ...]]]
                    ) -> list[list[ReactionGroup]]:
    """The reactions as blocks, in order; a block is a run of n >= 2 repetitions of m
    consecutive reactions with equal ``template(r)[0]`` keys position by position, split
    into m interleaved groups of step m (m = 1 for a reaction at every site, 2 for a
    reversible pair at every site), or a single reaction.

    ``template(r) -> (key, slots)``: two reactions with equal keys have the same propensity,
    change and bounds code once each slot is read from its own species."""
    keyed = [template(r) for r in reactions]
    keys = [k for k, _ in keyed]
    blocks: list[list[ReactionGroup]] = []
    i = 0
    while i < len(reactions):
        m, n = _repetition(keys, i)
        blocks.append([ReactionGroup(i + f, m, tuple(reactions[i + f + g * m] for g in range(n)),
                                     tuple(keyed[i + f + g * m][1] for g in range(n)))
                       for f in range(m)])
        i += m * n
    return blocks


def _repetition(keys: Sequence[Hashable], i: int) -> tuple[int, int]:
    """(m, n): keys[i:] starts with n repetitions of its first m keys (m = 1, n = 1 when
    nothing repeats); the smallest m that repeats at all."""
    for m in range(1, MAX_INTERLEAVE + 1):
        n = 1
        while (i + (n + 1) * m <= len(keys)
               and keys[i + n * m: i + (n + 1) * m] == keys[i: i + m]):
            n += 1
        if n >= 2:
            return m, n
    return 1, 1


# ---------------------------------------------------------------- rows and labels as code
def contiguous(rows: Sequence[int]) -> bool:
    """rows are a, a+1, a+2, ..."""
    return all(r == rows[0] + g for g, r in enumerate(rows))


def edge_rows_code(rows: Sequence[int], lattice: Lattice | None) -> str | None:
    """``_ks.edge_rows(MODEL.lattice, end, offset)`` when row g is offset + the site number of
    end ``end`` of the lattice's directed edge g; else None."""
    if lattice is None:
        return None
    edges = directed_edges(lattice)
    if len(rows) != len(edges):
        return None
    for end in (0, 1):
        numbers = [site_number(lattice, edge[end]) for edge in edges]
        offset = rows[0] - numbers[0]
        if all(r == offset + n for r, n in zip(rows, numbers)):
            return f"_ks.edge_rows(MODEL.lattice, {end}, {offset})"
    return None


def labels_code(labels: Sequence[str], base_species: str, lattice: Lattice | None,
                literal: Callable[[object], str]) -> str:
    """Code of a group's labels, starred into the REACTIONS tuple: ``*_ks.site_labels(...)``
    (a label at every site), ``*_ks.hop_labels(...)`` (a diffusion hop per edge) or a literal."""
    if lattice is not None and len(labels) > 1:
        sites = sites_of(lattice)
        suffix = site_label("", sites[0])
        if len(labels) == len(sites) and labels[0].endswith(suffix):
            base = labels[0][: len(labels[0]) - len(suffix)]
            if list(labels) == [site_label(base, s) for s in sites]:
                return f"*_ks.site_labels(MODEL.lattice, {literal(base)})"
        edges = directed_edges(lattice)
        if list(labels) == [hop_label(base_species, a, b) for a, b in edges]:
            return f"*_ks.hop_labels(MODEL.lattice, {literal(base_species)})"
    return "*" + literal(tuple(labels))
