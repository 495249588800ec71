"""Which assignments to part of an array may store into the old value's buffer.

An ``UPDATE`` is the old value of an array with a region replaced. Lowered on its own it is
a select over the whole array into a new buffer: every element is written, the unchanged
ones copied. Where nothing reads the old value after the update's stage, the stage may
instead store the region into the old value's buffer and leave the rest as it is (an update
in place: a 1000x1000 Jacobi step writes 998x998 elements and reads its neighbours
contiguously). This module decides where that is sound from the graph alone; the lowering
(``fuse._Lowering._store_in_place``) then checks the stored value itself, which must read the
old value at most at the element it replaces.

The buffer of an argument is the caller's array. The kernel stores into it only for the
updates that make the argument's final value (the chain of updates from the argument to the
value written back), so the caller's array ends as NumPy leaves it, and only where the
kernel cannot stop with an error halfway (an out-of-bounds index, a negative integer power),
which would leave later lines' updates in it.
"""

from __future__ import annotations

from ..ir.graph import Array, BinaryOp, Graph, GraphOp


def in_place_updates(
    graph: Graph, nodes: list[Array], stages: set[int], fusion: dict[int, Array]
) -> dict[int, Array]:
    """The stages that may store into the buffer of an old value, by the id of their node,
    with that old value: ``UPDATE`` nodes (their region, into their old value), and the new
    value of an updated argument that is computed whole (``a *= 2``, ``a[...] = v``: all of
    it, into the argument).

    ``nodes`` are the graph's nodes in execution order, ``stages`` the ids of those that are
    stages of their own (inputs are not), ``fusion`` the stages with a reduction fused in
    (their schedules store partial sums into the output before they read the old value).
    """
    position = {id(node): k for k, node in enumerate(nodes)}
    last_read = _last_reads(graph, nodes, stages, position)
    finals = _argument_chains(graph)
    outputs = {id(node) for node in graph.outputs}
    may_fail = _may_stop_with_an_error(nodes)
    origins = _origins(nodes)
    # an argument's new value that is no update: all of it may be stored into the argument
    written_whole = {id(graph.outputs[k]): graph.inputs[p] for p, k in graph.writes}
    chosen: dict[int, Array] = {}
    for node in nodes:
        if id(node) not in stages or id(node) in fusion or node.op in _REDUCING:
            continue
        if node.op is GraphOp.UPDATE:
            base = node.src[0]
        elif id(node) in written_whole:
            base = written_whole[id(node)]
        else:
            continue
        if base.op is not GraphOp.INPUT and id(base) not in stages:
            continue  # the old value has no buffer (a constant, a view of one)
        if id(base) in outputs or last_read.get(id(base), -1) > position[id(node)]:
            continue  # read after the update, or returned
        argument = origins.get(id(base))
        if argument is not None:
            final = finals.get(argument)
            on_chain = final is not None and id(node) in final[1]
            if not on_chain or may_fail or (id(node) in outputs and node is not final[0]):
                continue
        chosen[id(node)] = base
    return chosen


_REDUCING = frozenset({GraphOp.REDUCE, GraphOp.CONTRACT})  # (contractions too: conservative)


def _last_reads(
    graph: Graph, nodes: list[Array], stages: set[int], position: dict[int, int]
) -> dict[int, int]:
    """For each node, the position of the last stage that reads it (inlined nodes are read
    by every stage that inlines them); graph outputs are read after every stage."""
    last: dict[int, int] = {id(node): len(nodes) for node in graph.outputs}
    for node in reversed(nodes):  # users before their operands
        reader = position[id(node)] if id(node) in stages else last.get(id(node), -1)
        for source in node.src:
            if last.get(id(source), -1) < reader:
                last[id(source)] = reader
    return last


def _argument_chains(graph: Graph) -> dict[int, tuple[Array, set[int]]]:
    """For each argument the function updates: its final value, and the ids of the updates
    that lead from the argument to it (each one's old value is the one before)."""
    chains: dict[int, tuple[Array, set[int]]] = {}
    for argument, output in graph.writes:
        final = node = graph.outputs[output]
        chain = {id(final)}  # (also where it is no update: the argument's value, whole)
        while node.op is GraphOp.UPDATE:
            chain.add(id(node))
            node = node.src[0]
        if node is graph.inputs[argument] or final.op is not GraphOp.UPDATE:
            chains[argument] = (final, chain)
    return chains


def _origins(nodes: list[Array]) -> dict[int, int]:
    """For each input and each update whose chain of old values starts at an input: that
    argument's position (the memory an update in place of it would store into)."""
    origins: dict[int, int] = {}
    for node in nodes:  # operands first: an update's old value is done before it
        if node.op is GraphOp.INPUT:
            origins[id(node)] = node.arg
        elif node.op is GraphOp.UPDATE and id(node.src[0]) in origins:
            origins[id(node)] = origins[id(node.src[0])]
    return origins


def _may_stop_with_an_error(nodes: list[Array]) -> bool:
    """Whether the compiled program may report an error when it runs: an integer-array
    index out of bounds, or an integer raised to a negative power."""
    return any(
        node.op is GraphOp.GATHER
        or (
            node.op is GraphOp.BINARY
            and node.arg is BinaryOp.POW
            and node.src[0].dtype.kind in "iu"
        )
        for node in nodes
    )
