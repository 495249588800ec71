"""Scalar expressions in index notation, shared by the compute IR and the loop IR.

An :class:`Expr` is the value of one element: loads of buffers at index expressions, constants,
loop variables and arithmetic. Index arithmetic is int64 and built with :func:`index_add` and
:func:`index_mul`, which fold constants, so index expressions stay small and affine where the
access pattern is.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .node import Node
from .ops import BinaryOp, UnaryOp

INDEX = np.dtype("int64")
BOOL = np.dtype("bool")


class ExprOp(enum.Enum):
    VAR = "var"  # arg: name
    CONST = "const"  # arg: Python scalar
    LOAD = "load"  # arg: buffer name; src: one index per buffer axis
    UNARY = "unary"  # arg: UnaryOp
    BINARY = "binary"  # arg: BinaryOp
    SELECT = "select"  # src: (condition, if_true, if_false)
    CAST = "cast"


@dataclasses.dataclass(frozen=True, eq=False)
class Expr(Node):
    op: ExprOp
    src: tuple[Expr, ...]
    dtype: np.dtype
    arg: Any = None

    def __repr__(self) -> str:
        from .printer import format_expr

        return format_expr(self)


def var(name: str, dtype: np.dtype = INDEX) -> Expr:
    return Expr(ExprOp.VAR, (), np.dtype(dtype), name)


def const(value: Any, dtype: np.dtype) -> Expr:
    dtype = np.dtype(dtype)
    return Expr(ExprOp.CONST, (), dtype, np.array(value, dtype=dtype).item())


def iconst(value: int) -> Expr:
    return Expr(ExprOp.CONST, (), INDEX, int(value))


def load(buffer: str, indices: tuple[Expr, ...], dtype: np.dtype) -> Expr:
    return Expr(ExprOp.LOAD, tuple(indices), np.dtype(dtype), buffer)


def unary(op: UnaryOp, x: Expr, dtype: np.dtype | None = None) -> Expr:
    return Expr(ExprOp.UNARY, (x,), np.dtype(dtype or x.dtype), op)


def binary(op: BinaryOp, a: Expr, b: Expr, dtype: np.dtype | None = None) -> Expr:
    return Expr(ExprOp.BINARY, (a, b), np.dtype(dtype or a.dtype), op)


def select(cond: Expr, a: Expr, b: Expr) -> Expr:
    return Expr(ExprOp.SELECT, (cond, a, b), a.dtype)


def cast(x: Expr, dtype: np.dtype) -> Expr:
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    if x.op is ExprOp.CONST:
        return const(x.arg, dtype)
    return Expr(ExprOp.CAST, (x,), dtype)


def is_const(x: Expr, value: Any = None) -> bool:
    return x.op is ExprOp.CONST and (value is None or x.arg == value)


def index_add(a: Expr | int, b: Expr | int) -> Expr:
    """``a + b`` on int64 index expressions, folding constants."""
    a = iconst(a) if isinstance(a, int) else a
    b = iconst(b) if isinstance(b, int) else b
    if is_const(a) and is_const(b):
        return iconst(a.arg + b.arg)
    if is_const(a, 0):
        return b
    if is_const(b, 0):
        return a
    if is_const(a):  # keep constants on the right: canonical form for hashing
        a, b = b, a
    return binary(BinaryOp.ADD, a, b)


def index_mul(a: Expr | int, b: Expr | int) -> Expr:
    """``a * b`` on int64 index expressions, folding constants."""
    a = iconst(a) if isinstance(a, int) else a
    b = iconst(b) if isinstance(b, int) else b
    if is_const(a) and is_const(b):
        return iconst(a.arg * b.arg)
    if is_const(a, 0) or is_const(b, 0):
        return iconst(0)
    if is_const(a, 1):
        return b
    if is_const(b, 1):
        return a
    if is_const(a):
        a, b = b, a
    return binary(BinaryOp.MUL, a, b)


def index_div(a: Expr, divisor: int) -> Expr:
    """``a // divisor`` for a non-negative index and a positive constant divisor."""
    if divisor == 1:
        return a
    if is_const(a):
        return iconst(a.arg // divisor)
    return binary(BinaryOp.INDEX_DIV, a, iconst(divisor))


def index_mod(a: Expr, divisor: int) -> Expr:
    """``a % divisor`` for a non-negative index and a positive constant divisor."""
    if divisor == 1:
        return iconst(0)
    if is_const(a):
        return iconst(a.arg % divisor)
    return binary(BinaryOp.INDEX_MOD, a, iconst(divisor))


def contains(expr: Expr, part: Expr) -> bool:
    """Whether ``part`` occurs in ``expr``."""
    return any(node == part for node in nodes(expr))


def has_index_check(expr: Expr) -> bool:
    """Whether ``expr`` checks an index (``BinaryOp.CHECK_INDEX``): its evaluation may report
    an out-of-bounds index, so it must be evaluated even where its value is not needed."""
    return any(
        node.op is ExprOp.BINARY and node.arg is BinaryOp.CHECK_INDEX for node in nodes(expr)
    )


def checked_index(value: Expr, extent: int) -> Expr:
    """The index ``value`` (any integer dtype) selects on an axis of ``extent``, as NumPy's
    integer-array indexing reads it: negative values count from the end, and a value outside
    ``[-extent, extent)`` makes the program raise IndexError (``BinaryOp.CHECK_INDEX``)."""
    if is_const(value) and -extent <= value.arg < extent:
        return iconst(value.arg % extent)
    index = cast(value, INDEX)
    if value.dtype == np.dtype(np.uint64):
        # above 2**63 - 1 the int64 cast turns negative and could wrap into range: any such
        # value is out of bounds, so it becomes one that is
        too_big = binary(BinaryOp.LT, index, iconst(0), BOOL)
        index = select(too_big, iconst(extent), index)
    return binary(BinaryOp.CHECK_INDEX, index, iconst(extent))


def linear_index(indices: tuple[Expr, ...], strides: tuple[int, ...]) -> Expr:
    """``sum(index * stride)``: the flat element offset of a multi-index."""
    flat: Expr = iconst(0)
    for index, stride in zip(indices, strides):
        flat = index_add(flat, index_mul(index, stride))
    return flat


def transform(expr: Expr, rewrite: Callable[[Expr], Expr | None]) -> Expr:
    """Rebuild ``expr`` bottom-up; ``rewrite(node)`` may return a replacement or None.

    Shared subexpressions are visited once.
    """
    memo: dict[int, Expr] = {}

    def walk(node: Expr) -> Expr:
        done = memo.get(id(node))
        if done is not None:
            return done
        replaced = rewrite(node)
        if replaced is None:
            children = tuple(walk(child) for child in node.src)
            replaced = node if children == node.src else _rebuild(node, children)
        memo[id(node)] = replaced
        return replaced

    return walk(expr)


def _rebuild(node: Expr, children: tuple[Expr, ...]) -> Expr:
    if node.op is ExprOp.BINARY and node.dtype == INDEX:
        if node.arg is BinaryOp.ADD:
            return index_add(*children)
        if node.arg is BinaryOp.MUL:
            return index_mul(*children)
    return dataclasses.replace(node, src=children)


def argument_text(node: Expr) -> str:
    """A node's argument as text that tells its values and types apart (1, 1.0, True)."""
    return f"{type(node.arg).__name__}:{node.arg!r}"


def digest(expr: Expr, text: Callable[[Expr], str], memo: dict[int, bytes]) -> bytes:
    """A 12-byte digest of ``expr``: each node's operation, dtype and ``text(node)`` (what
    of its argument matters to the caller), then its operands' digests.

    ``memo`` (by node identity) digests a shared subexpression once: a DAG costs its size,
    not the size of the tree it spells out. Comparing digests instead of expressions also
    avoids structural equality, which walks both trees again on every dictionary hit.
    """
    done = memo.get(id(expr))
    if done is None:
        head = f"{expr.op.value}|{expr.dtype.str}|{text(expr)}".encode()
        operands = b"".join(digest(child, text, memo) for child in expr.src)
        done = memo[id(expr)] = hashlib.sha256(head + operands).digest()[:12]
    return done


def substitute(expr: Expr, mapping: dict[str, Expr]) -> Expr:
    """Replace variables by name."""
    return transform(expr, lambda node: mapping.get(node.arg) if node.op is ExprOp.VAR else None)


def nodes(expr: Expr) -> Iterator[Expr]:
    """Each distinct node of ``expr`` once (a shared subexpression is visited once)."""
    seen: set[int] = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        stack.extend(node.src)


def free_vars(expr: Expr) -> set[str]:
    """Names of the variables ``expr`` uses."""
    return {node.arg for node in nodes(expr) if node.op is ExprOp.VAR}


def loads(expr: Expr) -> list[Expr]:
    """Every distinct LOAD node in ``expr``."""
    return list(dict.fromkeys(node for node in nodes(expr) if node.op is ExprOp.LOAD))


def coefficient(index: Expr, name: str) -> int | None:
    """``c`` such that ``index == c * name + (terms free of name)``; None if not affine in it."""
    if index.op is ExprOp.VAR:
        return 1 if index.arg == name else 0
    if index.op is ExprOp.CONST:
        return 0
    if index.op is ExprOp.BINARY and index.arg is BinaryOp.ADD:
        left, right = (coefficient(child, name) for child in index.src)
        return None if left is None or right is None else left + right
    if index.op is ExprOp.BINARY and index.arg is BinaryOp.MUL:
        a, b = index.src
        if is_const(b):
            inner = coefficient(a, name)
            return None if inner is None else inner * b.arg
        if is_const(a):
            inner = coefficient(b, name)
            return None if inner is None else inner * a.arg
    return 0 if name not in free_vars(index) else None
