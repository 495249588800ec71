"""Measurement: a candidate that crashes the worker, hangs, gives a wrong answer or does not
compile is recorded with its error kind; tuning goes on and the caller's process survives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from tune_helpers import make_task, matmul

from jitune.config import Budget
from jitune.schedule.space import Config
from jitune.tune import TuneOptions, TuneTask, tune
from jitune.tune.measure import (
    Bench,
    Candidate,
    ErrorKind,
    LocalMeasurer,
    agrees,
    random_input,
)
from jitune.tune.records import RecordBook, clear_memory
from jitune.tune.worker import WorkerMeasurer


@pytest.fixture(autouse=True)
def _fresh_records():
    clear_memory()
    yield
    clear_memory()


def _entry(params: int, body: str) -> str:
    args = ", ".join(f"ptr %a{k}" for k in range(params))
    return f"define void @jitune_entry({args}) {{\n{body}\n}}\n"


# deliberately faulty builds: an entry function that writes to address 16 (SIGSEGV), one that
# spins forever, one that returns without writing its output, and text that is not LLVM IR
FAULTS = {
    "crash": "entry:\n  store volatile i64 1, ptr inttoptr (i64 16 to ptr)\n  ret void",
    "hang": "entry:\n  br label %spin\nspin:\n  %x = load volatile i8, ptr %a0\n  br label %spin",
    "wrong": "entry:\n  ret void",
    "garbage": None,
}
EXPECTED = {
    "crash": ErrorKind.CRASH,
    "hang": ErrorKind.TIMEOUT,
    "wrong": ErrorKind.WRONG_ANSWER,
    "garbage": ErrorKind.COMPILE_ERROR,
}


class FaultyTask(TuneTask):
    """Builds the fault that ``fault_of(config)`` names instead of the real candidate."""

    fault_of = staticmethod(lambda config: None)

    def candidate(self, config: Config) -> Candidate:
        real = super().candidate(config)
        fault = self.fault_of(config)
        if fault is None:
            return real
        body = FAULTS[fault]
        source = "this is not LLVM IR" if body is None else _entry(real.plan.buffer_count, body)
        return Candidate(source, real.plan)


def _task(cls=TuneTask):
    return make_task(matmul, (48, 40), (40, 56), cls=cls)


def test_each_fault_is_recorded_with_its_kind_and_the_worker_recovers():
    task = _task(FaultyTask)
    bench = task.measure_task(0)
    bench.timeout = 3.0
    good = task.candidate(task.default)
    faulty = {}
    for name, body in FAULTS.items():
        source = "this is not LLVM IR" if body is None else _entry(good.plan.buffer_count, body)
        faulty[name] = Candidate(source, good.plan)
    measurer = WorkerMeasurer()
    try:
        order = ["crash", "hang", "wrong", "garbage"]
        candidates = [good]
        for name in order:
            candidates += [faulty[name], good]
        results = measurer.measure(bench, candidates)  # the hang is cut off by bench.timeout
        kinds = [r.error for r in results]
        assert kinds[0::2] == [None] * 5  # every good candidate after a fault is measured
        assert kinds[1::2] == [EXPECTED[name] for name in order]
        assert all(r.seconds > 0 for r in results[0::2])
        assert measurer.restarts == 2  # after the crash and after the hang
    finally:
        measurer.close()
    assert os.getpid()  # still here


def test_tuning_goes_on_past_faulty_candidates(monkeypatch):
    faults = {1: "crash", 2: "wrong", 3: "hang", 4: "garbage"}
    monkeypatch.setattr(
        FaultyTask, "fault_of", staticmethod(lambda config: faults.get(config["out0/mr"]))
    )
    task = _task(FaultyTask)
    book = RecordBook(None)
    options = TuneOptions(
        budget=Budget(trials=14), strategy="random", seed=3, progress="off", timeout=2.0
    )
    result = tune(task, options, book)
    rows = [
        row
        for row in book.for_key(task.key.digest)
        if not row.get("alias_of") and "confirmation" not in row  # finalists measured again
    ]
    assert len(rows) == 14 and result.trials == 14
    for row in rows:
        fault = faults.get(row["config"]["out0"]["mr"])
        assert row["error"] == (None if fault is None else EXPECTED[fault].value), row
        assert (row["seconds"] is None) == (row["error"] is not None)
    seen = {faults.get(row["config"]["out0"]["mr"]) for row in rows} - {None}
    assert set(result.errors) == {EXPECTED[fault].value for fault in seen}
    assert len(seen) >= 3
    assert result.config["out0/mr"] not in faults  # a candidate that failed is never chosen


def test_in_process_measuring_checks_answers_too():
    task = _task(FaultyTask)
    bench = task.measure_task(0)
    good = task.candidate(task.default)
    wrong = Candidate(_entry(good.plan.buffer_count, FAULTS["wrong"]), good.plan)
    results = LocalMeasurer().measure(bench, [good, wrong])
    assert results[0].ok and results[1].error is ErrorKind.WRONG_ANSWER


def test_inputs_keep_the_signatures_strides():
    rng = np.random.default_rng(0)
    transposed = random_input((3, 4), np.dtype("float32"), (1, 3), rng)
    assert transposed.view().strides == (4, 12)
    broadcast = random_input((5, 4), np.dtype("float64"), (0, 1), rng)
    view = broadcast.view()
    assert view.strides == (0, 8) and (view == view[0]).all()
    reversed_ = random_input((6,), np.dtype("int32"), (-1,), rng)
    assert reversed_.view().strides == (-4,)
    scalar = random_input((), np.dtype("float32"), (), rng)
    assert scalar.view().shape == ()


def test_agreement_tolerates_summation_order_only():
    reference = np.linspace(-1, 1, 101).astype(np.float32)
    assert agrees(reference * (1 + 1e-6), reference, 1e-3)
    assert not agrees(reference + 0.1, reference, 1e-3)
    assert not agrees(np.full_like(reference, np.nan), reference, 1e-3)
    assert agrees(np.arange(5), np.arange(5), 1e-3) and not agrees(
        np.arange(5) + 1, np.arange(5), 1e-3
    )


def test_bench_times_are_positive_medians():
    task = _task()
    bench = Bench(task.measure_task(1))
    result = bench.measure(task.candidate(task.default))
    assert result.ok and 0 < result.seconds < 1 and result.compile_seconds > 0


def test_the_worker_is_not_left_behind_at_exit(tmp_path):
    script = textwrap.dedent(
        """
        import json, numpy as np, jitune
        from jitune.tune import measure

        @jitune.kernel(budget=2)
        def mm(x, w):
            return x @ w

        x = np.ones((16, 16), np.float32)
        mm(x, x)
        (measurer,) = measure._instances.values()
        print(json.dumps({"pid": measurer.pid}))
        """
    )
    env = dict(os.environ, JITUNE_DISABLE_CACHE="1", JITUNE_ISOLATE="1", JITUNE_BUDGET="2")
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    pid = json.loads(done.stdout.strip().splitlines()[-1])["pid"]
    assert pid is not None
    for _ in range(300):  # up to 30 s: a liveness bound on a loaded machine, not a timing
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    pytest.fail(f"worker {pid} still runs after its parent exited")


def test_ctrl_c_in_a_real_process_runs_the_best_so_far(tmp_path):
    script = textwrap.dedent(
        """
        import json, sys, numpy as np, jitune
        from jitune.tune import measure

        @jitune.kernel(budget=10_000)
        def mm(x, w):
            return x @ w

        x = np.random.default_rng(0).random((96, 96), dtype=np.float32)
        print("tuning", flush=True)
        y = mm(x, x)
        (measurer,) = measure._instances.values()
        tuned = mm.last.tuned
        ok = bool(np.allclose(y, x @ x, rtol=1e-4, atol=1e-3))
        print(json.dumps({"ok": ok, "how": tuned.how, "pid": measurer.pid,
                          "stored": len(mm._table)}), flush=True)
        """
    )
    env = dict(os.environ, JITUNE_DISABLE_CACHE="1", JITUNE_ISOLATE="1", JITUNE_PROGRESS="0")
    process = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "tuning"
    time.sleep(4.0)  # the worker has started and measured some candidates
    process.send_signal(__import__("signal").SIGINT)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    report = json.loads(out.strip().splitlines()[-1])
    assert report["ok"] and report["how"].startswith("interrupted after")
    assert report["stored"] == 0  # not kept: the next call would resume
    if report["pid"] is not None:  # a worker started after the interruption is gone too
        for _ in range(300):  # up to 30 s: a liveness bound on a loaded machine, not a timing
            try:
                os.kill(report["pid"], 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the worker outlived its parent")
