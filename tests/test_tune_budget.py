"""JITUNE_BUDGET and the other tuning settings: parsing, errors naming the variable."""

from __future__ import annotations

import numpy as np
import pytest

import jitune
from jitune.config import Budget, from_environment, parse_budget


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("64", Budget(trials=64)),
        (" 8 ", Budget(trials=8)),
        ("0", Budget(trials=0)),
        ("30s", Budget(seconds=30.0)),
        ("1.5s", Budget(seconds=1.5)),
        ("2min", Budget(seconds=120.0)),
        ("500ms", Budget(seconds=0.5)),
        ("0s", Budget(seconds=0.0)),
    ],
)
def test_budget_values(monkeypatch, raw, expected):
    monkeypatch.setenv("JITUNE_BUDGET", raw)
    assert from_environment().budget == expected


def test_zero_budgets_measure_nothing():
    assert parse_budget("0").none and parse_budget("0s").none and not parse_budget("1").none


def test_unset_budget_is_the_default(monkeypatch):
    monkeypatch.delenv("JITUNE_BUDGET", raising=False)
    assert from_environment().budget == Budget(trials=32)


@pytest.mark.parametrize("raw", ["lots", "-3", "1.5", "10x", "s", "30 parsecs", "1e3"])
def test_bad_budgets_name_the_variable(monkeypatch, raw):
    monkeypatch.setenv("JITUNE_BUDGET", raw)
    with pytest.raises(jitune.ConfigError, match="JITUNE_BUDGET"):
        from_environment()


@pytest.mark.parametrize(
    ("name", "raw"), [("JITUNE_ISOLATE", "maybe"), ("JITUNE_PROGRESS", "loud")]
)
def test_bad_switches_name_the_variable(monkeypatch, name, raw):
    monkeypatch.setenv(name, raw)
    with pytest.raises(jitune.ConfigError, match=name):
        from_environment()


def test_switches(monkeypatch):
    monkeypatch.setenv("JITUNE_ISOLATE", "0")
    monkeypatch.setenv("JITUNE_PROGRESS", "1")
    settings = from_environment()
    assert settings.isolate is False and settings.progress == "on"


def test_decorator_budget_is_checked_where_it_is_written():
    with pytest.raises(jitune.ConfigError, match="budget"):
        jitune.kernel(budget="forever")(np.negative)
    with pytest.raises(ValueError, match="strategy"):
        jitune.kernel(strategy="oracle")(np.negative)
    assert jitune.kernel(budget="10s")(np.negative).budget == Budget(seconds=10.0)
    assert jitune.kernel(budget=5)(np.negative).budget == Budget(trials=5)
