"""codegen (GPUs): loop IR -> C-like kernel source, shared by CUDA and OpenCL.

A :class:`Dialect` holds what differs between the two as small tables (qualifiers, thread and
block indices, barriers, type and math function names, vector types); :func:`render` walks the
loop IR once for any dialect. Values follow NumPy's semantics, as the LLVM code generator's do:
floor division and remainder by zero give 0 for integers, maximum and minimum propagate NaN.

Mapping of loop IR to C:

- ``GPU_BLOCK`` / ``GPU_THREAD`` loops bind their variable to ``start`` plus the block (thread)
  index along their axis; indices at or past ``stop`` skip the body (no guard is emitted when
  the launch has exactly ``stop - start`` of them).
- ``VECTORIZED`` loops of 2 or 4 lanes are emitted lane by lane, except that loads and stores
  of global or shared memory that are contiguous in the lane variable become one vector access
  (``float4``...). A template only makes such a loop where that access is aligned.
- ``Alloc`` with scope "shared" is declared once at the top of the kernel (aligned to 16
  bytes); "local" allocs are arrays in registers (after unrolling) or stack.
- ``BlockReduce`` becomes warp shuffles plus a combine of the warps' results through shared
  memory (or a shared-memory tree in dialects without shuffles).

The first line of the source is a ``// jitune-launch: {json}`` comment with each kernel's name,
grid and block dimensions and the buffers it needs aligned to 16 bytes, which the runtime reads.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping

import numpy as np

from ..ir.compute import BufferDecl
from ..ir.expr import INDEX, Expr, ExprOp, coefficient, iconst, linear_index, loads, substitute, var
from ..ir.loops import (
    Alloc,
    Barrier,
    Block,
    BlockReduce,
    For,
    If,
    Kernel,
    LoopKind,
    LoopProgram,
    Stmt,
    Store,
)
from ..ir.ops import BinaryOp, UnaryOp
from ..schedule.reduce_ops import combine, identity

LAUNCH_TAG = "// jitune-launch: "


@dataclasses.dataclass(frozen=True)
class Dialect:
    """What one C-like GPU language calls things."""

    name: str
    kernel: str  # qualifiers before ``void name(...)``; ``{threads}`` is the block size
    function: str  # qualifiers of helper functions
    global_ptr: str  # parameter for a buffer: {type}, {const}, {restrict}, {name}
    restrict: str  # the no-alias qualifier with a trailing space ("__restrict__ ")
    shared: str  # qualifier of block-shared arrays
    barrier: str
    block_index: Mapping[str, str]  # axis -> expression
    thread_index: Mapping[str, str]
    types: Mapping[str, str]  # "b" "i4" "i8" "f4" "f8" -> register type; "mem_b" -> bool in memory
    math: Callable[[str, str], str]  # (function, "f4"|"f8") -> name
    vector: Callable[[str, int], str]  # (code, lanes) -> vector type name
    make_vector: Callable[[str, list[str]], str]  # (vector type, components) -> expression
    literals: Mapping[str, str]  # "inf_f4", "nan_f8", ...
    shuffle_xor: str | None  # format with {value}, {offset}; None: combine through shared memory
    align16: str  # attribute placing a shared array on a 16-byte boundary
    prelude: str = ""
    long_suffix: str = "LL"  # of 64-bit integer literals
    # one vector access of ``lanes`` elements at ``array[index]`` (``index`` a multiple of
    # ``lanes``); OpenCL spells it vload/vstore, which work in every address space
    vector_load: str = "*(const {vt}*)(&{array}[{index}])"
    vector_store: str = "*({vt}*)(&{array}[{index}]) = {value};"


def code(dtype: np.dtype) -> str:
    dtype = np.dtype(dtype)
    return "b" if dtype.kind == "b" else f"{dtype.kind}{dtype.itemsize}".replace("u", "i")


_INFIX = {
    BinaryOp.ADD: "+",
    BinaryOp.SUB: "-",
    BinaryOp.MUL: "*",
    BinaryOp.TRUEDIV: "/",
    BinaryOp.EQ: "==",
    BinaryOp.NE: "!=",
    BinaryOp.LT: "<",
    BinaryOp.LE: "<=",
    BinaryOp.GT: ">",
    BinaryOp.GE: ">=",
    BinaryOp.INDEX_DIV: "/",
    BinaryOp.INDEX_MOD: "%",
}
_BITWISE = {BinaryOp.AND: "&", BinaryOp.OR: "|", BinaryOp.XOR: "^"}
_BOOL_ARITH = {BinaryOp.ADD: "|", BinaryOp.MUL: "&", BinaryOp.MAX: "|", BinaryOp.MIN: "&"}
_MATH = {
    UnaryOp.EXP: "exp",
    UnaryOp.LOG: "log",
    UnaryOp.LOG1P: "log1p",
    UnaryOp.EXPM1: "expm1",
    UnaryOp.SQRT: "sqrt",
    UnaryOp.TANH: "tanh",
    UnaryOp.SIN: "sin",
    UnaryOp.COS: "cos",
    UnaryOp.FLOOR: "floor",
    UnaryOp.CEIL: "ceil",
}
_LANE_NAMES = "xyzw"


def _helpers(d: Dialect) -> dict[str, str]:
    """NumPy-semantics helper functions, by name (only those a kernel uses are emitted)."""
    out: dict[str, str] = {}
    fn = d.function
    for c in ("i4", "i8"):
        t = d.types[c]
        low = "(-2147483647 - 1)" if c == "i4" else f"(-9223372036854775807{d.long_suffix} - 1)"
        out[f"jt_floordiv_{c}"] = (
            f"{fn} {t} jt_floordiv_{c}({t} a, {t} b) {{\n"
            f"  if (b == 0) return 0;\n  if (b == -1) return ({t})(0 - a);\n"
            f"  {t} q = a / b, r = a % b;\n  return (r != 0 && ((r < 0) != (b < 0))) ? q - 1 : q;\n}}"
        )
        out[f"jt_mod_{c}"] = (
            f"{fn} {t} jt_mod_{c}({t} a, {t} b) {{\n"
            f"  if (b == 0 || (b == -1 && a == {low})) return 0;\n  {t} r = a % b;\n"
            f"  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;\n}}"
        )
        out[f"jt_ipow_{c}"] = (
            f"{fn} {t} jt_ipow_{c}({t} b, {t} e) {{\n  if (e < 0) return 0;\n  {t} r = 1;\n"
            f"  while (e > 0) {{ if (e & 1) r *= b; b *= b; e >>= 1; }}\n  return r;\n}}"
        )
    for c in ("f4", "f8"):
        t = d.types[c]
        fmod, copysign, floor = d.math("fmod", c), d.math("copysign", c), d.math("floor", c)
        out[f"jt_mod_{c}"] = (
            f"{fn} {t} jt_mod_{c}({t} a, {t} b) {{\n  {t} m = {fmod}(a, b);\n"
            f"  if (m != 0) {{ if ((b < 0) != (m < 0)) m += b; }} else m = {copysign}(({t})0, b);\n"
            f"  return m;\n}}"
        )
        out[f"jt_floordiv_{c}"] = (
            f"{fn} {t} jt_floordiv_{c}({t} a, {t} b) {{\n"
            f"  if (b == 0) return a / b;\n  {t} m = {fmod}(a, b);\n  {t} div = (a - m) / b;\n"
            f"  if (m != 0 && ((b < 0) != (m < 0))) div -= 1;\n"
            f"  if (div == 0) return {copysign}(({t})0, a / b);\n"
            f"  {t} f = {floor}(div);\n  if (div - f > ({t})0.5) f += 1;\n  return f;\n}}"
        )
        out[f"jt_max_{c}"] = (
            f"{fn} {t} jt_max_{c}({t} a, {t} b) {{ return (a > b || a != a) ? a : b; }}"
        )
        out[f"jt_min_{c}"] = (
            f"{fn} {t} jt_min_{c}({t} a, {t} b) {{ return (a < b || a != a) ? a : b; }}"
        )
        out[f"jt_sign_{c}"] = (
            f"{fn} {t} jt_sign_{c}({t} x) {{ return x > 0 ? ({t})1 : x < 0 ? ({t})-1 : "
            f"x == 0 ? ({t})0 : x; }}"
        )
    return out


def literal(value: object, dtype: np.dtype, d: Dialect) -> str:
    c = code(dtype)
    if c == "b":
        return "true" if value else "false"
    if c in ("f4", "f8"):
        x = float(np.array(value, dtype=dtype))
        if np.isnan(x):
            return d.literals[f"nan_{c}"]
        if np.isinf(x):
            return ("-" if x < 0 else "") + d.literals[f"inf_{c}"]
        text = repr(x)
        if "e" not in text and "." not in text:
            text += ".0"
        return f"{text}f" if c == "f4" else text
    v = int(value)  # type: ignore[call-overload]
    if c == "i8":
        if v == -(1 << 63):
            return f"(-9223372036854775807{d.long_suffix} - 1)"
        return f"{v}{d.long_suffix}" if abs(v) >= (1 << 30) else str(v)
    if v == -(1 << 31):
        return "(-2147483647 - 1)"
    return str(v)


def kernel_params(program: LoopProgram, kernel: Kernel) -> list[BufferDecl]:
    """Every buffer of the program, in order: kernels all take the same arguments."""
    return list(program.buffers)


def _walk(stmt: Stmt):  # noqa: ANN202 - a generator of statements
    yield stmt
    if isinstance(stmt, Block):
        for s in stmt.stmts:
            yield from _walk(s)
    elif isinstance(stmt, For):
        yield from _walk(stmt.body)
    elif isinstance(stmt, If):
        yield from _walk(stmt.then)
        if stmt.orelse is not None:
            yield from _walk(stmt.orelse)


def written(stmt: Stmt) -> set[str]:
    return {s.buffer for s in _walk(stmt) if isinstance(s, Store)}


class _KernelWriter:
    def __init__(self, d: Dialect, program: LoopProgram, kernel: Kernel, helpers: set[str]) -> None:
        self.d = d
        self.program = program
        self.kernel = kernel
        self.helpers = helpers
        self.decls = {b.name: b for b in program.buffers}
        self.locals: dict[str, np.dtype] = {}
        self.shared: dict[str, np.dtype] = {}
        self.lines: list[str] = []
        self.depth = 1
        self.counter = 0
        self.memo: dict[Expr, str] = {}
        self.aligned: set[str] = set()
        self.loaded: set[str] = set()  # buffers the kernel reads (set while emitting)
        self.written = written(kernel.body)
        self.scalars = {b.name for b in program.buffers if b.role == "input" and b.shape == ()}
        big = max([b.size for b in program.buffers] + [1])
        self.index_type = d.types["i4"] if big < (1 << 30) else d.types["i8"]
        for s in _walk(kernel.body):
            if isinstance(s, Alloc):
                (self.shared if s.scope == "shared" else self.locals)[s.buffer] = np.dtype(s.dtype)

    # -- text --------------------------------------------------------------------------------
    def line(self, text: str) -> None:
        self.lines.append("  " * self.depth + text)

    def tmp(self) -> str:
        self.counter += 1
        return f"_v{self.counter}"

    def type_of(self, dtype: np.dtype) -> str:
        return self.d.types[code(dtype)]

    def mem_type(self, dtype: np.dtype) -> str:
        c = code(dtype)
        return self.d.types["mem_b"] if c == "b" else self.d.types[c]

    # -- expressions -------------------------------------------------------------------------
    def expr(self, e: Expr) -> str:
        found = self.memo.get(e)
        if found is not None:
            return found
        text = self._expr(e)
        if e.op in (ExprOp.VAR, ExprOp.CONST) or (e.dtype == INDEX and not loads(e)):
            return text
        name = self.tmp()
        self.line(f"const {self.type_of(e.dtype)} {name} = {text};")
        self.memo[e] = name
        return name

    def _expr(self, e: Expr) -> str:
        d = self.d
        op = e.op
        if op is ExprOp.VAR:
            return str(e.arg)
        if op is ExprOp.CONST:
            if e.dtype == INDEX and abs(int(e.arg)) < (1 << 30):
                return str(int(e.arg))
            return literal(e.arg, e.dtype, d)
        if op is ExprOp.LOAD:
            return self.load(e)
        if op is ExprOp.CAST:
            src = e.src[0]
            x = self.expr(src)
            if code(e.dtype) == "b":
                return f"({x} != 0)"
            return f"(({self.type_of(e.dtype)})({x}))"
        if op is ExprOp.SELECT:
            c, a, b = (self.expr(s) for s in e.src)
            return f"({c} ? {a} : {b})"
        if op is ExprOp.UNARY:
            return self.unary(e)
        if op is ExprOp.BINARY:
            return self.binary(e)
        raise NotImplementedError(op)

    def use(self, name: str) -> str:
        self.helpers.add(name)
        return name

    def unary(self, e: Expr) -> str:
        x_expr = e.src[0]
        x = self.expr(x_expr)
        c = code(x_expr.dtype)
        op = e.arg
        if op is UnaryOp.NEG:
            return f"(-{x})" if c != "b" else f"(!{x})"
        if op is UnaryOp.ABS:
            if c in ("f4", "f8"):
                return f"{self.d.math('fabs', c)}({x})"
            return f"({x} < 0 ? -{x} : {x})"
        if op in _MATH:
            return f"{self.d.math(_MATH[op], c)}({x})"
        if op is UnaryOp.RECIPROCAL:
            one = literal(1, x_expr.dtype, self.d)
            return f"({one} / {x})"
        if op is UnaryOp.NOT:
            return f"(!{x})"
        if op is UnaryOp.INVERT:
            return f"(!{x})" if c == "b" else f"(~{x})"
        if op is UnaryOp.ISNAN:
            return f"({x} != {x})"
        if op is UnaryOp.SIGN:
            if c in ("f4", "f8"):
                return f"{self.use('jt_sign_' + c)}({x})"
            return f"(({x} > 0) - ({x} < 0))"
        raise NotImplementedError(op)

    def binary(self, e: Expr) -> str:
        op = e.arg
        a_expr, b_expr = e.src
        c = code(a_expr.dtype)
        if op is BinaryOp.POW and b_expr.op is ExprOp.CONST:
            special = self.power(a_expr, b_expr.arg, c)
            if special is not None:
                return special
        a, b = self.expr(a_expr), self.expr(b_expr)
        if c == "b" and op in _BOOL_ARITH:
            return f"(({a}) {_BOOL_ARITH[op]} ({b}))"
        if c == "b" and op in _BITWISE:
            return f"((bool)(({a}) {_BITWISE[op]} ({b})))"
        if op in _INFIX:
            return f"({a} {_INFIX[op]} {b})"
        if op in _BITWISE:
            return f"({a} {_BITWISE[op]} {b})"
        if op in (BinaryOp.MAX, BinaryOp.MIN):
            name = "max" if op is BinaryOp.MAX else "min"
            if c in ("f4", "f8"):
                return f"{self.use(f'jt_{name}_{c}')}({a}, {b})"
            cmp = ">" if op is BinaryOp.MAX else "<"
            return f"({a} {cmp} {b} ? {a} : {b})"
        if op is BinaryOp.ATAN2 and c in ("f4", "f8"):
            return f"{self.d.math('atan2', c)}({a}, {b})"
        if op is BinaryOp.POW:
            if c in ("f4", "f8"):
                return f"{self.d.math('pow', c)}({a}, {b})"
            return f"{self.use('jt_ipow_' + c)}({a}, {b})"
        if op is BinaryOp.FLOORDIV:
            return f"{self.use('jt_floordiv_' + c)}({a}, {b})"
        if op is BinaryOp.MOD:
            return f"{self.use('jt_mod_' + c)}({a}, {b})"
        raise NotImplementedError(f"{op} on {c}")

    def power(self, base: Expr, exponent: object, c: str) -> str | None:
        """x ** c without pow, as the CPU code generator does: 2, 3, 4, 0.5 and -1."""
        if exponent in (2, 3, 4):
            x = self.expr(base)
            return "(" + " * ".join([x] * int(exponent)) + ")"  # type: ignore[call-overload]
        if c in ("f4", "f8") and exponent == 0.5:
            return f"{self.d.math('sqrt', c)}({self.expr(base)})"
        if c in ("f4", "f8") and exponent == -1:
            return f"({literal(1, base.dtype, self.d)} / {self.expr(base)})"
        return None

    # -- memory ------------------------------------------------------------------------------
    def flat(self, buffer: str, indices: tuple[Expr, ...]) -> Expr:
        if buffer in self.locals or buffer in self.shared:
            return indices[0]
        return linear_index(indices, self.decls[buffer].strides)

    def load(self, e: Expr) -> str:
        name = e.arg
        if name in self.scalars:
            return name
        self.loaded.add(name)
        text = f"{name}[{self.expr(self.flat(name, e.src))}]"
        if code(e.dtype) == "b" and name not in self.locals:
            return f"({text} != 0)"
        return text

    def store(self, stmt: Store) -> None:
        name = stmt.buffer
        value = self.expr(stmt.value)
        index = self.expr(self.flat(name, stmt.indices))
        if code(self.dtype_of(name)) == "b" and name not in self.locals:
            value = f"({self.d.types['mem_b']})({value})"
        self.line(f"{name}[{index}] = {value};")

    def dtype_of(self, name: str) -> np.dtype:
        if name in self.locals:
            return self.locals[name]
        if name in self.shared:
            return self.shared[name]
        return self.decls[name].dtype

    # -- statements --------------------------------------------------------------------------
    def stmt(self, s: Stmt) -> None:
        self.memo = {}
        if isinstance(s, Block):
            # a local Alloc opens a C scope to the end of its block: stages grouped in one
            # loop (CPU schedules) allocate the same scratch names one after another
            opened = 0
            for child in s.stmts:
                if isinstance(child, Alloc) and child.scope != "shared":
                    self.line("{")
                    opened += 1
                self.stmt(child)
            for _ in range(opened):
                self.line("}")
        elif isinstance(s, Store):
            self.store(s)
        elif isinstance(s, For):
            self.loop(s)
        elif isinstance(s, If):
            cond = self.expr(s.cond)
            self.line(f"if ({cond}) {{")
            self.nested(s.then)
            if s.orelse is not None:
                self.line("} else {")
                self.nested(s.orelse)
            self.line("}")
        elif isinstance(s, Alloc):
            if s.scope != "shared":
                self.line(f"{self.type_of(s.dtype)} {s.buffer}[{s.size}];")
        elif isinstance(s, Barrier):
            self.line(self.d.barrier)
        elif isinstance(s, BlockReduce):
            self.block_reduce(s)
        else:
            raise TypeError(f"not a loop IR statement: {s!r}")
        self.memo = {}

    def nested(self, body: Stmt) -> None:
        self.depth += 1
        self.stmt(body)
        self.depth -= 1

    def loop(self, s: For) -> None:
        v = s.var
        idx = self.index_type
        start, stop = self.expr(s.start), self.expr(s.stop)
        if s.kind in (LoopKind.GPU_BLOCK, LoopKind.GPU_THREAD):
            table = self.d.block_index if s.kind is LoopKind.GPU_BLOCK else self.d.thread_index
            dims = self.kernel.launch[0 if s.kind is LoopKind.GPU_BLOCK else 1]  # type: ignore[index]
            dim = dims["xyz".index(s.axis or "x")]
            self.line("{")
            self.depth += 1
            offset = "" if start == "0" else f"{start} + "
            self.line(f"const {idx} {v} = {offset}({idx}){table[s.axis or 'x']};")
            exact = s.start.op is ExprOp.CONST and s.stop.op is ExprOp.CONST
            if exact and s.stop.arg - s.start.arg >= dim:
                self.stmt(s.body)
            else:
                self.line(f"if ({v} < {stop}) {{")
                self.nested(s.body)
                self.line("}")
            self.depth -= 1
            self.line("}")
            return
        if s.kind is LoopKind.VECTORIZED and self.vectorize(s):
            return
        if s.kind in (LoopKind.UNROLLED, LoopKind.VECTORIZED):
            self.line("#pragma unroll")
        self.line(f"for ({idx} {v} = {start}; {v} < {stop}; ++{v}) {{")
        self.nested(s.body)
        self.line("}")

    def vectorize(self, s: For) -> bool:
        """A VECTORIZED loop whose body is one store: contiguous global/shared accesses as
        one vector access each, the arithmetic lane by lane. False if it does not apply."""
        if s.start.op is not ExprOp.CONST or s.stop.op is not ExprOp.CONST:
            return False
        lanes = s.stop.arg - s.start.arg
        body = s.body
        if lanes not in (2, 4) or s.start.arg != 0 or not isinstance(body, Store):
            return False
        v = s.var
        mapping: dict[Expr, list[str]] = {}
        for node in loads(body.value):
            c = code(node.dtype)
            if node.arg in self.locals or node.arg in self.scalars or c == "b":
                continue
            if lanes * node.dtype.itemsize > 16:
                continue
            flat = self.flat(node.arg, node.src)
            if coefficient(flat, v) != 1:
                continue
            base = self.expr(substitute(flat, {v: iconst(0)}))
            vt = self.d.vector(c, lanes)
            name = self.tmp()
            access = self.d.vector_load.format(vt=vt, lanes=lanes, array=node.arg, index=base)
            self.line(f"const {vt} {name} = {access};")
            if node.arg in self.decls:
                self.aligned.add(node.arg)
            mapping[node] = [f"{name}.{_LANE_NAMES[k]}" for k in range(lanes)]
            self.loaded.add(node.arg)
        values = []
        for k in range(lanes):
            lane = {v: iconst(k)}
            for node, parts in mapping.items():
                self.memo[substitute(node, lane)] = parts[k]
            values.append(self.expr(substitute(body.value, lane)))
        name = body.buffer
        dtype = self.dtype_of(name)
        c = code(dtype)
        flat = self.flat(name, body.indices)
        contiguous = (
            name not in self.locals
            and c != "b"
            and lanes * dtype.itemsize <= 16
            and coefficient(flat, v) == 1
        )
        if contiguous:
            vt = self.d.vector(c, lanes)
            base = self.expr(substitute(flat, {v: iconst(0)}))
            value = self.d.make_vector(vt, values)
            self.line(
                self.d.vector_store.format(vt=vt, lanes=lanes, array=name, index=base, value=value)
            )
            if name in self.decls:
                self.aligned.add(name)
        else:
            for k in range(lanes):
                index = self.expr(substitute(flat, {v: iconst(k)}))
                value = values[k]
                if c == "b" and name not in self.locals:
                    value = f"({self.d.types['mem_b']})({value})"
                self.line(f"{name}[{index}] = {value};")
        return True

    def block_reduce(self, s: BlockReduce) -> None:
        d = self.d
        t = self.type_of(s.dtype)
        a, b = var("_ra", s.dtype), var("_rb", s.dtype)
        step = combine(s.op, a, b)
        ident = self.expr(identity(s.op, s.dtype))
        self.counter += 1
        red = f"_red{self.counter}"
        self.line("{")
        self.depth += 1
        self.line(f"{t} _ra = {s.buffer}[0];")
        if d.shuffle_xor is not None and s.threads % 32 == 0:
            shuffle_type = "int" if code(s.dtype) == "b" else t
            warps = s.threads // 32

            def warp_combine() -> None:
                self.line("#pragma unroll")
                self.line("for (int _o = 16; _o > 0; _o >>= 1) {")
                self.depth += 1
                shuffled = d.shuffle_xor.format(value=f"({shuffle_type})_ra", offset="_o")
                self.line(f"const {t} _rb = ({t})({shuffled});")
                self.memo = {}
                self.line(f"_ra = {self.expr(step)};")
                self.depth -= 1
                self.line("}")

            warp_combine()
            if warps > 1:
                self.shared[red] = np.dtype(s.dtype)
                self.sizes[red] = warps
                self.line(f"const int _lane = (int)({d.thread_index['x']}) & 31;")
                self.line(f"const int _warp = (int)({d.thread_index['x']}) >> 5;")
                self.line(d.barrier)
                self.line(f"if (_lane == 0) {red}[_warp] = _ra;")
                self.line(d.barrier)
                self.line(f"_ra = _lane < {warps} ? {red}[_lane] : {ident};")
                warp_combine()
        else:
            self.shared[red] = np.dtype(s.dtype)
            self.sizes[red] = s.threads
            tid = f"(int)({d.thread_index['x']})"
            self.line(d.barrier)
            self.line(f"{red}[{tid}] = _ra;")
            self.line(d.barrier)
            width = 1
            while width < s.threads:
                width *= 2
            half = width // 2
            while half >= 1:
                self.line(f"if ({tid} < {half} && {tid} + {half} < {s.threads}) {{")
                self.depth += 1
                self.line(f"const {t} _rb = {red}[{tid} + {half}];")
                self.line(f"_ra = {red}[{tid}];")
                self.memo = {}
                self.line(f"{red}[{tid}] = {self.expr(step)};")
                self.depth -= 1
                self.line("}")
                self.line(d.barrier)
                half //= 2
            self.line(f"_ra = {red}[0];")
        self.line(f"{s.buffer}[0] = _ra;")
        self.depth -= 1
        self.line("}")

    # -- the kernel --------------------------------------------------------------------------
    def render(self) -> str:
        self.sizes: dict[str, int] = {}
        for s in _walk(self.kernel.body):
            if isinstance(s, Alloc) and s.scope == "shared":
                self.sizes[s.buffer] = s.size
        self.stmt(self.kernel.body)
        d = self.d
        params = []
        for decl in kernel_params(self.program, self.kernel):
            if decl.name in self.scalars:
                # a dialect may pass some scalars as another type (OpenCL: no bool arguments)
                kind = d.types.get("param_" + code(decl.dtype), self.type_of(decl.dtype))
                params.append(f"const {kind} {decl.name}")
                continue
            const = "" if decl.name in self.written else "const "
            # A buffer this kernel writes and reads carries values between threads (a row's
            # sum stored by one thread, read by all after a barrier). Declared restrict, it
            # let NVVM hoist those reads above the barrier (an H200 read stale values), so it
            # is not declared so; buffers only read or only written are.
            shared = decl.name in self.written and decl.name in self.loaded
            params.append(
                d.global_ptr.format(
                    type=self.mem_type(decl.dtype),
                    const=const,
                    restrict="" if shared else d.restrict,
                    name=decl.name,
                )
            )
        threads = 1
        for dim in self.kernel.launch[1]:  # type: ignore[index]
            threads *= dim
        min_blocks = f", {self.kernel.min_blocks}" if self.kernel.min_blocks else ""
        head = d.kernel.format(threads=threads, min_blocks=min_blocks)
        shared = [
            f"  {d.shared} {d.align16} {self.mem_type(dtype)} {name}[{self.sizes[name]}];"
            for name, dtype in self.shared.items()
        ]
        return "\n".join(
            [f"{head} void {self.kernel.name}({', '.join(params)}) {{", *shared, *self.lines, "}"]
        )


def launch_info(program: LoopProgram) -> list[dict[str, object]]:
    info = []
    for kernel in program.kernels:
        if kernel.launch is None:
            raise ValueError(f"kernel {kernel.name} has no GPU launch dimensions")
        grid, block = kernel.launch
        info.append({"name": kernel.name, "grid": list(grid), "block": list(block)})
    return info


def render(program: LoopProgram, d: Dialect) -> str:
    """Source text of every kernel of ``program`` in dialect ``d``."""
    helpers: set[str] = set()
    writers = [_KernelWriter(d, program, k, helpers) for k in program.kernels]
    bodies = [w.render() for w in writers]
    aligned = sorted({name for w in writers for name in w.aligned})
    table = _helpers(d)
    meta = {
        "kernels": launch_info(program),
        "buffers": [b.name for b in program.buffers],
        "dtypes": [np.dtype(b.dtype).str for b in program.buffers],
        "scalars": [b.name for b in program.buffers if b.role == "input" and b.shape == ()],
        "aligned": aligned,
    }
    parts = [LAUNCH_TAG + json.dumps(meta, separators=(",", ":")), d.prelude]
    parts += [table[name] for name in sorted(helpers)]
    parts += bodies
    return "\n\n".join(p for p in parts if p) + "\n"


def read_launch(source: str) -> dict[str, object]:
    """The launch metadata of :func:`render`'s first line."""
    first = source.split("\n", 1)[0]
    if not first.startswith(LAUNCH_TAG):
        raise ValueError("not jitune GPU source: no launch line")
    return json.loads(first[len(LAUNCH_TAG) :])
