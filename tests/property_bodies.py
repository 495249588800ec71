"""The bodies of the property tests of ``test_property.py``, with the check as a parameter,
so the GPU tests (``test_cuda.py`` on a GPU, ``test_cuda_codegen.py`` in the simulator) draw
the same random programs as the CPU tests."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import test_property as tp
from hypothesis import assume

import jitune

Check = Callable[..., Any]


def elementwise(case: tp.ElementwiseCase, check: Check) -> None:
    rng = np.random.default_rng(case.seed)
    args = [op.make(rng) for op in case.inputs]
    check(tp._function(case.tree), *args)


def reduction(case: tp.ReductionCase, check: Check) -> None:
    reduce_fn, pre, post = tp.REDUCTIONS[case.name], tp.PRE[case.pre], tp.POST[case.post]
    assume(not (case.name == "argmin" and (case.operand.dtype == "bool" or case.pre == "compare")))

    def fn(a):
        x = pre(a)
        if case.method and case.name != "prod":
            r = getattr(x, case.name)(axis=case.axis, keepdims=case.keepdims)
        else:
            r = reduce_fn(x, axis=case.axis, keepdims=case.keepdims)
        return post(r)

    rng = np.random.default_rng(case.seed)
    if case.name == "prod":
        arg = case.operand.make(rng, 0.9, 1.1)
        if np.dtype(case.operand.dtype).kind in "iu":
            arg = rng.integers(-1, 2, case.operand.shape).astype(case.operand.dtype)
    else:
        arg = case.operand.make(rng)
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn(arg)
    except ValueError:
        with pytest.raises(jitune.ShapeError):
            jitune.kernel(fn).lower(arg)
        return
    check(fn, arg)


def einsum(case: tp.EinsumCase, check: Check) -> None:
    rng = np.random.default_rng(case.seed)
    args = [op.make(rng) for op in case.operands]

    def contraction(*xs):
        return np.einsum(case.spec, *xs)

    check(contraction, *args)


def program(case: tp.ProgramCase, check: Check) -> None:
    def fn(x, y, w):
        results = [tp._run_program(tree, (x, y, w)) for tree in case.outputs]
        if case.reduce_output is not None:
            results.append(getattr(results[0], case.reduce_output)(axis=-1))
        return tuple(results) if len(results) > 1 else results[0]

    rng = np.random.default_rng(case.seed)
    args = [op.make(rng, -1.0, 1.0) for op in case.operands]
    check(fn, *args)
