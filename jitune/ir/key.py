"""Structural hash of a traced graph: equal computations get equal keys, whatever the names."""

from __future__ import annotations

import hashlib

from .graph import Graph
from .printer import format_graph


def structural_key(graph: Graph) -> str:
    """sha256 of the graph's canonical text (nodes are numbered by position, never named)."""
    text = (
        format_graph(graph.outputs)
        + "\ninputs "
        + " ".join(f"{i.dtype}{list(i.shape)}" for i in graph.inputs)
        + (f"\nwrites {graph.writes}" if graph.writes else "")
    )
    return hashlib.sha256(text.encode()).hexdigest()
