"""Time ``crnlang.analyze`` on two large networks (target: under 5 s each on 2 cores).

* the Schlögl model on a 10x10 grid: 100 species, 760 reactions (no conservation law);
* a random network of 1000 species and about 3000 reactions, built so that exact
  conservation laws exist (closed groups where every reaction conserves a random positive
  integer "mass") next to open groups (inflow and outflow), so the kernel is neither empty
  nor trivial;
* a sparse random network of 1000 species and 500 reactions: about 500 laws, many with
  mixed signs (the hardest case for the semi-positive search).

    python benchmarks/bench_analysis.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout

import crnlang  # noqa: E402
from crnlang.model.ir import Const, InitDist, Model, Reaction, Species  # noqa: E402

# the 3x3 example's model, on a 10x10 grid (100 species, 9 x 4 -> 400 + 360 hops = 760 reactions)
SCHLOGL_GRID = (Path(__file__).resolve().parents[1] / "examples" / "schlogl2d.crn").read_text(
    encoding="utf-8").replace("grid(3, 3)", "grid(10, 10)")


def random_network(n_species: int = 1000, n_groups: int = 10, per_group: int = 300,
                   seed: int = 0) -> Model:
    """Groups of n_species / n_groups species with random reactions inside each group.
    Species carry a mass 1..4; binding A + B -> C needs mass(C) = mass(A) + mass(B),
    conversion A -> B equal masses. Every other group is open (0 -> X, X -> 0 too)."""
    rng = np.random.default_rng(seed)
    size = n_species // n_groups
    species, reactions, init = [], [], {}
    for g in range(n_groups):
        names = [f"G{g}_{i}" for i in range(size)]
        mass = rng.integers(1, 5, size=size)
        species += [Species(n) for n in names]
        for n in names[:5]:
            init[n] = InitDist("fixed", (int(rng.integers(0, 4)),))
        by_mass = {m: [i for i in range(size) if mass[i] == m] for m in range(1, 5)}
        made = 0
        while made < per_group:
            a, b = rng.integers(0, size, size=2)
            total = mass[a] + mass[b]
            if rng.random() < 0.5 and total <= 4 and by_mass[total]:
                c = rng.choice(by_mass[total])
                reactants = ((names[a], 1), (names[b], 1)) if a != b else ((names[a], 2),)
                reactions.append(Reaction(f"g{g}_bind{made}", reactants, ((names[c], 1),), Const(1.0)))
                reactions.append(Reaction(f"g{g}_unbind{made}", ((names[c], 1),), reactants, Const(1.0)))
                made += 2
            elif mass[a] == mass[b] and a != b:
                reactions.append(Reaction(f"g{g}_conv{made}", ((names[a], 1),), ((names[b], 1),), Const(1.0)))
                made += 1
        if g % 2:
            for i in rng.choice(size, size=5, replace=False):
                reactions.append(Reaction(f"g{g}_in{i}", (), ((names[i], 1),), Const(1.0)))
                reactions.append(Reaction(f"g{g}_out{i}", ((names[i], 1),), (), Const(1.0)))
    return Model(name="random", kinetics="binomial", params=(), species=tuple(species),
                 reactions=tuple(reactions), init=init)


def sparse_random_network(n_species: int = 1000, n_reactions: int = 500, seed: int = 1) -> Model:
    """Random reactions with 1-2 reactants and 1-2 products among n_species: few reactions
    per species, so about n_species - n_reactions laws, many of them with mixed signs."""
    rng = np.random.default_rng(seed)
    names = [f"X{i}" for i in range(n_species)]
    reactions = []
    for j in range(n_reactions):
        k, l = rng.integers(1, 3, size=2)
        picked = rng.choice(n_species, size=k + l, replace=False)
        reactions.append(Reaction(f"r{j}", tuple((names[i], 1) for i in picked[:k]),
                                  tuple((names[i], 1) for i in picked[k:]), Const(1.0)))
    return Model(name="sparse_random", kinetics="binomial", params=(),
                 species=tuple(Species(n) for n in names), reactions=tuple(reactions),
                 init={n: InitDist("fixed", (1,)) for n in names})


def timed(label: str, model: Model) -> None:
    t0 = time.perf_counter()
    a = crnlang.analyze(model)
    seconds = time.perf_counter() - t0
    print(f"{label}: {len(a.species)} species, {len(model.reactions)} reactions, rank {a.rank}, "
          f"{len(a.conservation_laws)} laws, {len(a.eliminated)} eliminated: {seconds:.2f} s")


def main() -> None:
    crnlang.analyze(crnlang.parse("species A, B\nA <-> B @ 1, 1\ninit A = 1"))   # imports
    timed("schlogl 10x10 grid", crnlang.parse(SCHLOGL_GRID))
    timed("random 1000 species", random_network())
    timed("sparse random 1000 species", sparse_random_network())


if __name__ == "__main__":
    main()
