"""The cross-silo network: which entities, business functions, countries and
generations the programme's pairs connect. Pure logic over rows of the read
model (no I/O); networkx does the graph work.

Nodes are groups, never people: ``entity:Acme France``, ``function:finance``,
``country:FR``, ``generation:gen_x``. A formed pair (also once ended) adds,
in each dimension, an edge between the mentee's group and the mentor's (a
self-loop when both are in the same group), weighted by pairs and sessions
held. A regional committee's view replaces every attribute of a person
outside its countries by one ``(other countries)`` group per dimension.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import networkx as nx

DIMENSIONS = ("entity", "function", "country", "generation")
OTHER_COUNTRIES = "(other countries)"
UNKNOWN = "(unknown)"


@dataclass(frozen=True)
class Person:
    entity: str
    function: str
    country: str
    generation: str | None

    def group(self, dimension: str) -> str:
        value = getattr(self, dimension)
        return value if value is not None else UNKNOWN

    @classmethod
    def outside(cls) -> Person:
        return cls(OTHER_COUNTRIES, OTHER_COUNTRIES, OTHER_COUNTRIES, OTHER_COUNTRIES)


@dataclass(frozen=True)
class NetworkPair:
    wave: str  # the pair's home wave, for the wave-by-wave view
    mentee: Person
    mentor: Person
    sessions_held: int


def node_id(dimension: str, group: str) -> str:
    return f"{dimension}:{group}"


def scoped(pairs: Iterable[NetworkPair], visible: Callable[[str], bool]) -> list[NetworkPair]:
    """The pairs a caller may see, people outside its countries aggregated.

    A pair with neither person in a visible country is left out entirely.
    """
    shown = []
    for pair in pairs:
        mentee_seen, mentor_seen = visible(pair.mentee.country), visible(pair.mentor.country)
        if not (mentee_seen or mentor_seen):
            continue
        shown.append(
            NetworkPair(
                pair.wave,
                pair.mentee if mentee_seen else Person.outside(),
                pair.mentor if mentor_seen else Person.outside(),
                pair.sessions_held,
            )
        )
    return shown


def build(pairs: Iterable[NetworkPair], enrolled: Iterable[Person] = ()) -> nx.Graph:
    """The graph of the pairs; ``enrolled`` people add their groups as nodes
    even when no pair reaches them (the silos not reached)."""
    graph = nx.Graph()
    for person in enrolled:
        for dimension in DIMENSIONS:
            _add_node(graph, dimension, person.group(dimension))
    for pair in pairs:
        for dimension in DIMENSIONS:
            u = _add_node(graph, dimension, pair.mentee.group(dimension))
            v = _add_node(graph, dimension, pair.mentor.group(dimension))
            graph.nodes[u]["pairs"] += 1
            if u != v:
                graph.nodes[v]["pairs"] += 1
            if graph.has_edge(u, v):
                graph.edges[u, v]["pairs"] += 1
                graph.edges[u, v]["sessions"] += pair.sessions_held
            else:
                graph.add_edge(u, v, dimension=dimension, pairs=1, sessions=pair.sessions_held, crossing=u != v)
    return graph


def _add_node(graph: nx.Graph, dimension: str, group: str) -> str:
    node = node_id(dimension, group)
    if node not in graph:
        graph.add_node(node, kind=dimension, label=group, pairs=0)
    return node


def measures(graph: nx.Graph, pairs: list[NetworkPair]) -> dict[str, Any]:
    """Crossing shares, silos, bridges and components, per dimension."""
    return {
        "pairs": len(pairs),
        "crossing_share": crossing_shares(pairs),
        "silos": silos(graph),
        "bridges": bridges(graph),
        "components": {
            d: nx.number_connected_components(_reached(graph, d)) if _reached(graph, d) else 0 for d in DIMENSIONS
        },
    }


def crossing_shares(pairs: list[NetworkPair]) -> dict[str, float | None]:
    """Share of pairs whose two people are in different groups, per dimension
    (pairs with an unknown or aggregated side do not count)."""
    shares: dict[str, float | None] = {}
    for dimension in DIMENSIONS:
        known = [
            p for p in pairs
            if all(x.group(dimension) not in (UNKNOWN, OTHER_COUNTRIES) for x in (p.mentee, p.mentor))
        ]
        crossing = sum(p.mentee.group(dimension) != p.mentor.group(dimension) for p in known)
        shares[dimension] = round(crossing / len(known), 4) if known else None
    return shares


def silos(graph: nx.Graph) -> dict[str, dict[str, list[str]]]:
    """Per dimension: groups no pair reaches (``unreached``) and groups whose
    pairs all stay inside them (``closed``)."""
    result: dict[str, dict[str, list[str]]] = {}
    for dimension in DIMENSIONS:
        nodes = [n for n, k in graph.nodes(data="kind") if k == dimension]
        unreached = sorted(graph.nodes[n]["label"] for n in nodes if graph.nodes[n]["pairs"] == 0)
        closed = sorted(
            graph.nodes[n]["label"]
            for n in nodes
            if graph.nodes[n]["pairs"] > 0 and all(v == n for v in graph.neighbors(n))
        )
        result[dimension] = {"unreached": unreached, "closed": closed}
    return result


def bridges(graph: nx.Graph) -> list[dict[str, Any]]:
    """Edges whose removal would cut groups off from each other: the pairs
    that alone connect otherwise unconnected parts of the company."""
    crossing = nx.Graph((u, v, d) for u, v, d in graph.edges(data=True) if u != v)
    found = [
        {"dimension": crossing.edges[u, v]["dimension"], "between": sorted((graph.nodes[u]["label"], graph.nodes[v]["label"])),
         "pairs": crossing.edges[u, v]["pairs"]}
        for u, v in nx.bridges(crossing)
    ]
    return sorted(found, key=lambda b: (b["dimension"], b["between"]))


def _reached(graph: nx.Graph, dimension: str) -> nx.Graph:
    return graph.subgraph(n for n, d in graph.nodes(data=True) if d["kind"] == dimension and d["pairs"] > 0)


def by_wave(pairs: list[NetworkPair], waves: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """How the network grows wave by wave: cumulative measures after each wave
    and what changed since the one before. ``waves``: (id, name) in order."""
    per_wave: dict[str, list[NetworkPair]] = defaultdict(list)
    for pair in pairs:
        per_wave[pair.wave].append(pair)
    timeline, so_far, before = [], [], None
    for wave, wave_name in waves:
        so_far = so_far + per_wave.get(wave, [])
        graph = build(so_far)
        reached = {d: len(_reached(graph, d)) for d in DIMENSIONS}
        shares = crossing_shares(so_far)
        entry: dict[str, Any] = {
            "wave_id": wave,
            "wave_name": wave_name,
            "pairs": len(per_wave.get(wave, [])),
            "cumulative_pairs": len(so_far),
            "groups_reached": reached,
            "crossing_share": shares,
            "bridges": len(bridges(graph)),
        }
        if before is not None:
            entry["change"] = {
                "groups_reached": {d: reached[d] - before["groups_reached"][d] for d in DIMENSIONS},
                "crossing_share": {
                    d: None if shares[d] is None or before["crossing_share"][d] is None
                    else round(shares[d] - before["crossing_share"][d], 4)
                    for d in DIMENSIONS
                },
            }
        timeline.append(entry)
        before = entry
    return timeline
