"""The joint space of a program: the knobs of every stage, as one :class:`Space`.

Knob names are ``"<stage output>/<knob>"``, so the search strategies see one flat space
and :func:`split` turns a joint config back into the per-stage configs the pipeline takes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..schedule.space import Config, Knob, Space

StageConfigs = dict[str, Config]


def joint_space(spaces: Mapping[str, Space]) -> Space:
    """One space holding every stage's knobs, in stage order."""
    return Space(
        tuple(
            Knob(f"{stage}/{knob.name}", knob.choices)
            for stage, space in spaces.items()
            for knob in space.knobs
        )
    )


def join(configs: Mapping[str, Config]) -> Config:
    """The joint config of per-stage ``configs``."""
    return Config(
        {
            f"{stage}/{name}": value
            for stage, config in configs.items()
            for name, value in config.items()
        }
    )


def split(config: Config) -> StageConfigs:
    """Per-stage configs of a joint config."""
    stages: dict[str, dict[str, Any]] = {}
    for name, value in config.items():
        stage, knob = name.split("/", 1)
        stages.setdefault(stage, {})[knob] = value
    return {stage: Config(values) for stage, values in stages.items()}


def to_json(config: Config) -> dict[str, dict[str, Any]]:
    """JSON form (stage -> knob -> value), as stored in records and artifact metadata."""
    return {stage: dict(values) for stage, values in split(config).items()}


def from_json(data: Any, space: Space) -> Config | None:
    """The joint config stored as :func:`to_json`, or None if it is not a config of ``space``
    (another version of the templates, another program)."""
    if not isinstance(data, dict):
        return None
    try:
        config = join({stage: Config(values) for stage, values in data.items()})
    except (AttributeError, TypeError):
        return None
    return config if space.contains(config) else None


def describe(config: Config) -> str:
    """A compact one-line description for logs."""
    return json.dumps(to_json(config), sort_keys=True, separators=(",", ":"))
