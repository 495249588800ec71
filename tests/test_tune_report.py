"""``jitune report``: tuning curves from the records."""

from __future__ import annotations

import io

import numpy as np
import pytest

import jitune
from jitune.cli import main
from jitune.tune.records import clear_memory


def _dense(x, w, b):
    return np.maximum(x @ w + b, 0)


@pytest.fixture
def tuned(cache_dir, rng):
    clear_memory()
    f = jitune.kernel(budget=4)(_dense)
    x = rng.random((24, 16), dtype=np.float32)
    with jitune.config.override(isolate=False, progress="off"):
        f(x, rng.random((16, 32), dtype=np.float32), rng.random(32, dtype=np.float32))
    yield
    clear_memory()


def test_report_summarizes_and_plots(tuned, tmp_path):
    pytest.importorskip("matplotlib")
    out = io.StringIO()
    png = tmp_path / "curve.png"
    assert main(["report", "-o", str(png)], out) == 0
    text = out.getvalue()
    assert "_dense" in text and "4 trials" in text and "GFLOP/s" in text
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_report_from_an_export_and_without_matplotlib(tuned, tmp_path, monkeypatch):
    exported = tmp_path / "records.jsonl"
    assert main(["cache", "export", str(exported)], io.StringIO()) == 0
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)  # import fails
    out = io.StringIO()
    assert main(["report", "--records", str(exported), "--kernel", "_dense"], out) == 1
    assert "4 trials" in out.getvalue()


def test_report_without_records(cache_dir):
    out = io.StringIO()
    assert main(["report"], out) == 1 and "no tuning records" in out.getvalue()
