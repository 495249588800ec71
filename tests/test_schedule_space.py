"""Schedule spaces: the Space API, and every template under random configs of its space."""

from __future__ import annotations

import random

import numpy as np
import pytest
from helpers import assert_close, graph_tolerance

from jitune.frontend.artifacts import LaunchPlan
from jitune.frontend.kernel import _spec
from jitune.frontend.trace import trace
from jitune.ir.compute import StageKind
from jitune.pipeline import lower_graph
from jitune.runtime.cpu import host_target
from jitune.runtime.devices import device_of
from jitune.runtime.interp import evaluate
from jitune.schedule.default import default_config, space
from jitune.schedule.space import Config, Knob, Space

SPACE = Space((Knob("a", (1, 2, 4)), Knob("b", (False, True)), Knob("c", ("x", "y", "z"))))


def test_space_sample_neighbours_encode():
    assert len(SPACE) == 18 == len(list(SPACE.configs()))
    assert len(set(SPACE.configs())) == 18
    first = SPACE.sample(random.Random(7))
    assert first == SPACE.sample(random.Random(7))  # a seed fixes every choice
    assert SPACE.contains(first)
    neighbours = SPACE.neighbours(first)
    assert len(neighbours) == 2 + 1 + 2
    for other in neighbours:
        assert sum(first[k] != other[k] for k in first) == 1
    vector = SPACE.encode(Config({"a": 4, "b": True, "c": "z"}))
    np.testing.assert_allclose(vector, [np.log2(5), 1.0, 2.0])
    assert not SPACE.contains(Config({"a": 3, "b": True, "c": "z"}))


def _run(fn, args, configs_for):
    """Compile ``fn`` for ``args`` with stage configs chosen by ``configs_for(stages)``."""
    specs = [_spec(a, k, "test") for k, a in enumerate(args)]
    device = device_of(args, "test")
    traced = trace(fn, specs)
    probe = lower_graph(traced.graph, [s.strides for s in specs], device)
    configs = configs_for(probe.compute.stages)
    lowered = lower_graph(traced.graph, [s.strides for s in specs], device, configs)
    plan = LaunchPlan.of_loops(lowered.loops)
    program = device.load(device.compile(lowered.source), plan.buffer_count)
    arrays = list(args) + [np.empty(shape, dtype) for shape, dtype in plan.allocations]
    program.launch(*arrays)
    (expected,) = evaluate(traced.graph, args)
    ((rtol, atol),) = graph_tolerance(traced.graph, args)
    assert_close(arrays[plan.results[0]], expected, rtol=rtol, atol=atol)
    return lowered


def _random_configs(seed):
    rng = random.Random(seed)
    return lambda stages: {s.out: space(s).sample(rng) for s in stages}


EXTENTS = (1, 7, 33, 130)


@pytest.mark.parametrize("seed", range(12))
def test_contraction_template_random_configs(seed):
    rng = np.random.default_rng(seed)
    m, k, n = (EXTENTS[(seed + d) % 4] for d in range(3))
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    if seed % 3 == 1:
        b = np.ascontiguousarray(b.T).T  # a transposed view: strided along the vector axis
    bias = rng.standard_normal(n).astype(np.float32)
    _run(lambda x, w, c: np.maximum(x @ w + c, 0), (a, b, bias), _random_configs(seed))


@pytest.mark.parametrize("seed", range(6))
def test_batched_contraction_random_configs(seed):
    rng = np.random.default_rng(100 + seed)
    batch, m, k, n = 3, EXTENTS[seed % 4], 17, EXTENTS[(seed + 1) % 4]
    q = rng.standard_normal((batch, m, k))
    kk = rng.standard_normal((batch, n, k))
    _run(lambda x, y: np.einsum("bqd,bkd->bqk", x, y), (q, kk), _random_configs(seed))


@pytest.mark.parametrize("seed", range(8))
def test_elementwise_and_reduction_templates_random_configs(seed):
    rng = np.random.default_rng(200 + seed)
    rows, cols = EXTENTS[seed % 4], EXTENTS[(seed + 2) % 4]
    x = rng.standard_normal((rows, cols)).astype(np.float32)

    def softmax(v):
        e = np.exp(v - v.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    lowered = _run(softmax, (x,), _random_configs(seed))
    assert {s.kind for s in lowered.compute.stages} <= {StageKind.ELEMENTWISE, StageKind.REDUCTION}
    _run(lambda v: (np.tanh(v) * 2 + 1).sum(axis=0), (x,), _random_configs(seed))


def test_every_tile_of_the_contraction_space_is_correct():
    """For one awkward shape, every tile (mr, nv), packing and loop order, with the k block
    cycling through its choices (K = 140 > 128, so k-blocking with a tail block is taken)."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((13, 140)).astype(np.float32)
    b = rng.standard_normal((140, 37)).astype(np.float32)
    probe = _run(lambda x, w: x @ w, (a, b), lambda stages: {})
    (stage,) = probe.compute.stages
    blocks = space(stage).knob("kc").choices
    seen = set()
    for n, config in enumerate(space(stage).configs()):
        key = tuple(config[k] for k in ("mr", "nv", "pack", "order"))
        if key in seen:
            continue
        seen.add(key)
        config = config.replace(kc=blocks[n % len(blocks)])
        _run(lambda x, w: x @ w, (a, b), lambda stages, c=config: {s.out: c for s in stages})


def test_default_configs_lie_in_their_spaces():
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((64, 48))).astype(np.float32)  # exp stays well-conditioned
    lowered = _run(lambda v, w: np.exp(v @ w.T).sum(axis=1), (x, x), lambda stages: {})
    buffers = {d.name: d for d in lowered.compute.buffers}
    for stage in lowered.compute.stages:
        assert space(stage).contains(default_config(stage, lowered.target, buffers))


_LANES = host_target().lanes(4)  # float32 lanes of the host's vectors
TAILS = [
    # 13 x 40 outputs with 8 x 32 tiles: the last 8 columns are one 8-lane vector, the last
    # 5 rows a 5-row tile, and the corner both; no element is computed by scalar code
    pytest.param(
        (13, 300, 40),
        {"mr": 8, "nv": 2, "kc": 128},
        ["for l_ in 0..8:  # vectorized", "for r_ in 0..5:  # unrolled"],
        ["acc_tail"],  # the scalar form's accumulator
        id="8x32-tiles",
    ),
    # with L lanes, 4L + 2L + 4 columns in 4L-column tiles leave 2L + 4: two L-lane vectors
    # and a 4-lane one (100 columns and 36 left with AVX-512's 16 float lanes; a 36-lane
    # vector is legal LLVM IR but several times slower)
    pytest.param(
        (20, 70, 6 * _LANES + 4),
        {"mr": 6, "nv": 4, "kc": 0},
        ["for c_ in 0..2:  # unrolled", "for l_ in 0..4:  # vectorized"],
        [f"0..{2 * _LANES + 4}:  # vectorized"],
        id="6x4L-tiles",
    ),
]


@pytest.mark.parametrize(("shape", "tile", "present", "absent"), TAILS)
def test_tail_tiles_are_vector_tiles_of_the_remaining_size(shape, tile, present, absent):
    m, k, n = shape
    rng = np.random.default_rng(m + n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    config = Config({"pack": True, "order": "cols_outer", "mc": 0, **tile})
    lowered = _run(lambda x, w: x @ w, (a, b), lambda stages: {s.out: config for s in stages})
    text = str(lowered.loops)
    for line in present:
        assert line in text
    for line in absent:
        assert line not in text
