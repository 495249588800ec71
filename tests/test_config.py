"""config.py: every JITUNE_* variable is validated and named in errors; overrides are scoped."""

from __future__ import annotations

import pytest

import jitune
from jitune import config

VALID = [
    ("JITUNE_DEBUG", "3", "debug", 3),
    ("JITUNE_NUM_THREADS", "1", "num_threads", 1),
    ("JITUNE_TARGET", "CPU", "target", "cpu"),
    ("JITUNE_PARALLEL_MIN_WORK", "0", "parallel_min_work", 0),
    ("JITUNE_CACHE_DIR", "/tmp/somewhere", "cache_dir", "/tmp/somewhere"),
    ("JITUNE_DISABLE_CACHE", "yes", "disable_cache", True),
    ("JITUNE_DISABLE_CACHE", "0", "disable_cache", False),
    ("JITUNE_CACHE_SIZE", "2G", "cache_size", 2 << 30),
    ("JITUNE_CACHE_SIZE", "500MiB", "cache_size", 500 << 20),
    ("JITUNE_CACHE_SIZE", "1.5g", "cache_size", 3 << 29),
    ("JITUNE_CACHE_WAIT", "2.5", "cache_wait", 2.5),
]

INVALID = [
    ("JITUNE_DEBUG", "loud"),
    ("JITUNE_DEBUG", "-1"),
    ("JITUNE_NUM_THREADS", "two"),
    ("JITUNE_TARGET", "tpu"),
    ("JITUNE_DISABLE_CACHE", "maybe"),
    ("JITUNE_CACHE_SIZE", "lots"),
    ("JITUNE_CACHE_SIZE", "10K"),  # below the 1M minimum
    ("JITUNE_CACHE_WAIT", "-3"),
    ("JITUNE_CACHE_WAIT", "soon"),
]


@pytest.mark.parametrize("variable, raw, field, expected", VALID)
def test_valid_values(monkeypatch, variable, raw, field, expected):
    monkeypatch.setenv(variable, raw)
    assert getattr(config.from_environment(), field) == expected


@pytest.mark.parametrize("variable, raw", INVALID)
def test_invalid_values_name_the_variable(monkeypatch, variable, raw):
    monkeypatch.setenv(variable, raw)
    with pytest.raises(jitune.ConfigError, match=variable):
        config.from_environment()


def test_default_cache_dir_is_the_user_cache_dir(monkeypatch):
    monkeypatch.delenv("JITUNE_CACHE_DIR", raising=False)
    assert config.from_environment().cache_dir == config.default_cache_dir()
    assert "jitune" in config.default_cache_dir()


def test_override_is_scoped_and_checked():
    before = config.get()
    with config.override(debug=2, num_threads=1) as inside:
        assert config.get() is inside and inside.debug == 2 and config.threads() == 1
    assert config.get() == before
    with pytest.raises(jitune.ConfigError, match="no_such_setting"):
        with config.override(no_such_setting=1):
            pass
