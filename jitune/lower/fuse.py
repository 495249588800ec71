"""Graph IR -> compute IR, with fusion.

Which nodes get a buffer of their own ("roots"): the graph's outputs and every reduction or
contraction that sums over an index. Everything else (elementwise ops, casts, constants, views,
and einsums that sum nothing, such as ``'ij,j->ij'`` or ``'ii->i'``: products of operands read
at permuted, repeated or broadcast indices) is inlined into the stages that read it, so a chain
of elementwise and broadcast ops is one loop nest.

Epilogue fusion: when an elementwise output reads a reduction of its own shape through
elementwise ops only, and nothing else reads that reduction, the two are one stage whose
epilogue is applied as each reduced element is stored (``relu(x @ w + b)`` is one stage).
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

from ..ir.compute import ACC, Axis, BufferDecl, ComputeProgram, Role, Stage, contiguous_strides
from ..ir.expr import (
    BOOL,
    Expr,
    ExprOp,
    binary,
    cast,
    checked_index,
    const,
    contains,
    iconst,
    index_add,
    index_div,
    index_mod,
    index_mul,
    is_const,
    load,
    loads,
    select,
    transform,
    unary,
    var,
)
from ..ir.graph import VIEWS, Array, BinaryOp, Graph, GraphOp, ReduceOp
from .in_place import in_place_updates
from .index_maps import operand_indices
from .reuse import merge_duplicates, share_summands

_ELEMENTWISE = frozenset({GraphOp.UNARY, GraphOp.BINARY, GraphOp.WHERE, GraphOp.CAST})


def is_reduction(node: Array) -> bool:
    """Whether ``node`` reduces: a REDUCE, or a CONTRACT with a letter not in its output.

    A contraction that sums nothing is elementwise (``_Lowering._product`` inlines it); as a
    stage of its own it became a reduction stage without reduce axes, which the schedules do
    not handle (``einsum('d,d->d', a, b) + c`` failed in code generation).
    """
    if node.op is GraphOp.REDUCE:
        return True
    if node.op is GraphOp.CONTRACT:
        return not set("".join(node.arg.inputs)) <= set(node.arg.output)
    return False


def region_axis(
    i: Expr, start: int, step: int, count: int, extent: int
) -> tuple[Expr, Expr | None]:
    """For index ``i`` (in ``[0, extent)``) of an axis whose elements ``start + step * k``,
    ``k < count``, were assigned: the position ``k`` (wrapped into ``[0, count)`` outside the
    region, with non-negative index arithmetic throughout) and the test whether ``i`` lies
    in the region (None when every index does)."""
    size = abs(step)
    last = start + step * (count - 1)
    low, high = min(start, last), max(start, last)
    if count == extent and size == 1:
        # the whole axis: forward or reversed
        position = i if step == 1 else index_add(iconst(start), index_mul(i, -1))
        return position, None
    # k = (i - start) / step inside; shifted by a multiple of size * count to stay >= 0
    turns = (extent // (size * count)) + 2
    if step > 0:
        shifted = index_add(i, size * count * turns - start)
    else:
        shifted = index_add(index_mul(i, -1), start + size * count * turns)
    position = index_mod(index_div(shifted, size) if size > 1 else shifted, count)
    test = binary(
        BinaryOp.AND,
        binary(BinaryOp.GE, i, iconst(low), BOOL),
        binary(BinaryOp.LE, i, iconst(high), BOOL),
        BOOL,
    )
    if size > 1:
        aligned = index_mod(index_add(i, (-start) % size), size)
        test = binary(BinaryOp.AND, test, binary(BinaryOp.EQ, aligned, iconst(0), BOOL), BOOL)
    return position, test


def _use_counts(graph: Graph, nodes: list[Array]) -> dict[int, int]:
    uses: dict[int, int] = {id(n): 0 for n in nodes}
    for node in nodes:
        for src in set(map(id, node.src)):
            uses[src] += 1
    for out in graph.outputs:
        uses[id(out)] += 1
    return uses


def _fusion_candidate(root: Array, roots: set[int], uses: dict[int, int]) -> Array | None:
    """A reduction/contraction of ``root``'s shape that ``root`` reads through elementwise ops
    and that nothing outside ``root``'s inlined region reads; None if there is none.

    "Nothing outside" covers indirect reads too: if another stage inlines an elementwise node
    that reads the candidate (``v = exp(x @ w)`` read by both ``v.max(0)`` and the root), the
    candidate must stay a buffer of its own.
    """
    region_uses: dict[int, int] = {}
    region: dict[int, Array] = {id(root): root}  # the nodes inlined into root's stage
    elementwise_reach: list[Array] = []
    stack, seen = [(root, True)], {id(root)}
    while stack:
        node, elementwise_path = stack.pop()
        for src in set(node.src):
            region_uses[id(src)] = region_uses.get(id(src), 0) + 1
            if is_reduction(src) and elementwise_path and src.shape == root.shape:
                elementwise_reach.append(src)
            if id(src) in seen or id(src) in roots or src.op is GraphOp.INPUT:
                continue
            seen.add(id(src))
            region[id(src)] = src
            stack.append((src, elementwise_path and src.op in _ELEMENTWISE))

    def private(candidate: Array) -> bool:
        # The candidate and every inlined node between it and the root are read only from
        # inside the region.
        reaches: dict[int, bool] = {id(candidate): True}

        def reach(node: Array) -> bool:
            found = reaches.get(id(node))
            if found is None:
                reaches[id(node)] = False  # (a DAG: no cycles, this only guards re-entry)
                found = any(reach(src) for src in node.src if id(src) in region or src is candidate)
                reaches[id(node)] = found
            return found

        reach(root)
        return all(
            region_uses.get(key, 0) == uses[key]
            for key, hit in reaches.items()
            if hit and key != id(root)
        )

    for candidate in elementwise_reach:
        if private(candidate):
            return candidate
    return None


MAX_INLINE_DEPTH = 64
"""Longest chain of inlined ops in one expression; deeper chains get a buffer in between, so
expression trees (and the recursion that walks them) stay shallow."""


def _deep_nodes(nodes: list[Array], roots: set[int]) -> set[int]:
    """Nodes at which inlined chains are cut so no expression is deeper than the limit."""
    depth: dict[int, int] = {}
    cut: set[int] = set()
    for node in nodes:  # operands come first
        below = max((depth[id(src)] for src in node.src), default=0)
        if id(node) in roots or node.op is GraphOp.INPUT:
            depth[id(node)] = 0
        elif below + 1 > MAX_INLINE_DEPTH:
            cut.add(id(node))
            depth[id(node)] = 0
        else:
            depth[id(node)] = below + 1
    return cut


class _NotFusable(Exception):
    """The fused reduction is read at another index than the stage's own."""


class _Lowering:
    """State of one lowering: buffer names of roots and memoized inlined expressions."""

    def __init__(
        self, graph: Graph, input_strides: Sequence[tuple[int, ...]], in_place: bool = False
    ) -> None:
        self.graph = graph
        self.allow_in_place = in_place
        # the stages that may store into an old value's buffer, with that old value
        self.in_place: dict[int, Array] = {}
        self.nodes = graph.nodes()
        self.uses = _use_counts(graph, self.nodes)
        self.buffers: list[BufferDecl] = []
        self.decls: dict[str, BufferDecl] = {}  # the buffers by name
        self.roles: collections.Counter[str] = collections.Counter()  # buffers per role
        self.buffer_of: dict[int, str] = {}
        for position, node in enumerate(graph.inputs):
            name = f"in{position}"
            self.buffer_of[id(node)] = name
            self._add(
                BufferDecl(name, node.shape, node.dtype, tuple(input_strides[position]), "input")
            )
        self.stages: list[Stage] = []
        self.fused_acc: Array | None = None
        self.acc_indices: tuple[Expr, ...] = ()
        self.copies: dict[int, str] = {}
        self.memo: dict[tuple[int, tuple[Expr, ...]], Expr] = {}

    def inline(self, node: Array, indices: tuple[Expr, ...]) -> Expr:
        buffer = self.buffer_of.get(id(node))
        if buffer is not None and node is not self.fused_acc:
            # a node that got a buffer after it was inlined elsewhere is loaded from now on
            return load(buffer, indices, node.dtype)
        key = (id(node), indices)
        found = self.memo.get(key)
        if found is None:
            found = self.memo[key] = self._inline(node, indices)
        return found

    def _inline(self, node: Array, indices: tuple[Expr, ...]) -> Expr:
        if node is self.fused_acc:
            if indices != self.acc_indices:
                raise _NotFusable
            return var(ACC, node.dtype)
        if id(node) in self.buffer_of:
            return load(self.buffer_of[id(node)], indices, node.dtype)
        op = node.op
        if op is GraphOp.CONST:
            return const(node.arg, node.dtype)
        operands = [self.inline(src, indices) for src in node.src] if op in _ELEMENTWISE else []
        if op is GraphOp.UNARY:
            return unary(node.arg, operands[0], node.dtype)
        if op is GraphOp.BINARY:
            return binary(node.arg, operands[0], operands[1], node.dtype)
        if op is GraphOp.WHERE:
            return select(*operands)
        if op is GraphOp.CAST:
            return cast(operands[0], node.dtype)
        if op in VIEWS:
            return self.inline(node.src[0], operand_indices(node, indices))
        if op is GraphOp.CONTRACT:
            return self._product(node, indices)
        if op is GraphOp.UPDATE:
            return self._update(node, indices)
        if op is GraphOp.IOTA:
            return indices[node.arg]  # the index itself is the value (int64)
        if op is GraphOp.GATHER:
            return self._gather(node, indices)
        raise AssertionError(f"{op} should have been materialized")

    def _update(self, node: Array, indices: tuple[Expr, ...]) -> Expr:
        """An assignment to part of an array, at ``indices``: the stored value where the
        element lies in the region, else the old value. The value is read at an index wrapped
        into its extent, so the select's unused operand never reads out of bounds."""
        base, value = node.src
        inside: Expr | None = None
        at: list[Expr] = []
        for (start, step), count, extent, i in zip(node.arg, value.shape, node.shape, indices):
            position, test = region_axis(i, start, step, count, extent)
            at.append(position)
            if test is not None:
                inside = test if inside is None else binary(BinaryOp.AND, inside, test, BOOL)
        old = self.inline(base, indices)
        new = self.inline(value, tuple(at))
        return new if inside is None else select(inside, new, old)

    def _gather(self, node: Array, indices: tuple[Expr, ...]) -> Expr:
        """Integer-array indexing at ``indices``: the base read where the index operands
        point (checked, so an out-of-bounds value raises and reads nothing outside)."""
        base = node.src[0]
        at = tuple(
            indices[k]
            if kind == "axis"
            else checked_index(self.inline(node.src[1 + k], indices), extent)
            for (kind, k), extent in zip(node.arg.axes, base.shape)
        )
        value = self.inline(base, at)
        for index, (kind, _) in zip(at, node.arg.axes):
            if kind == "index" and not is_const(index) and not contains(value, index):
                # the base does not read this index (a broadcast or constant base): the
                # value depends on the check anyway, so the check is evaluated
                value = select(binary(BinaryOp.GE, index, iconst(0), BOOL), value, value)
        return value

    def _product(self, node: Array, indices: tuple[Expr, ...]) -> Expr:
        """A contraction that sums nothing, at ``indices``: the product of its operands,
        each read at the output letters' indices (0 on an axis of extent 1, which
        broadcasts; a letter repeated in an operand reads its diagonal)."""
        at = dict(zip(node.arg.output, indices))
        product: Expr | None = None
        for letters, operand in zip(node.arg.inputs, node.src):
            index = tuple(
                iconst(0) if extent == 1 else at[c] for c, extent in zip(letters, operand.shape)
            )
            term = self.inline(operand, index)
            product = term if product is None else binary(BinaryOp.MUL, product, term, node.dtype)
        assert product is not None  # a contraction has at least one operand
        return product

    def declare(self, node: Array, role: Role) -> str:
        """A new C-contiguous buffer of ``node``'s shape and dtype; returns its name."""
        count = self.roles[role]
        name = f"out{count}" if role == "output" else f"t{count}"
        return self._add(
            BufferDecl(name, node.shape, node.dtype, contiguous_strides(node.shape), role)
        )

    def _add(self, decl: BufferDecl) -> str:
        self.buffers.append(decl)
        self.decls[decl.name] = decl
        self.roles[decl.role] += 1
        return decl.name

    def new_buffer(self, node: Array, role: Role) -> str:
        """A buffer that holds ``node`` from now on (later readers load it)."""
        name = self.buffer_of[id(node)] = self.declare(node, role)
        return name

    def reduction_parts(
        self, node: Array, out_vars: tuple[Expr, ...]
    ) -> tuple[Expr, tuple[Axis, ...], ReduceOp | None]:
        """Body, reduce axes and reduce op of a REDUCE or CONTRACT node."""
        if node.op is GraphOp.REDUCE:
            spec = node.arg
            source = node.src[0]
            reduce_axes = tuple(Axis(f"r{k}", source.shape[d]) for k, d in enumerate(spec.axes))
            index: list[Expr] = []
            kept = iter(out_vars)
            reduced = iter(var(axis.name) for axis in reduce_axes)
            for d in range(source.ndim):
                if d in spec.axes:
                    index.append(next(reduced))
                    if spec.keepdims:
                        next(kept)
                else:
                    index.append(next(kept))
            return self.inline(source, tuple(index)), reduce_axes, spec.op
        contraction = node.arg
        letter_vars = dict(zip(contraction.output, out_vars))
        sizes: dict[str, int] = {}
        for letters, operand in zip(contraction.inputs, node.src):
            for letter, extent in zip(letters, operand.shape):
                if sizes.get(letter, 1) == 1:
                    sizes[letter] = extent
        summed = [c for c in dict.fromkeys("".join(contraction.inputs)) if c not in letter_vars]
        reduce_axes = tuple(Axis(f"r{k}", sizes[c]) for k, c in enumerate(summed))
        letter_vars.update({c: var(a.name) for c, a in zip(summed, reduce_axes)})
        body: Expr | None = None
        for letters, operand in zip(contraction.inputs, node.src):
            index = tuple(
                iconst(0) if extent == 1 else letter_vars[c]
                for c, extent in zip(letters, operand.shape)
            )
            term = self.inline(operand, index)
            body = term if body is None else binary(BinaryOp.MUL, body, term, node.dtype)
        assert body is not None
        return body, reduce_axes, (ReduceOp.SUM if reduce_axes else None)

    def add_stage(self, node: Array, role: Role, fused: Array | None = None) -> None:
        """Append the stage computing ``node`` (with ``fused`` as its reduction, if given)."""
        if id(node) in self.in_place and self._store_in_place(node):
            return
        axes = tuple(Axis(f"i{k}", extent) for k, extent in enumerate(node.shape))
        out_vars = tuple(var(a.name) for a in axes)
        reducer = node if is_reduction(node) else fused
        epilogue = None
        if reducer is None:
            body, reduce_axes, reduce_op = self.inline(node, out_vars), (), None
        else:
            body, reduce_axes, reduce_op = self.reduction_parts(reducer, out_vars)
        if reducer is not None and reducer is not node:
            self.fused_acc, self.acc_indices = reducer, out_vars
            try:
                epilogue = self.inline(node, out_vars)
                fusable = True
            except _NotFusable:
                fusable = False
            finally:
                self.fused_acc = None
                self.memo.clear()  # entries computed under the fused accumulator are private
            if not fusable:
                # The epilogue reads the reduction at another element: materialize it. (This
                # must run after the fused state above is reset, or the retry sees it too.)
                self.add_stage(reducer, "temp")
                self.add_stage(node, role)
                return
        name = self.new_buffer(node, role)
        self.stages.append(Stage(name, node.dtype, axes, body, reduce_axes, reduce_op, epilogue))

    def run(self) -> ComputeProgram:
        outputs = {id(o) for o in self.graph.outputs}
        # an update is read at shifted indices by the next step of a stencil: inlined, each
        # step would multiply the expression by its reads, so every update gets a buffer
        roots = {id(n) for n in self.nodes if is_reduction(n) or n.op is GraphOp.UPDATE} | outputs
        roots |= _deep_nodes(self.nodes, roots)
        fusion: dict[int, Array] = {}
        fused: set[int] = set()
        for node in self.nodes:
            if id(node) in roots and not is_reduction(node) and node.op is not GraphOp.INPUT:
                candidate = _fusion_candidate(node, roots, self.uses)
                if candidate is not None and id(candidate) not in fused:
                    fusion[id(node)] = candidate
                    fused.add(id(candidate))
        if self.allow_in_place:
            self.in_place = in_place_updates(self.graph, self.nodes, roots - fused, fusion)
        for node in self.nodes:
            if id(node) not in roots or id(node) in fused:
                continue
            if node.op is GraphOp.INPUT:
                self._copy_input(node)
            else:
                self.add_stage(
                    node, "output" if id(node) in outputs else "temp", fusion.get(id(node))
                )
        names = tuple(self.copies.get(id(o)) or self.buffer_of[id(o)] for o in self.graph.outputs)
        return ComputeProgram(tuple(self.buffers), tuple(self.stages), names)

    def _store_in_place(self, node: Array) -> bool:
        """Append the stage of ``node`` as a store into the buffer of its old value, which
        nothing reads afterwards (``in_place_updates``): an update's region, or all of an
        argument's new value. False, adding nothing, where the stored value reads the old
        value at another element than the one it replaces (``a[1:] = a[:-1]``: NumPy reads
        all of it before storing any)."""
        base = self.in_place[id(node)]
        if node.op is GraphOp.UPDATE:
            value, region = node.src[1], node.arg
        else:
            value, region = node, tuple((0, 1) for _ in node.shape)
        old = self.buffer_of[id(base)]
        decl = self.decls[old]
        if any(count == 0 for count in value.shape) or any(
            stride == 0 and extent > 1 for stride, extent in zip(decl.strides, decl.shape)
        ):
            return False  # nothing to store, or elements that share memory
        axes = tuple(Axis(f"i{k}", count) for k, count in enumerate(value.shape))
        # an axis of one element has index 0: the value's reads of it fold to constants
        at = tuple(iconst(0) if a.extent == 1 else var(a.name) for a in axes)
        stored = tuple(index_add(start, index_mul(k, step)) for (start, step), k in zip(region, at))
        body = self.inline(value, at) if value is not node else self._inline(node, at)
        if any(read.src != stored for read in loads(body) if read.arg == old):
            return False
        memory = decl.view_of or decl.name
        offset = decl.offset + sum(
            start * stride for (start, _), stride in zip(region, decl.strides)
        )
        strides = tuple(stride * step for (_, step), stride in zip(region, decl.strides))
        target = self._view(value, memory, offset, strides)
        body = _replace_loads(body, old, stored, load(target, at, node.dtype))
        self.stages.append(Stage(target, node.dtype, axes, cast(body, node.dtype)))
        # later readers of the new value read all of the buffer, as it now is
        self.buffer_of[id(node)] = (
            target if value is node else self._view(node, memory, decl.offset, decl.strides)
        )
        return True

    def _view(self, node: Array, memory: str, offset: int, strides: tuple[int, ...]) -> str:
        """A new view of ``memory`` with ``node``'s shape and dtype; returns its name."""
        name = f"v{self.roles['view']}"
        return self._add(BufferDecl(name, node.shape, node.dtype, strides, "view", memory, offset))

    def _copy_input(self, node: Array) -> None:
        """An input returned as an output is copied: outputs are always fresh arrays."""
        source = self.buffer_of[id(node)]
        axes = tuple(Axis(f"i{k}", extent) for k, extent in enumerate(node.shape))
        body = load(source, tuple(var(a.name) for a in axes), node.dtype)
        # the input stays readable as itself; the copy is only the returned output
        name = self.copies[id(node)] = self.declare(node, "output")
        self.stages.append(Stage(name, node.dtype, axes, body))


def _replace_loads(expr: Expr, buffer: str, at: tuple[Expr, ...], by: Expr) -> Expr:
    """``expr`` with its loads of ``buffer[at]`` replaced by ``by``."""

    def rewrite(node: Expr) -> Expr | None:
        if node.op is ExprOp.LOAD and node.arg == buffer and node.src == at:
            return by
        return None

    return transform(expr, rewrite)


def lower(
    graph: Graph,
    input_strides: Sequence[tuple[int, ...]],
    *,
    store_summands: bool = True,
    in_place: bool = False,
) -> ComputeProgram:
    """Compute IR for ``graph`` whose inputs have these element strides.

    ``store_summands``: store a reduction's costly summand for the later stage that needs it
    (``reuse.share_summands``), which pays where transcendentals are dear next to memory
    traffic (CPUs). GPUs have the opposite balance: recomputing ``exp`` beats a round trip of
    the row through memory (an H200 softmax ran at 0.76x of copy bandwidth with the summand
    stored), so their pipeline passes False.

    ``in_place``: an assignment to part of an array whose old value is dead stores into the
    old value's buffer (``in_place.py``); the CPU's code generation supports views, the GPU
    sources do not yet.
    """
    program = merge_duplicates(_Lowering(graph, input_strides, in_place).run())
    return share_summands(program) if store_summands else program
