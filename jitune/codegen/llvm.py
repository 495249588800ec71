"""codegen (CPU): loop IR -> LLVM IR text.

The module holds, per kernel, a body function whose buffer pointers are ``noalias`` and a
wrapper ``void kN(ptr bufs, i64 start, i64 end)`` that the runtime calls (``start``/``end``
bound the kernel's PARALLEL loop, so threads can split it). ``jitune_entry(ptr arrays...)``
reads each NumPy array's data pointer and runs the kernels in order; parallel kernels go
through ``jitune_parallel_for``, which the runtime provides.

A program that can meet a value NumPy refuses at run time (an integer raised to a negative
integer power, an out-of-bounds element of an index array) returns a status: ``jitune_entry`` then returns ``i32`` (0, or a ``STATUS_*``
code), the module defines the marker ``@jitune_returns_status``, and the kernels find a pointer
to the status word in the slot after the buffers' in ``bufs`` (the threads of one call share
it; concurrent calls each have their own, on the entry's stack).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..ir.compute import BufferDecl
from ..ir.expr import (
    Expr,
    ExprOp,
    argument_text,
    coefficient,
    digest,
    free_vars,
    has_index_check,
    iconst,
    linear_index,
    loads,
    substitute,
)
from ..ir.loops import Alloc, Block, For, If, Kernel, LoopKind, LoopProgram, Stmt, Store
from ..ir.ops import BinaryOp, UnaryOp
from . import llvm_ops as ops
from .llvm_ops import Val
from .llvm_types import literal, memory_type, register_type, vector_type

PARALLEL_FOR = "jitune_parallel_for"
ENTRY = "jitune_entry"
STATUS_MARKER = "jitune_returns_status"
STATUS_NEGATIVE_POWER = 1  # an integer raised to a negative integer power
STATUS_INDEX_OUT_OF_BOUNDS = 2  # an element of an index array outside its axis
# Up to this many buffers the entry takes one argument per array; a program with more (an
# unrolled loop of hundreds of updates) takes one pointer to an array of them, as a C call
# cannot pass thousands of arguments (ctypes stops at 1024).
MAX_DIRECT_BUFFERS = 255


def packed_entry(buffer_count: int) -> bool:
    """Whether the entry of a program with ``buffer_count`` buffers takes them packed."""
    return buffer_count > MAX_DIRECT_BUFFERS


def _special_power(expr: Expr) -> bool:
    """``x ** c`` that is computed without ``pow``: c in 2, 3, 4 (any dtype), 0.5 or -1."""
    exponent = expr.src[1]
    if exponent.op is not ExprOp.CONST:
        return False
    return exponent.arg in (2, 3, 4) or (expr.dtype.kind == "f" and exponent.arg in (0.5, -1))


def _kind(dtype: np.dtype) -> str:
    return {"b": "b", "i": "i", "u": "i", "f": "f"}[np.dtype(dtype).kind]


def _written(stmt: Stmt) -> Iterator[str]:
    if isinstance(stmt, Store):
        yield stmt.buffer
    elif isinstance(stmt, Block):
        for s in stmt.stmts:
            yield from _written(s)
    elif isinstance(stmt, For):
        yield from _written(stmt.body)
    elif isinstance(stmt, If):
        yield from _written(stmt.then)
        if stmt.orelse is not None:
            yield from _written(stmt.orelse)


def _nest_key(stmt: Stmt, params: list[BufferDecl]) -> tuple[object, ...]:
    """What a kernel body's code depends on: its loop nest with the buffers named by their
    position among ``params``, and their layouts. Kernels with one key render to one body
    (a stencil's time steps), so a repeat need not be rendered at all."""
    position = {d.name: str(k) for k, d in enumerate(params)}
    memo: dict[int, bytes] = {}

    def text(node: Expr) -> str:
        if node.op is ExprOp.LOAD:
            return position.get(node.arg, node.arg)
        return argument_text(node)

    def key(s: Stmt) -> tuple[object, ...]:
        if isinstance(s, Store):
            indices = tuple(digest(i, text, memo) for i in s.indices)
            return ("store", position.get(s.buffer, s.buffer), indices, digest(s.value, text, memo))
        if isinstance(s, For):
            bounds = (digest(s.start, text, memo), digest(s.stop, text, memo))
            return ("for", s.var, s.kind, s.axis, bounds, key(s.body))
        if isinstance(s, If):
            orelse = None if s.orelse is None else key(s.orelse)
            return ("if", digest(s.cond, text, memo), key(s.then), orelse)
        if isinstance(s, Block):
            return ("block", *(key(child) for child in s.stmts))
        return ("other", s)  # Alloc, Barrier, BlockReduce: scratch buffers keep their names

    layouts = tuple((d.shape, d.strides, d.dtype.str, d.role) for d in params)
    return key(stmt), layouts, _shared_memory(params)


def _shared_memory(params: list[BufferDecl]) -> frozenset[str]:
    """The params that share memory with another param (an updated array and a view of it):
    they are not ``noalias``, so LLVM keeps their loads and stores in program order."""
    memory = [d.view_of or d.name for d in params]
    return frozenset(d.name for d, m in zip(params, memory) if memory.count(m) > 1)


def _used_buffers(stmt: Stmt, names: set[str]) -> set[str]:
    used: set[str] = set()

    def visit_expr(expr: Expr) -> None:
        used.update(node.arg for node in loads(expr) if node.arg in names)

    def visit(s: Stmt) -> None:
        if isinstance(s, Store):
            if s.buffer in names:
                used.add(s.buffer)
            visit_expr(s.value)
            for i in s.indices:
                visit_expr(i)
        elif isinstance(s, Block):
            for child in s.stmts:
                visit(child)
        elif isinstance(s, For):
            visit_expr(s.start)
            visit_expr(s.stop)
            visit(s.body)
        elif isinstance(s, If):
            visit_expr(s.cond)
            visit(s.then)
            if s.orelse is not None:
                visit(s.orelse)

    visit(stmt)
    return used


class _Function:
    """Emits one kernel body function."""

    def __init__(self, module: _Module, kernel: Kernel, params: list[BufferDecl]) -> None:
        self.module = module
        self.kernel = kernel
        self.buffers = {d.name: d for d in params}
        # by position, not name: stages alike but for their buffers render alike (see
        # _Module.kernel, which then emits the body once)
        self.pointers = {d.name: f"%b{k}" for k, d in enumerate(params)}
        self.shared = _shared_memory(params)
        self.lines: list[str] = []
        self.allocas: list[str] = []
        self.counter = 0
        self.block = "entry"
        self.env: dict[str, Val] = {}
        self.memo: list[dict[Expr, Val]] = [{}]
        self.locals: dict[str, tuple[str, np.dtype]] = {}
        self.vector: tuple[str, int] | None = None
        self.written = set(_written(kernel.body))
        self._cacheable: dict[Expr, bool] = {}
        self._checks: dict[Expr, bool] = {}  # index expression -> whether it checks bounds
        self.uses_status = False  # set once code that may report a status is emitted

    # -- Emitter protocol ----------------------------------------------------------------------
    def tmp(self) -> str:
        self.counter += 1
        return f"%v{self.counter}"

    def line(self, text: str) -> None:
        self.lines.append("  " + text)

    def declare(self, text: str) -> None:
        self.module.declarations.add(text)

    def has(self, feature: str) -> bool:
        return feature in self.module.features

    def label(self, hint: str) -> str:
        self.counter += 1
        return f"{hint}{self.counter}"

    def start_block(self, name: str) -> None:
        self.lines.append(f"{name}:")
        self.block = name

    # -- expressions ---------------------------------------------------------------------------
    def cacheable(self, expr: Expr) -> bool:
        """Whether ``expr``'s value can be reused: it reads no buffer this kernel writes."""
        found = self._cacheable.get(expr)
        if found is None:
            found = all(
                node.arg not in self.written and node.arg not in self.locals for node in loads(expr)
            )
            self._cacheable[expr] = found
        return found

    def expr(self, expr: Expr) -> Val:
        for scope in reversed(self.memo):
            found = scope.get(expr)
            if found is not None:
                return found
        value = self._expr(expr)
        if self.cacheable(expr):
            self.memo[-1][expr] = value
        return value

    def _expr(self, expr: Expr) -> Val:
        op = expr.op
        if op is ExprOp.VAR:
            return self.env[expr.arg]
        if op is ExprOp.CONST:
            return Val(literal(expr.arg, expr.dtype), register_type(expr.dtype))
        if op is ExprOp.LOAD:
            return self.load(expr)
        if op is ExprOp.BINARY and expr.arg is BinaryOp.POW and _special_power(expr):
            return self.power(self.expr(expr.src[0]), expr.src[1].arg)
        args = [self.expr(child) for child in expr.src]
        if op is ExprOp.BINARY and expr.arg is BinaryOp.POW and expr.dtype.kind in "iu":
            self.check_exponent(args[1])
        if op is ExprOp.BINARY and expr.arg is BinaryOp.CHECK_INDEX:
            return self.check_index(args[0], args[1])
        if op is ExprOp.UNARY:
            return ops.unary(self, expr.arg, args[0])
        if op is ExprOp.BINARY:
            return ops.binary(self, expr.arg, args[0], args[1])
        if op is ExprOp.SELECT:
            return ops.select(self, args[0], args[1], args[2])
        if op is ExprOp.CAST:
            source = expr.src[0].dtype
            return ops.cast(
                self, args[0], _kind(source), _kind(expr.dtype), register_type(expr.dtype)
            )
        raise NotImplementedError(op)

    def check_exponent(self, exponent: Val) -> None:
        """Report STATUS_NEGATIVE_POWER if any lane of an integer exponent is negative.

        NumPy raises for integers to negative integer powers; the power itself then returns
        0, and the call raises once the kernels are done.
        """
        zero = "zeroinitializer" if exponent.lanes > 1 else "0"
        negative = ops.instr(
            self, f"icmp slt {exponent.type} {exponent.ref}, {zero}", "i1", exponent.lanes
        )
        self.report(negative, STATUS_NEGATIVE_POWER)

    def check_index(self, index: Val, extent: Val) -> Val:
        """``BinaryOp.CHECK_INDEX``: ``index`` (+ ``extent`` where negative), reporting
        STATUS_INDEX_OUT_OF_BOUNDS for a lane outside ``[-extent, extent)``, whose result is
        then 0: the load it addresses stays inside the buffer."""
        lanes = index.lanes
        extent = ops.splat(self, extent, lanes)
        zero = "zeroinitializer" if lanes > 1 else "0"
        negative = ops.instr(self, f"icmp slt {index.type} {index.ref}, {zero}", "i1", lanes)
        shifted = ops.instr(self, f"add {index.type} {index.ref}, {extent.ref}", "i64", lanes)
        wrapped = ops.select(self, negative, shifted, index)
        # unsigned: a value still negative is as far out as one past the end
        outside = ops.instr(self, f"icmp uge {index.type} {wrapped.ref}, {extent.ref}", "i1", lanes)
        self.report(outside, STATUS_INDEX_OUT_OF_BOUNDS)
        return ops.select(self, outside, Val(zero, "i64", lanes), wrapped)

    def report(self, failed: Val, code: int) -> None:
        """Store status ``code`` if any lane of the i1 ``failed`` is set. The branch is taken
        at most once per failing call, so the predicted path costs a compare (and a vector
        or-reduce)."""
        self.uses_status = True
        if failed.lanes > 1:
            lanes = failed.lanes
            failed = ops.instr(
                self,
                f"call i1 @llvm.vector.reduce.or.v{lanes}i1({failed.type} {failed.ref})",
                "i1",
                1,
            )
            self.declare(f"declare i1 @llvm.vector.reduce.or.v{lanes}i1(<{lanes} x i1>)")
        fail, go_on = self.label("fail"), self.label("ok")
        self.line(f"br i1 {failed.ref}, label %{fail}, label %{go_on}, !prof !0")
        self.start_block(fail)
        # monotonic: other threads of the call may store the same word at the same time
        self.line(f"store atomic i32 {code}, ptr %status monotonic, align 4")
        self.line(f"br label %{go_on}")
        self.start_block(go_on)

    def power(self, base: Val, exponent: float) -> Val:
        """``base ** exponent`` for the exponents of :func:`_special_power`.

        Products are exact for integers and within an ulp for floats.
        """
        if exponent == -1:
            return ops.unary(self, UnaryOp.RECIPROCAL, base)
        if exponent == 0.5:  # NumPy computes x ** 0.5 as sqrt too (so (-inf) ** 0.5 is nan)
            return ops.call_intrinsic(self, "sqrt", [base])
        result = base
        for _ in range(int(exponent) - 1):
            result = ops.binary(self, BinaryOp.MUL, result, base)
        return result

    def address(self, buffer: str, indices: tuple[Expr, ...]) -> tuple[str, np.dtype, Expr]:
        """Base pointer, dtype and flat element index of ``buffer[indices]``."""
        if buffer in self.locals:
            pointer, dtype = self.locals[buffer]
            return pointer, dtype, indices[0]
        decl = self.buffers[buffer]
        for index, stride in zip(indices, decl.strides):
            if stride == 0 and self.checks_index(index):
                self.expr(index)  # a broadcast axis ignores the index, but not its check
        return self.pointers[buffer], decl.dtype, linear_index(indices, decl.strides)

    def checks_index(self, index: Expr) -> bool:
        found = self._checks.get(index)
        if found is None:
            found = self._checks[index] = index.op is not ExprOp.VAR and has_index_check(index)
        return found

    def element_pointers(self, pointer: str, dtype: np.dtype, flat: Expr) -> tuple[str, int]:
        """Pointer to the first element and the lane count of a contiguous access, or
        (vector of pointers, -lanes) for a gather/scatter."""
        mem = memory_type(dtype)
        if self.vector is not None and self.vector[0] in free_vars(flat):
            name, lanes = self.vector
            if coefficient(flat, name) == 1:
                base = self.expr(substitute(flat, {name: iconst(0)}))
                ptr = self.tmp()
                self.line(f"{ptr} = getelementptr inbounds {mem}, ptr {pointer}, i64 {base.ref}")
                return ptr, lanes
            index = self.expr(flat)
            if index.lanes > 1:
                ptrs = self.tmp()
                self.line(
                    f"{ptrs} = getelementptr inbounds {mem}, ptr {pointer}, {index.type} "
                    f"{index.ref}"
                )
                return ptrs, -lanes
            # the lane variable only reaches the index through a load that does not move
            # with it (an index array with stride 0): every lane reads one element
            ptr = self.tmp()
            self.line(f"{ptr} = getelementptr inbounds {mem}, ptr {pointer}, i64 {index.ref}")
            return ptr, 1
        index = self.expr(flat)
        ptr = self.tmp()
        self.line(f"{ptr} = getelementptr inbounds {mem}, ptr {pointer}, i64 {index.ref}")
        return ptr, 1

    def load(self, expr: Expr) -> Val:
        pointer, dtype, flat = self.address(expr.arg, expr.src)
        mem, reg = memory_type(dtype), register_type(dtype)
        ptr, lanes = self.element_pointers(pointer, dtype, flat)
        align = np.dtype(dtype).itemsize
        if lanes >= 1:
            ty = vector_type(mem, lanes)
            value = ops.instr(self, f"load {ty}, ptr {ptr}, align {align}", mem, lanes)
        else:
            lanes = -lanes
            value = Val("poison", mem, lanes)
            for lane in range(lanes):
                p = ops.instr(self, f"extractelement <{lanes} x ptr> {ptr}, i64 {lane}", "ptr", 1)
                x = ops.instr(self, f"load {mem}, ptr {p.ref}, align {align}", mem, 1)
                value = ops.instr(
                    self,
                    f"insertelement {value.type} {value.ref}, {mem} {x.ref}, i64 {lane}",
                    mem,
                    lanes,
                )
        if reg != mem:  # bool: one byte in memory, i1 in registers
            value = ops.instr(
                self, f"icmp ne {value.type} {value.ref}, zeroinitializer", "i1", lanes
            )
        return value

    def store(self, stmt: Store) -> None:
        pointer, dtype, flat = self.address(stmt.buffer, stmt.indices)
        mem, reg = memory_type(dtype), register_type(dtype)
        value = self.expr(stmt.value)
        ptr, lanes = self.element_pointers(pointer, dtype, flat)
        align = np.dtype(dtype).itemsize
        value = ops.splat(self, value, abs(lanes))
        if reg != mem:
            value = ops.instr(
                self,
                f"zext {value.type} {value.ref} to {vector_type(mem, value.lanes)}",
                mem,
                value.lanes,
            )
        if lanes >= 1:
            self.line(f"store {value.type} {value.ref}, ptr {ptr}, align {align}")
            return
        for lane in range(-lanes):
            p = ops.instr(self, f"extractelement <{-lanes} x ptr> {ptr}, i64 {lane}", "ptr", 1)
            x = ops.instr(self, f"extractelement {value.type} {value.ref}, i64 {lane}", mem, 1)
            self.line(f"store {mem} {x.ref}, ptr {p.ref}, align {align}")

    # -- statements ----------------------------------------------------------------------------
    def stmt(self, stmt: Stmt) -> None:
        if isinstance(stmt, Block):
            for child in stmt.stmts:
                self.stmt(child)
        elif isinstance(stmt, Store):
            self.store(stmt)
        elif isinstance(stmt, For):
            self.loop(stmt)
        elif isinstance(stmt, If):
            self.branch(stmt)
        elif isinstance(stmt, Alloc):
            self.alloc(stmt)
        else:
            raise TypeError(stmt)

    def alloc(self, stmt: Alloc) -> None:
        ref = f"%a_{stmt.buffer}_{self.label('')}"
        self.allocas.append(
            f"  {ref} = alloca {memory_type(stmt.dtype)}, i64 {stmt.size}, align 64"
        )
        self.locals[stmt.buffer] = (ref, stmt.dtype)

    def scoped(self, body: Stmt) -> None:
        self.memo.append({})
        try:
            self.stmt(body)
        finally:
            self.memo.pop()

    def loop(self, stmt: For) -> None:
        if stmt.kind is LoopKind.UNROLLED:
            if self.transposed_copy(stmt):
                return
            for value in range(stmt.start.arg, stmt.stop.arg):
                self.env[stmt.var] = Val(str(value), "i64")
                self.scoped(stmt.body)
            return
        if stmt.kind is LoopKind.VECTORIZED:
            lanes = stmt.stop.arg - stmt.start.arg
            if lanes == 1:
                self.env[stmt.var] = Val(str(stmt.start.arg), "i64")
                self.scoped(stmt.body)
                return
            outer = self.vector
            ramp = ", ".join(f"i64 {stmt.start.arg + k}" for k in range(lanes))
            self.env[stmt.var] = Val(f"<{ramp}>", "i64", lanes)
            self.vector = (stmt.var, lanes)
            self.scoped(stmt.body)
            self.vector = outer
            return
        if stmt.kind is LoopKind.PARALLEL:
            start, stop = Val("%start", "i64"), Val("%end", "i64")
        else:
            start, stop = self.expr(stmt.start), self.expr(stmt.stop)
        before = self.block
        header, body, done = self.label("loop"), self.label("body"), self.label("done")
        self.line(f"br label %{header}")
        self.start_block(header)
        index, following = self.tmp(), self.tmp()
        phi_at = len(self.lines)
        self.line("")  # the phi, filled in once the latch block is known
        cond = self.tmp()
        self.line(f"{cond} = icmp slt i64 {index}, {stop.ref}")
        self.line(f"br i1 {cond}, label %{body}, label %{done}")
        self.start_block(body)
        self.env[stmt.var] = Val(index, "i64")
        self.scoped(stmt.body)
        self.line(f"{following} = add nuw nsw i64 {index}, 1")
        self.line(f"br label %{header}")
        self.lines[phi_at] = (
            f"  {index} = phi i64 [ {start.ref}, %{before} ], [ {following}, %{self.block} ]"
        )
        self.start_block(done)

    def transposed_copy(self, stmt: For) -> bool:
        """Emit ``stmt`` as a register transpose if it is one; False (nothing emitted) if not.

        The pattern: an UNROLLED loop over ``a`` around (trivial unrolled loops and) a
        VECTORIZED loop over ``b``, both of the same power-of-two extent from 0, whose body
        copies ``src[..a..b..]`` to ``dst[..a..b..]`` where the source is contiguous along
        ``a`` and the destination along ``b`` (packing a transposed operand). Lane by lane
        that is a gather of ``n`` scalars per vector; here it is ``n`` vector loads along
        ``a``, a transpose in registers and ``n`` vector stores along ``b``.
        """
        lanes = stmt.stop.arg - stmt.start.arg
        if stmt.start.arg != 0 or lanes < 4 or lanes & (lanes - 1):
            return False
        fixed: dict[str, Expr] = {}
        inner = stmt.body
        while isinstance(inner, For) and inner.kind is LoopKind.UNROLLED:
            if inner.stop != iconst(inner.start.arg + 1):
                return False
            fixed[inner.var] = inner.start
            inner = inner.body
        if not (
            isinstance(inner, For)
            and inner.kind is LoopKind.VECTORIZED
            and inner.start == iconst(0)
            and inner.stop == iconst(lanes)
            and isinstance(inner.body, Store)
            and inner.body.value.op is ExprOp.LOAD
        ):
            return False
        a, b = stmt.var, inner.var
        source = substitute(inner.body.value, fixed)
        target = tuple(substitute(i, fixed) for i in inner.body.indices)
        if source.arg in self.locals or inner.body.buffer in self.locals:
            return False
        _, src_dtype, src_flat = self.address(source.arg, source.src)
        dst_ptr, dst_dtype, dst_flat = self.address(inner.body.buffer, target)
        if (
            src_dtype != dst_dtype
            or memory_type(src_dtype) != register_type(src_dtype)  # bool: i8 in memory
            or coefficient(src_flat, a) != 1
            or coefficient(src_flat, b) == 1
            or coefficient(dst_flat, b) != 1
        ):
            return False
        ramp = Val("<" + ", ".join(f"i64 {k}" for k in range(lanes)) + ">", "i64", lanes)
        outer = self.vector
        rows = []
        for k in range(lanes):  # row k: src[a = 0..n, b = k]
            self.memo.append({})
            self.env[a], self.env[b], self.vector = ramp, Val(str(k), "i64"), (a, lanes)
            rows.append(self.load(source))
            self.memo.pop()
        columns = ops.transpose(self, rows)
        align = np.dtype(dst_dtype).itemsize
        for k in range(lanes):  # dst[a = k, b = 0..n] = lane k of every row
            self.memo.append({})
            self.env[a], self.env[b], self.vector = Val(str(k), "i64"), ramp, (b, lanes)
            pointer, count = self.element_pointers(dst_ptr, dst_dtype, dst_flat)
            assert count == lanes
            value = columns[k]
            self.line(f"store {value.type} {value.ref}, ptr {pointer}, align {align}")
            self.memo.pop()
        self.vector = outer
        return True

    def branch(self, stmt: If) -> None:
        cond = self.expr(stmt.cond)
        then, orelse, merge = self.label("then"), self.label("else"), self.label("merge")
        self.line(f"br i1 {cond.ref}, label %{then}, label %{orelse if stmt.orelse else merge}")
        self.start_block(then)
        self.scoped(stmt.then)
        self.line(f"br label %{merge}")
        if stmt.orelse is not None:
            self.start_block(orelse)
            self.scoped(stmt.orelse)
            self.line(f"br label %{merge}")
        self.start_block(merge)

    def render(self) -> str:
        name = self.kernel.name
        params = ", ".join(
            f"ptr {'' if n in self.shared else 'noalias '}{self.pointers[n]}" for n in self.buffers
        )
        params = (params + ", " if params else "") + "i64 %start, i64 %end"
        self.stmt(self.kernel.body)
        if self.uses_status:
            params += ", ptr %status"
        # noinline: a body that several kernels share (time steps) stays one function; inlined
        # into each caller, LLVM optimized and emitted it once per time step again
        head = f"define internal void @{name}_body({params}) noinline nounwind {{\nentry:"
        return "\n".join([head, *self.allocas, *self.lines, "  ret void", "}"])


class _Module:
    def __init__(self, program: LoopProgram, data_offset: int, features: frozenset[str]) -> None:
        self.program = program
        self.data_offset = data_offset
        self.features = features
        self.declarations: set[str] = set()
        self.uses_status = False  # some kernel may report a status (see the module docstring)
        self.bodies: dict[str, str] = {}  # body text (its name left out) -> kernel emitting it
        # _nest_key -> (kernel emitting the body, whether it reports a status)
        self.nests: dict[tuple[object, ...], tuple[str, bool]] = {}

    def kernel(self, position: int, kernel: Kernel) -> str:
        names = {d.name for d in self.program.buffers}
        used = _used_buffers(kernel.body, names)
        params = [d for d in self.program.buffers if d.name in used]
        # a stencil's time steps are the same loop nest on other buffers: one body serves
        nest = _nest_key(kernel.body, params)
        if nest in self.nests:
            (body_name, uses_status), body = self.nests[nest], ""
        else:
            function = _Function(self, kernel, params)
            body, uses_status = function.render(), function.uses_status
            canonical = body.replace(f"@{kernel.name}_body(", "@body(", 1)
            body_name = self.bodies.setdefault(canonical, kernel.name)
            if body_name != kernel.name:
                body = ""
            self.nests[nest] = (body_name, uses_status)
        real = self.real_buffers()
        index = {d.name: k for k, d in enumerate(real)}
        lines = [f"define void @{kernel.name}(ptr %bufs, i64 %start, i64 %end) nounwind {{"]
        args = []
        for decl in params:
            memory = decl.view_of or decl.name
            slot = f"%s_{decl.name}"
            lines.append(f"  {slot} = getelementptr ptr, ptr %bufs, i64 {index[memory]}")
            lines.append(f"  %p_{decl.name} = load ptr, ptr {slot}")
            pointer = f"%p_{decl.name}"
            if decl.view_of is not None and decl.offset:  # a view starts inside its buffer
                pointer = f"%v_{decl.name}"
                mem = memory_type(decl.dtype)
                lines.append(
                    f"  {pointer} = getelementptr {mem}, ptr %p_{decl.name}, i64 {decl.offset}"
                )
            args.append(f"ptr {pointer}")
        args += ["i64 %start", "i64 %end"]
        if uses_status:
            self.uses_status = True
            slot = len(real)
            lines.append(f"  %s_status = getelementptr ptr, ptr %bufs, i64 {slot}")
            lines.append("  %p_status = load ptr, ptr %s_status")
            args.append("ptr %p_status")
        lines.append(f"  call void @{body_name}_body({', '.join(args)})")
        lines += ["  ret void", "}"]
        return (body + "\n" if body else "") + "\n".join(lines)

    def real_buffers(self) -> list[BufferDecl]:
        """The buffers the entry function takes (a view points into one of them)."""
        return [d for d in self.program.buffers if d.view_of is None]

    def entry(self) -> str:
        buffers = self.real_buffers()
        packed = packed_entry(len(buffers))
        params = "ptr %objs" if packed else ", ".join(f"ptr %o{k}" for k in range(len(buffers)))
        slots = len(buffers) + (1 if self.uses_status else 0)
        lines = [
            f"define {'i32' if self.uses_status else 'void'} @{ENTRY}({params}) nounwind {{",
            f"  %bufs = alloca ptr, i64 {max(slots, 1)}",
        ]
        if packed:  # %objs points to the arrays' objects, one after another
            for k in range(len(buffers)):
                lines.append(f"  %a{k} = getelementptr ptr, ptr %objs, i64 {k}")
                lines.append(f"  %o{k} = load ptr, ptr %a{k}")
        if self.uses_status:
            lines.append("  %status = alloca i32, align 4")
            lines.append("  store i32 0, ptr %status")
            lines.append(f"  %s_status = getelementptr ptr, ptr %bufs, i64 {len(buffers)}")
            lines.append("  store ptr %status, ptr %s_status")
        for k in range(len(buffers)):
            lines.append(f"  %f{k} = getelementptr i8, ptr %o{k}, i64 {self.data_offset}")
            lines.append(f"  %d{k} = load ptr, ptr %f{k}")
            lines.append(f"  %s{k} = getelementptr ptr, ptr %bufs, i64 {k}")
            lines.append(f"  store ptr %d{k}, ptr %s{k}")
        for kernel in self.program.kernels:
            extent = _parallel_stop(kernel)
            if kernel.parallel:
                lines.append(
                    f"  call void @{PARALLEL_FOR}(ptr @{kernel.name}, ptr %bufs, i64 {extent})"
                )
            else:
                lines.append(f"  call void @{kernel.name}(ptr %bufs, i64 0, i64 {extent})")
        if self.uses_status:
            lines.append("  %code = load atomic i32, ptr %status monotonic, align 4")
            lines += ["  ret i32 %code", "}"]
            lines.append(f"@{STATUS_MARKER} = constant i32 1")
        else:
            lines += ["  ret void", "}"]
        return "\n".join(lines)

    def render(self) -> str:
        parts = [self.kernel(k, kernel) for k, kernel in enumerate(self.program.kernels)]
        parts.append(self.entry())
        if any(kernel.parallel for kernel in self.program.kernels):
            self.declarations.add(f"declare void @{PARALLEL_FOR}(ptr, ptr, i64)")
        declarations = sorted(d for d in self.declarations if "@jitune_ipow_" not in d)
        if len(declarations) != len(self.declarations):
            parts.append(ops.ipow_helpers())
        if self.uses_status:  # branch weights: a negative exponent is the unlikely case
            parts.append('!0 = !{!"branch_weights", i32 1, i32 1048575}')
        return "\n\n".join(declarations + parts) + "\n"


def _parallel_stop(kernel: Kernel) -> int:
    body = kernel.body
    if isinstance(body, For) and body.kind is LoopKind.PARALLEL:
        return int(body.stop.arg)
    return 0


def render(program: LoopProgram, data_offset: int, features: frozenset[str] = frozenset()) -> str:
    """LLVM IR text of ``program``; ``data_offset`` is where an ndarray keeps its data pointer.

    ``features`` are the target CPU's (``"avx512f"``, ...): code may use instructions that
    need them; without any it is portable LLVM IR.
    """
    return _Module(program, data_offset, features).render()
