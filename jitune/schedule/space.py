"""Schedule spaces: named knobs with finite choices, and configs (one choice per knob).

A :class:`Space` can sample a config, list the configs one knob away (neighbours, for
simulated annealing) and encode a config as a numeric vector (for the cost model).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Knob:
    name: str
    choices: tuple[Any, ...]

    def __post_init__(self) -> None:
        if not self.choices:
            raise ValueError(f"knob {self.name} has no choices")


class Config(Mapping[str, Any]):
    """An immutable assignment of one choice to each knob of a space (hashable, JSON-able)."""

    __slots__ = ("_items",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._items = tuple(sorted(values.items()))

    def __getitem__(self, name: str) -> Any:
        for key, value in self._items:
            if key == name:
                return value
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self._items == other._items

    def __repr__(self) -> str:
        return "Config(" + ", ".join(f"{k}={v!r}" for k, v in self._items) + ")"

    def replace(self, **changes: Any) -> Config:
        return Config({**dict(self._items), **changes})


@dataclasses.dataclass(frozen=True)
class Space:
    knobs: tuple[Knob, ...]

    def __len__(self) -> int:
        size = 1
        for knob in self.knobs:
            size *= len(knob.choices)
        return size

    def knob(self, name: str) -> Knob:
        for knob in self.knobs:
            if knob.name == name:
                return knob
        raise KeyError(name)

    def sample(self, rng: random.Random) -> Config:
        """A uniformly random config."""
        return Config({k.name: rng.choice(k.choices) for k in self.knobs})

    def neighbours(self, config: Config) -> list[Config]:
        """Every config that differs from ``config`` in exactly one knob."""
        found = []
        for knob in self.knobs:
            for choice in knob.choices:
                if choice != config[knob.name]:
                    found.append(config.replace(**{knob.name: choice}))
        return found

    def configs(self) -> Iterator[Config]:
        """Every config of the space, in a fixed order."""

        def walk(index: int, chosen: dict[str, Any]) -> Iterator[Config]:
            if index == len(self.knobs):
                yield Config(chosen)
                return
            knob = self.knobs[index]
            for choice in knob.choices:
                yield from walk(index + 1, {**chosen, knob.name: choice})

        return walk(0, {})

    def encode(self, config: Config) -> np.ndarray:
        """A numeric vector: numbers as log2(1 + value), other choices by their position."""
        values = []
        for knob in self.knobs:
            value = config[knob.name]
            if isinstance(value, (bool, np.bool_)):
                values.append(float(value))
            elif isinstance(value, (int, float)):
                values.append(float(np.log2(1 + value)))
            else:
                values.append(float(knob.choices.index(value)))
        return np.asarray(values, dtype=np.float64)

    def contains(self, config: Config) -> bool:
        return set(config) == {k.name for k in self.knobs} and all(
            config[k.name] in k.choices for k in self.knobs
        )
