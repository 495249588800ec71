"""Einsum specs: parsing (explicit/implicit output, ellipsis), checking, and the specs of
``matmul``, ``dot`` and ``tensordot``.

Everything here returns :class:`~jitune.ir.graph.Contraction` values whose letters are
single characters; ellipsis axes get fresh upper-case letters.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

from ..errors import ShapeError
from ..ir.graph import Contraction
from .context import located

_LETTERS = string.ascii_letters


def letter_sizes(
    shapes: Sequence[tuple[int, ...]], subscripts: Sequence[str], op_name: str
) -> dict[str, int]:
    """Extent of each letter; axes of extent 1 broadcast between operands. Raises ShapeError
    on a mismatch, and (as NumPy does) when a letter repeated within one operand (a
    diagonal, ``'ii->i'``) has different extents there: those axes never broadcast."""
    sizes: dict[str, int] = {}
    for shape, letters in zip(shapes, subscripts):
        if len(shape) != len(letters):
            raise ShapeError(
                located(f"{op_name}: subscripts '{letters}' do not match operand of shape {shape}")
            )
        own: dict[str, int] = {}
        for letter, extent in zip(letters, shape):
            if own.setdefault(letter, extent) != extent:
                raise ShapeError(
                    located(
                        f"{op_name}: index '{letter}' repeats in the operand of shape {shape} "
                        f"with extents {own[letter]} and {extent}"
                    )
                )
        for letter, extent in zip(letters, shape):
            known = sizes.get(letter, 1)
            if known == 1:
                sizes[letter] = extent
            elif extent not in (1, known):
                raise ShapeError(
                    located(
                        f"{op_name}: index '{letter}' has extent {known} and {extent} "
                        f"in operands of shapes {', '.join(map(str, shapes))}"
                    )
                )
    return sizes


def parse(
    spec: str, shapes: Sequence[tuple[int, ...]], sum_unlisted_ellipsis: bool = False
) -> Contraction:
    """Parse ``spec`` for operands of ``shapes``; ellipses become fresh letters.

    An explicit output without ``...`` while operands have axes under ``...`` is an error in
    NumPy's C einsum but sums those axes in its ``optimize=True`` path; the caller says which."""
    op_name = f"einsum('{spec}')"
    compact = spec.replace(" ", "")
    if "->" in compact:
        lhs, output = compact.split("->", 1)
        explicit = True
    else:
        lhs, output, explicit = compact, "", False
    inputs = lhs.split(",")
    if len(inputs) != len(shapes):
        raise ShapeError(
            located(f"{op_name}: {len(inputs)} operand subscripts for {len(shapes)} operands")
        )
    for part in inputs + [output]:
        bad = set(part.replace("...", "")) - set(_LETTERS)
        if bad or part.count("...") > 1:
            raise ShapeError(located(f"{op_name}: invalid subscripts '{part}'"))
    used = set(lhs + output)
    fresh = [c for c in reversed(string.ascii_uppercase) if c not in used]
    ellipsis_ndim = 0
    for part, shape in zip(inputs, shapes):
        if "..." in part:
            ellipsis_ndim = max(ellipsis_ndim, len(shape) - (len(part) - 3))
    if ellipsis_ndim > len(fresh):
        raise ShapeError(located(f"{op_name}: too many axes under '...'"))
    ell = "".join(reversed(fresh[:ellipsis_ndim]))
    expanded = []
    for part, shape in zip(inputs, shapes):
        if "..." in part:
            count = len(shape) - (len(part) - 3)
            if count < 0:
                raise ShapeError(
                    located(f"{op_name}: subscripts '{part}' do not fit operand of shape {shape}")
                )
            part = part.replace("...", ell[len(ell) - count :])
        expanded.append(part)
    if explicit:
        if ellipsis_ndim and "..." not in output and not sum_unlisted_ellipsis:
            raise ShapeError(
                located(f"{op_name}: operands have axes under '...' but the output has no '...'")
            )
        output = output.replace("...", ell)
        if len(set(output)) != len(output):
            raise ShapeError(located(f"{op_name}: output subscripts repeat a letter"))
        missing = set(output) - set("".join(expanded))
        if missing:
            raise ShapeError(
                located(f"{op_name}: output letters {sorted(missing)} appear in no operand")
            )
    else:
        counts = {c: "".join(expanded).count(c) for c in set("".join(expanded))}
        output = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    letter_sizes(shapes, expanded, op_name)
    return Contraction(tuple(expanded), output)


def pairwise(spec: Contraction) -> list[Contraction]:
    """Split an n-operand contraction into binary steps, left to right.

    Step ``i`` contracts the running result with operand ``i + 1``; letters are kept while a
    later operand or the output still needs them. Returns the steps; for one or two operands
    that is ``[spec]``.
    """
    if len(spec.inputs) <= 2:
        return [spec]
    steps = []
    current = spec.inputs[0]
    for position in range(1, len(spec.inputs)):
        other = spec.inputs[position]
        later = "".join(spec.inputs[position + 1 :]) + spec.output
        if position == len(spec.inputs) - 1:
            keep = spec.output
        else:
            keep = "".join(dict.fromkeys(c for c in current + other if c in later))
        steps.append(Contraction((current, other), keep))
        current = keep
    return steps


def matmul_spec(
    a_shape: tuple[int, ...], b_shape: tuple[int, ...], name: str = "matmul"
) -> Contraction:
    """The contraction ``np.matmul`` performs (1-D operands promoted and dropped as NumPy does)."""
    if not a_shape or not b_shape:
        raise ShapeError(
            located(f"{name}: operands must be at least 1-D, got {a_shape} and {b_shape}")
        )
    a_1d, b_1d = len(a_shape) == 1, len(b_shape) == 1
    a_core = "k" if a_1d else "ik"
    b_core = "k" if b_1d else "kj"
    a_batch = len(a_shape) - len(a_core)
    b_batch = len(b_shape) - len(b_core)
    batch = "".join(_LETTERS[26 + i] for i in range(max(a_batch, b_batch)))
    a_sub = batch[len(batch) - a_batch :] + a_core
    b_sub = batch[len(batch) - b_batch :] + b_core
    out = batch + ("" if a_1d else "i") + ("" if b_1d else "j")
    if a_shape[-1] != b_shape[0 if b_1d else -2]:
        raise ShapeError(
            located(
                f"{name}: shapes {a_shape} and {b_shape} are not aligned: "
                f"{a_shape[-1]} (last axis of the first) != {b_shape[0 if b_1d else -2]}"
            )
        )
    try:
        letter_sizes((a_shape, b_shape), (a_sub, b_sub), name)
    except ShapeError:
        raise ShapeError(
            located(f"{name}: batch axes of shapes {a_shape} and {b_shape} do not broadcast")
        ) from None
    return Contraction((a_sub, b_sub), out)


def dot_spec(a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> Contraction:
    """``np.dot``: sum over the last axis of ``a`` and the second-to-last of ``b``."""
    if len(a_shape) <= 2 and len(b_shape) <= 2 and a_shape and b_shape:
        return matmul_spec(a_shape, b_shape, "dot")
    a_sub = _LETTERS[: len(a_shape)]
    rest = _LETTERS[len(a_shape) : len(a_shape) + len(b_shape)]
    if not b_shape:
        return Contraction((a_sub, ""), a_sub)
    if not a_shape:
        return Contraction(("", rest), rest)
    contracted = a_sub[-1]
    b_sub = rest[: len(b_shape)]
    axis = len(b_shape) - 2 if len(b_shape) >= 2 else 0
    b_sub = b_sub[:axis] + contracted + b_sub[axis + 1 :]
    if a_shape[-1] != b_shape[axis]:
        raise ShapeError(
            located(
                f"dot: shapes {a_shape} and {b_shape} are not aligned: {a_shape[-1]} != {b_shape[axis]}"
            )
        )
    out = a_sub[:-1] + b_sub.replace(contracted, "")
    return Contraction((a_sub, b_sub), out)


def tensordot_spec(
    a_shape: tuple[int, ...], b_shape: tuple[int, ...], axes: int | Sequence[Sequence[int]]
) -> Contraction:
    """``np.tensordot`` with ``axes`` as an int or a pair of axis lists."""
    name = "tensordot"
    if isinstance(axes, int):
        if axes < 0 or axes > min(len(a_shape), len(b_shape)):
            raise ShapeError(
                located(f"{name}: axes={axes} is invalid for shapes {a_shape}, {b_shape}")
            )
        a_axes = list(range(len(a_shape) - axes, len(a_shape)))
        b_axes = list(range(axes))
    else:
        a_axes, b_axes = ([x] if isinstance(x, int) else list(x) for x in axes)
    if len(a_axes) != len(b_axes):
        raise ShapeError(located(f"{name}: axes {axes} have different lengths"))
    for axis_list, shape in ((a_axes, a_shape), (b_axes, b_shape)):
        for axis in axis_list:
            if not -len(shape) <= axis < len(shape):
                raise ShapeError(
                    located(f"{name}: axis {axis} is out of bounds for an operand of shape {shape}")
                )
    a_axes = [x % len(a_shape) for x in a_axes]
    b_axes = [x % len(b_shape) for x in b_axes]
    if len(set(a_axes)) != len(a_axes) or len(set(b_axes)) != len(b_axes):
        raise ShapeError(located(f"{name}: repeated axis in axes={axes!r}"))
    a_sub = list(_LETTERS[: len(a_shape)])
    b_sub = list(_LETTERS[len(a_shape) : len(a_shape) + len(b_shape)])
    for i, j in zip(a_axes, b_axes):
        if a_shape[i] != b_shape[j]:
            raise ShapeError(
                located(f"{name}: shape mismatch for sum: {a_shape} axis {i} vs {b_shape} axis {j}")
            )
        b_sub[j] = a_sub[i]
    out = [c for i, c in enumerate(a_sub) if i not in a_axes]
    out += [c for j, c in enumerate(b_sub) if j not in b_axes]
    return Contraction(("".join(a_sub), "".join(b_sub)), "".join(out))
