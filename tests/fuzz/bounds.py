"""How far a correct implementation may be from NumPy: an error bound per element.

Two correct implementations of a program differ because floating-point rounding is not
unique across them: reductions and contractions add in another order, transcendental
functions round differently in the last few bits, ``a * b + c`` may be fused. NumPy's own
result is one of the correct answers. :func:`error_bounds` propagates a first-order bound on
the absolute difference through the program, element by element, using NumPy's values:

- inputs and constants are exact (bound 0); IEEE ``+ - * /`` and ``sqrt`` of exact operands
  are correctly rounded in both implementations (bound 0: bit-identical results);
- a rounding op on inexact operands adds one ulp of its result, a transcendental one four;
- sums and contractions add ``n * eps * sum|terms|`` (n terms in any order) plus the
  propagated operand bounds (multilinear: the contraction of |values| and bounds);
- discontinuous ops (comparisons, floor, casts to int, sign, argmax) give an exact result
  where the operands' bounds cannot move them across the discontinuity, else "unknown";
- "unknown" is an infinite bound: that element is not compared (and ints/bools derived from
  it are unknown too). Results near overflow with a nonzero bound are unknown as well.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np

from .program import Program

_NAME = re.compile(r"\b[av]\d+\b")
TRANSCENDENTAL = {"exp", "log", "log1p", "expm1", "tanh", "sin", "cos", "power"}


def _f64(value: Any) -> np.ndarray:
    return np.asarray(value).astype(np.float64)


def _finite_abs(value: Any) -> np.ndarray:
    magnitude = np.abs(_f64(value))
    return np.where(np.isfinite(magnitude), magnitude, 0.0)


def _ulp(value: Any) -> np.ndarray:
    """One unit in the last place of each element, in the value's own float dtype (0 for
    non-floats and non-finite values)."""
    array = np.asarray(value)
    if array.dtype.kind != "f":
        return np.zeros(array.shape)
    spacing = np.spacing(np.abs(array)).astype(np.float64)
    return np.where(np.isfinite(spacing), spacing, 0.0)


def _eps(dtype: Any) -> float:
    dt = np.dtype(dtype)
    return float(np.finfo(dt).eps) if dt.kind == "f" else 0.0


def _operand_error(expr: str, env: dict[str, Any], errors: dict[str, np.ndarray]) -> np.ndarray:
    """The bound of an operand written as ``expr``: a value's own bound, 0 for a constant,
    and for a small expression of values (``(a1 % 5)``) unknown unless they are exact."""
    if expr in errors:
        return errors[expr]
    shape = np.shape(eval(expr, env))  # noqa: S307 - our own generated text
    inexact = any(np.any(errors[n] > 0) for n in _NAME.findall(expr) if n in errors)
    return np.full(shape, np.inf if inexact else 0.0)


def _zero_sign_open(result: Any) -> np.ndarray:
    """The sign of a zero maximum or minimum is not specified (max(-0.0, 0.0) may be
    either): a zero result gets the least nonzero bound, which waives the sign check."""
    array = np.asarray(result)
    if array.dtype.kind != "f":
        return np.zeros(array.shape)
    return np.where(array == 0, float(np.finfo(array.dtype).smallest_subnormal), 0.0)


def _discontinuous(moved: np.ndarray, error: np.ndarray) -> np.ndarray:
    """0 where the result is exact, inf where an inexact operand may move it (``moved``)."""
    return np.where((error > 0) & moved, np.inf, 0.0)


def _elementwise(op: str, values: list[Any], errors: list[np.ndarray], result: Any) -> np.ndarray:
    """The bound of a ufunc-like result from its operands' values and bounds."""
    shape = np.shape(result)
    x = [np.broadcast_to(_f64(v), shape) for v in values]
    e = [np.broadcast_to(err, shape) for err in errors]
    out = _f64(result)
    ulp = _ulp(result)
    inexact = np.maximum.reduce(e) if e else np.zeros(shape)
    kind = np.asarray(result).dtype.kind
    rounding = np.where(inexact > 0, ulp, 0.0)
    with np.errstate(all="ignore"):
        if kind != "f" and op not in {
            "equal", "not_equal", "less", "less_equal", "greater", "greater_equal", "isnan",
            "logical_not", "logical_and", "logical_or", "logical_xor", "sign", "astype",
        }:  # fmt: skip
            return np.where(inexact > 0, np.inf, 0.0)  # integer arithmetic: exact or unknown
        if op in ("negative", "positive", "absolute", "fabs"):
            return inexact.copy()
        if op in ("maximum", "minimum", "clip"):
            return inexact + _zero_sign_open(result)
        if op in ("add", "subtract"):
            return e[0] + e[1] + rounding
        if op == "multiply":
            return np.abs(x[0]) * e[1] + np.abs(x[1]) * e[0] + e[0] * e[1] + rounding
        if op == "square":
            return 2 * np.abs(x[0]) * e[0] + e[0] ** 2 + rounding
        if op in ("true_divide", "reciprocal"):
            num, den = (x[0], x[1]) if op == "true_divide" else (np.ones(shape), x[0])
            en, ed = (e[0], e[1]) if op == "true_divide" else (np.zeros(shape), e[0])
            bound = (en + np.abs(out) * ed) / (np.abs(den) - ed) + rounding
            return np.where(ed >= np.abs(den), np.inf, bound) + 0 * num
        if op == "sqrt":
            root = np.sqrt(np.abs(x[0]))
            return np.minimum(np.sqrt(e[0]), e[0] / np.where(root > 0, root, np.inf)) + rounding
        if op in ("exp", "expm1"):
            return (np.abs(out) + (op == "expm1")) * np.expm1(e[0]) + 4 * ulp
        if op == "log":
            return np.where(e[0] >= np.abs(x[0]), np.inf, -np.log1p(-e[0] / np.abs(x[0]))) + 4 * ulp
        if op == "log1p":
            base = np.abs(1 + x[0])
            return np.where(e[0] >= base, np.inf, e[0] / (base - e[0])) + 4 * ulp
        if op in ("tanh", "sin", "cos"):
            return e[0] + 4 * ulp
        if op == "power":
            base = np.abs(x[0])
            moved = np.abs(out) * (np.abs(x[1]) * e[0] / base + np.abs(np.log(base)) * e[1])
            bound = np.where(inexact > 0, np.where(e[0] >= base, np.inf, 2 * moved), 0.0)
            return bound + 4 * ulp
        if op in ("floor", "ceil"):
            fn = np.floor if op == "floor" else np.ceil
            return _discontinuous(fn(x[0] - e[0]) != fn(x[0] + e[0]), e[0])
        if op == "sign":
            return _discontinuous(np.abs(x[0]) <= e[0], e[0])
        if op in ("floor_divide", "remainder"):
            return np.where(inexact > 0, np.inf, ulp)  # exact operands: NumPy's algorithm
        if op in ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal"):
            gap, moved = np.abs(x[0] - x[1]), e[0] + e[1]
            # a NaN operand that is inexact may be any number: the comparison is open
            return _discontinuous((gap <= moved) | (np.isnan(gap) & (moved > 0)), inexact)
        if op in ("logical_not", "logical_and", "logical_or", "logical_xor", "astype"):
            # (written so that a NaN operand with an infinite bound counts as near zero)
            near_zero = np.logical_or.reduce([~(np.abs(v) > err) for v, err in zip(x, e)])
            return _discontinuous(near_zero, inexact)
        if op == "isnan":
            return np.where(inexact > 0, np.inf, 0.0)
        if op == "where":
            return np.where(e[0] > 0, np.inf, np.where(x[0] != 0, e[1], e[2]))
    return np.where(inexact > 0, np.inf, 0.0)  # anything else: exact, or unknown


def _axes(axis: Any, ndim: int) -> list[int]:
    """The reduced axes, non-negative (None: all)."""
    if axis is None:
        return list(range(ndim))
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    return [int(a) % max(ndim, 1) for a in items] if ndim else []


def _reduction(node: Any, value: Any, error: np.ndarray, result: Any) -> np.ndarray:
    name = node.param("reduction")
    axis = node.param("axis")
    array = np.asarray(value)
    shape = np.shape(result)
    n = max(1, array.size // max(1, int(np.prod(shape))))
    keep = dict(axis=axis, keepdims=True)

    def fit(bound: Any) -> np.ndarray:
        return np.broadcast_to(np.asarray(bound), np.shape(np.sum(array, **keep))).reshape(shape)

    with np.errstate(all="ignore"):
        worst = np.max(error, **keep, initial=0.0)
        if name in ("argmax", "argmin"):
            return fit(np.where(worst > 0, np.inf, 0.0))
        if name in ("max", "min"):
            return fit(worst) + _zero_sign_open(result)
        kind = np.asarray(result).dtype.kind
        huge = kind in "iu" and np.any(np.abs(_f64(result)) >= 2.0**62)
        if (
            kind != "f"
            and name in ("mean", "var", "std")
            and (huge or 0 in [array.shape[d] for d in _axes(axis, array.ndim)])
        ):
            # (and a quotient near the integer's range: its float-to-int cast may overflow)
            # an empty mean in an integer dtype is 0 / 0 = nan cast to the integer: a value
            # the C cast leaves unspecified (INT_MIN on x86 NumPy)
            return fit(np.full(np.shape(np.sum(array, **keep)), np.inf))
        if kind != "f":
            if array.dtype.kind == "f" and kind in "iu":
                # an integer dtype= casts each float term first: NaN, inf and values out of
                # the integer's range convert to something unspecified (NumPy warns)
                info = np.iinfo(np.asarray(result).dtype)
                wild = ~(np.abs(_f64(array)) < min(float(info.max), 2.0**62))
                worst = np.maximum(worst, np.max(np.where(wild, np.inf, 0.0), **keep, initial=0.0))
            return fit(np.where(worst > 0, np.inf, 0.0))
        eps = _eps(np.asarray(result).dtype)
        magnitude = np.sum(_finite_abs(array), **keep)
        summed = np.sum(error, **keep) + n * eps * magnitude
        if name == "sum":
            return fit(summed) + _ulp(result)
        if name == "mean":
            return fit(summed / n) + 2 * _ulp(result)
        if name == "prod":
            size = np.abs(_f64(np.prod(array, **keep)))
            relative = np.sum(
                error / np.where(np.abs(_f64(array)) > 0, np.abs(_f64(array)), np.nan), **keep
            )
            bound = size * (np.nan_to_num(relative, nan=np.inf, posinf=np.inf) + 2 * n * eps)
            return fit(np.where(worst > 0, bound, size * 2 * n * eps)) + _ulp(result)
        # var and std: the spread of the terms and the bound of the mean enter twice
        mean = np.mean(_f64(array), **keep)
        spread = np.mean(np.abs(_f64(array) - mean), **keep)
        square = np.mean(_finite_abs(array) ** 2, **keep)
        var_bound = 2 * spread * 2 * worst + 4 * worst**2 + 4 * n * eps * square
        ddof = 0
        match = re.search(r"ddof=(\d)", node.expr)
        if match:
            ddof = int(match.group(1))
        var_bound = var_bound * n / max(n - ddof, 1)
        if name == "var":
            return fit(var_bound) + 2 * _ulp(result)
        std = np.sqrt(np.abs(_f64(result))).reshape(shape)  # |result| is std, sqrt for below
        root = _f64(result).reshape(shape)
        # |sqrt(a) - sqrt(b)| is at most sqrt(|a - b|), and at most |a - b| / sqrt(b) when
        # NumPy's std sqrt(b) is nonzero (a zero std must not make that bound 0: 1e30
        # repeated has std 0 or one ulp of 1e30, by the order of the mean's sum)
        relative = fit(var_bound) / np.where(root > 0, root, np.nan)
        bound = np.minimum(np.sqrt(fit(var_bound)), np.where(root > 0, relative, np.inf))
        return bound + 2 * _ulp(result) + 0 * std


def _contraction(
    node: Any, env: dict[str, Any], errors: dict[str, np.ndarray], result: Any
) -> np.ndarray:
    """Multilinear: sum over operands of the contraction with that operand replaced by its
    bound and the others by |values|, plus the rounding of n terms."""
    names = list(node.args)
    kind = np.asarray(result).dtype.kind
    if kind != "f":
        exact = all(not np.any(errors[n] > 0) for n in names)
        return np.full(np.shape(result), 0.0 if exact else np.inf)
    swapped = dict(env)
    for name in names:
        swapped[name] = _finite_abs(env[name])
    magnitude = _f64(eval(node.expr, swapped))  # noqa: S307 - our own generated text
    bound = np.zeros(np.shape(result))
    for name in names:
        if np.any(errors[name] > 0):
            trial = dict(swapped)
            trial[name] = errors[name]
            bound = bound + _f64(eval(node.expr, trial))  # noqa: S307
    n = max([np.size(env[name]) for name in names] + [1])
    eps = _eps(np.asarray(result).dtype)
    return bound + 2 * n * eps * magnitude + _ulp(result) + _order_open(node, env, result)


def _touches(node: Any, env: dict[str, Any], which: Any) -> np.ndarray:
    """Per result element: whether some term of the contraction has an operand element for
    which ``which(values)`` holds (each operand in turn marked, the others all ones)."""
    names = list(node.args)
    ones = {name: np.ones(np.shape(env[name])) for name in names}
    count = np.zeros(np.shape(eval(node.expr, {**env, **ones})))  # noqa: S307
    for name in names:
        marked = dict(env, **ones)
        marked[name] = np.asarray(which(_f64(env[name])), np.float64)
        count = count + _f64(eval(node.expr, marked))  # noqa: S307
    return count > 0


def _order_open(node: Any, env: dict[str, Any], result: Any) -> np.ndarray:
    """Whether inf or nan comes out of a contraction with non-finite operands depends on the
    order NumPy multiplies and adds, and NumPy's einsum picks it by memory layout: an inner
    loop over a stride-0 operand factors it out of the sum (s * sum(x), so 'i,->' of
    x = [1, 0] and s = inf is inf), other loops multiply first (inf + 0 * inf is nan); the
    same values, strided, give nan. Likewise 'd,ze->dz' of inf and a row [-9, 18] is
    inf * 9 = inf factored, -inf + inf = nan multiplied first. So a non-finite result whose
    terms meet a non-finite operand element is open. A finite result can be open too: the
    BLAS behind tensordot and matmul skips a zero factor, so 0 * inf counts as 0 there
    (tensordot([False], [x, inf], axes=0) is [0, 0] in NumPy, [0, nan] in IEEE arithmetic,
    seed 424712): a result whose terms meet a non-finite element is open either way."""
    touched = _touches(node, env, lambda v: ~np.isfinite(v))
    return np.where(touched, np.inf, 0.0)


def _update_bound(
    node: Any, env: dict[str, Any], errors: dict[str, np.ndarray], result: Any
) -> np.ndarray:
    """``c = base.copy(); c[key] op= value``: the base's bound outside the region; inside,
    the value's (plus the base's for an augmented operator, plus a rounding), unknown for a
    non-float result of inexact operands (the cast can step)."""
    base = node.param("base")
    bound = np.array(np.broadcast_to(errors[base], np.shape(result)), dtype=np.float64)
    value = errors[node.expr] if node.expr in errors else np.zeros(())
    marked = np.zeros(np.shape(result), dtype=bool)
    region = np.zeros(np.shape(result))
    scope = {"marked": marked, "region": region, "value": value, "np": np}
    exec(f"marked[{node.param('key')}] = True", scope)  # noqa: S102 - our own text
    try:
        exec(f"region[{node.param('key')}] = value", scope)  # noqa: S102
    except ValueError:  # a (1,) value into one element: NumPy takes its single element
        scope["value"] = np.max(value, initial=0.0)
        exec(f"region[{node.param('key')}] = value", scope)  # noqa: S102
    if node.param("assign") != "=":
        region = region + bound
    if np.asarray(result).dtype.kind == "f":
        region = region + _ulp(result)
    else:
        region = np.where(region > 0, np.inf, 0.0)
    return np.where(marked, region, bound)


class _Key:
    """``_Key()[key]`` is ``key`` itself: the key of an indexing expression, as evaluated."""

    def __getitem__(self, key: Any) -> Any:
        return key


def error_bounds(program: Program, env: dict[str, Any]) -> dict[str, np.ndarray]:
    """A bound per element of every value of ``program`` (``env``: its NumPy values, from
    ``Program.evaluate``); inf marks elements whose value is not determined.

    Each statement's bound is computed from the values as they were when it ran: the program
    runs again here statement by statement, since ``env`` holds an input updated in place
    only as it ends."""
    errors: dict[str, np.ndarray] = {
        i.name: np.zeros(np.shape(env[i.name])) for i in program.inputs
    }
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for node, env in program.steps(program.arguments()):  # noqa: B020 - as it was then
            result = env[node.name]
            if node.op == "update":
                bound = _update_bound(node, env, errors, result)
            elif node.op == "view":
                swapped = dict(env)
                swapped.update({n: errors[n] for n in node.args})
                bound = _f64(eval(node.expr, swapped))  # noqa: S307
            elif node.op == "gather":
                # the base's bounds, gathered the same way; an index that is not determined
                # exactly leaves every gathered element open
                base = node.args[0]
                key = eval("_key" + node.expr[len(base) :], {**env, "_key": _Key()})  # noqa: S307
                bound = _f64(errors[base][key])
                if any(np.any(errors[n] > 0) for n in node.args[1:] if n != node.args[0]):
                    bound = np.full(np.shape(result), np.inf)
            elif node.op == "fill":
                bound = np.zeros(np.shape(result))
                for operand in node.args[1:]:
                    error = errors[operand]
                    # full_like's copyto drops leading axes of extent 1 the output lacks
                    extra = error.ndim - bound.ndim
                    if extra > 0:
                        error = error.reshape(error.shape[extra:])
                    bound = bound + np.broadcast_to(error, bound.shape)
                if np.asarray(result).dtype.kind != "f":
                    bound = np.where(bound > 0, np.inf, 0.0)
                if "empty_like" in node.expr:
                    bound = np.full(np.shape(result), np.inf)  # NumPy leaves it uninitialized
            elif node.op == "reduce":
                bound = _reduction(node, env[node.args[0]], errors[node.args[0]], result)
            elif node.op == "contract":
                bound = _contraction(node, env, errors, result)
            else:
                operands = node.param("operands", node.args)
                values = [eval(o, env) for o in operands]  # noqa: S307
                bounds = [_operand_error(o, env, errors) for o in operands]
                bound = _elementwise(node.op, values, bounds, result)
                if node.op == "astype":
                    source = np.asarray(values[0]).dtype.kind
                    target = np.asarray(result).dtype.kind
                    if source == "f" and target == "f":
                        bound = bounds[0] + np.where(bounds[0] > 0, _ulp(result), 0.0)
                    elif source == "f" and target == "i":
                        moved = np.trunc(_f64(values[0]) - bounds[0]) != np.trunc(
                            _f64(values[0]) + bounds[0]
                        )
                        info = np.iinfo(np.asarray(result).dtype)
                        # NaN, inf and out-of-range values convert to something unspecified
                        wild = ~(np.abs(_f64(values[0])) < min(float(info.max), 2.0**62))
                        bound = np.where(wild, np.inf, _discontinuous(moved, bounds[0]))
                    elif target != "f":
                        bound = np.where(
                            np.broadcast_to(bounds[0], np.shape(result)) > 0, np.inf, 0.0
                        )
                    else:
                        bound = np.broadcast_to(bounds[0], np.shape(result)).copy()
            bound = np.broadcast_to(
                np.nan_to_num(np.asarray(bound, np.float64), nan=np.inf, posinf=np.inf),
                np.shape(result),
            )
            value = _f64(result)
            if np.asarray(result).dtype.kind == "f":
                top = float(np.finfo(np.asarray(result).dtype).max)
                # near overflow (or already inf/nan from inexact operands): inf or not is open
                bound = np.where((bound > 0) & ~(np.abs(value) + bound < top), np.inf, bound)
            errors[node.name] = np.array(bound)
            if node.op == "update" and node.param("argument"):
                errors[node.param("base")] = errors[node.name]  # later reads see the update
    return errors
