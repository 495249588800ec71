"""Operation enums shared by every IR level (graph, compute and loop IR)."""

from __future__ import annotations

import enum


class UnaryOp(enum.Enum):
    NEG = "neg"
    ABS = "abs"
    EXP = "exp"
    LOG = "log"
    LOG1P = "log1p"
    EXPM1 = "expm1"
    SQRT = "sqrt"
    TANH = "tanh"
    SIN = "sin"
    COS = "cos"
    FLOOR = "floor"
    CEIL = "ceil"
    SIGN = "sign"
    RECIPROCAL = "reciprocal"
    NOT = "not"  # logical not of a bool
    INVERT = "invert"  # bitwise not of an integer
    ISNAN = "isnan"


class BinaryOp(enum.Enum):
    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    TRUEDIV = "truediv"
    FLOORDIV = "floordiv"
    MOD = "mod"
    POW = "pow"
    MAX = "max"
    MIN = "min"
    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"
    AND = "and"  # bitwise on integers, logical on bools
    OR = "or"
    XOR = "xor"
    ATAN2 = "atan2"  # floats only: the angle of the point (b, a), as np.arctan2(a, b)
    INDEX_DIV = "idiv"  # index arithmetic: non-negative dividend, positive divisor
    INDEX_MOD = "imod"
    # index of a gather: (i, n) -> i, or i + n for i < 0; an i outside [-n, n) makes the
    # program raise IndexError (as NumPy) and reads element 0, never out of bounds
    CHECK_INDEX = "check_index"


COMPARISONS = frozenset(
    {BinaryOp.EQ, BinaryOp.NE, BinaryOp.LT, BinaryOp.LE, BinaryOp.GT, BinaryOp.GE}
)


class ReduceOp(enum.Enum):
    SUM = "sum"
    PROD = "prod"
    MAX = "max"
    MIN = "min"
    ARGMAX = "argmax"
    ARGMIN = "argmin"


ARG_REDUCTIONS = frozenset({ReduceOp.ARGMAX, ReduceOp.ARGMIN})
