"""The cost model and the features it reads."""

from __future__ import annotations

import numpy as np
import pytest
from tune_helpers import dense_relu, make_task, matmul

from jitune.tune import features
from jitune.tune.model import CostModel, normalize


def _data(rng, rows=80):
    x = rng.random((rows, features.LENGTH))
    y = 1.0 + 3 * x[:, 0] + x[:, 5] * x[:, 7]
    groups = np.repeat(np.arange(rows // 20), 20)
    return x, y, groups


@pytest.mark.parametrize("objective", ["rank", "regression"])
def test_saved_and_reloaded_model_predicts_identically(tmp_path, rng, objective):
    x, y, groups = _data(rng)
    base = CostModel(objective, seed=1)
    base.update(x[:40], y[:40], groups[:40])
    model = CostModel(objective, seed=1, base=base)
    model.update(x[40:], y[40:])
    path = str(tmp_path / "model.json")
    model.save(path)
    again = CostModel.load(path)
    probe = rng.random((30, features.LENGTH))
    np.testing.assert_array_equal(model.predict(probe), again.predict(probe))
    assert again.objective == objective and again.base is not None


@pytest.mark.parametrize("objective", ["rank", "regression"])
def test_the_model_learns_the_order(rng, objective):
    x, y, _ = _data(rng, 200)
    model = CostModel(objective)
    model.update(x[:150], y[:150])
    predicted = model.predict(x[150:])
    assert np.corrcoef(predicted, y[150:])[0, 1] > 0.8


def test_an_untrained_model_says_nothing(rng):
    model = CostModel()
    assert not model.trained
    assert np.array_equal(model.predict(rng.random((3, features.LENGTH))), np.zeros(3))
    model.update(rng.random((3, features.LENGTH)), np.zeros(3))  # only failures: nothing learned
    assert not model.trained


def test_labels_are_relative_to_the_best_of_their_task():
    labels = normalize(np.array([1.0, 2.0, 0.0, 30.0, 10.0]), np.array([0, 0, 0, 1, 1]))
    np.testing.assert_allclose(labels, [0.5, 1.0, 0.0, 1.0, 1 / 3])


def test_features_have_a_fixed_length_and_tell_programs_apart():
    task = make_task(matmul, (64, 48), (48, 80))
    seen: dict[tuple, str] = {}
    for config in list(task.space.configs())[::7]:
        vector = task.features(config)
        assert vector.shape == (features.LENGTH,) and np.isfinite(vector).all()
        program = str(task.loops(config))
        assert seen.setdefault(tuple(vector), program) == program  # equal features: equal code


def test_features_describe_the_program_not_its_name():
    a = make_task(dense_relu, (64, 48), (48, 80), (80,))
    b = make_task(dense_relu, (128, 48), (48, 80), (80,))
    assert a.family == b.family and a.kind == b.kind == "contraction"
    assert not np.array_equal(a.features(a.default), b.features(b.default))
    c = make_task(matmul, (64, 48), (48, 80))
    assert c.family != a.family


def _scalar_recurrence(r):
    # each step's scalars feed the next: one shared subexpression DAG through every stage
    y = r * 0
    alpha, beta = -r[0], 1.0
    for k in range(1, r.shape[0]):
        beta = beta * (1.0 - alpha * alpha)
        alpha = -(r[k] + np.dot(r[:k][::-1], y[:k])) / beta
        y[:k] += alpha * y[:k][::-1]
        y[k] = alpha
    return y


def test_family_of_a_loop_carrying_scalars_hashes_each_shared_subexpression_once(monkeypatch):
    # Regression: the family was a digest of the printed program, whose shared scalars printed
    # as trees: 16 s of printing (3.4 million calls) for a 12-step loop. It prints nothing now.
    from jitune.ir import printer

    def refuse(expr):
        raise AssertionError("the family must not print the program")

    monkeypatch.setattr(printer, "format_expr", refuse)
    a = make_task(_scalar_recurrence, (12,))
    b = make_task(_scalar_recurrence, (12,))
    assert a.family == b.family and len(a.family) == 16
    c = make_task(dense_relu, (64, 48), (48, 80), (80,))
    assert c.family != a.family
