"""Lazy tuning through ``@jitune.kernel``: a cache miss tunes, the result is stored with its
config, an interrupted tuning runs the best so far and resumes on the next call."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close

import jitune
from jitune.cache import open_store
from jitune.tune import measure
from jitune.tune.measure import LocalMeasurer
from jitune.tune.records import clear_memory


@pytest.fixture(autouse=True)
def _fresh_records():
    clear_memory()
    yield
    clear_memory()


@pytest.fixture
def in_process():
    with jitune.config.override(isolate=False, progress="off"):
        yield


def _dense(x, w, b):
    return np.maximum(x @ w + b, 0)


def _args(rng, m=40, k=36, n=48):
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((k, n)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    return x, w, b


def test_a_cache_miss_tunes_and_stores_the_chosen_config(rng, cache_dir, in_process):
    f = jitune.kernel(budget=6)(_dense)
    args = _args(rng)
    assert_close(f(*args), _dense(*args))
    tuned = f.last.tuned
    assert tuned is not None and tuned.trials == 6 and tuned.seconds is not None
    assert tuned.seconds <= tuned.default_seconds  # the default was measured too
    store = open_store(jitune.config.get())
    (meta,) = store.artifacts()
    assert meta["how"].startswith("tuned: 6 trials")
    assert meta["config"] == {s: dict(c) for s, c in tuned.configs.items()}
    assert meta["measured_seconds"] == tuned.seconds
    records = store.records()
    assert sum("confirmation" not in r for r in records) == 6
    # the best two and the default, measured again in three rounds (tuner._confirm)
    confirmed = [r for r in records if "confirmation" in r]
    assert 2 <= len(confirmed) <= 3 and all(r["confirmation"] == 3 for r in confirmed)
    # another kernel object (a new process, in effect) loads it without tuning
    g = jitune.kernel(budget=6)(_dense)
    assert_close(g(*args), _dense(*args))
    assert g.load_count == 1 and g.last.how == "loaded"


def test_records_stay_in_memory_without_a_disk_cache(rng, in_process):
    f = jitune.kernel(budget=4)(_dense)
    args = _args(rng)
    f(*args)
    again = jitune.kernel(budget=4)(_dense)
    again(*args)
    assert again.last.tuned.trials == 0 and again.last.tuned.total_trials == 4


def test_tune_ahead_of_time_and_budget_zero_uses_the_records(rng, in_process):
    f = jitune.kernel(_dense)
    args = _args(rng)
    result = f.tune(*args, budget=5, strategy="random", seed=2)
    assert result.trials == 5 and result.total_trials == 5
    assert f.compile_count == 1
    assert_close(f(*args), _dense(*args))  # served by the tuned entry
    assert f.compile_count == 1
    more = f.tune(*args, budget=8)
    assert more.trials == 3 and more.total_trials == 8
    with jitune.config.override(budget=jitune.config.Budget(trials=0)):
        fresh = jitune.kernel(_dense)
        fresh(*args)
    assert fresh.last.tuned.how.startswith("budget 0: best of 8 earlier trials")
    assert fresh.last.tuned.config == more.config


def test_budget_zero_on_a_new_shape_uses_the_model_of_other_shapes(rng, in_process):
    f = jitune.kernel(_dense)
    for m in (24, 56):
        f.tune(*_args(rng, m=m), budget=8)
    with jitune.config.override(budget=jitune.config.Budget(trials=0)):
        fresh = jitune.kernel(_dense)
        args = _args(rng, m=40)
        assert_close(fresh(*args), _dense(*args))
    assert "cost model's choice" in fresh.last.tuned.how


class _Interrupting(LocalMeasurer):
    """Ctrl-C after ``after`` candidates (as if the user pressed it while one ran)."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after
        self.count = 0

    def measure(self, task, candidates):
        results = []
        for candidate in candidates:
            if self.count >= self.after:
                raise KeyboardInterrupt
            self.count += 1
            results.extend(super().measure(task, [candidate]))
        return results


def test_ctrl_c_runs_the_best_so_far_and_the_next_call_resumes(rng, cache_dir, monkeypatch):
    interrupting = _Interrupting(after=10)
    monkeypatch.setitem(measure._instances, ("cpu", False), interrupting)
    f = jitune.kernel(budget=16)(_dense)
    args = _args(rng)
    with jitune.config.override(isolate=False, progress="off"):
        assert_close(f(*args), _dense(*args))  # ran with the best of what was measured
        first = f.last.tuned
        assert first.interrupted and first.total_trials == 8  # one batch of 8 was recorded
        store = open_store(jitune.config.get())
        assert store.artifacts() == []  # not stored: the next call resumes
        interrupting.after = 10**9
        assert_close(f(*args), _dense(*args))
        second = f.last.tuned
        assert not second.interrupted and second.trials == 8 and second.total_trials == 16
        assert len(store.artifacts()) == 1
        f(*args)
        assert f.last is not None and f.last.tuned is second  # now served from the table


def test_progress_bar_and_log_line(rng, capsys, caplog):
    f = jitune.kernel(budget=3)(_dense)
    with caplog.at_level("INFO", logger="jitune.tune"):
        with jitune.config.override(isolate=False, progress="on"):
            f(*_args(rng))
    assert "jitune: tuning _dense" in capsys.readouterr().err
    (line,) = [r.getMessage() for r in caplog.records if r.name == "jitune.tune"]
    assert "tuned: 3 trials" in line and "GFLOP/s" in line
