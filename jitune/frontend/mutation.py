"""In-place updates while tracing, with NumPy's meaning.

The graph IR is functional: an update makes a new node, and the tracer that was updated
takes it (``Tracer.node`` is replaced, so every Python name bound to that tracer sees the new
value, as every name bound to a NumPy array sees its new contents). What NumPy adds is
views: ``v = x.T`` shares ``x``'s memory, so after ``x += 1`` the old ``v`` shows the new
values too. Each tracer made by a view operation of the tracer class (basic indexing,
``.T``, ``transpose``, ``reshape``) records the array that owns its memory (``view_of``);
when the owner is updated, every live view of it is rebuilt on the new node by replaying its
view operations. A live tracer whose node is a view of the old value but that is not known
to be a view (it came from a function whose result NumPy may or may not copy) makes the
update an error rather than a guess.

What is supported:

- assignment with basic indexing (``x[1:-1] = v``, ``x[i] = v``, ``x[::-2, 3] = v``,
  ``x[...] = v``), broadcasting ``v`` and casting it unsafely, as NumPy's ``__setitem__``
  does; the new value of ``x`` is an ``UPDATE`` node (the old value with the region
  replaced), or, when the region is all of ``x`` in place, a copy of ``v``;
- assignment through a view (``v = x[1:]; v[0] = 5``, ``x.T[0] = 1``): the region is
  composed through the view's slices, transposes and reshapes that add or drop axes of
  extent 1;
- augmented assignment (``x += y``, ``x[1:-1] *= 2``, ...), with NumPy's rules: the result
  keeps the target's shape and dtype, and a result dtype that cannot be cast to it with
  ``same_kind`` casting is refused (``int_array += 1.5``);
- ``x[mask] = scalar`` for a traced boolean mask of ``x``'s shape (``np.where``);
- all of these on an argument: the kernel writes the argument's new value back into the
  caller's array (see :mod:`jitune.frontend.trace`).

Refused with :class:`UnsupportedOperation` naming the line: assignment with integer arrays,
a masked assignment of an array value (which element goes where depends on the data), and
assignment through a broadcast or a reshape that merges axes.

A 0-d value that NumPy would hold as a scalar (a full reduction, ``x[0, 0]``, a scalar
argument) is immutable, as NumPy's scalars are: ``s += 1`` makes a new value and leaves other
names bound to the old one untouched.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import dtypes
from ..errors import DTypeError, ShapeError, UnsupportedOperation
from ..ir.graph import VIEWS, Array, GraphOp
from . import build
from .context import located, user_line
from .state import live_tracers

if TYPE_CHECKING:
    from .tracer import Tracer


def _view_chain(node: Array, base: Array) -> list[Array] | None:
    """The view nodes from ``base`` up to ``node`` (outermost last), or None if ``node`` is
    not ``base`` seen through view operations only."""
    chain: list[Array] = []
    while node is not base:
        if node.op not in VIEWS and not _einsum_view(node):
            return None
        chain.append(node)
        node = node.src[0]
    chain.reverse()
    return chain


def _einsum_view(node: Array) -> bool:
    """Whether ``node`` is an einsum of one operand that sums nothing (``'ij->ji'``,
    ``'ii->i'``): NumPy answers it with a view of the operand, which jitune's contraction is
    not, so an update of the operand while it is alive is refused like any unknown view."""
    if node.op is not GraphOp.CONTRACT or len(node.src) != 1:
        return False
    return set(node.arg.inputs[0]) <= set(node.arg.output)


def _replay(chain: list[Array], base: Array) -> Array:
    """The same view operations applied to ``base`` (same shape and dtype as the old one)."""
    node = base
    for view in chain:
        node = Array(view.op, (node,), view.shape, view.dtype, view.arg)
    return node


def _owner(tracer: Tracer) -> Tracer:
    return tracer.view_of if tracer.view_of is not None else tracer


def _replace(owner: Tracer, new: Array, what: str) -> None:
    """Give ``owner`` the value ``new`` and rebuild every live view of it on that value."""
    old = owner.node
    rebuilt: list[tuple[Tracer, Array]] = []
    for other in live_tracers():
        if other is owner:
            continue
        chain = _view_chain(other.node, old)
        if chain is None:
            continue
        if other.view_of is not owner:
            raise UnsupportedOperation(
                located(
                    f"{what}: an array of shape {other.shape} derived from this one (shape "
                    f"{owner.shape}) by a function that NumPy may answer with a view or a copy "
                    "is still alive, and jitune cannot tell which it would see; make it an "
                    "explicit .copy() before the update, or index the array itself"
                )
            )
        rebuilt.append((other, _replay(chain, new)))
    owner.node = new
    for other, node in rebuilt:
        other.node = node


def _refuse(target: Tracer, what: str, why: str) -> None:
    raise UnsupportedOperation(located(f"{what} (shape {target.shape}): {why}"))


@dataclasses.dataclass
class Region:
    """Where the elements of a view lie in its owner: view axis ``d`` moves along owner axis
    ``axis_of[d]`` (None: an axis of extent 1 the view added); owner axis ``k`` starts at
    ``starts[k]`` in steps of ``steps[k]``; owner axes no view axis moves along are fixed."""

    starts: list[int]
    steps: list[int]
    axis_of: list[int | None]


def region_of(chain: list[Array], ndim: int) -> Region | None:
    """The region of the owner that the views ``chain`` show, or None for views that are not
    a (permuted) box of it: broadcasts, and reshapes that merge or split axes."""
    region = Region([0] * ndim, [1] * ndim, list(range(ndim)))
    for view in chain:
        source_shape = view.src[0].shape
        if view.op is GraphOp.SLICE:
            for d, (start, step) in enumerate(view.arg):
                k = region.axis_of[d]
                if k is not None:
                    region.starts[k] += region.steps[k] * start
                    region.steps[k] *= step
        elif view.op is GraphOp.PERMUTE:
            region.axis_of = [region.axis_of[p] for p in view.arg]
        elif view.op is GraphOp.RESHAPE:
            moving = [d for d, extent in enumerate(source_shape) if extent != 1]
            if [source_shape[d] for d in moving] != [e for e in view.shape if e != 1]:
                return None  # axes merged or split
            old = iter(moving)
            region.axis_of = [
                None if extent == 1 else region.axis_of[next(old)] for extent in view.shape
            ]
        else:  # EXPAND: a broadcast view is read-only in NumPy
            return None
    return region


def _store(owner: Tracer, view: Array, value: Array, what: str) -> None:
    """Store ``value`` (of ``view``'s shape and the owner's dtype) into the elements of the
    owner that ``view`` (a view node of the owner's value) shows."""
    chain = _view_chain(view, owner.node)
    assert chain is not None
    region = region_of(chain, owner.ndim)
    if region is None:
        _refuse(owner, what, "assignment through a broadcast or a reshape that merges axes")
    if 0 in view.shape:
        return  # an empty region: nothing changes
    mapped = [(k, d) for d, k in enumerate(region.axis_of) if k is not None]
    counts = [1] * owner.ndim
    for k, d in mapped:
        counts[k] = view.shape[d]
    whole = counts == list(owner.shape) and all(
        region.starts[k] == 0 and (region.steps[k] == 1 or counts[k] == 1)
        for k in range(owner.ndim)
    )
    if whole and [k for k, _ in mapped] == sorted(k for k, _ in mapped):
        new = build.copy(build.reshape(value, owner.shape))  # a copy: see assign
    else:
        # the value with one axis per owner axis, in the owner's order
        kept = build.reshape(value, tuple(view.shape[d] for _, d in mapped))
        order = sorted(range(len(mapped)), key=lambda j: mapped[j][0])
        permuted = build.permute(kept, order) if order != sorted(order) else kept
        placed = build.reshape(permuted, tuple(counts))
        new = build.update(owner.node, placed, region.starts, region.steps)
    _replace(owner, new, what)


def _writable(target: Tracer, what: str) -> Tracer:
    """The owner of ``target``'s memory; refuses NumPy scalars, which are immutable."""
    if not target.mutable:
        _refuse(
            target,
            what,
            "this 0-d value is a NumPy scalar (a reduction's result, an element, a scalar "
            "argument), which does not support item assignment",
        )
    return _owner(target)


def assign(target: Tracer, key: Any, value: Any) -> None:
    """``target[key] = value``: the elements ``key`` selects take ``value``, broadcast to
    their shape and cast unsafely, as NumPy's ``__setitem__`` does."""
    from .gather import is_advanced
    from .indexing import basic_index
    from .tracer import Tracer, to_node

    what = "item assignment"
    owner = _writable(target, what)
    if isinstance(key, Tracer) and key.dtype == np.bool_:
        _assign_masked(owner, target, key, value, what)
        return
    if is_advanced(key):
        _refuse(
            target,
            what,
            "integer-array indexing on the left of = (x[idx] = v, a scatter) is not "
            "supported; a boolean mask of the array's shape (x[mask] = v) or np.where is",
        )
    view = basic_index(target.node, key)
    node = to_node(value, target.dtype, what)
    items = list(key) if isinstance(key, tuple) else [key]
    element = len(items) == target.ndim and all(isinstance(i, (int, np.integer)) for i in items)
    if node.ndim and element and target.dtype == np.bool_ and node.size == 1:
        node = build.reshape(node, ())  # NumPy stores the truth of a one-element array
    elif node.ndim and element:
        # an element (all-integer key, or () of a 0-d array) takes a scalar only, as in NumPy
        raise ShapeError(
            located(f"{what}: setting an array element with a sequence (shape {node.shape})")
        )
    if node.dtype != target.dtype:
        node = build.cast(node, target.dtype)
    extra = node.ndim - view.ndim
    if extra > 0 and all(d == 1 for d in node.shape[:extra]):
        node = build.reshape(node, node.shape[extra:])  # NumPy drops leading axes of 1
    if node.shape != view.shape:
        try:
            node = build.expand(node, view.shape, what)
        except ShapeError:
            raise ShapeError(
                located(
                    f"{what}: could not broadcast input array from shape {node.shape} into "
                    f"shape {view.shape}"
                )
            ) from None
    if node is view:
        return  # x[...] = x
    _store(owner, view, node, what)


def _assign_masked(owner: Tracer, target: Tracer, mask: Tracer, value: Any, what: str) -> None:
    """``target[mask] = value`` for a traced boolean mask of ``target``'s shape and a scalar
    value: ``np.where(mask, value, target)``. A value with one element per True element
    depends on the data and is refused."""
    from .tracer import to_node

    what = f"{what} with a boolean mask"
    if mask.shape != target.shape:
        _refuse(target, what, f"the mask's shape {mask.shape} must equal the array's")
    if isinstance(value, MaskedSelection):  # the end of x[mask] op= v
        if value.array is not target or value.mask is not mask or value.value is None:
            value._refuse()
        _store(
            owner, target.node, build.where(mask.node, value.value, target.node, target.dtype), what
        )
        return
    node = to_node(value, target.dtype, what)
    if node.ndim != 0:
        _refuse(
            target,
            what,
            f"a value of shape {node.shape}: its elements go to the True elements of the mask "
            "in order, which depends on the data; only a scalar value is supported",
        )
    node = build.expand(build.cast(node, target.dtype), target.shape, what)
    _store(owner, target.node, build.where(mask.node, node, target.node, target.dtype), what)


def _at(message: str, line: str) -> str:
    return f"{message}\n  at {line}" if line else message


class MaskedSelection:
    """``x[mask]`` for a traced boolean mask of ``x``'s shape: its shape depends on the data,
    so it cannot be read, but ``x[mask] op= v`` (Python: ``t = x[mask]; t op= v;
    x[mask] = t``) needs only where the mask is True: the in-place operator computes
    ``x op v`` everywhere and the assignment keeps it where the mask is True."""

    def __init__(self, array: Tracer, mask: Tracer, value: Array | None = None) -> None:
        self.array, self.mask, self.value = array, mask, value
        self.line = user_line()  # where x[mask] was written: a later misuse points there

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise UnsupportedOperation(
            _at(
                f"indexing with a boolean mask (reading x[mask], shape {self.array.shape}): its "
                "shape depends on the data; "
                "only x[mask] = scalar and x[mask] op= scalar are supported (or use np.where)",
                self.line,
            )
        )

    def __getattr__(self, name: str) -> Any:
        self._refuse()

    # -- reductions: their value does not depend on where the selected elements lie ----------
    def _elements(self) -> Tracer:
        from .tracer import Tracer

        return self.array if self.value is None else Tracer(self.value)

    def _masked(self, neutral: Any) -> Tracer:
        """The elements where the mask is True, ``neutral`` elsewhere (in their dtype)."""
        from .tracer import Tracer

        elements = self._elements()
        fill = build.constant(neutral, elements.dtype)
        return Tracer(build.where(self.mask.node, elements.node, fill, elements.dtype))

    def _whole_axis(self, name: str, axis: Any, extras: dict[str, Any]) -> None:
        if axis not in (None, 0, -1, (0,), (-1,)) or any(v is not None for v in extras.values()):
            raise UnsupportedOperation(
                _at(f"x[mask].{name}: only over the whole selection, without options", self.line)
            )

    def sum(self, axis: Any = None, dtype: Any = None, **extras: Any) -> Any:
        """``x[mask].sum()``: the sum of x where the mask is True (0 for no element)."""
        self._whole_axis("sum", axis, extras)
        return np.sum(self._masked(0), dtype=dtype)

    def prod(self, axis: Any = None, dtype: Any = None, **extras: Any) -> Any:
        self._whole_axis("prod", axis, extras)
        return np.prod(self._masked(1), dtype=dtype)

    def mean(self, axis: Any = None, dtype: Any = None, **extras: Any) -> Any:
        """``x[mask].mean()``: NumPy's mean of the selection, nan for no element (NumPy
        warns "Mean of empty slice" and returns nan)."""
        from .numpy_api import mean_dtype

        self._whole_axis("mean", axis, extras)
        if dtype is not None and not dtypes.is_float(np.dtype(dtype)):
            # NumPy sums in that dtype and truncates the quotient back into it
            raise UnsupportedOperation(
                _at(f"x[mask].mean(dtype={np.dtype(dtype)}): only a float dtype", self.line)
            )
        accumulate = np.dtype(dtype) if dtype is not None else mean_dtype(self._elements().dtype)
        total = np.sum(self._masked(0), dtype=accumulate)
        return (total / np.sum(self.mask)).astype(accumulate)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        method = {np.sum: "sum", np.prod: "prod", np.mean: "mean"}.get(func)
        if method is None or not args or args[0] is not self:
            self._refuse()
        return getattr(self, method)(*args[1:], **kwargs)

    __array__ = __bool__ = __len__ = __iter__ = __getitem__ = _refuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse
    __truediv__ = __rtruediv__ = __pow__ = __neg__ = __lt__ = __gt__ = __eq__ = _refuse
    __hash__ = None  # type: ignore[assignment]

    def __array_ufunc__(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse()

    def inplace(self, ufunc: np.ufunc, other: Any, symbol: str) -> MaskedSelection:
        """``self op= other``: the operator applied to the whole array, kept for the
        assignment that follows."""
        from .numpy_api import call_ufunc
        from .tracer import Tracer

        if isinstance(other, (Tracer, np.ndarray)) and np.ndim(other) != 0:
            _refuse(
                self.array,
                f"x[mask] {symbol}= of an array",
                "its elements go to the True elements of the mask in order, which depends on "
                "the data; only a scalar is supported",
            )
        result = call_ufunc(ufunc, (self.array, other), {})
        what = f"in-place {symbol}= on x[mask] (shape {self.array.shape}, {self.array.dtype})"
        if result.dtype != self.array.dtype and not np.can_cast(
            result.dtype, self.array.dtype, "same_kind"
        ):
            raise DTypeError(
                located(
                    f"{what}: cannot cast the result from {result.dtype} to {self.array.dtype} "
                    "with casting rule 'same_kind'"
                )
            )
        return MaskedSelection(self.array, self.mask, build.cast(result.node, self.array.dtype))


def _masked_inplace(ufunc: np.ufunc, symbol: str) -> Any:
    def operator(self: MaskedSelection, other: Any) -> MaskedSelection:
        return self.inplace(ufunc, other, symbol)

    return operator


for _name, _ufunc, _symbol in (
    ("__iadd__", np.add, "+"),
    ("__isub__", np.subtract, "-"),
    ("__imul__", np.multiply, "*"),
    ("__itruediv__", np.true_divide, "/"),
    ("__ifloordiv__", np.floor_divide, "//"),
    ("__imod__", np.remainder, "%"),
    ("__ipow__", np.power, "**"),
    ("__iand__", np.bitwise_and, "&"),
    ("__ior__", np.bitwise_or, "|"),
    ("__ixor__", np.bitwise_xor, "^"),
):
    setattr(MaskedSelection, _name, _masked_inplace(_ufunc, _symbol))


def update(target: Tracer, result: Any, op_name: str) -> Tracer:
    """``target op= other`` given ``result`` = ``op(target, other)`` (traced): ``target``
    takes the result's values, cast to its dtype; a scalar (immutable) gets the new value
    as a new tracer instead. Returns what Python binds the name to."""
    from .tracer import Tracer

    if not isinstance(result, Tracer):
        raise UnsupportedOperation(located(f"in-place {op_name} gave a {type(result).__name__}"))
    if not target.mutable:
        return result  # NumPy scalars are immutable: the name is bound to a new value
    what = f"in-place {op_name} (shape {target.shape}, {target.dtype})"
    if result.shape != target.shape:
        raise ShapeError(
            located(
                f"{what}: non-broadcastable output operand with shape {target.shape} doesn't "
                f"match the broadcast shape {result.shape}"
            )
        )
    if result.dtype != target.dtype and not np.can_cast(result.dtype, target.dtype, "same_kind"):
        raise DTypeError(
            located(
                f"{what}: cannot cast the result from {result.dtype} to {target.dtype} with "
                "casting rule 'same_kind', as NumPy's in-place operators require"
            )
        )
    owner = _writable(target, what)
    _store(owner, target.node, build.cast(result.node, target.dtype), what)
    return target
