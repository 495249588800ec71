"""Vectorized float32 math in LLVM IR: exp, log, tanh, sin, cos.

libm has no vector entry points LLVM can call here, so ``llvm.exp`` on a vector becomes one
scalar call per lane. These are polynomial forms after range reduction (Cephes' expf, logf,
tanhf, sinf and cosf coefficients). Measured against NumPy over the float32 range (tests in
tests/test_vector_math.py): exp, log and tanh within 3 ulp, sin and cos within 3 ulp for
|x| <= 2048 (2.5 measured; NumPy's own float32 sin: 1.5); larger sin/cos arguments branch to
libm lane by lane, outside the common path, because the three-part reduction of x by pi/4
loses accuracy near the zeros of large arguments (9 ulp at 8192).

On AVX-512 CPUs exp's final scaling by 2**n is one ``vscalefps`` (the renderer passes the
target's features as ``Emitter.has``); the values are bit for bit those of the portable form.
"""

from __future__ import annotations

from collections.abc import Callable

from ..ir.ops import BinaryOp, UnaryOp
from .llvm_ops import (
    Emitter,
    Val,
    binary,
    call_intrinsic,
    call_scalar_function,
    compare,
    constant,
    instr,
    select,
)
from .llvm_types import literal, vector_type

_EXP_POLY = (
    1.9875691500e-4,
    1.3981999507e-3,
    8.3334519073e-3,
    4.1665795894e-2,
    1.6666665459e-1,
    5.0000001201e-1,
)
_TANH_POLY = (
    -5.70498872745e-3,
    2.06390887954e-2,
    -5.37397155531e-2,
    1.33314422036e-1,
    -3.33332819422e-1,
)


def _f32(em: Emitter, value: float, like: Val) -> Val:
    return constant(em, literal(value, "float32"), like)


def _horner(em: Emitter, coefficients: tuple[float, ...], x: Val) -> Val:
    result = _f32(em, coefficients[0], x)
    for c in coefficients[1:]:
        result = binary(em, BinaryOp.ADD, binary(em, BinaryOp.MUL, result, x), _f32(em, c, x))
    return result


def _pow2_int(em: Emitter, n: Val) -> Val:
    """2**n as float32 for an i32 ``n`` in [-126, 127]."""
    biased = binary(em, BinaryOp.ADD, n, constant(em, "127", n))
    shifted = instr(
        em, f"shl {biased.type} {biased.ref}, {constant(em, '23', n).ref}", "i32", n.lanes
    )
    return instr(
        em,
        f"bitcast {shifted.type} {shifted.ref} to {vector_type('float', n.lanes)}",
        "float",
        n.lanes,
    )


def exp_f32(em: Emitter, x: Val) -> Val:
    """exp(x) for float32 by range reduction to [-ln2/2, ln2/2] and a degree-6 polynomial."""
    clamped = call_intrinsic(
        em, "maxnum", [call_intrinsic(em, "minnum", [x, _f32(em, 88.8, x)]), _f32(em, -104.0, x)]
    )
    scaled = binary(
        em,
        BinaryOp.ADD,
        binary(em, BinaryOp.MUL, clamped, _f32(em, 1.44269504088896341, x)),
        _f32(em, 0.5, x),
    )
    n_float = call_intrinsic(em, "floor", [scaled])
    r = binary(
        em, BinaryOp.SUB, clamped, binary(em, BinaryOp.MUL, n_float, _f32(em, 0.693359375, x))
    )
    r = binary(em, BinaryOp.SUB, r, binary(em, BinaryOp.MUL, n_float, _f32(em, -2.12194440e-4, x)))
    r2 = binary(em, BinaryOp.MUL, r, r)
    y = binary(em, BinaryOp.MUL, _horner(em, _EXP_POLY, r), r2)
    y = binary(em, BinaryOp.ADD, binary(em, BinaryOp.ADD, y, r), _f32(em, 1.0, x))
    if x.lanes == 16 and em.has("avx512f"):
        # one vscalefps computes y * 2**n with a single rounding, inf past the float32 range
        # and subnormals below it: the same values as the portable form below, in one
        # instruction instead of ten (softmax: 22 instead of 33 per vector of exp)
        em.declare(
            "declare <16 x float> @llvm.x86.avx512.mask.scalef.ps.512"
            "(<16 x float>, <16 x float>, <16 x float>, i16, i32)"
        )
        y = instr(
            em,
            "call <16 x float> @llvm.x86.avx512.mask.scalef.ps.512"
            f"({y.type} {y.ref}, {n_float.type} {n_float.ref}, {y.type} poison, i16 -1, i32 4)",
            "float",
            16,
        )
    else:
        n = instr(
            em,
            f"fptosi {n_float.type} {n_float.ref} to {vector_type('i32', x.lanes)}",
            "i32",
            x.lanes,
        )
        half = instr(em, f"ashr {n.type} {n.ref}, {constant(em, '1', n).ref}", "i32", x.lanes)
        rest = binary(em, BinaryOp.SUB, n, half)
        # two factors of 2**(n/2), so results in the subnormal range are still right
        y = binary(
            em, BinaryOp.MUL, binary(em, BinaryOp.MUL, y, _pow2_int(em, half)), _pow2_int(em, rest)
        )
        overflow = compare(em, "ogt", x, _f32(em, 88.72283935546875, x))
        y = select(em, overflow, _f32(em, float("inf"), x), y)
    return select(em, compare(em, "uno", x, x), x, y)


def tanh_f32(em: Emitter, x: Val) -> Val:
    """tanh(x) for float32: an odd polynomial near 0, 1 - 2 / (exp(2|x|) + 1) elsewhere.

    The division is ``fdiv arcp ninf``, which LLVM turns into a reciprocal estimate and one
    Newton step (about 2**-28 relative error with AVX-512's rcp14) instead of a vector
    divide that costs as much as the rest of tanh together. ``ninf`` is honest because the
    exponent is clamped at 40 (tanh is 1 in float32 from 9 on), so ``exp(2|x|) + 1`` stays
    finite; NaN is passed through explicitly since the clamp would swallow it.
    """
    magnitude = call_intrinsic(em, "fabs", [x])
    z = binary(em, BinaryOp.MUL, x, x)
    small = binary(
        em,
        BinaryOp.ADD,
        binary(em, BinaryOp.MUL, binary(em, BinaryOp.MUL, _horner(em, _TANH_POLY, z), z), x),
        x,
    )
    doubled = binary(em, BinaryOp.MUL, magnitude, _f32(em, 2.0, x))
    e = exp_f32(em, call_intrinsic(em, "minnum", [doubled, _f32(em, 40.0, x)]))
    denominator = binary(em, BinaryOp.ADD, e, _f32(em, 1.0, x))
    quotient = instr(
        em,
        f"fdiv arcp ninf {e.type} {_f32(em, 2.0, x).ref}, {denominator.ref}",
        "float",
        x.lanes,
    )
    large = binary(em, BinaryOp.SUB, _f32(em, 1.0, x), quotient)
    chosen = select(em, compare(em, "olt", magnitude, _f32(em, 0.625, x)), small, large)
    # x's sign on both branches: the polynomial alone turns -0 into +0
    result = call_intrinsic(em, "copysign", [chosen, x])
    return select(em, compare(em, "uno", x, x), x, result)


_LOG_POLY = (
    7.0376836292e-2,
    -1.1514610310e-1,
    1.1676998740e-1,
    -1.2420140846e-1,
    1.4249322787e-1,
    -1.6668057665e-1,
    2.0000714765e-1,
    -2.4999993993e-1,
    3.3333331174e-1,
)


def _i32(em: Emitter, value: int, like: Val) -> Val:
    return constant(em, str(value), Val("0", "i32", like.lanes))


def _bitcast(em: Emitter, x: Val, scalar: str) -> Val:
    return instr(em, f"bitcast {x.type} {x.ref} to {vector_type(scalar, x.lanes)}", scalar, x.lanes)


def log_f32(em: Emitter, x: Val) -> Val:
    """log(x) for float32: x = m * 2**e with m in [sqrt(1/2), sqrt(2)), a degree-9 polynomial
    in m - 1. Subnormals are scaled up first; log(0) = -inf, log(<0) = nan, log(inf) = inf."""
    tiny = compare(em, "olt", x, _f32(em, 1.17549435e-38, x))
    scaled = select(em, tiny, binary(em, BinaryOp.MUL, x, _f32(em, 8388608.0, x)), x)
    bits = _bitcast(em, scaled, "i32")
    shifted = instr(em, f"lshr {bits.type} {bits.ref}, {_i32(em, 23, x).ref}", "i32", x.lanes)
    exponent = binary(
        em, BinaryOp.SUB, binary(em, BinaryOp.AND, shifted, _i32(em, 255, x)), _i32(em, 126, x)
    )
    exponent = select(em, tiny, binary(em, BinaryOp.SUB, exponent, _i32(em, 23, x)), exponent)
    mantissa_bits = binary(
        em,
        BinaryOp.OR,
        binary(em, BinaryOp.AND, bits, _i32(em, -2139095041, x)),
        _i32(em, 0x3F000000, x),
    )  # keep sign/mantissa, exponent of 0.5
    m = _bitcast(em, mantissa_bits, "float")  # in [0.5, 1)
    e = instr(em, f"sitofp {exponent.type} {exponent.ref} to {x.type}", "float", x.lanes)
    small = compare(em, "olt", m, _f32(em, 0.707106781186547524, x))
    e = select(em, small, binary(em, BinaryOp.SUB, e, _f32(em, 1.0, x)), e)
    m = select(em, small, binary(em, BinaryOp.ADD, m, m), m)
    m = binary(em, BinaryOp.SUB, m, _f32(em, 1.0, x))
    z = binary(em, BinaryOp.MUL, m, m)
    y = binary(em, BinaryOp.MUL, binary(em, BinaryOp.MUL, _horner(em, _LOG_POLY, m), m), z)
    y = binary(em, BinaryOp.ADD, y, binary(em, BinaryOp.MUL, e, _f32(em, -2.12194440e-4, x)))
    y = binary(em, BinaryOp.SUB, y, binary(em, BinaryOp.MUL, z, _f32(em, 0.5, x)))
    y = binary(
        em,
        BinaryOp.ADD,
        binary(em, BinaryOp.ADD, m, y),
        binary(em, BinaryOp.MUL, e, _f32(em, 0.693359375, x)),
    )
    y = select(em, compare(em, "oeq", x, _f32(em, 0.0, x)), _f32(em, float("-inf"), x), y)
    y = select(em, compare(em, "oeq", x, _f32(em, float("inf"), x)), x, y)
    invalid = compare(em, "ult", x, _f32(em, 0.0, x))  # negative or nan
    return select(em, invalid, _f32(em, float("nan"), x), y)


_SIN_POLY = (-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1)
_COS_POLY = (2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2)
_LARGE = 2048.0


def _sincos_f32(em: Emitter, x: Val, cosine: bool) -> Val:
    """sin or cos for float32: reduce |x| by pi/4 in three parts, pick the sin or cos
    polynomial per octant. Lanes with |x| > 2048 are recomputed with libm (rarely taken)."""
    magnitude = call_intrinsic(em, "fabs", [x])
    j_float = call_intrinsic(
        em, "floor", [binary(em, BinaryOp.MUL, magnitude, _f32(em, 1.27323954473516, x))]
    )
    j = instr(
        em, f"fptosi {j_float.type} {j_float.ref} to {vector_type('i32', x.lanes)}", "i32", x.lanes
    )
    odd = compare(em, "ne", binary(em, BinaryOp.AND, j, _i32(em, 1, x)), _i32(em, 0, x))
    j = select(em, odd, binary(em, BinaryOp.ADD, j, _i32(em, 1, x)), j)
    y = select(em, odd, binary(em, BinaryOp.ADD, j_float, _f32(em, 1.0, x)), j_float)
    r = magnitude
    for part in (0.78515625, 2.4187564849853515625e-4, 3.77489497744594108e-8):
        r = binary(em, BinaryOp.SUB, r, binary(em, BinaryOp.MUL, y, _f32(em, part, x)))
    octant = binary(em, BinaryOp.AND, j, _i32(em, 7, x))
    if cosine:
        octant = binary(
            em, BinaryOp.AND, binary(em, BinaryOp.ADD, octant, _i32(em, 2, x)), _i32(em, 7, x)
        )
    flip = compare(em, "sgt", octant, _i32(em, 3, x))
    octant = select(em, flip, binary(em, BinaryOp.SUB, octant, _i32(em, 4, x)), octant)
    z = binary(em, BinaryOp.MUL, r, r)
    sin_part = binary(
        em,
        BinaryOp.ADD,
        binary(em, BinaryOp.MUL, binary(em, BinaryOp.MUL, _horner(em, _SIN_POLY, z), z), r),
        r,
    )
    cos_part = binary(
        em,
        BinaryOp.ADD,
        binary(
            em,
            BinaryOp.SUB,
            binary(em, BinaryOp.MUL, binary(em, BinaryOp.MUL, _horner(em, _COS_POLY, z), z), z),
            binary(em, BinaryOp.MUL, z, _f32(em, 0.5, x)),
        ),
        _f32(em, 1.0, x),
    )
    use_cos = binary(
        em,
        BinaryOp.OR,
        compare(em, "eq", octant, _i32(em, 1, x)),
        compare(em, "eq", octant, _i32(em, 2, x)),
    )
    value = select(em, use_cos, cos_part, sin_part)
    negative = flip
    if not cosine:  # sin is odd: the sign of x flips the result too
        # the sign bit rather than x < 0, so that sin(-0) is -0
        sign = compare(em, "slt", _bitcast(em, x, "i32"), _i32(em, 0, x))
        negative = binary(em, BinaryOp.XOR, flip, sign)
    value = select(
        em, negative, instr(em, f"fneg {value.type} {value.ref}", "float", x.lanes), value
    )
    large = compare(em, "ugt", magnitude, _f32(em, _LARGE, x))  # also nan and inf
    return _libm_where(em, large, x, value, "cosf" if cosine else "sinf")


def _libm_where(em: Emitter, mask: Val, x: Val, value: Val, function: str) -> Val:
    """``value`` with the lanes in ``mask`` replaced by ``function(x)`` from libm, computed
    only if some lane needs it (a branch around the scalar calls)."""
    if mask.lanes == 1:
        any_lane = mask
    else:
        em.declare(f"declare i1 @llvm.vector.reduce.or.v{mask.lanes}i1({mask.type})")
        any_lane = instr(
            em, f"call i1 @llvm.vector.reduce.or.v{mask.lanes}i1({mask.type} {mask.ref})", "i1", 1
        )
    before = em.block
    slow, merge = em.label("libm"), em.label("libm_done")
    em.line(f"br i1 {any_lane.ref}, label %{slow}, label %{merge}")
    em.start_block(slow)
    exact = call_scalar_function(em, function, [x])
    patched = select(em, mask, exact, value)
    slow_end = em.block
    em.line(f"br label %{merge}")
    em.start_block(merge)
    return instr(
        em,
        f"phi {value.type} [ {value.ref}, %{before} ], [ {patched.ref}, %{slow_end} ]",
        "float",
        x.lanes,
    )


def sin_f32(em: Emitter, x: Val) -> Val:
    return _sincos_f32(em, x, cosine=False)


def cos_f32(em: Emitter, x: Val) -> Val:
    return _sincos_f32(em, x, cosine=True)


FLOAT32: dict[UnaryOp, Callable[[Emitter, Val], Val]] = {
    UnaryOp.EXP: exp_f32,
    UnaryOp.TANH: tanh_f32,
    UnaryOp.LOG: log_f32,
    UnaryOp.SIN: sin_f32,
    UnaryOp.COS: cos_f32,
}
"""Unary ops computed with these forms for float32 (scalars and vectors alike)."""
