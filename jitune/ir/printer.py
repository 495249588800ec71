"""Readable, stable text for every IR level (also the basis of the structural hash)."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .expr import Expr, ExprOp
from .ops import BinaryOp

if TYPE_CHECKING:
    from .compute import ComputeProgram, Stage
    from .graph import Array
    from .loops import LoopProgram, Stmt

_INFIX = {
    BinaryOp.ADD: "+",
    BinaryOp.SUB: "-",
    BinaryOp.MUL: "*",
    BinaryOp.TRUEDIV: "/",
    BinaryOp.FLOORDIV: "//",
    BinaryOp.MOD: "%",
    BinaryOp.POW: "**",
    BinaryOp.EQ: "==",
    BinaryOp.NE: "!=",
    BinaryOp.LT: "<",
    BinaryOp.LE: "<=",
    BinaryOp.GT: ">",
    BinaryOp.GE: ">=",
    BinaryOp.AND: "&",
    BinaryOp.OR: "|",
    BinaryOp.XOR: "^",
    BinaryOp.INDEX_DIV: "//",
    BinaryOp.INDEX_MOD: "%",
}


def constant_text(value: Any) -> str:
    """A constant's text; distinct for distinct bits, as the structural hash needs.

    ``repr`` already tells ``-0.0`` from ``0.0``, but prints every NaN as ``nan``: a NaN
    shows its bit pattern, so kernels whose constants differ only in a NaN's sign or payload
    never share a cache key.
    """
    if type(value) is float and math.isnan(value):
        return f"nan(0x{struct.pack('>d', value).hex()})"
    return repr(value)


def _type(shape: tuple[int, ...], dtype: object) -> str:
    return f"{dtype}[{','.join(map(str, shape))}]"


def format_graph(outputs: Iterable[Array]) -> str:
    """One line per node, ``%n = op(operands) : dtype[shape]``, numbered in operand order."""
    from .graph import GraphOp, toposort

    outputs = list(outputs)
    names: dict[int, str] = {}
    lines = []
    for node in toposort(outputs):
        name = names[id(node)] = f"%{len(names)}"
        operands = ", ".join(names[id(s)] for s in node.src)
        if node.op is GraphOp.INPUT:
            text = f"input {node.arg}"
        elif node.op is GraphOp.CONST:
            text = f"const {constant_text(node.arg)}"
        elif node.op in (GraphOp.UNARY, GraphOp.BINARY):
            text = f"{node.arg.value}({operands})"
        elif node.op is GraphOp.REDUCE:
            r = node.arg
            text = f"{r.op.value}({operands}, axes={list(r.axes)}, keepdims={r.keepdims})"
        elif node.op is GraphOp.CONTRACT:
            text = f"einsum('{node.arg.spec()}', {operands})"
        elif node.arg is not None:
            text = f"{node.op.value}({operands}, {node.arg})"
        else:
            text = f"{node.op.value}({operands})"
        lines.append(f"{name} = {text} : {_type(node.shape, node.dtype)}")
    lines.append("return " + ", ".join(names[id(o)] for o in outputs))
    return "\n".join(lines)


def format_expr(expr: Expr) -> str:
    """Infix text of an expression tree."""
    if expr.op is ExprOp.VAR:
        return str(expr.arg)
    if expr.op is ExprOp.CONST:
        return constant_text(expr.arg)
    args = [format_expr(child) for child in expr.src]
    if expr.op is ExprOp.LOAD:
        return f"{expr.arg}[{', '.join(args)}]"
    if expr.op is ExprOp.BINARY and expr.arg in _INFIX:
        return f"({args[0]} {_INFIX[expr.arg]} {args[1]})"
    if expr.op in (ExprOp.UNARY, ExprOp.BINARY):
        return f"{expr.arg.value}({', '.join(args)})"
    if expr.op is ExprOp.CAST:
        return f"{expr.dtype}({args[0]})"
    return f"select({', '.join(args)})"


def format_stage(stage: Stage) -> str:
    index = ", ".join(a.name for a in stage.axes)
    value = format_expr(stage.body)
    if stage.reduce_op is not None:
        over = ", ".join(f"{a.name}<{a.extent}" for a in stage.reduce_axes)
        value = f"{stage.reduce_op.value}[{over}]({value})"
    if stage.epilogue is not None:
        value = f"{format_expr(stage.epilogue)}  where %acc = {value}"
    extents = ", ".join(f"{a.name}<{a.extent}" for a in stage.axes)
    return f"{stage.out}[{index}] = {value}    for {extents or 'scalar'} : {stage.dtype}"


def format_compute(program: ComputeProgram) -> str:
    lines = [
        f"{d.role} {d.name}: {_type(d.shape, d.dtype)} strides={d.strides}"
        + ("" if d.view_of is None else f" of {d.view_of} from {d.offset}")
        for d in program.buffers
    ]
    lines += [format_stage(stage) for stage in program.stages]
    lines.append("return " + ", ".join(program.outputs))
    return "\n".join(lines)


def format_stmt(stmt: Stmt, indent: int = 0) -> list[str]:
    from .loops import Alloc, Barrier, Block, BlockReduce, For, If, Store

    pad = "  " * indent
    if isinstance(stmt, Block):
        return [line for s in stmt.stmts for line in format_stmt(s, indent)]
    if isinstance(stmt, For):
        head = f"{pad}for {stmt.var} in {format_expr(stmt.start)}..{format_expr(stmt.stop)}"
        kind = "" if stmt.kind.value == "serial" else f"  # {stmt.kind.value}"
        if stmt.axis:
            kind += f".{stmt.axis}"
        return [head + ":" + kind] + format_stmt(stmt.body, indent + 1)
    if isinstance(stmt, Store):
        index = ", ".join(format_expr(i) for i in stmt.indices)
        return [f"{pad}{stmt.buffer}[{index}] = {format_expr(stmt.value)}"]
    if isinstance(stmt, If):
        lines = [f"{pad}if {format_expr(stmt.cond)}:"] + format_stmt(stmt.then, indent + 1)
        if stmt.orelse is not None:
            lines += [f"{pad}else:"] + format_stmt(stmt.orelse, indent + 1)
        return lines
    if isinstance(stmt, Alloc):
        scope = "" if stmt.scope == "local" else f" {stmt.scope}"
        return [f"{pad}alloc{scope} {stmt.buffer}: {stmt.dtype}[{stmt.size}]"]
    if isinstance(stmt, Barrier):
        return [f"{pad}barrier"]
    if isinstance(stmt, BlockReduce):
        return [
            f"{pad}{stmt.buffer}[0] = block_{stmt.op.value}({stmt.buffer}[0])  # {stmt.threads} threads"
        ]
    raise TypeError(f"not a loop IR statement: {stmt!r}")


def format_loops(program: LoopProgram) -> str:
    lines = []
    for kernel in program.kernels:
        mode = "parallel" if kernel.parallel else "single-thread"
        if kernel.launch is not None:
            mode = f"grid {kernel.launch[0]}, block {kernel.launch[1]}"
        lines.append(f"kernel {kernel.name}  # {mode}, ~{kernel.work} ops")
        lines += format_stmt(kernel.body, 1)
    return "\n".join(lines)
