"""Property tests (hypothesis): random elementwise expression trees, random reductions and
random einsum specs, over random shapes (size-1 and zero-size axes, sizes that are not
multiples of the vector width), broadcasting, non-contiguous layouts and mixed dtypes.

Every example is compiled and compared against the reference evaluator and NumPy itself
(``helpers.check``). Hypothesis draws the structure (shapes, dtypes, layouts, the function);
values come from a NumPy generator seeded by a drawn integer. The "ci" profile in
``conftest.py`` is derandomized, so every run sees the same examples.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from helpers import SUPPORTED_DTYPES, check, with_layout
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import jitune

SIZES = (1, 2, 3, 7, 16, 17, 33, 130)
LAYOUTS = ("c", "c", "transposed", "stepped", "reversed", "broadcast")
MAX_ELEMENTS = 20_000


# -- shapes and arrays ---------------------------------------------------------------------------


@st.composite
def shapes(draw, min_dims: int = 0, max_dims: int = 3, allow_empty: bool = True):
    ndim = draw(st.sampled_from([n for n in (0, 1, 1, 2, 2, 2, 3, 3) if min_dims <= n <= max_dims]))
    sizes = st.sampled_from(SIZES + ((0,) if allow_empty else ()))
    shape = [draw(sizes) for _ in range(ndim)]
    while math.prod(shape) > MAX_ELEMENTS:
        shape[shape.index(max(shape))] = 7
    return tuple(shape)


@st.composite
def broadcast_operand_shape(draw, out_shape: tuple[int, ...]):
    """A shape that broadcasts to ``out_shape``: a suffix of it with some axes set to 1."""
    keep = max(0, len(out_shape) - draw(st.sampled_from((0, 0, 0, 1, 2, 3))))
    suffix = out_shape[len(out_shape) - keep :]
    return tuple(1 if draw(st.sampled_from((False, False, False, True))) else d for d in suffix)


@dataclasses.dataclass
class Operand:
    shape: tuple[int, ...]
    dtype: str
    layout: str  # one of helpers.LAYOUTS, or "scalar" for a NumPy scalar (0-d only)
    specials: bool  # put NaN/inf/0 into float inputs

    def make(self, rng: np.random.Generator, low: float = -3.0, high: float = 3.0) -> Any:
        layout = self.layout if self.layout != "scalar" else "c"
        value = with_layout(rng, self.shape, self.dtype, layout, low=low, high=high)
        if self.specials and np.dtype(self.dtype).kind == "f" and value.size:
            value = np.array(value)  # writable, layout handled by the views below
            flat = value.reshape(-1)
            picks = rng.integers(0, flat.size, max(1, flat.size // 8))
            flat[picks] = rng.choice([np.nan, np.inf, -np.inf, 0.0, -0.0], len(picks))
            value = _relayout(value, self.layout)
        if self.layout == "scalar":
            return value[()]
        return value


def _relayout(value: np.ndarray, layout: str) -> np.ndarray:
    """The same values with a non-contiguous layout again (after a writable copy)."""
    if value.ndim == 0 or layout in ("c", "scalar", "broadcast"):
        return value
    if layout == "transposed":
        return np.ascontiguousarray(value.T).T
    if layout == "reversed":
        index = (slice(None, None, -1),) * value.ndim
        return np.ascontiguousarray(value[index])[index]
    base = np.zeros((2 * value.shape[0],) + value.shape[1:], value.dtype)
    base[::2] = value
    return base[::2]


ANY_DTYPE = st.sampled_from(SUPPORTED_DTYPES)


@st.composite
def operands(draw, shape: tuple[int, ...], dtypes=ANY_DTYPE):
    dtype = draw(dtypes)
    layouts = LAYOUTS + (("scalar",) if shape == () else ())
    return Operand(shape, dtype, draw(st.sampled_from(layouts)), draw(st.booleans()))


# -- elementwise expression trees ---------------------------------------------------------------
# A tree is a nested tuple evaluated by `_evaluate` with NumPy functions, so the same tree runs
# on NumPy arrays and on jitune's tracers.

UNARY: dict[str, Callable[[Any], Any]] = {
    "neg": lambda a: -a,
    "abs": lambda a: abs(a),
    "exp": np.exp,
    "log(abs+1)": lambda a: np.log(np.abs(a) + 1),
    "log1p(abs)": lambda a: np.log1p(np.abs(a)),
    "expm1": np.expm1,
    "sqrt(abs)": lambda a: np.sqrt(np.abs(a)),
    "tanh": np.tanh,
    "sin": np.sin,
    "cos": np.cos,
    "floor": np.floor,
    "ceil": np.ceil,
    "sign": np.sign,
    "square": np.square,
    "reciprocal": np.reciprocal,
    "clip": lambda a: np.clip(a, -1.5, 2),
    "not": np.logical_not,
    "invert": lambda a: ~a,
    "isnan": np.isnan,
}
BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "//": lambda a, b: a // b,
    "%": lambda a, b: a % b,
    "**": lambda a, b: (abs(a) + 0.5) ** b,  # float only: positive base
    "maximum": np.maximum,
    "minimum": np.minimum,
    "arctan2": np.arctan2,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "&": lambda a, b: a & b,
    "|": lambda a, b: a | b,
}
TERNARY: dict[str, Callable[[Any, Any, Any], Any]] = {
    "where": lambda c, a, b: np.where(c, a, b),
    "clip3": lambda a, lo, hi: np.clip(a, lo, hi),
}
CONSTANTS = (2, -3, 1, 0.5, 2.5, -1.25, True)


def _bounded(x: Any) -> Any:
    """``x`` clipped to [-4, 4]; Python scalars pass unchanged (and stay weak)."""
    return x if type(x) in (bool, int, float) else np.clip(x, -4, 4)  # np.float64 is a float


# exp(v) multiplies v's relative error by |v| (and v ** w by |w| and |w log v|): applied to a
# computed operand, whose last bit may differ between two correct implementations, those
# ops get it bounded first ("~" variants), so that the comparison tolerance stays meaningful.
# Applied directly to inputs (exact values, including inf and nan) they run unguarded.
UNARY["exp~"] = lambda a: np.exp(_bounded(a))
UNARY["expm1~"] = lambda a: np.expm1(_bounded(a))
BINARY["**~"] = lambda a, b: (abs(_bounded(a)) + 0.5) ** _bounded(b)
GUARDED = {"exp", "expm1", "**"}


def _is_leaf(tree: tuple) -> bool:
    return tree[0] in ("arg", "const")


def _restricted(name: str, dtypes: list[np.dtype]) -> bool:
    """Forms jitune deliberately does not take (documented limitations)."""
    arrays = [d for d in dtypes if d is not None]
    if name in ("**", "**~"):  # floats only, so no integer powers with negative exponents
        return not all(d.kind == "f" for d in arrays)
    if name == "reciprocal":  # integer reciprocal is UnsupportedOperation
        return arrays[0].kind != "f"
    return False


def _probe(fn: Callable[..., Any], *examples: Any) -> np.dtype | None:
    """NumPy's result dtype of ``fn`` on examples, or None if NumPy refuses or the dtype is
    one jitune does not compile."""
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = np.asarray(fn(*examples))
    except (TypeError, ValueError):
        return None
    return result.dtype if result.dtype.name in SUPPORTED_DTYPES else None


def _example(dtype: np.dtype) -> np.ndarray:
    return np.ones(2, dtype)


@st.composite
def trees(draw, input_dtypes: tuple[np.dtype, ...], depth: int, leaf: bool = True):
    """(tree, dtype) over arguments with ``input_dtypes``; ``leaf=False``: not just an input."""
    if depth == 0 or (leaf and draw(st.sampled_from((False, False, False, False, True)))):
        position = draw(st.integers(0, len(input_dtypes) - 1))
        return ("arg", position), input_dtypes[position]
    kind = draw(st.sampled_from(("unary", "unary", "binary", "binary", "binary", "ternary")))
    if kind == "unary":
        child, dtype = draw(trees(input_dtypes, depth - 1))
        valid = [
            name
            for name, fn in UNARY.items()
            if "~" not in name
            and not _restricted(name, [dtype])
            and _probe(fn, _example(dtype)) is not None
        ]
        if not valid:
            return child, dtype
        name = draw(st.sampled_from(valid))
        if name in GUARDED and not _is_leaf(child):
            name += "~"
        result = _probe(UNARY[name], _example(dtype))
        if result is None:
            return child, dtype
        return ("unary", name, child), result
    if kind == "binary":
        left, left_dtype = draw(trees(input_dtypes, depth - 1))
        if draw(st.sampled_from((False, False, True))):  # a Python scalar: promotes weakly
            right, right_dtype = ("const", draw(st.sampled_from(CONSTANTS))), None
        else:
            right, right_dtype = draw(trees(input_dtypes, depth - 1))
        if draw(st.booleans()):
            left, right = right, left
            left_dtype, right_dtype = right_dtype, left_dtype
        examples = [
            left[1] if left[0] == "const" else _example(left_dtype),
            right[1] if right[0] == "const" else _example(right_dtype),
        ]
        fallback = (left, left_dtype) if left[0] != "const" else (right, right_dtype)
        valid = [
            name
            for name, fn in BINARY.items()
            if "~" not in name
            and not _restricted(name, [left_dtype, right_dtype])
            and _probe(fn, *examples) is not None
        ]
        if not valid:
            return fallback
        name = draw(st.sampled_from(valid))
        if name in GUARDED and not (_is_leaf(left) and _is_leaf(right)):
            name += "~"
        dtype = _probe(BINARY[name], *examples)
        if dtype is None:
            return fallback
        return ("binary", name, left, right), dtype
    first, first_dtype = draw(trees(input_dtypes, depth - 1))
    second, second_dtype = draw(trees(input_dtypes, depth - 1))
    third, third_dtype = draw(trees(input_dtypes, depth - 1))
    name = draw(st.sampled_from(sorted(TERNARY)))
    dtype = _probe(
        TERNARY[name], _example(first_dtype), _example(second_dtype), _example(third_dtype)
    )
    if dtype is None:
        return first, first_dtype
    return ("ternary", name, first, second, third), dtype


def _evaluate(tree: tuple, args: tuple) -> Any:
    kind = tree[0]
    if kind == "arg":
        return args[tree[1]]
    if kind == "const":
        return tree[1]
    if kind == "unary":
        return UNARY[tree[1]](_evaluate(tree[2], args))
    if kind == "binary":
        return BINARY[tree[1]](_evaluate(tree[2], args), _evaluate(tree[3], args))
    return TERNARY[tree[1]](*(_evaluate(t, args) for t in tree[2:]))


def _function(tree: tuple) -> Callable[..., Any]:
    def expression(*args):
        return _evaluate(tree, args)

    expression.__name__ = "expression"
    return expression


@dataclasses.dataclass
class ElementwiseCase:
    tree: tuple
    inputs: list[Operand]
    seed: int


@st.composite
def elementwise_cases(draw):
    out_shape = draw(shapes())
    count = draw(st.sampled_from((1, 2, 2, 3, 3)))
    # the first input has every axis of the result (some may be 1); the others broadcast
    first = tuple(1 if draw(st.sampled_from((False, False, False, True))) else d for d in out_shape)
    inputs = [draw(operands(first))]
    inputs += [draw(operands(draw(broadcast_operand_shape(out_shape)))) for _ in range(count - 1)]
    tree, _ = draw(trees(tuple(np.dtype(op.dtype) for op in inputs), depth=4, leaf=False))
    return ElementwiseCase(tree, inputs, draw(st.integers(0, 2**32 - 1)))


@settings(max_examples=150)
@given(case=elementwise_cases())
def test_random_elementwise_expressions(case: ElementwiseCase):
    rng = np.random.default_rng(case.seed)
    args = [op.make(rng) for op in case.inputs]
    check(_function(case.tree), *args)


# -- reductions ---------------------------------------------------------------------------------

REDUCTIONS = {
    "sum": np.sum,
    "mean": np.mean,
    "max": np.max,
    "min": np.min,
    "prod": np.prod,
    "argmax": np.argmax,
    "argmin": np.argmin,
}
PRE = {
    "none": lambda a: a,
    "scale": lambda a: a * 2 - 1,
    "exp": lambda a: np.exp(a * 0.5),
    "compare": lambda a: a > 0,
    "transpose": lambda a: a.T,
}
POST = {
    "none": lambda r: r,
    "add": lambda r: r + 1,
    "sqrt": lambda r: np.sqrt(np.abs(r) * 1.0),
}


@dataclasses.dataclass
class ReductionCase:
    name: str
    operand: Operand
    axis: Any
    keepdims: bool
    pre: str
    post: str
    method: bool
    seed: int


@st.composite
def reduction_cases(draw):
    name = draw(st.sampled_from(sorted(REDUCTIONS)))
    shape = draw(shapes(min_dims=0, max_dims=3))
    operand = draw(operands(shape))
    ndim = len(shape)
    if name in ("argmax", "argmin"):
        axis = draw(st.one_of(st.none(), st.integers(-ndim, ndim - 1))) if ndim else None
    else:
        axes = draw(st.lists(st.integers(0, max(ndim - 1, 0)), unique=True, max_size=ndim))
        signed = tuple(a - ndim if draw(st.booleans()) else a for a in axes)
        axis = draw(st.sampled_from([None, signed, signed[0] if len(signed) == 1 else None]))
    pre = draw(st.sampled_from(sorted(PRE)))
    return ReductionCase(
        name,
        operand,
        axis,
        draw(st.booleans()),
        pre,
        draw(st.sampled_from(sorted(POST))),
        draw(st.booleans()),
        draw(st.integers(0, 2**32 - 1)),
    )


@settings(max_examples=120)
@given(case=reduction_cases())
def test_random_reductions(case: ReductionCase):
    reduce_fn, pre, post = REDUCTIONS[case.name], PRE[case.pre], POST[case.post]
    # argmin over bools: known bug, see test_reductions.py::test_argmin_of_bool
    assume(not (case.name == "argmin" and (case.operand.dtype == "bool" or case.pre == "compare")))

    def reduction(a):
        x = pre(a)
        if case.method and case.name != "prod":
            r = getattr(x, case.name)(axis=case.axis, keepdims=case.keepdims)
        else:
            r = reduce_fn(x, axis=case.axis, keepdims=case.keepdims)
        return post(r)

    rng = np.random.default_rng(case.seed)
    if case.name == "prod":  # keep products of up to 20000 terms finite and exact for ints
        arg = case.operand.make(rng, 0.9, 1.1)
        if np.dtype(case.operand.dtype).kind in "iu":
            arg = rng.integers(-1, 2, case.operand.shape).astype(case.operand.dtype)
    else:
        arg = case.operand.make(rng)

    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reduction(arg)
    except ValueError:  # an empty max/min/argmax: NumPy refuses, so must jitune
        with pytest.raises(jitune.ShapeError):
            jitune.kernel(reduction)(arg)
        return
    check(reduction, arg)


# -- einsum -------------------------------------------------------------------------------------

EINSUM_SIZES = (0, 1, 1, 2, 3, 5, 7, 16, 17)


@dataclasses.dataclass
class EinsumCase:
    spec: str
    operands: list[Operand]
    seed: int


@st.composite
def einsum_cases(draw):
    letters = draw(st.lists(st.sampled_from("abcdefg"), min_size=1, max_size=5, unique=True))
    sizes = {c: draw(st.sampled_from(EINSUM_SIZES)) for c in letters}
    count = draw(st.integers(2, 3))
    subscripts = [
        "".join(draw(st.lists(st.sampled_from(letters), min_size=0, max_size=3)))
        for _ in range(count)
    ]
    ellipsis = draw(st.booleans())
    batch = draw(shapes(min_dims=1, max_dims=2, allow_empty=False)) if ellipsis else ()
    batch = tuple(min(d, 7) for d in batch)
    parts, shapes_ = [], []
    for sub in subscripts:
        shape = tuple(sizes[c] for c in sub)
        if ellipsis and draw(st.booleans()):
            own = draw(broadcast_operand_shape(batch))
            if draw(st.booleans()):
                sub, shape = "..." + sub, own + shape
            else:
                sub, shape = sub + "...", shape + own
        parts.append(sub)
        shapes_.append(shape)
    used = [c for c in dict.fromkeys("".join(subscripts))]
    if draw(st.booleans()):  # explicit output: some of the letters, in any order
        output = "".join(draw(st.permutations(used))[: draw(st.integers(0, len(used)))])
        if any("..." in p for p in parts):
            output = "..." + output if draw(st.booleans()) else output + "..."
        spec = ",".join(parts) + "->" + output
    else:
        spec = ",".join(parts)
    assume(math.prod(sizes.values()) * max(1, math.prod(batch)) <= 50_000)
    ops = [draw(operands(shape)) for shape in shapes_]
    for op in ops:
        op.specials = False
    return EinsumCase(spec, ops, draw(st.integers(0, 2**32 - 1)))


@settings(max_examples=120)
@given(case=einsum_cases())
def test_random_einsum(case: EinsumCase):
    rng = np.random.default_rng(case.seed)
    args = [op.make(rng) for op in case.operands]

    def contraction(*xs):
        return np.einsum(case.spec, *xs)

    check(contraction, *args)


# -- multi-stage programs ------------------------------------------------------------------------
# Trees over (m, n) float arrays that mix elementwise ops, keepdims reductions (which
# broadcast back), contractions with an (n, n) weight and same-shape views, with one or two
# outputs: the shapes of softmax/layernorm/MLP code, to exercise fusion (epilogues, shared
# row loops, materialized temporaries) rather than single operations.

PROGRAM_UNARY = {
    "tanh": np.tanh,
    "exp~": lambda a: np.exp(np.clip(a, -4, 4)),
    "relu": lambda a: np.maximum(a, 0),
    "neg": lambda a: -a,
    "square": np.square,
}
PROGRAM_BINARY = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "max": np.maximum,
    "where": lambda a, b: np.where(a > b, a, b * 0.5),
}
PROGRAM_REDUCE = {
    "sum": lambda a, axis: a.sum(axis=axis, keepdims=True),
    "max": lambda a, axis: a.max(axis=axis, keepdims=True),
    "mean": lambda a, axis: np.mean(a, axis=axis, keepdims=True),
    "min": lambda a, axis: np.min(a, axis=axis, keepdims=True),
}
PROGRAM_VIEWS = {
    "flip rows": lambda a: a[::-1],
    "flip cols": lambda a: a[:, ::-1],
    "transpose": lambda a: a.T,  # only drawn for square shapes
}


@st.composite
def programs(draw, square: bool, depth: int):
    """A tree whose value has x's shape (m, n): x (arg 0) is the only leaf; y (arg 1, of a
    shape that broadcasts to (m, n)) enters as a binary operand; w (arg 2) is the weight."""
    if depth == 0 or draw(st.sampled_from((False, False, False, True))):
        return ("arg", 0)
    kind = draw(
        st.sampled_from(("unary", "binary", "binary", "reduce", "reduce", "matmul", "view"))
    )
    child = draw(programs(square, depth - 1))
    if kind == "unary":
        return ("unary", draw(st.sampled_from(sorted(PROGRAM_UNARY))), child)
    if kind == "binary":
        other = ("arg", 1) if draw(st.booleans()) else draw(programs(square, depth - 1))
        pair = (child, other) if draw(st.booleans()) else (other, child)
        return ("binary", draw(st.sampled_from(sorted(PROGRAM_BINARY))), *pair)
    if kind == "reduce":  # reduce and broadcast back against the operand
        return (
            "reduce",
            draw(st.sampled_from(sorted(PROGRAM_REDUCE))),
            draw(st.sampled_from((0, 1, -1))),
            child,
        )
    if kind == "matmul":
        return ("matmul", child)
    views = sorted(PROGRAM_VIEWS) if square else ["flip cols", "flip rows"]
    return ("view", draw(st.sampled_from(views)), child)


def _run_program(tree: tuple, args: tuple) -> Any:
    kind = tree[0]
    if kind == "arg":
        return args[tree[1]]
    if kind == "unary":
        return PROGRAM_UNARY[tree[1]](_run_program(tree[2], args))
    if kind == "binary":
        return PROGRAM_BINARY[tree[1]](_run_program(tree[2], args), _run_program(tree[3], args))
    if kind == "reduce":
        value = _run_program(tree[3], args)
        return value - PROGRAM_REDUCE[tree[1]](value, tree[2])
    if kind == "matmul":
        return _run_program(tree[1], args) @ args[2]
    return PROGRAM_VIEWS[tree[1]](_run_program(tree[2], args))


@dataclasses.dataclass
class ProgramCase:
    outputs: list[tuple]
    reduce_output: str | None
    operands: list[Operand]
    seed: int


@st.composite
def program_cases(draw):
    m = draw(st.sampled_from((1, 2, 7, 16, 17, 33)))
    n = m if draw(st.booleans()) else draw(st.sampled_from((1, 3, 16, 17, 33)))
    float_dtypes = st.sampled_from(("float32", "float64"))
    x = draw(operands((m, n), float_dtypes))
    y = draw(operands(draw(st.sampled_from(((m, n), (m, 1), (1, n), (n,)))), float_dtypes))
    w = draw(operands((n, n), float_dtypes))
    for op in (x, y, w):
        op.specials = False
    outputs = [draw(programs(m == n, depth=4))]
    if draw(st.booleans()):
        outputs.append(draw(programs(m == n, depth=3)))
    reduce_output = draw(st.sampled_from((None, "sum", "max")))
    return ProgramCase(outputs, reduce_output, [x, y, w], draw(st.integers(0, 2**32 - 1)))


@settings(max_examples=100)
@given(case=program_cases())
def test_random_multi_stage_programs(case: ProgramCase):
    def program(x, y, w):
        results = [_run_program(tree, (x, y, w)) for tree in case.outputs]
        if case.reduce_output is not None:  # one more output: a row reduction of the first
            results.append(getattr(results[0], case.reduce_output)(axis=-1))
        return tuple(results) if len(results) > 1 else results[0]

    rng = np.random.default_rng(case.seed)
    args = [op.make(rng, -1.0, 1.0) for op in case.operands]
    check(program, *args)


# -- sanity of the generators themselves ------------------------------------------------------


def test_tree_generator_covers_every_operation():
    """The strategies must be able to produce every op in the tables (else they are dead)."""
    seen: set[str] = set()

    @settings(max_examples=400, database=None)
    @given(st.data())
    def collect(data):
        dtypes = tuple(
            np.dtype(d)
            for d in data.draw(st.lists(st.sampled_from(SUPPORTED_DTYPES), min_size=1, max_size=3))
        )
        tree, _ = data.draw(trees(dtypes, depth=4))
        stack = [tree]
        while stack:
            node = stack.pop()
            if node[0] in ("unary", "binary", "ternary"):
                seen.add(node[1])
                stack.extend(child for child in node[2:] if isinstance(child, tuple))

    collect()
    missing = (set(UNARY) | set(BINARY) | set(TERNARY)) - seen
    assert not missing, f"never generated: {sorted(missing)}"


def test_einsum_generator_makes_valid_specs():
    @settings(max_examples=200, database=None)
    @given(einsum_cases())
    def valid(case):
        shapes_ = [op.shape for op in case.operands]
        np.einsum(case.spec, *(np.ones(s) for s in shapes_))

    valid()
