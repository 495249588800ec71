"""Fusion at the IR level: which graphs become how many compute stages and kernels.

Numerical results of the same functions are also checked against NumPy, so a fusion that
changes the answer fails here too.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check, random_array

import jitune
from jitune.ir.compute import StageKind
from jitune.ir.graph import GraphOp
from jitune.ir.key import structural_key
from jitune.ir.loops import Block, For, If, LoopKind, Store
from jitune.ir.ops import ReduceOp

F32 = "float32"


def stored_buffers(stmt) -> set[str]:
    """Names of the buffers a loop IR statement stores to."""
    if isinstance(stmt, Store):
        return {stmt.buffer}
    if isinstance(stmt, Block):
        return set().union(*(stored_buffers(s) for s in stmt.stmts))
    if isinstance(stmt, For):
        return stored_buffers(stmt.body)
    if isinstance(stmt, If):
        return stored_buffers(stmt.then) | (
            stored_buffers(stmt.orelse) if stmt.orelse is not None else set()
        )
    return set()


def stored_arrays(low, stmt) -> set[str]:
    """Declared buffers (inputs, temporaries, outputs) a statement stores to; local
    scratch (accumulators, register tiles) is left out."""
    return stored_buffers(stmt) & {decl.name for decl in low.compute.buffers}


def roles(low) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for decl in low.compute.buffers:
        found.setdefault(decl.role, []).append(decl.name)
    return found


def relu_dense(x, w, b):
    return np.maximum(x @ w + b, 0)


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def layernorm(x, g, b):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * g + b


# -- contraction + epilogue ------------------------------------------------------------------


@pytest.mark.parametrize("m, k, n", [(64, 32, 48), (33, 17, 130), (1, 16, 16), (7, 1, 3)])
def test_relu_dense_is_one_stage_with_epilogue(m, k, n, rng):
    specs = (jitune.spec((m, k), F32), jitune.spec((k, n), F32), jitune.spec((n,), F32))
    low = jitune.kernel(relu_dense).lower(*specs)

    (stage,) = low.compute.stages
    assert stage.kind is StageKind.CONTRACTION
    assert stage.reduce_op is ReduceOp.SUM
    assert [a.extent for a in stage.reduce_axes] == [k]
    assert stage.epilogue is not None  # + b and max(.., 0) applied as each element is stored
    assert stage.shape == (m, n)
    assert len(low.loops.kernels) == 1
    assert roles(low).get("temp") is None  # x @ w is never materialized
    assert stored_arrays(low, low.loops.kernels[0].body) == {stage.out}

    check(relu_dense, *(random_array(rng, s.shape, F32) for s in specs))


def test_contraction_read_twice_is_materialized_once(rng):
    """x @ w is both returned and used: it cannot be an epilogue's private accumulator."""

    def both(x, w):
        y = x @ w
        return y, np.maximum(y, 0)

    x, w = random_array(rng, (7, 17), F32), random_array(rng, (17, 5), F32)
    low = jitune.kernel(both).lower(x, w)
    contractions = [s for s in low.compute.stages if s.kind is StageKind.CONTRACTION]
    assert len(contractions) == 1
    assert contractions[0].epilogue is None
    assert len(low.compute.stages) == 2
    check(both, x, w)


def test_contraction_epilogue_reading_another_element_is_not_fused(rng):
    """relu((x @ w).T): the epilogue would read the accumulator at a transposed index."""

    def transposed(x, w):
        return np.maximum((x @ w).T, 0)

    x, w = random_array(rng, (7, 17), F32), random_array(rng, (17, 5), F32)
    low = jitune.kernel(transposed).lower(x, w)
    assert len(low.compute.stages) == 2
    check(transposed, x, w)


@pytest.mark.parametrize(
    "fn",
    [
        pytest.param(lambda x, w: np.maximum((x @ w).T, 0), id="transposed square"),
        pytest.param(lambda x, w: (lambda r: r + r[::-1])(x.sum(axis=1)), id="reversed"),
        pytest.param(lambda x, w: (lambda r: r * r.T)(x @ w), id="product with transpose"),
    ],
)
def test_epilogue_reading_the_accumulator_elsewhere_falls_back(fn, rng):
    """The candidate has the output's shape, but the epilogue reads it at another index:
    lowering must notice and materialize it instead of fusing."""
    x, w = random_array(rng, (16, 16), F32), random_array(rng, (16, 16), F32)
    low = jitune.kernel(fn).lower(x, w)
    assert len(low.compute.stages) == 2
    assert all(stage.epilogue is None for stage in low.compute.stages)
    check(fn, x, w)


@pytest.mark.parametrize("axis", [0, 1])
def test_contraction_read_through_a_shared_elementwise_node_is_materialized(axis, rng):
    """exp(x @ w) is inlined into two stages (the max and the output): x @ w is read by both,
    so it cannot be the output stage's private accumulator."""

    def fn(x, w):
        v = np.exp(x @ w)
        return v - v.max(axis=axis, keepdims=True)

    x, w = random_array(rng, (17, 16), F32, -1, 1), random_array(rng, (16, 17), F32, -1, 1)
    low = jitune.kernel(fn).lower(x, w)
    contraction = [s for s in low.compute.stages if s.kind is StageKind.CONTRACTION]
    assert len(contraction) == 1 and contraction[0].epilogue is None
    check(fn, x, w)


def test_several_reductions_feeding_one_output(rng):
    def fn(a, b):
        return a.sum(axis=1) * a.max(axis=1) + b.min(axis=1) - (a @ b.T).sum(axis=1)

    a, b = random_array(rng, (17, 33), F32), random_array(rng, (17, 33), F32)
    low = jitune.kernel(fn).lower(a, b)
    reductions = [s for s in low.compute.stages if s.reduce_op is not None]
    assert len(reductions) == 5  # sum, max, min, the contraction and its row sum
    assert sum(s.epilogue is not None for s in low.compute.stages) == 1  # one is fused
    check(fn, a, b)


# -- row-wise stages share a loop --------------------------------------------------------------


@pytest.mark.parametrize("rows, cols", [(64, 128), (33, 17), (2, 130)])
def test_softmax_is_one_kernel(rows, cols, rng):
    low = jitune.kernel(softmax).lower(jitune.spec((rows, cols), F32))

    reductions = [s for s in low.compute.stages if s.reduce_op is not None]
    assert [s.reduce_op for s in reductions] == [ReduceOp.MAX, ReduceOp.SUM]
    # the exponentials are stored into the output once; the sum and the division read them
    assert len(low.compute.stages) == 4
    assert str(low.compute).count("exp(") == 1
    (kernel,) = low.loops.kernels
    # every stage runs inside one shared loop over the rows
    assert isinstance(kernel.body, For)
    assert kernel.body.kind in (LoopKind.PARALLEL, LoopKind.SERIAL)
    assert kernel.body.stop.arg == rows
    assert stored_arrays(low, kernel.body) == {s.out for s in low.compute.stages}

    check(softmax, random_array(rng, (rows, cols), F32))


@pytest.mark.parametrize("rows, cols", [(64, 128), (17, 33)])
def test_layernorm_is_one_kernel(rows, cols, rng):
    specs = (jitune.spec((rows, cols), F32), jitune.spec((cols,), F32), jitune.spec((cols,), F32))
    low = jitune.kernel(layernorm).lower(*specs)

    reductions = [s for s in low.compute.stages if s.reduce_op is not None]
    assert len(reductions) == 2  # the mean and the variance
    (kernel,) = low.loops.kernels
    assert isinstance(kernel.body, For) and kernel.body.stop.arg == rows
    assert stored_arrays(low, kernel.body) == {s.out for s in low.compute.stages}
    # the temporaries hold one value per row, never a full row
    for name in roles(low)["temp"]:
        assert low.compute.buffer(name).size == rows

    check(layernorm, *(random_array(rng, s.shape, F32) for s in specs))


def test_independent_reductions_over_different_rows_are_separate_kernels(rng):
    """A reduction along axis 0 does not read rows of the first: no shared row loop."""

    def centered(x):
        return x - x.mean(axis=0)

    x = random_array(rng, (16, 17), F32)
    low = jitune.kernel(centered).lower(x)
    assert len(low.compute.stages) == 2
    assert len(low.loops.kernels) == 2
    check(centered, x)


# -- elementwise chains ---------------------------------------------------------------------


ELEMENTWISE_CHAINS = {
    "arith": lambda a, b: np.tanh(a * b + 1) - a / 2,
    "broadcast": lambda a, b: np.exp(a - b[0]) * np.where(a > 0, a, 0.1 * a),
    "views": lambda a, b: (a.T.T + b[::-1]) * a[:, ::-1],
    "casts": lambda a, b: (a.astype(np.float64) + (b > 0)).astype(np.float32) * 2,
    "long": lambda a, b: np.sqrt(np.abs(np.sin(a) * np.cos(b) + np.maximum(a, b) ** 2)) + 1,
}


@pytest.mark.parametrize("name", list(ELEMENTWISE_CHAINS))
def test_elementwise_chain_is_one_stage(name, rng):
    fn = ELEMENTWISE_CHAINS[name]
    a, b = random_array(rng, (33, 17), F32), random_array(rng, (33, 17), F32)
    low = jitune.kernel(fn).lower(a, b)

    (stage,) = low.compute.stages
    assert stage.kind is StageKind.ELEMENTWISE
    assert stage.reduce_op is None and stage.epilogue is None
    assert set(roles(low)) == {"input", "output"}
    assert len(low.loops.kernels) == 1
    check(fn, a, b)


def test_reduction_of_an_elementwise_chain_is_one_stage(rng):
    def fn(a, b):
        return (np.exp(a) * b + 1).sum(axis=1)

    a, b = random_array(rng, (33, 17), F32), random_array(rng, (33, 17), F32)
    low = jitune.kernel(fn).lower(a, b)
    (stage,) = low.compute.stages
    assert stage.kind is StageKind.REDUCTION
    assert stage.reduce_op is ReduceOp.SUM
    check(fn, a, b)


def test_multiple_outputs_each_get_a_buffer(rng):
    def fn(a):
        s = a.sum(axis=1)
        return s, s * 2, a + 1

    a = random_array(rng, (7, 17), F32)
    low = jitune.kernel(fn).lower(a)
    assert len(roles(low)["output"]) == 3
    assert len(low.compute.outputs) == 3 and len(set(low.compute.outputs)) == 3
    check(fn, a)


def test_graph_records_broadcasts_explicitly():
    low = jitune.kernel(lambda a, b: a + b).lower(jitune.spec((3, 4), F32), jitune.spec(4, F32))
    ops = [n.op for n in low.graph.nodes()]
    assert ops.count(GraphOp.EXPAND) == 1
    assert ops.count(GraphOp.BINARY) == 1


# -- structural key -----------------------------------------------------------------------------


def _key(fn, *specs):
    return structural_key(jitune.kernel(fn).lower(*specs).graph)


S = (jitune.spec((8, 16), F32), jitune.spec((16, 4), F32), jitune.spec((4,), F32))


def test_structural_key_ignores_names():
    def dense_a(x, w, b):
        return np.maximum(x @ w + b, 0)

    def dense_b(inputs, weights, bias):
        hidden = inputs @ weights
        shifted = hidden + bias
        return np.maximum(shifted, 0)

    assert _key(dense_a, *S) == _key(dense_b, *S)
    assert _key(dense_a, *S) == _key(lambda p, q, r: np.maximum(np.matmul(p, q) + r, 0), *S)


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(lambda x, w, b: np.minimum(x @ w + b, 0), id="max->min"),
        pytest.param(lambda x, w, b: np.maximum(x @ w - b, 0), id="add->sub"),
        pytest.param(lambda x, w, b: np.maximum(x @ w + b, 1), id="constant"),
        pytest.param(lambda x, w, b: np.maximum(b + x @ w, 0), id="operand order"),
        pytest.param(lambda x, w, b: np.maximum(x @ w + b, 0).astype(np.float64), id="cast"),
        pytest.param(lambda x, w, b: (np.maximum(x @ w + b, 0), b), id="extra output"),
    ],
)
def test_structural_key_changes_with_the_computation(other):
    assert _key(relu_dense, *S) != _key(other, *S)


def test_structural_key_changes_with_shape_and_dtype():
    base = _key(relu_dense, *S)
    wider = (jitune.spec((8, 16), F32), jitune.spec((16, 5), F32), jitune.spec((5,), F32))
    doubles = tuple(jitune.spec(s.shape, "float64") for s in S)
    assert _key(relu_dense, *wider) != base
    assert _key(relu_dense, *doubles) != base
    assert _key(relu_dense, *S) == base  # and is deterministic


def test_deep_elementwise_chain_is_cut_into_stages():
    """Thousands of chained ops compile (no RecursionError): the chain is cut into stages
    whose expressions are at most MAX_INLINE_DEPTH ops deep, each loading the one before."""
    from jitune.lower.fuse import MAX_INLINE_DEPTH

    def chain(x):
        for _ in range(1500):
            x = x * 1.0001 + 0.5
        return x

    x = np.linspace(-1, 1, 37)
    kernel = jitune.kernel(chain)
    check(chain, x, kernel=kernel)
    stages = kernel.lower(x).compute.stages
    assert len(stages) >= 3000 // MAX_INLINE_DEPTH
    for previous, stage in zip(stages, stages[1:]):
        assert previous.out in stage.reads()


def test_buffered_node_is_loaded_not_recomputed():
    """A value that is both returned and used later is computed once and then loaded."""

    def f(x):
        y = np.exp(x) * 2
        return y, y.sum()

    x = np.linspace(0, 1, 40)
    low = jitune.kernel(f).lower(x)
    producer, consumer = low.compute.stages
    assert producer.out in consumer.reads()
    assert "in0" not in consumer.reads()
