"""Random programs over the operations README.md lists as supported.

A program grows one statement at a time. Each candidate statement is evaluated with NumPy on
the program's actual inputs, so the generator always knows every value's shape and dtype:
it never has to re-derive NumPy's broadcasting or promotion rules. When NumPy raises for a
candidate (mismatched shapes, a bad axis, a bad einsum spec, a dtype a ufunc does not take),
the candidate is usually dropped, but sometimes kept as the program's last statement: then
jitune must raise a ``JituneError`` too.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

import jitune

from .program import Input, Node, Program
from .values import DTYPES, random_input, random_shape

MAX_INPUTS = 4
KEEP_ERROR = 0.2  # share of NumPy-raising candidates kept as a (final) statement

UNARY_UFUNCS = (
    "negative", "positive", "absolute", "fabs", "exp", "log", "log1p", "expm1", "sqrt",
    "square", "tanh", "sin", "cos", "floor", "ceil", "sign", "reciprocal", "logical_not",
    "invert", "isnan",
)  # fmt: skip
UNARY_OPERATORS = {"negative": "-{}", "positive": "+{}", "absolute": "abs({})", "invert": "~{}"}
BINARY_UFUNCS = (
    "add", "subtract", "multiply", "true_divide", "divide", "floor_divide", "remainder", "mod",
    "power", "maximum", "minimum", "equal", "not_equal", "less", "less_equal", "greater",
    "greater_equal", "bitwise_and", "bitwise_or", "bitwise_xor", "logical_and", "logical_or",
    "logical_xor",
)  # fmt: skip
BINARY_OPERATORS = {
    "add": "+", "subtract": "-", "multiply": "*", "true_divide": "/", "floor_divide": "//",
    "remainder": "%", "power": "**", "equal": "==", "not_equal": "!=", "less": "<",
    "less_equal": "<=", "greater": ">", "greater_equal": ">=", "bitwise_and": "&",
    "bitwise_or": "|", "bitwise_xor": "^",
}  # fmt: skip
ALIASES = {"divide": "true_divide", "mod": "remainder", "abs": "absolute"}
CONSTANTS = (
    "0", "1", "2", "-1", "-3", "7", "2147483647", "True", "False", "0.0", "-0.0", "0.5", "-2.5",
    "1e30", "1e-40", "np.inf", "-np.inf", "np.nan", "np.float32(0.1)", "np.int32(-2)",
    "np.float64(-0.0)",
)  # fmt: skip
REDUCTIONS = ("sum", "prod", "max", "amax", "min", "amin", "mean", "var", "std", "argmax", "argmin")
METHODS = {"sum", "prod", "max", "min", "mean", "var", "std", "argmax", "argmin"}
LETTERS = "abcdefghijdxyz"


class _Builder:
    """The program so far: inputs, statements, and every value (NumPy-evaluated)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.inputs: list[Input] = []
        self.nodes: list[Node] = []
        self.env: dict[str, Any] = {"np": np, "jitune": jitune}

    # -- values ------------------------------------------------------------------------------
    def new_input(self, shape: tuple[int, ...] | None = None, dtype: str | None = None) -> str:
        rng = self.rng
        shape = random_shape(rng) if shape is None else shape
        dtype = str(rng.choice(DTYPES)) if dtype is None else dtype
        name = f"a{len(self.inputs)}"
        if shape == () and rng.random() < 0.5:
            dtype = {"int32": "int64", "float32": "float64"}.get(dtype, dtype)  # Python kinds
        made = random_input(rng, name, shape, dtype)
        self.inputs.append(made)
        self.env[name] = made.make()
        return name

    def names(self, arrays: bool = False) -> list[str]:
        """Values statements may read (``arrays``: NumPy arrays or scalars, which have methods)."""
        found = [i.name for i in self.inputs] + [n.name for n in self.nodes]
        if arrays:
            found = [n for n in found if isinstance(self.env[n], (np.ndarray, np.generic))]
        return found

    def pick(self, arrays: bool = False) -> str:
        names = self.names(arrays)
        if not names or (len(self.inputs) < MAX_INPUTS and self.rng.random() < 0.15):
            return self.new_input()
        last = self.nodes[-1].name if self.nodes else None
        if last in names and self.rng.random() < 0.55:
            return last  # chain statements, so that few are dead code
        recent = names[-3:]  # prefer recent values: deeper programs, fewer dead statements
        return str(self.rng.choice(recent if self.rng.random() < 0.7 else names))

    def numpy(self, *exprs: str) -> bool:
        """Whether an operator on these operands is NumPy's (some operand is a NumPy value):
        between Python scalars only, ``~``, ``/`` or ``**`` are Python's own arithmetic."""
        return any(isinstance(self.env.get(e), (np.ndarray, np.generic)) for e in exprs)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(np.shape(self.env[name]))

    def operand_like(self, name: str) -> str:
        """A second operand for ``name``: a value, a new broadcast-compatible input, or a
        constant."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.25:
            return str(rng.choice(CONSTANTS))
        if roll < 0.55 and len(self.inputs) < MAX_INPUTS:
            shape = list(self.shape(name))
            shape = shape[int(rng.integers(0, len(shape) + 1)) :] if rng.random() < 0.4 else shape
            shape = [1 if rng.random() < 0.25 else d for d in shape]
            return self.new_input(tuple(shape))
        return self.pick()

    # -- statements --------------------------------------------------------------------------
    def attempt(self, op: str, expr: str, args: tuple[str, ...], **params: Any) -> str:
        """Evaluate a candidate; "ok", "error" (NumPy raised, kept) or "drop"."""
        name = f"v{len(self.nodes)}"
        candidate = Node(name, op, expr, args, tuple(sorted(params.items())))
        updated = params.get("base") if params.get("argument") else None
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scratch = dict(self.env)
                if updated is not None:  # an input updated in place: on a copy until kept
                    scratch[updated] = scratch[updated].copy()
                exec("\n".join(candidate.statements()), scratch)  # noqa: S102 - our own text
                value = scratch[name]
        except AttributeError:
            return "drop"  # a method of a Python scalar input: a generator slip, not a case
        except (ValueError, TypeError, IndexError, OverflowError):
            if not params.pop("errors_ok", True) or self.rng.random() >= KEEP_ERROR:
                return "drop"
            value = None
        params.pop("errors_ok", None)
        if value is not None and np.asarray(value).dtype.name not in DTYPES:
            return "drop"  # e.g. a float16 or object result: outside what jitune compiles
        if value is not None and np.size(value) > 4096:
            return "drop"  # keep programs small and fast
        self.nodes.append(Node(name, op, expr, args, tuple(sorted(params.items()))))
        self.env[name] = value
        if value is not None and updated is not None:
            self.env[updated] = scratch[updated]  # later statements read its new value
        return "ok" if value is not None else "error"


# -- statement families -----------------------------------------------------------------------


def _unary(b: _Builder) -> tuple:
    a = b.pick()
    name = str(b.rng.choice(UNARY_UFUNCS))
    if name == "reciprocal" and np.asarray(b.env[a]).dtype.kind != "f":
        name = "negative"  # README: reciprocal is for floats only
    if name in UNARY_OPERATORS and b.numpy(a) and b.rng.random() < 0.5:
        return name, UNARY_OPERATORS[name].format(a), (a,)
    if name == "absolute" and b.rng.random() < 0.3:
        return name, f"np.abs({a})", (a,)
    return name, f"np.{name}({a})", (a,)


def _binary(b: _Builder) -> tuple:
    rng = b.rng
    a = b.pick()
    other = b.operand_like(a)
    left, right = (a, other) if rng.random() < 0.7 else (other, a)
    name = str(rng.choice(BINARY_UFUNCS))
    op = ALIASES.get(name, name)
    args = tuple(x for x in (left, right) if x in b.env)
    if op == "power" and right in b.env and np.asarray(b.env[right]).dtype.kind in "iub":
        # NumPy raises for negative integer exponents depending on the data, which a compiled
        # kernel cannot do: integer array exponents are kept non-negative
        right = f"({right} % 5)"
    params = {"operands": (left, right)}
    if op in BINARY_OPERATORS and b.numpy(left, right) and rng.random() < 0.6:
        return op, f"{left} {BINARY_OPERATORS[op]} {right}", args, params
    return op, f"np.{name}({left}, {right})", args, params


def _where(b: _Builder) -> tuple:
    rng = b.rng
    c = b.pick()
    cond = f"{c} > {rng.choice(['0', '0.5', '-1'])}" if rng.random() < 0.5 else c
    x = b.pick()
    y = b.operand_like(x)
    args = tuple(n for n in (c, x, y) if n in b.env)
    return "where", f"np.where({cond}, {x}, {y})", args, {"operands": (cond, x, y)}


def _clip(b: _Builder) -> tuple:
    rng = b.rng
    a = b.pick()
    low = b.operand_like(a) if rng.random() < 0.5 else str(rng.choice(["-1", "0", "-0.5", "None"]))
    high = b.operand_like(a) if rng.random() < 0.5 else str(rng.choice(["1", "2", "0.5", "None"]))
    args = tuple(n for n in (a, low, high) if n in b.env)
    params = {"operands": tuple(o for o in (a, low, high) if o != "None")}
    if rng.random() < 0.3 and isinstance(b.env[a], np.ndarray):
        return "clip", f"{a}.clip({low}, {high})", args, params
    return "clip", f"np.clip({a}, {low}, {high})", args, params


def _axis(rng: np.random.Generator, ndim: int, multiple: bool = True) -> Any:
    """None, an int (maybe negative, rarely out of range) or a tuple of distinct axes."""
    roll = rng.random()
    if roll < 0.25 or ndim == 0:
        return None
    if roll < 0.7 or not multiple:
        axis = int(rng.integers(-ndim, ndim + (1 if rng.random() < 0.05 else 0)))
        return axis
    count = int(rng.integers(1, ndim + 1))
    axes = [int(x) for x in rng.permutation(ndim)[:count]]
    return tuple(x - ndim if rng.random() < 0.3 else x for x in axes)


def _reduce(b: _Builder) -> tuple:
    rng = b.rng
    a = b.pick(arrays=True)
    name = str(rng.choice(REDUCTIONS))
    ndim = len(b.shape(a))
    arg_kind = name.startswith("arg")
    axis = _axis(rng, ndim, multiple=not arg_kind)
    keyword = [f"axis={axis!r}"] if axis is not None or rng.random() < 0.3 else []
    if rng.random() < 0.4:
        keyword.append(f"keepdims={bool(rng.random() < 0.5)}")
    if name in ("sum", "prod", "mean") and rng.random() < 0.2:
        keyword.append(f"dtype=np.{rng.choice(DTYPES)}")
    if name in ("var", "std") and rng.random() < 0.4:
        keyword.append(f"ddof={int(rng.integers(0, 3))}")
    keywords = ", ".join(keyword)
    params = {"reduction": name.replace("amax", "max").replace("amin", "min"), "axis": axis}
    if name in METHODS and rng.random() < 0.5:
        return "reduce", f"{a}.{name}({keywords})", (a,), params
    return "reduce", f"np.{name}({a}{', ' if keywords else ''}{keywords})", (a,), params


def _einsum_letters(rng: np.random.Generator, shape: tuple[int, ...], sizes: dict[str, int]) -> str:
    """Subscripts for an operand of ``shape``: reuse a letter of the same extent (a
    contraction, a diagonal), rarely of another extent (an invalid spec), else a new one."""
    letters = ""
    for extent in shape:
        same = [c for c, n in sizes.items() if n == extent]
        other = [c for c, n in sizes.items() if n != extent]
        if same and rng.random() < 0.5:
            letter = str(rng.choice(same))
        elif other and rng.random() < 0.04:
            letter = str(rng.choice(other))
        else:
            letter = str(rng.choice([c for c in LETTERS if c not in sizes]))
        sizes.setdefault(letter, extent)
        letters += letter
    return letters


def _contract(b: _Builder) -> tuple:
    rng = b.rng
    a = b.pick(arrays=True)
    shape = b.shape(a)
    kind = str(rng.choice(["matmul", "operator", "dot", "tensordot", "einsum", "einsum"]))
    k = shape[-1] if shape else int(rng.choice([1, 2, 3]))
    if kind in ("matmul", "operator", "dot"):
        if len(b.inputs) >= MAX_INPUTS:
            other = b.pick(arrays=True)
        else:
            choices = [(k,), (k, int(rng.choice([1, 2, 3]))), (2, k, 3), (k, 0)]
            other = b.new_input(choices[int(rng.integers(0, len(choices)))])
        text = {"matmul": f"np.matmul({a}, {other})", "operator": f"{a} @ {other}"}.get(
            kind, f"np.dot({a}, {other})" if rng.random() < 0.6 else f"{a}.dot({other})"
        )
        return "contract", text, (a, other)
    if kind == "tensordot":
        count = int(rng.integers(0, min(len(shape), 2) + 1))
        tail = shape[len(shape) - count :]
        other = b.new_input(tail + random_shape(rng, 1)) if len(b.inputs) < MAX_INPUTS else b.pick()
        return "contract", f"np.tensordot({a}, {other}, axes={count})", (a, other)
    sizes: dict[str, int] = {}
    operands = [a]
    subscripts = [_einsum_letters(rng, shape, sizes)]
    if rng.random() < 0.7:
        second = b.new_input(random_shape(rng)) if len(b.inputs) < MAX_INPUTS else b.pick(True)
        operands.append(second)
        subscripts.append(_einsum_letters(rng, b.shape(second), sizes))
    used = sorted(set("".join(subscripts)))
    if rng.random() < 0.2:
        spec = ",".join(subscripts)  # implicit output: the letters used once, sorted
    else:
        keep = [c for c in rng.permutation(used) if rng.random() < 0.5]
        spec = ",".join(subscripts) + "->" + "".join(keep)
    for operand, letters in zip(operands, subscripts):
        extents: dict[str, set[int]] = {}
        for letter, extent in zip(letters, b.shape(operand)):
            extents.setdefault(letter, set()).add(extent)
        if any(len(e) > 1 and 0 in e for e in extents.values()):
            # NumPy takes a diagonal of extents (0, n) to have extent n and reads it out of the
            # empty operand's memory: unspecified values, which jitune refuses
            return _unary(b)
    function = "jitune.einsum" if rng.random() < 0.15 else "np.einsum"
    names = ", ".join(operands)
    return "contract", f"{function}({spec!r}, {names})", tuple(operands), {"spec": spec}


def _view(b: _Builder) -> tuple:
    rng = b.rng
    a = b.pick(arrays=True)
    shape = b.shape(a)
    ndim = len(shape)
    method = isinstance(b.env[a], np.ndarray)
    kind = str(rng.choice(["T", "transpose", "swapaxes", "moveaxis", "reshape", "ravel",
                           "expand_dims", "squeeze", "broadcast_to", "index", "index"]))  # fmt: skip
    if kind == "T" and method:
        return "view", f"{a}.T", (a,)
    if kind in ("T", "transpose"):
        perm = tuple(int(x) for x in rng.permutation(ndim))
        text = (
            f"{a}.transpose({perm})"
            if method and rng.random() < 0.5
            else f"np.transpose({a}, {perm})"
        )
        return "view", text, (a,)
    if kind in ("swapaxes", "moveaxis"):
        i, j = (int(x) for x in rng.integers(-max(ndim, 1), max(ndim, 1), 2))
        return "view", f"np.{kind}({a}, {i}, {j})", (a,)
    if kind == "reshape":
        size = math.prod(shape)
        dims: list[int] = []
        rest = size
        for _ in range(int(rng.integers(0, 4))):
            factors = [f for f in range(1, rest + 1) if rest % f == 0] if rest else [0, 1, 2]
            dims.append(int(rng.choice(factors)))
            rest = rest // dims[-1] if dims[-1] else rest
        dims.append(rest if size else 0)
        if rng.random() < 0.3:
            dims[int(rng.integers(0, len(dims)))] = -1
        if rng.random() < 0.03:
            dims[0] += 1  # a wrong size: NumPy raises, jitune must
        text = f"{a}.reshape({tuple(dims)})" if method else f"np.reshape({a}, {tuple(dims)})"
        return "view", text, (a,)
    if kind == "ravel":
        forms = [f"np.ravel({a})"] + ([f"{a}.ravel()", f"{a}.flatten()"] if method else [])
        return "view", str(rng.choice(forms)), (a,)
    if kind == "expand_dims":
        return "view", f"np.expand_dims({a}, {int(rng.integers(-ndim - 1, ndim + 1))})", (a,)
    if kind == "squeeze":
        ones = [i for i, d in enumerate(shape) if d == 1]
        axis = int(rng.choice(ones)) if ones and rng.random() < 0.6 else None
        if axis is None and ndim and rng.random() < 0.1:
            axis = int(rng.integers(0, ndim))  # maybe not of size 1: an error
        return "view", f"np.squeeze({a}, axis={axis})", (a,)
    if kind == "broadcast_to":
        target = [int(rng.choice([2, 3])) if d == 1 and rng.random() < 0.6 else d for d in shape]
        target = [int(rng.choice([1, 2, 3])) for _ in range(int(rng.integers(0, 2)))] + target
        return "view", f"np.broadcast_to({a}, {tuple(target)})", (a,)
    return "view", f"{a}[{_index(rng, shape)}]", (a,)


def _index(rng: np.random.Generator, shape: tuple[int, ...]) -> str:
    """Basic indexing: constant ints, slices with any step, None and ``...``."""
    parts: list[str] = []
    for extent in shape[: int(rng.integers(0, len(shape) + 1))]:
        roll = rng.random()
        if roll < 0.25 and extent:
            parts.append(str(int(rng.integers(-extent, extent))))
        elif roll < 0.28:
            parts.append(str(extent))  # out of range: an IndexError
        elif roll < 0.35:
            parts.append("None")
        else:
            start, stop = (_bound(rng, extent) for _ in range(2))
            step = str(rng.choice(["", "1", "2", "-1", "-2", "3"]))
            parts.append(f"{start}:{stop}" + (f":{step}" if step else ""))
    if rng.random() < 0.2:
        parts.insert(int(rng.integers(0, len(parts) + 1)), "...")
    return ", ".join(parts) if parts else "..."


def _bound(rng: np.random.Generator, extent: int) -> str:
    """A slice bound: omitted, or any int near the extent (negative and past the end too)."""
    return str(int(rng.integers(-extent - 2, extent + 3))) if rng.random() < 0.5 else ""


def _gather(b: _Builder) -> tuple:
    """Integer-array indexing: ``a[..., idx, ...]`` with an index that is a new int input, a
    constant list or a value of the program reduced into range, beside slices, ints and
    ``None``; now and then one element out of bounds (NumPy raises IndexError)."""
    rng = b.rng
    a = b.pick(arrays=True)
    shape = b.shape(a)
    if not isinstance(b.env[a], np.ndarray) or not shape:
        return _view(b)
    axis = int(rng.integers(0, len(shape)))
    extent = shape[axis]
    parts = [":" if rng.random() < 0.8 else "::-1" for _ in range(axis)]
    index_shape = random_shape(rng, max_ndim=2)
    roll = rng.random()
    values = rng.integers(-extent, extent, index_shape) if extent else np.zeros(index_shape, int)
    if rng.random() < 0.05 and values.size:
        values.flat[int(rng.integers(0, values.size))] = extent + int(rng.integers(0, 3))
    args: tuple[str, ...] = (a,)
    ints = [n for n in b.names(arrays=True) if np.asarray(b.env[n]).dtype.kind == "i"]
    if roll < 0.5 and len(b.inputs) < MAX_INPUTS:
        name = f"a{len(b.inputs)}"
        dtype = str(rng.choice(["int64", "int32"]))
        made = Input(name, "array", dtype, values.astype(dtype))
        b.inputs.append(made)
        b.env[name] = made.make()
        parts.append(name)
        args += (name,)
    elif roll < 0.75 and ints and extent:
        source = str(rng.choice(ints))
        parts.append(f"({source} % {extent})")
        args += (source,)
    else:
        parts.append(str(values.tolist()))
    if axis + 1 < len(shape) and rng.random() < 0.4:  # a second index: adjacent, or not
        other = int(rng.integers(0, shape[axis + 1])) if shape[axis + 1] else 0
        parts.append(str(rng.choice([str(other), f"[{other}]", ":"])))
        if parts[-1] == ":" and axis + 2 < len(shape) and shape[axis + 2]:
            parts.append(str(int(rng.integers(0, shape[axis + 2]))))
    if rng.random() < 0.15:
        parts.insert(int(rng.integers(0, len(parts) + 1)), "None")
    return "gather", f"{a}[{', '.join(parts)}]", args


def _like(b: _Builder) -> tuple:
    rng = b.rng
    a = b.pick(arrays=True)
    name = str(rng.choice(["zeros_like", "ones_like", "full_like", "empty_like", "copy"]))
    dtype = f", dtype=np.{rng.choice(DTYPES)}" if rng.random() < 0.3 and name != "copy" else ""
    if name == "copy":
        return "view", (f"{a}.copy()" if rng.random() < 0.5 else f"np.copy({a})"), (a,)
    if name != "full_like":
        return "fill", f"np.{name}({a}{dtype})", (a,)
    fill = b.operand_like(a) if rng.random() < 0.3 else str(rng.choice(CONSTANTS))
    return "fill", f"np.full_like({a}, {fill}{dtype})", tuple(n for n in (a, fill) if n in b.env)


def _astype(b: _Builder) -> tuple:
    rng = b.rng
    a = b.pick(arrays=True)
    dtype = str(rng.choice(DTYPES))
    forms = [f"{a}.astype(np.{dtype})", f"np.astype({a}, np.{dtype})", f"{a}.astype({dtype!r})"]
    if not isinstance(b.env[a], np.ndarray):
        forms = forms[:1]
    return "astype", str(rng.choice(forms)), (a,), {"dtype": dtype}


def _viewed(b: _Builder, name: str) -> bool:
    """Whether a "view" statement or a one-operand einsum derives a value from ``name``
    (``np.reshape(a)``, ``np.einsum('ij->ji', a)``):
    jitune refuses to update an array while a value NumPy may have made as a view or as a
    copy of it is alive (README), so such an input is not updated in place."""
    derived = {name}
    for node in b.nodes:
        one_operand = node.op == "contract" and len(node.args) == 1  # einsum('ij->ji', a)
        if (node.op == "view" or one_operand) and derived.intersection(node.args):
            derived.add(node.name)
    return len(derived) > 1


def _update(b: _Builder) -> tuple:
    """A new array updated in place: ``c = a.copy(); c[key] op= value`` (basic indexing), or
    an input updated in place: ``a[key] op= value; c = a.copy()`` (the caller's array)."""
    rng = b.rng
    writable = [
        i.name
        for i in b.inputs
        if isinstance(b.env[i.name], np.ndarray)
        and b.env[i.name].ndim
        and b.env[i.name].flags.writeable
        and not _viewed(b, i.name)
    ]
    argument = bool(writable) and rng.random() < 0.5
    a = str(rng.choice(writable)) if argument else b.pick(arrays=True)
    if not isinstance(b.env[a], np.ndarray) or b.env[a].ndim == 0:
        return _unary(b)
    key = _index(rng, b.shape(a))
    assign = str(rng.choice(["=", "=", "+=", "*=", "-="]))
    value = str(rng.choice(CONSTANTS)) if rng.random() < 0.4 else b.pick()
    if b.env[a].dtype.kind in "biu" and np.asarray(eval(value, b.env)).dtype.kind == "f":  # noqa: S307
        # a float stored into an integer array: NumPy raises for a scalar element out of the
        # integer's range and wraps for arrays, which depends on the data: not generated
        value = str(rng.choice([c for c in CONSTANTS if "." not in c and "e" not in c] or ["1"]))
    args = (a,) + ((value,) if value in b.env else ())
    params = {"base": a, "key": key, "assign": assign}
    return "update", value, args, ({**params, "argument": True} if argument else params)


FAMILIES: tuple[tuple[Callable[[_Builder], tuple], float], ...] = (
    (_unary, 3), (_binary, 5), (_where, 1), (_clip, 0.5), (_reduce, 3), (_contract, 2),
    (_view, 3), (_like, 0.7), (_astype, 1.2), (_update, 1.5), (_gather, 1.2),
)  # fmt: skip


def generate(seed: int) -> Program:
    """The program of ``seed`` (the same seed gives the same program on every machine)."""
    b = _Builder(seed)
    rng = b.rng
    target = int(rng.choice([1, 2, 2, 3, 3, 4, 5]))
    weights = np.array([w for _, w in FAMILIES])
    tries = 0
    while len(b.nodes) < target and tries < 40:
        tries += 1
        family = FAMILIES[int(rng.choice(len(FAMILIES), p=weights / weights.sum()))][0]
        op, expr, args, *rest = family(b)
        params = rest[0] if rest else {}
        if b.attempt(op, expr, args, **params) == "error":
            break  # nothing can follow a statement that raises
    if not b.nodes:
        b.attempt("positive", f"+{b.pick()}", (b.names()[-1],))
    outputs = (b.nodes[-1].name,)
    live = [n.name for n in b.nodes[:-1] if b.env[n.name] is not None]
    if live and rng.random() < 0.15:
        outputs += (str(rng.choice(live)),)  # a tuple result
    parallel = bool(rng.random() < 0.2)
    return Program(seed, tuple(b.inputs), tuple(b.nodes), outputs, parallel)
