"""Errors: each user mistake raises the documented jitune exception, whose message names the
offending operation and, for errors found while tracing, the user's source line (in this
file). A failed trace leaves the kernel usable."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest
from helpers import check, random_array

import jitune

X = np.arange(12, dtype=np.float32).reshape(3, 4)
CONSTANT = np.ones(4)


def source_line(snippet: str) -> int:
    """The line number of ``snippet`` as code (not as a quoted string) in this file; it must
    occur exactly once."""
    lines = inspect.getsource(inspect.getmodule(source_line)).splitlines()
    found = [
        n
        for n, line in enumerate(lines, start=1)
        if snippet in line.replace(f'"{snippet}"', "").replace(f"'{snippet}'", "")
    ]
    assert len(found) == 1, f"{snippet!r} occurs {len(found)} times in this file"
    return found[0]


def assert_traced_error(excinfo: pytest.ExceptionInfo, names: str, snippet: str) -> None:
    """The message names the operation (a regex) and points at the user's line."""
    message = str(excinfo.value)
    # the operation must be named by the message itself, not by the quoted source line
    headline = message.split("\n  at ")[0]
    assert re.search(names, headline), f"{names!r} not in {headline!r}"
    assert f"{__file__}:{source_line(snippet)}" in message, message
    assert snippet in message, message


# -- tracing errors: (kernel function, exception, operation named, offending source) ------------
# Each lambda's source text is unique in this file, so the reported line can be checked.

TRACE_ERRORS = [
    # shapes
    (
        lambda x: np.einsum("ij,jk->ik", x, x),
        jitune.ShapeError,
        r"einsum\('ij,jk->ik'\).*'j'",
        'np.einsum("ij,jk->ik", x, x)',
    ),
    (
        lambda x: np.einsum("ijk->i", x),
        jitune.ShapeError,
        r"einsum\('ijk->i'\)",
        'np.einsum("ijk->i", x)',
    ),
    (
        lambda x: np.einsum("ij->k", x),
        jitune.ShapeError,
        r"einsum\('ij->k'\).*'k'",
        'np.einsum("ij->k", x)',
    ),
    (
        lambda x: np.einsum("ij,jk", x),
        jitune.ShapeError,
        r"einsum\('ij,jk'\)",
        'np.einsum("ij,jk", x)',
    ),
    (
        lambda x: np.einsum("ij->ii", x),
        jitune.ShapeError,
        r"einsum\('ij->ii'\)",
        'np.einsum("ij->ii", x)',
    ),
    (
        lambda x: np.einsum("i1->i", x),
        jitune.ShapeError,
        r"einsum\('i1->i'\)",
        'np.einsum("i1->i", x)',
    ),
    (
        lambda x: np.einsum("ii->i", x),
        jitune.ShapeError,
        r"einsum\('ii->i'\)",
        'np.einsum("ii->i", x)',
    ),
    (
        lambda x: jitune.einsum("ij,ij->i", x, x.T),
        jitune.ShapeError,
        r"einsum",
        'jitune.einsum("ij,ij->i", x, x.T)',
    ),
    (lambda x: x @ x, jitune.ShapeError, r"matmul.*\(3, 4\).*\(3, 4\)", "x @ x"),
    (lambda x: np.matmul(x.sum(), x), jitune.ShapeError, r"matmul", "np.matmul(x.sum(), x)"),
    (lambda x: np.dot(x, x), jitune.ShapeError, r"dot", "np.dot(x, x)"),
    (
        lambda x: np.tensordot(x, x, axes=([0], [1])),
        jitune.ShapeError,
        r"tensordot",
        "np.tensordot(x, x, axes=([0], [1]))",
    ),
    (lambda x: x + x[:, :3], jitune.ShapeError, r"add.*\(3, 4\).*\(3, 3\)", "x + x[:, :3]"),
    (lambda x: np.maximum(x, x[:2]), jitune.ShapeError, r"maximum", "np.maximum(x, x[:2])"),
    (lambda x: np.where(x > 0, x, x[:2]), jitune.ShapeError, r"where", "np.where(x > 0, x, x[:2])"),
    (
        lambda x: np.broadcast_to(x, (3, 5)),
        jitune.ShapeError,
        r"broadcast_to",
        "np.broadcast_to(x, (3, 5))",
    ),
    (lambda x: x.reshape(5, 3), jitune.ShapeError, r"reshape.*\(5, 3\)", "x.reshape(5, 3)"),
    (lambda x: x.reshape(-1, -1), jitune.ShapeError, r"reshape", "x.reshape(-1, -1)"),
    (lambda x: x.sum(axis=2), jitune.ShapeError, r"sum.*axis 2", "x.sum(axis=2)"),
    (lambda x: x.mean(axis=(0, 0)), jitune.ShapeError, r"repeated axis", "x.mean(axis=(0, 0))"),
    (
        lambda x: np.argmax(x, axis=(0, 1)),
        jitune.ShapeError,
        r"argmax",
        "np.argmax(x, axis=(0, 1))",
    ),
    (lambda x: x[:0].max(), jitune.ShapeError, r"max.*zero-size", "x[:0].max()"),
    (lambda x: x[:, :0].argmin(axis=1), jitune.ShapeError, r"argmin", "x[:, :0].argmin(axis=1)"),
    (lambda x: x[5], jitune.ShapeError, r"index 5 is out of bounds", "x[5]"),
    (lambda x: x[0, 0, 0], jitune.ShapeError, r"too many indices", "x[0, 0, 0]"),
    (lambda x: x[..., ...], jitune.ShapeError, r"ellipsis", "x[..., ...]"),
    (lambda x: np.squeeze(x, 0), jitune.ShapeError, r"squeeze", "np.squeeze(x, 0)"),
    (lambda x: x.transpose(0, 0), jitune.ShapeError, r"transpose", "x.transpose(0, 0)"),
    (
        lambda x: x.transpose(1, 2),
        jitune.ShapeError,
        r"transpose: axis 2 is out of bounds",
        "x.transpose(1, 2)",
    ),
    (
        lambda x: np.transpose(x, (0, -3)),
        jitune.ShapeError,
        r"transpose: axis -3",
        "np.transpose(x, (0, -3))",
    ),
    (
        lambda x: np.moveaxis(x, 2, 0),
        jitune.ShapeError,
        r"moveaxis: source: axis 2",
        "np.moveaxis(x, 2, 0)",
    ),
    (
        lambda x: np.moveaxis(x, [0, 1], [1, 1]),
        jitune.ShapeError,
        r"moveaxis: destination: repeated axis",
        "np.moveaxis(x, [0, 1], [1, 1])",
    ),
    (lambda x: np.swapaxes(x, 0, 2), jitune.ShapeError, r"swapaxes", "np.swapaxes(x, 0, 2)"),
    (lambda x: np.expand_dims(x, 3), jitune.ShapeError, r"expand_dims", "np.expand_dims(x, 3)"),
    (
        lambda x: np.sum(x, axis=1.0),
        jitune.ShapeError,
        r"sum: axis must be an int",
        "np.sum(x, axis=1.0)",
    ),
    (
        lambda x: np.tensordot(x, x, axes=([2], [0])),
        jitune.ShapeError,
        r"tensordot: axis 2 is out of bounds",
        "np.tensordot(x, x, axes=([2], [0]))",
    ),
    (
        lambda x: np.tensordot(x, x.T, axes=([0, 0], [0, 1])),
        jitune.ShapeError,
        r"tensordot: repeated axis",
        "np.tensordot(x, x.T, axes=([0, 0], [0, 1]))",
    ),
    # dtypes
    (
        lambda x: x.astype(np.complex64),
        jitune.DTypeError,
        r"astype.*complex64",
        "x.astype(np.complex64)",
    ),
    (lambda x: x * 1j, jitune.DTypeError, r"multiply.*complex", "x * 1j"),
    (lambda x: x.astype(np.uint8), jitune.DTypeError, r"astype.*uint8", "x.astype(np.uint8)"),
    (lambda x: x.astype("U3"), jitune.DTypeError, r"astype", 'x.astype("U3")'),
    (lambda x: np.square(x > 0), jitune.DTypeError, r"square.*int8", "np.square(x > 0)"),
    (lambda x: (x > 0) - (x > 1), jitune.DTypeError, r"subtract.*bool", "(x > 0) - (x > 1)"),
    (lambda x: +(x > 2), jitune.DTypeError, r"positive.*bool", "+(x > 2)"),
    (
        lambda x: np.zeros_like(x, dtype=np.float16),
        jitune.DTypeError,
        r"zeros_like.*float16",
        "np.zeros_like(x, dtype=np.float16)",
    ),
    (lambda x: x.sum(dtype=np.int8), jitune.DTypeError, r"sum.*int8", "x.sum(dtype=np.int8)"),
    # unsupported NumPy functions and forms
    (lambda x: np.fft.fft(x), jitune.UnsupportedOperation, r"np\.fft\.fft", "np.fft.fft(x)"),
    (lambda x: np.sort(x), jitune.UnsupportedOperation, r"np\.sort", "np.sort(x)"),
    (
        lambda x: np.concatenate([x, x]),
        jitune.UnsupportedOperation,
        r"np\.concatenate",
        "np.concatenate([x, x])",
    ),
    (lambda x: np.cumsum(x), jitune.UnsupportedOperation, r"np\.cumsum", "np.cumsum(x)"),
    (
        lambda x: np.linalg.norm(x),
        jitune.UnsupportedOperation,
        r"np\.linalg\.norm",
        "np.linalg.norm(x)",
    ),
    (lambda x: np.hypot(x, x), jitune.UnsupportedOperation, r"np\.hypot", "np.hypot(x, x)"),
    (
        lambda x: np.add.accumulate(x),
        jitune.UnsupportedOperation,
        r"np\.add\.accumulate",
        "np.add.accumulate(x)",
    ),
    (
        lambda x: np.subtract.reduce(x),
        jitune.UnsupportedOperation,
        r"np\.subtract\.reduce",
        "np.subtract.reduce(x)",
    ),
    (
        lambda x: np.add(x, x, out=x),
        jitune.UnsupportedOperation,
        r"np\.add.*out",
        "np.add(x, x, out=x)",
    ),
    (
        lambda x: np.sum(x, where=x > 0),
        jitune.UnsupportedOperation,
        r"sum.*where",
        "np.sum(x, where=x > 0)",
    ),
    (
        lambda x: np.max(x, initial=0.0),
        jitune.UnsupportedOperation,
        r"max.*initial",
        "np.max(x, initial=0.0)",
    ),
    (
        lambda x: np.reciprocal(x.astype(np.int32)),
        jitune.UnsupportedOperation,
        r"reciprocal",
        "np.reciprocal(x.astype(np.int32))",
    ),
    (lambda x: np.where(x > 0), jitune.UnsupportedOperation, r"where", "np.where(x > 0)"),
    (
        lambda x: x.reshape(12, order="F"),
        jitune.UnsupportedOperation,
        r"reshape.*order",
        'x.reshape(12, order="F")',
    ),
    (
        lambda x: np.einsum(x, [0, 1]),
        jitune.UnsupportedOperation,
        r"einsum",
        "np.einsum(x, [0, 1])",
    ),
    (lambda x: x[x > 0], jitune.UnsupportedOperation, r"indexing", "x[x > 0]"),
    (
        lambda x: x[np.array([0.0, 2.0])],
        jitune.IndexingError,
        r"indices must be of integer",
        "x[np.array([0.0, 2.0])]",
    ),
    (lambda x: x[[True, False]], jitune.UnsupportedOperation, r"boolean", "x[[True, False]]"),
    (lambda x: x[[0, 9]], jitune.IndexingError, r"index 9 is out of bounds", "x[[0, 9]]"),
    (lambda x: x[0.5:], jitune.UnsupportedOperation, r"slice", "x[0.5:]"),
    (lambda x: x[True], jitune.UnsupportedOperation, r"boolean scalar True", "x[True]"),
    (
        lambda x: x[1, np.bool_(False)],
        jitune.UnsupportedOperation,
        r"boolean scalar False",
        "x[1, np.bool_(False)]",
    ),
    (lambda x: x[::0], jitune.ShapeError, r"step cannot be zero", "x[::0]"),
    (lambda x: x.any(), jitune.UnsupportedOperation, r"ndarray\.any", "x.any()"),
    (
        lambda x: x.cumsum(axis=0),
        jitune.UnsupportedOperation,
        r"ndarray\.cumsum",
        "x.cumsum(axis=0)",
    ),
    (lambda x: x.item(), jitune.UnsupportedOperation, r"ndarray\.item", "x.item()"),
    (
        lambda x: x.__setitem__(x > 0, x),
        jitune.UnsupportedOperation,
        r"boolean mask.*depends on the data",
        "x.__setitem__(x > 0, x)",
    ),
    (
        lambda x: x + CONSTANT,
        jitune.UnsupportedOperation,
        r"concrete array.*argument",
        "x + CONSTANT",
    ),
    (lambda x: x * "a", jitune.UnsupportedOperation, r"str", 'x * "a"'),
    # data-dependent Python control flow
    (
        lambda x: x if x.sum() > 0 else -x,
        jitune.UnsupportedOperation,
        r"control flow",
        "x if x.sum() > 0 else -x",
    ),
    (
        lambda x: float(x.sum()) * x,
        jitune.UnsupportedOperation,
        r"control flow",
        "float(x.sum()) * x",
    ),
    (lambda x: x * int(x.max()), jitune.UnsupportedOperation, r"control flow", "x * int(x.max())"),
    (
        lambda x: [v for v in x][0],
        jitune.UnsupportedOperation,
        r"control flow",
        "[v for v in x][0]",
    ),
    (
        lambda x: np.asarray(x) + 1,
        jitune.UnsupportedOperation,
        r"concrete NumPy array",
        "np.asarray(x) + 1",
    ),
    (
        lambda x: x * range(3)[x.argmin()],
        jitune.UnsupportedOperation,
        r"control flow",
        "x * range(3)[x.argmin()]",
    ),
    (lambda x: x.sum() and x, jitune.UnsupportedOperation, r"control flow", "x.sum() and x"),
    (
        lambda x: len(x.sum()) * x,
        jitune.UnsupportedOperation,
        r"len\(\) of a 0-d",
        "len(x.sum()) * x",
    ),
]


@pytest.mark.parametrize(
    "fn, error, names, snippet", TRACE_ERRORS, ids=[c[3] for c in TRACE_ERRORS]
)
def test_tracing_error(fn, error, names, snippet):
    kernel = jitune.kernel(fn)
    with pytest.raises(error) as excinfo:
        kernel(X)
    assert isinstance(excinfo.value, jitune.JituneError)
    assert_traced_error(excinfo, names, snippet)
    # a failed trace compiles and stores nothing
    assert kernel.compile_count == 0
    assert "(0 compiled signatures)" in repr(kernel)
    # lower() reports the same error
    with pytest.raises(error):
        kernel.lower(X)


def test_data_dependent_if_statement_names_the_line():
    @jitune.kernel
    def branchy(x):
        y = x * 2
        if y.sum() > 0:  # the offending line
            return y
        return -y

    with pytest.raises(jitune.UnsupportedOperation) as excinfo:
        branchy(X)
    assert_traced_error(excinfo, r"control flow", "if y.sum() > 0:  # the offending line")


def test_branch_on_a_scalar_argument_makes_it_static():
    """A Python scalar is traced (not recompiled per value) until the function uses its value
    in Python: then it is static, one compiled kernel per value."""

    @jitune.kernel
    def scaled(x, s):
        if s > 1:  # branch on a Python scalar argument
            return x * s
        return x

    np.testing.assert_allclose(scaled(X, 2.0), X * 2.0)
    np.testing.assert_allclose(scaled(X, 0.5), X)
    np.testing.assert_allclose(scaled(X, 2.0), X * 2.0)
    assert scaled.compile_count == 2


def test_branch_on_an_array_value_is_data_dependent_and_says_what_to_do():
    @jitune.kernel
    def clipped(x):
        if x.sum() > 1:
            return x
        return -x

    with pytest.raises(jitune.UnsupportedOperation) as excinfo:
        clipped(X)
    assert_traced_error(excinfo, r"control flow.*static", "if x.sum() > 1:")


def test_static_python_control_flow_on_shapes_is_fine(rng):
    def by_shape(x):
        if x.shape[0] > 2 and x.ndim == 2 and len(x) == x.shape[0]:
            return x.sum(axis=0)
        return x * x.size

    check(by_shape, random_array(rng, (3, 4), "float32"))
    check(by_shape, random_array(rng, (2, 4), "float32"))


def test_unknown_attribute_is_still_an_attribute_error():
    @jitune.kernel
    def typo(x):
        return x.not_an_ndarray_attribute

    with pytest.raises(AttributeError, match="not_an_ndarray_attribute"):
        typo(X)


def test_returning_none_is_an_error():
    @jitune.kernel
    def forgot_return(x):
        x + 1

    with pytest.raises(jitune.UnsupportedOperation, match=r"forgot_return.*None"):
        forgot_return(X)


# -- argument errors: raised before tracing, naming the kernel and the argument ------------------

ARGUMENT_ERRORS = [
    # not arrays or numbers: static (passed as they are), so they must be hashable ...
    ([1.0, 2.0], jitune.ArgumentError, r"argument 1 \(list\) is static.*unhashable"),
    ({"a": 1}, jitune.ArgumentError, r"argument 1 \(dict\) is static.*unhashable"),
    # ... and then the operation that receives them names them
    ((1, 2), jitune.UnsupportedOperation, r"add.*operand of type tuple"),
    (None, jitune.UnsupportedOperation, r"add.*operand of type NoneType"),
    ("abc", jitune.UnsupportedOperation, r"add.*operand of type str"),
    (np.ones(3, np.complex128), jitune.DTypeError, r"argument 1.*complex"),
    (np.complex64(1), jitune.DTypeError, r"argument 1.*complex"),
    (1 + 2j, jitune.DTypeError, r"argument 1.*complex"),
    (np.array([1, None]), jitune.DTypeError, r"argument 1.*object"),
    (np.array(["a", "b"]), jitune.DTypeError, r"argument 1.*<U1"),
    (np.array([b"a"]), jitune.DTypeError, r"argument 1.*S1"),
    (np.ones(3, np.float16), jitune.DTypeError, r"argument 1.*float16"),
    (np.ones(3, np.uint8), jitune.DTypeError, r"argument 1.*uint8"),
    (np.ones(3, np.int16), jitune.DTypeError, r"argument 1.*int16"),
    (np.array(["2020-01-01"], "datetime64[D]"), jitune.DTypeError, r"argument 1.*datetime64"),
    (np.arange(3, dtype=">f4"), jitune.DTypeError, r"argument 1.*>f4"),  # byte-swapped
    (
        np.lib.stride_tricks.as_strided(np.zeros(64, np.uint8).view(np.float32), (5,), (6,)),
        jitune.ArgumentError,
        r"argument 1.*strides \(6,\)",
    ),
]


@pytest.mark.parametrize(
    "arg, error, names",
    ARGUMENT_ERRORS,
    ids=[type(a).__name__ + "-" + str(getattr(a, "dtype", "")) for a, _, _ in ARGUMENT_ERRORS],
)
def test_argument_error(arg, error, names):
    @jitune.kernel
    def add(x, y):
        return x + y

    with pytest.raises(error, match=names) as excinfo:
        add(X, arg)
    assert "add" in str(excinfo.value)  # names the kernel
    assert isinstance(excinfo.value, jitune.JituneError)
    assert add.compile_count == 0
    with pytest.raises(error):
        add.lower(X, arg)
    # the kernel still works afterwards
    check(add.fn, X, X, kernel=add)
    assert add.compile_count == 1


SUBCLASSES = [
    lambda: np.matrix([[1.0, 2.0], [3.0, 4.0]]),
    lambda: np.ma.array([1.0, 2.0, 3.0], mask=[0, 1, 0]),
]


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix
@pytest.mark.parametrize("make", SUBCLASSES, ids=["matrix", "masked"])
def test_ndarray_subclasses_are_rejected(make):
    """np.matrix redefines *, a masked array has a mask: tracing either as a plain array would
    silently change the result, so they are refused with a message naming the subclass."""
    arg = make()

    def square(x):
        return x * x + 1

    kernel = jitune.kernel(square)
    with pytest.raises(jitune.ArgumentError, match="subclass") as excinfo:
        kernel(arg)
    assert type(arg).__name__ in str(excinfo.value)
    assert kernel.compile_count == 0
    np.testing.assert_array_equal(kernel(np.asarray(arg)), np.asarray(arg) * np.asarray(arg) + 1)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix
@pytest.mark.parametrize("make", SUBCLASSES, ids=["matrix", "masked"])
def test_ndarray_subclasses_are_rejected_after_a_plain_call(make):
    """A subclass whose shape, dtype and strides equal a signature already compiled for a
    plain array must still be refused: the dispatch table's fast path may not run it as the
    plain array (which would ignore the mask, or np.matrix's meaning of *)."""
    arg = make()
    plain = np.array(np.asarray(arg))  # same shape, dtype and strides, exact ndarray
    assert plain.strides == arg.strides and plain.dtype == arg.dtype

    def square(x):
        return x * x + 1

    kernel = jitune.kernel(square)
    np.testing.assert_array_equal(kernel(plain), plain * plain + 1)
    with pytest.raises(jitune.ArgumentError, match="subclass") as excinfo:
        kernel(arg)
    assert type(arg).__name__ in str(excinfo.value)
    assert kernel.compile_count == 1
    # and the plain signature still dispatches from the table
    np.testing.assert_array_equal(kernel(plain), plain * plain + 1)
    assert kernel.compile_count == 1


def test_errors_are_also_builtin_exception_types():
    """Code catching TypeError/ValueError keeps working."""
    assert issubclass(jitune.ShapeError, ValueError)
    assert issubclass(jitune.DTypeError, TypeError)
    assert issubclass(jitune.ArgumentError, TypeError)
    assert issubclass(jitune.UnsupportedOperation, TypeError)


# -- recovery after a failed trace ---------------------------------------------------------------


def test_failed_trace_leaves_the_table_unchanged(rng):
    @jitune.kernel
    def add(x, y):
        return x + y

    a, b = random_array(rng, (3, 4), "float32"), random_array(rng, (4,), "float32")
    check(add.fn, a, b, kernel=add)
    assert add.compile_count == 1

    for bad in (random_array(rng, (3,), "float32"), random_array(rng, (5, 3), "float32")):
        with pytest.raises(jitune.ShapeError, match="add"):
            add(a, bad)
        assert add.compile_count == 1
        assert "(1 compiled signatures)" in repr(add)

    check(add.fn, a, b, kernel=add)  # the old signature still runs
    assert add.compile_count == 1
    check(add.fn, a, random_array(rng, (3, 1), "float32"), kernel=add)  # a new one compiles
    assert add.compile_count == 2


def test_failing_signature_fails_again_and_does_not_poison_others(rng):
    @jitune.kernel
    def first_row(x):
        return x[0] * 2

    with pytest.raises(jitune.ShapeError):
        first_row(np.zeros((0, 3), np.float32))
    with pytest.raises(jitune.ShapeError):  # not cached as a success
        first_row(np.zeros((0, 3), np.float32))
    assert first_row.compile_count == 0
    check(first_row.fn, random_array(rng, (2, 3), "float32"), kernel=first_row)
    assert first_row.compile_count == 1


def test_user_exception_inside_the_function_propagates_unchanged():
    class Boom(Exception):
        pass

    @jitune.kernel
    def explode(x):
        raise Boom("from user code")

    with pytest.raises(Boom, match="from user code"):
        explode(X)
    assert explode.compile_count == 0


def test_wrong_number_of_arguments_is_a_type_error():
    @jitune.kernel
    def two(x, y):
        return x + y

    with pytest.raises(TypeError):
        two(X)
    assert two.compile_count == 0
    check(two.fn, X, X, kernel=two)


def test_an_internal_error_past_tracing_is_a_compile_error(monkeypatch):
    """A program that traced is valid: whatever goes wrong in lowering, scheduling or code
    generation is a jitune bug, reported as CompileError naming the step and the inputs,
    never as a bare KeyError (einsum('d,d->d', a, b) + c once raised KeyError: 'i0')."""
    from jitune.codegen import llvm as llvm_codegen

    def broken(*args, **kwargs):
        raise KeyError("i0")

    monkeypatch.setattr(llvm_codegen, "render", broken)
    kernel = jitune.kernel(lambda x: x + 1)
    with pytest.raises(jitune.CompileError, match=r"code generation.*float32\[3, 4\].*KeyError"):
        kernel(X)
    with pytest.raises(jitune.CompileError):
        kernel.lower(X)
