"""Arithmetic of jitune's ops in LLVM IR, on scalars or vectors, matching NumPy's semantics.

The functions here take an :class:`Emitter` (anything with ``tmp``/``line``/``declare``) and
operand refs, and return the ref of the result. They know nothing of loops or buffers.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

import numpy as np

from ..ir.ops import BinaryOp, UnaryOp
from .llvm_types import intrinsic_suffix, literal, vector_type


@dataclasses.dataclass(frozen=True)
class Val:
    """An SSA value: ``ref`` of type ``scalar`` (or a vector of ``lanes`` of it)."""

    ref: str
    scalar: str
    lanes: int = 1

    @property
    def type(self) -> str:
        return vector_type(self.scalar, self.lanes)


class Emitter(Protocol):
    block: str  # the label of the basic block being written

    def tmp(self) -> str: ...
    def line(self, text: str) -> None: ...
    def declare(self, text: str) -> None: ...
    def label(self, hint: str) -> str: ...
    def start_block(self, name: str) -> None: ...
    def has(self, feature: str) -> bool:
        """Whether the target CPU has ``feature`` (an LLVM name such as ``"avx512f"``)."""
        ...


def is_float(scalar: str) -> bool:
    return scalar in ("float", "double")


def splat(em: Emitter, value: Val, lanes: int) -> Val:
    """``value`` broadcast to ``lanes`` lanes (unchanged if it already has them)."""
    if value.lanes == lanes:
        return value
    vec = vector_type(value.scalar, lanes)
    one = em.tmp()
    em.line(
        f"{one} = insertelement {vector_type(value.scalar, lanes)} poison, {value.scalar} {value.ref}, i64 0"
    )
    out = em.tmp()
    em.line(f"{out} = shufflevector {vec} {one}, {vec} poison, <{lanes} x i32> zeroinitializer")
    return Val(out, value.scalar, lanes)


def constant(em: Emitter, literal: str, like: Val) -> Val:
    """A constant of ``like``'s type."""
    return splat(em, Val(literal, like.scalar), like.lanes)


def instr(em: Emitter, text: str, scalar: str, lanes: int) -> Val:
    ref = em.tmp()
    em.line(f"{ref} = {text}")
    return Val(ref, scalar, lanes)


def call_intrinsic(
    em: Emitter, name: str, args: list[Val], result_scalar: str | None = None, extra: str = ""
) -> Val:
    """``call @llvm.<name>.<suffix>(args)``; ``extra`` appends literal arguments (e.g. ``i1 false``)."""
    first = args[0]
    scalar = result_scalar or first.scalar
    suffix = intrinsic_suffix(first.scalar, first.lanes)
    ret = vector_type(scalar, first.lanes)
    params = ", ".join(a.type for a in args) + (", " + extra.split(" ")[0] if extra else "")
    em.declare(f"declare {ret} @llvm.{name}.{suffix}({params})")
    arg_text = ", ".join(f"{a.type} {a.ref}" for a in args) + (", " + extra if extra else "")
    return instr(em, f"call {ret} @llvm.{name}.{suffix}({arg_text})", scalar, first.lanes)


def call_scalar_function(em: Emitter, name: str, args: list[Val]) -> Val:
    """Call a scalar function (libm or a helper) lane by lane."""
    first = args[0]
    em.declare(f"declare {first.scalar} @{name}({', '.join(a.scalar for a in args)})")
    if first.lanes == 1:
        text = ", ".join(f"{a.scalar} {a.ref}" for a in args)
        return instr(em, f"call {first.scalar} @{name}({text})", first.scalar, 1)
    result = Val("poison", first.scalar, first.lanes)
    for lane in range(first.lanes):
        scalars = [
            instr(em, f"extractelement {a.type} {a.ref}, i64 {lane}", a.scalar, 1) for a in args
        ]
        value = call_scalar_function(em, name, scalars)
        result = instr(
            em,
            f"insertelement {result.type} {result.ref}, {value.scalar} {value.ref}, i64 {lane}",
            first.scalar,
            first.lanes,
        )
    return result


_LIBM = {UnaryOp.LOG1P: "log1p", UnaryOp.EXPM1: "expm1", UnaryOp.TANH: "tanh"}
_INTRINSIC = {
    UnaryOp.EXP: "exp",
    UnaryOp.LOG: "log",
    UnaryOp.SQRT: "sqrt",
    UnaryOp.SIN: "sin",
    UnaryOp.COS: "cos",
    UnaryOp.FLOOR: "floor",
    UnaryOp.CEIL: "ceil",
}


def select(em: Emitter, cond: Val, a: Val, b: Val) -> Val:
    lanes = max(cond.lanes, a.lanes, b.lanes)
    cond, a, b = splat(em, cond, lanes), splat(em, a, lanes), splat(em, b, lanes)
    return instr(
        em, f"select {cond.type} {cond.ref}, {a.type} {a.ref}, {b.type} {b.ref}", a.scalar, lanes
    )


def transpose(em: Emitter, rows: list[Val]) -> list[Val]:
    """The transpose of a square matrix held as ``len(rows)`` vectors of as many lanes (a
    power of two): at each level ``b`` (half the size down to 1) the off-diagonal ``b x b``
    blocks of every ``2b x 2b`` block swap places, one two-input shuffle per row; after all
    levels row ``j`` holds lane ``j`` of every input row. 16 x 16: 64 shuffles, which x86
    lowers to single unpack/shuffle/permute instructions."""
    n = len(rows)
    out = list(rows)
    half = n // 2
    while half >= 1:
        for r in range(n):
            if r & half:
                continue
            low, high = out[r], out[r + half]
            keep = [j if not j & half else n + j - half for j in range(n)]
            swap = [j + half if not j & half else n + j for j in range(n)]
            for row, mask in ((r, keep), (r + half, swap)):
                indices = ", ".join(f"i32 {m}" for m in mask)
                out[row] = instr(
                    em,
                    f"shufflevector {low.type} {low.ref}, {high.type} {high.ref}, "
                    f"<{n} x i32> <{indices}>",
                    low.scalar,
                    n,
                )
        half //= 2
    return out


def compare(em: Emitter, predicate: str, a: Val, b: Val) -> Val:
    """``fcmp``/``icmp`` with a predicate such as ``olt`` or ``slt``."""
    op = "fcmp" if is_float(a.scalar) else "icmp"
    return instr(em, f"{op} {predicate} {a.type} {a.ref}, {b.ref}", "i1", a.lanes)


def unary(em: Emitter, op: UnaryOp, x: Val) -> Val:
    f = is_float(x.scalar)
    if op is UnaryOp.NEG:
        return (
            instr(em, f"fneg {x.type} {x.ref}", x.scalar, x.lanes)
            if f
            else instr(em, f"sub {x.type} zeroinitializer, {x.ref}", x.scalar, x.lanes)
        )
    if op is UnaryOp.ABS:
        return (
            call_intrinsic(em, "fabs", [x])
            if f
            else call_intrinsic(em, "abs", [x], extra="i1 false")
        )
    if x.scalar == "float":
        from .llvm_math import FLOAT32  # vector float32 math builds on this module

        if op in FLOAT32:
            return FLOAT32[op](em, x)
    if op in _INTRINSIC:
        return call_intrinsic(em, _INTRINSIC[op], [x])
    if op in _LIBM:
        return call_scalar_function(em, _LIBM[op] + ("f" if x.scalar == "float" else ""), [x])
    if op is UnaryOp.RECIPROCAL:
        return instr(em, f"fdiv {x.type} {constant(em, '1.0', x).ref}, {x.ref}", x.scalar, x.lanes)
    if op in (UnaryOp.NOT, UnaryOp.INVERT):
        ones = constant(em, "true" if x.scalar == "i1" else "-1", x)
        return instr(em, f"xor {x.type} {x.ref}, {ones.ref}", x.scalar, x.lanes)
    if op is UnaryOp.ISNAN:
        return instr(em, f"fcmp uno {x.type} {x.ref}, {x.ref}", "i1", x.lanes)
    if op is UnaryOp.SIGN:
        zero = constant(em, "0.0" if f else "0", x)
        one = constant(em, "1.0" if f else "1", x)
        minus = constant(em, "-1.0" if f else "-1", x)
        positive = compare(em, "ogt" if f else "sgt", x, zero)
        negative = compare(em, "olt" if f else "slt", x, zero)
        # NaN stays NaN; both zeros give +0, as in NumPy
        rest = select(em, compare(em, "uno", x, x), x, zero) if f else zero
        return select(em, positive, one, select(em, negative, minus, rest))
    raise NotImplementedError(op)


_ARITH = {
    BinaryOp.ADD: ("fadd contract", "add"),
    BinaryOp.SUB: ("fsub", "sub"),
    BinaryOp.MUL: ("fmul contract", "mul"),
    BinaryOp.TRUEDIV: ("fdiv", None),
    BinaryOp.AND: (None, "and"),
    BinaryOp.OR: (None, "or"),
    BinaryOp.XOR: (None, "xor"),
    BinaryOp.INDEX_DIV: (None, "sdiv"),
    BinaryOp.INDEX_MOD: (None, "srem"),
}
_BOOL_ARITH = {BinaryOp.ADD: "or", BinaryOp.MUL: "and", BinaryOp.MAX: "or", BinaryOp.MIN: "and"}
_FLOAT_CMP = {
    BinaryOp.EQ: "oeq",
    BinaryOp.NE: "une",
    BinaryOp.LT: "olt",
    BinaryOp.LE: "ole",
    BinaryOp.GT: "ogt",
    BinaryOp.GE: "oge",
}
_INT_CMP = {
    BinaryOp.EQ: "eq",
    BinaryOp.NE: "ne",
    BinaryOp.LT: "slt",
    BinaryOp.LE: "sle",
    BinaryOp.GT: "sgt",
    BinaryOp.GE: "sge",
}
_BOOL_CMP = {
    **_INT_CMP,
    BinaryOp.LT: "ult",
    BinaryOp.LE: "ule",
    BinaryOp.GT: "ugt",
    BinaryOp.GE: "uge",
}


def binary(em: Emitter, op: BinaryOp, a: Val, b: Val) -> Val:
    if op is BinaryOp.TRUEDIV and is_float(a.scalar) and a.lanes > 1 and b.lanes == 1:
        return _divide_by_uniform(em, a, b)
    lanes = max(a.lanes, b.lanes)
    a, b = splat(em, a, lanes), splat(em, b, lanes)
    f = is_float(a.scalar)
    if a.scalar == "i1" and op in _BOOL_ARITH:
        return instr(em, f"{_BOOL_ARITH[op]} {a.type} {a.ref}, {b.ref}", "i1", lanes)
    if op in _ARITH and _ARITH[op][0 if f else 1] is not None:
        return instr(em, f"{_ARITH[op][0 if f else 1]} {a.type} {a.ref}, {b.ref}", a.scalar, lanes)
    if op in _FLOAT_CMP:
        table = _FLOAT_CMP if f else (_BOOL_CMP if a.scalar == "i1" else _INT_CMP)
        return compare(em, table[op], a, b)
    if op in (BinaryOp.MAX, BinaryOp.MIN):
        name = (
            ("maximum" if op is BinaryOp.MAX else "minimum")
            if f
            else ("smax" if op is BinaryOp.MAX else "smin")
        )
        return call_intrinsic(em, name, [a, b])
    if op is BinaryOp.ATAN2 and f:  # libm's, lane by lane: exact, as NumPy's
        return call_scalar_function(em, "atan2" + ("f" if a.scalar == "float" else ""), [a, b])
    if op is BinaryOp.POW:
        if f:
            return call_intrinsic(em, "pow", [a, b])
        return call_scalar_function(em, f"jitune_ipow_{a.scalar}", [a, b])
    if op is BinaryOp.FLOORDIV:
        return _float_floordiv(em, a, b) if f else _int_divmod(em, a, b)[0]
    if op is BinaryOp.MOD:
        return _float_mod(em, a, b)[0] if f else _int_divmod(em, a, b)[1]
    raise NotImplementedError(f"{op} on {a.scalar}")


# |divisor| range in which the reciprocal and the quotient's residual are exact enough for
# the correction step (well inside the normal range, so 1/d is neither subnormal nor infinite)
_UNIFORM_DIVISOR_RANGE = {"float": (2.0**-100, 2.0**100), "double": (2.0**-1000, 2.0**1000)}

# Per lane, the correction is exact only away from both ends of the exponent range (p bits of
# precision, normal exponents emin..emax: float p=24, emin=-126, emax=127; double 53, -1022,
# 1023). The residual a - q*d is a multiple of ulp(q)*ulp(d) ~ 2^(e_a - 2p + 1), so it is
# representable only if that is no finer than the smallest subnormal 2^(emin - p + 1):
# |a| >= 2^(emin + p), here with a margin of 2 (subnormal or tiny dividends such as
# 1e-310 / 1e-30 came out 1 ulp off). The quotient must be normal, as the final rounding
# of q + residual*r is correct only there (5e-324 / 1.658 gave 0, not 5e-324): |q| >=
# 2^(emin + 2). And a*r must not be near overflow, where it can round to inf while a/d is
# finite: |q| <= 2^(emax - 1). The quotient bounds become bounds on |a| once per row:
# |q| = |a|/|d| within an ulp, so |a| >= 2*min_q*|d| and |a| < max_q*|d|/2 keep q inside
# with a factor 2 to spare (both products are exact: powers of two times d, or they
# underflow where the min_a bound is the larger, or overflow to inf, where |a| < inf still
# excludes inf). A vector with any lane outside (or a NaN) takes the true divide; zeros are
# exact on the fast path as q = a*r, which keeps the sign of -0.0 that the correction loses.
_UNIFORM_LANE_RANGE = {
    # (min |a|, min |q| * 2, max |q| / 2)
    "float": (2.0**-100, 2.0**-123, 2.0**125),
    "double": (2.0**-967, 2.0**-1019, 2.0**1021),
}


def _divide_by_uniform(em: Emitter, a: Val, d: Val) -> Val:
    """``a / d`` for a vector ``a`` and a scalar ``d`` (one divisor for every lane, such as a
    softmax row's sum), correctly rounded without a vector divide where that is provably
    exact, and with ``fdiv`` everywhere else.

    ``r = 1/d`` is one scalar division that LLVM hoists out of the loop; then ``q = a*r`` and
    one correction ``q + (a - q*d)*r`` (the residual is exact with an FMA) gives the correctly
    rounded quotient when ``r`` is the correctly rounded reciprocal (Markstein's theorem),
    as long as no value involved leaves the normal range (``_UNIFORM_LANE_RANGE``). A divisor
    outside a safe range (0, inf, NaN, tiny, huge) branches to ``fdiv`` once per row; a
    vector of dividends with any lane outside the lane ranges (subnormal or tiny dividends
    or quotients, quotients near overflow, inf, NaN) branches to ``fdiv`` for that vector.
    A vector divide costs about 10 cycles per vector on recent x86, the fast path ~3 plus
    the range checks.
    """
    lanes = a.lanes
    low, high = _UNIFORM_DIVISOR_RANGE[d.scalar]
    f8 = np.dtype(np.float64)
    magnitude = call_intrinsic(em, "fabs", [d])
    above = instr(em, f"fcmp oge {d.scalar} {magnitude.ref}, {literal(low, f8)}", "i1", 1)
    below = instr(em, f"fcmp ole {d.scalar} {magnitude.ref}, {literal(high, f8)}", "i1", 1)
    safe = instr(em, f"and i1 {above.ref}, {below.ref}", "i1", 1)
    reciprocal = instr(em, f"fdiv {d.scalar} 1.0, {d.ref}", d.scalar, 1)
    fast, slow, join = em.label("div_fast"), em.label("div_slow"), em.label("div_join")
    em.line(f"br i1 {safe.ref}, label %{fast}, label %{slow}")

    em.start_block(fast)
    r, dv = splat(em, reciprocal, lanes), splat(em, d, lanes)
    q = instr(em, f"fmul {a.type} {a.ref}, {r.ref}", a.scalar, lanes)
    minus_q = instr(em, f"fneg {q.type} {q.ref}", a.scalar, lanes)
    residual = call_intrinsic(em, "fma", [minus_q, dv, a])
    corrected = call_intrinsic(em, "fma", [residual, r, q])
    # the per-row bounds on |a| (scalar work that LLVM hoists with the reciprocal)
    min_a, min_q, max_q = (literal(v, f8) for v in _UNIFORM_LANE_RANGE[d.scalar])
    scaled = instr(em, f"fmul {d.scalar} {magnitude.ref}, {min_q}", d.scalar, 1)
    lowest = call_intrinsic(em, "maxnum", [scaled, Val(min_a, d.scalar)])
    highest = instr(em, f"fmul {d.scalar} {magnitude.ref}, {max_q}", d.scalar, 1)
    abs_a = call_intrinsic(em, "fabs", [a])
    # ordered compares: a NaN lane fails them and so takes the divide
    in_range = binary(
        em,
        BinaryOp.AND,
        compare(em, "oge", abs_a, splat(em, lowest, lanes)),
        compare(em, "olt", abs_a, splat(em, highest, lanes)),
    )
    zero = compare(em, "oeq", a, constant(em, "0.0", a))
    exact = binary(em, BinaryOp.OR, in_range, zero)
    em.declare(f"declare i1 @llvm.vector.reduce.and.v{lanes}i1(<{lanes} x i1>)")
    every = instr(
        em, f"call i1 @llvm.vector.reduce.and.v{lanes}i1({exact.type} {exact.ref})", "i1", 1
    )
    refined = select(em, zero, q, corrected)
    fast_end = em.block
    em.line(f"br i1 {every.ref}, label %{join}, label %{slow}")

    em.start_block(slow)
    divided = instr(em, f"fdiv {a.type} {a.ref}, {splat(em, d, lanes).ref}", a.scalar, lanes)
    slow_end = em.block
    em.line(f"br label %{join}")

    em.start_block(join)
    return instr(
        em,
        f"phi {a.type} [ {refined.ref}, %{fast_end} ], [ {divided.ref}, %{slow_end} ]",
        a.scalar,
        lanes,
    )


def _int_divmod(em: Emitter, a: Val, b: Val) -> tuple[Val, Val]:
    """Floor division and modulo as NumPy does them: x // 0 == x % 0 == 0, MIN // -1 == MIN."""
    bits = int(a.scalar[1:])
    zero, one = constant(em, "0", a), constant(em, "1", a)
    is_zero = compare(em, "eq", b, zero)
    overflow = binary(
        em,
        BinaryOp.AND,
        compare(em, "eq", a, constant(em, str(-(1 << (bits - 1))), a)),
        compare(em, "eq", b, constant(em, "-1", a)),
    )
    unsafe = binary(em, BinaryOp.OR, is_zero, overflow)
    divisor = select(em, unsafe, one, b)
    quotient = instr(em, f"sdiv {a.type} {a.ref}, {divisor.ref}", a.scalar, a.lanes)
    remainder = instr(em, f"srem {a.type} {a.ref}, {divisor.ref}", a.scalar, a.lanes)
    signs_differ = compare(em, "slt", binary(em, BinaryOp.XOR, remainder, divisor), zero)
    adjust = binary(em, BinaryOp.AND, compare(em, "ne", remainder, zero), signs_differ)
    floor_q = select(em, adjust, binary(em, BinaryOp.SUB, quotient, one), quotient)
    floor_r = select(em, adjust, binary(em, BinaryOp.ADD, remainder, divisor), remainder)
    negated = binary(em, BinaryOp.SUB, zero, a)  # MIN // -1 wraps to MIN, as in NumPy
    q = select(em, is_zero, zero, select(em, overflow, negated, floor_q))
    r = select(em, unsafe, zero, floor_r)
    return q, r


def _float_mod(em: Emitter, a: Val, b: Val) -> tuple[Val, Val]:
    """NumPy's float remainder (sign of the divisor); also returns fmod for floordiv."""
    zero = constant(em, "0.0", a)
    fmod = instr(em, f"frem {a.type} {a.ref}, {b.ref}", a.scalar, a.lanes)
    nonzero = compare(em, "une", fmod, zero)
    signs_differ = binary(
        em, BinaryOp.NE, compare(em, "olt", b, zero), compare(em, "olt", fmod, zero)
    )
    shifted = select(
        em, binary(em, BinaryOp.AND, nonzero, signs_differ), binary(em, BinaryOp.ADD, fmod, b), fmod
    )
    signed_zero = call_intrinsic(em, "copysign", [zero, b])
    return select(em, nonzero, shifted, signed_zero), fmod


def _float_floordiv(em: Emitter, a: Val, b: Val) -> Val:
    """NumPy's float floor division (computed from fmod, as npy_divmod does)."""
    zero, one = constant(em, "0.0", a), constant(em, "1.0", a)
    _, fmod = _float_mod(em, a, b)
    div = instr(
        em, f"fdiv {a.type} {binary(em, BinaryOp.SUB, a, fmod).ref}, {b.ref}", a.scalar, a.lanes
    )
    nonzero = compare(em, "une", fmod, zero)
    signs_differ = binary(
        em, BinaryOp.NE, compare(em, "olt", b, zero), compare(em, "olt", fmod, zero)
    )
    div = select(
        em, binary(em, BinaryOp.AND, nonzero, signs_differ), binary(em, BinaryOp.SUB, div, one), div
    )
    floored = call_intrinsic(em, "floor", [div])
    round_up = compare(em, "ogt", binary(em, BinaryOp.SUB, div, floored), constant(em, "0.5", a))
    floored = select(em, round_up, binary(em, BinaryOp.ADD, floored, one), floored)
    quotient = instr(em, f"fdiv {a.type} {a.ref}, {b.ref}", a.scalar, a.lanes)
    result = select(
        em, compare(em, "une", div, zero), floored, call_intrinsic(em, "copysign", [zero, quotient])
    )
    return select(em, compare(em, "oeq", b, zero), quotient, result)


def cast(em: Emitter, x: Val, src_kind: str, dst_kind: str, dst_scalar: str) -> Val:
    """Convert between dtype kinds ('b', 'i', 'f') and widths, as NumPy's astype does."""
    if x.scalar == dst_scalar:
        return x
    lanes = x.lanes
    if dst_kind == "b":
        zero = constant(em, "0.0" if src_kind == "f" else "0", x)
        return instr(
            em,
            f"{'fcmp une' if src_kind == 'f' else 'icmp ne'} {x.type} {x.ref}, {zero.ref}",
            "i1",
            lanes,
        )
    dst = vector_type(dst_scalar, lanes)
    if src_kind == "b":
        op = "uitofp" if dst_kind == "f" else "zext"
    elif src_kind == "i" and dst_kind == "f":
        op = "sitofp"
    elif src_kind == "f" and dst_kind == "i":
        # saturating, so out-of-range values are defined (NumPy leaves them unspecified)
        name = f"fptosi.sat.{intrinsic_suffix(dst_scalar, lanes)}"
        em.declare(f"declare {dst} @llvm.{name}.{intrinsic_suffix(x.scalar, lanes)}({x.type})")
        return instr(
            em,
            f"call {dst} @llvm.{name}.{intrinsic_suffix(x.scalar, lanes)}({x.type} {x.ref})",
            dst_scalar,
            lanes,
        )
    elif src_kind == "f":
        op = "fpext" if dst_scalar == "double" else "fptrunc"
    else:
        op = "sext" if int(dst_scalar[1:]) > int(x.scalar[1:]) else "trunc"
    return instr(em, f"{op} {x.type} {x.ref} to {dst}", dst_scalar, lanes)


def ipow_helpers() -> str:
    """Definitions of integer power (exponent < 0 gives 0, NumPy raises instead)."""
    text = []
    for ty in ("i32", "i64"):
        text.append(
            f"""define internal {ty} @jitune_ipow_{ty}({ty} %base, {ty} %exp) alwaysinline {{
entry:
  %neg = icmp slt {ty} %exp, 0
  br i1 %neg, label %done0, label %loop
loop:
  %r = phi {ty} [1, %entry], [%r2, %loop]
  %b = phi {ty} [%base, %entry], [%b2, %loop]
  %e = phi {ty} [%exp, %entry], [%e2, %loop]
  %bit = and {ty} %e, 1
  %odd = icmp ne {ty} %bit, 0
  %rb = mul {ty} %r, %b
  %r2 = select i1 %odd, {ty} %rb, {ty} %r
  %b2 = mul {ty} %b, %b
  %e2 = ashr {ty} %e, 1
  %more = icmp sgt {ty} %e2, 0
  br i1 %more, label %loop, label %done
done:
  ret {ty} %r2
done0:
  ret {ty} 0
}}"""
        )
    return "\n".join(text)
