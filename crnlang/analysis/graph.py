"""Graph facts of a reaction network (networkx): independent subnetworks, complexes, linkage
classes, deficiency, weak reversibility."""
from __future__ import annotations

import networkx as nx

from ..model.ir import Model, Reaction, species_in


def species_reaction_graph(model: Model) -> nx.DiGraph:
    """Bipartite digraph: species -> reaction (a reactant, or read by the rate) and
    reaction -> species (a product). Nodes are ("species", name) and ("reaction", label)."""
    g = nx.DiGraph()
    for s in model.species:
        g.add_node(("species", s.name))
    for r in model.reactions:
        node = ("reaction", r.label)
        g.add_node(node)
        for name in [n for n, _ in r.reactants] + sorted(species_in(r.rate)):
            g.add_edge(("species", name), node)
        for name, _ in r.products:
            g.add_edge(node, ("species", name))
    return g


def components(model: Model) -> list[list[str]]:
    """Species that never interact, directly or through a chain of reactions, fall in
    different components; the joint distribution factorises over them. A species read by a
    rate expression counts as taking part. Each list is in model order; lists ordered by
    their first species."""
    g = nx.Graph()
    g.add_nodes_from(model.species_names)
    for r in model.reactions:
        names = [n for n, _ in r.reactants] + [n for n, _ in r.products] + sorted(species_in(r.rate))
        g.add_edges_from(zip(names, names[1:]))
    order = {name: i for i, name in enumerate(model.species_names)}
    groups = [sorted(c, key=order.__getitem__) for c in nx.connected_components(g)]
    return sorted(groups, key=lambda c: order[c[0]])


def complex_name(side: tuple[tuple[str, int], ...]) -> str:
    """"2 X + Y" for ((X, 2), (Y, 1)); "0" for the empty complex."""
    if not side:
        return "0"
    return " + ".join(name if s == 1 else f"{s} {name}" for name, s in sorted(side))


def complex_graph(reactions: tuple[Reaction, ...]) -> nx.DiGraph:
    """Directed graph of complexes (reactant complex -> product complex), in first-seen order."""
    g = nx.DiGraph()
    for r in reactions:
        g.add_edge(complex_name(r.reactants), complex_name(r.products))
    return g


def graph_facts(model: Model, rank: int) -> dict:
    """Components, complexes, linkage classes, deficiency and weak reversibility (plain data)."""
    g = complex_graph(model.reactions)
    linkage = [sorted(c) for c in nx.weakly_connected_components(g)]
    linkage.sort()
    weakly_reversible = all(nx.is_strongly_connected(g.subgraph(c)) for c in linkage)
    return {
        "components": components(model),
        "complexes": list(g.nodes),
        "linkage_classes": linkage,
        "n_complexes": g.number_of_nodes(),
        "n_linkage_classes": len(linkage),
        "deficiency": g.number_of_nodes() - len(linkage) - rank,
        "weakly_reversible": weakly_reversible,
    }
