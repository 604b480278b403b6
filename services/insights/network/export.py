"""The network's exports: GraphML and GEXF (Gephi), JSON for frontends, and
a picture (SVG or PNG) for a slide."""

from __future__ import annotations

from typing import Any

import networkx as nx

from services.insights.charts import ImageFormat, new_figure, render
from services.insights.network.graph import DIMENSIONS

_COLOURS = {"entity": "#4C72B0", "function": "#DD8452", "country": "#55A868", "generation": "#8172B3"}


def graphml(graph: nx.Graph) -> bytes:
    return "\n".join(nx.generate_graphml(graph)).encode()


def gexf(graph: nx.Graph) -> bytes:
    return "\n".join(nx.generate_gexf(graph)).encode()


def as_json(graph: nx.Graph) -> dict[str, Any]:
    """Nodes and links in an order of their own, not the graph's insertion
    order (which follows the order events were applied, so a rebuild could
    change it): nodes by id; each link from the smaller id to the larger
    (the graph is undirected), links by dimension, source and target."""
    data = nx.node_link_data(graph, edges="links")
    links = []
    for link in data["links"]:
        source, target = sorted((link["source"], link["target"]))
        links.append({**link, "source": source, "target": target})
    return {
        "nodes": sorted(data["nodes"], key=lambda n: n["id"]),
        "links": sorted(links, key=lambda e: (e["dimension"], e["source"], e["target"])),
    }


def picture(graph: nx.Graph, fmt: ImageFormat, title: str) -> bytes:
    """One panel per dimension; node size by pairs, edge width by pairs."""
    figure = new_figure(12, 9)
    axes = figure.subplots(2, 2).flatten()
    for ax, dimension in zip(axes, DIMENSIONS, strict=True):
        sub = graph.subgraph(n for n, k in graph.nodes(data="kind") if k == dimension)
        ax.set_title(dimension)
        ax.set_axis_off()
        ax.margins(0.15)  # room for the labels of the outer nodes
        if not sub:
            continue
        layout = nx.circular_layout(sub)  # deterministic: the same data draws the same picture
        sizes = [200 + 120 * sub.nodes[n]["pairs"] for n in sub]
        widths = [1 + sub.edges[e]["pairs"] for e in sub.edges if e[0] != e[1]]
        nx.draw_networkx_edges(sub, layout, ax=ax, edgelist=[e for e in sub.edges if e[0] != e[1]], width=widths, alpha=0.5)
        nx.draw_networkx_nodes(sub, layout, ax=ax, node_size=sizes, node_color=_COLOURS[dimension])
        nx.draw_networkx_labels(sub, layout, ax=ax, labels={n: sub.nodes[n]["label"] for n in sub}, font_size=8)
    figure.suptitle(title)
    return render(figure, fmt)
