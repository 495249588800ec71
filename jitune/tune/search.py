"""Search strategies: which configs to measure next.

- ``model`` (default): parallel simulated annealing over the space with the cost model's
  prediction as the energy; the batch is the best predicted configs not yet measured plus an
  epsilon share of random ones (the model is wrong in places it has never seen).
- ``random``: uniformly random unmeasured configs (the baseline).
- ``ga``: a model-free genetic algorithm on the measured throughputs.

Every random choice comes from a ``random.Random`` seeded with the tuning's seed and the
number of configs measured so far, so the same seed and the same records propose the same
candidates, also after an interrupted tuning resumes.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

import numpy as np

from ..schedule.space import Config, Space

StrategyName = Literal["model", "random", "ga"]
STRATEGIES: tuple[StrategyName, ...] = ("model", "random", "ga")


@dataclasses.dataclass
class SearchState:
    """What a strategy may look at: the space, what was measured, and the model's scores."""

    space: Space
    measured: dict[Config, float]  # throughput; 0 for a failed candidate
    score: Callable[[Sequence[Config]], np.ndarray]  # the model's prediction; higher is faster
    trained: bool  # whether ``score`` says anything yet
    seeds: Sequence[Config] = ()

    def rng(self, seed: int, salt: str) -> random.Random:
        return random.Random(f"{seed}:{salt}:{len(self.measured)}")


class Strategy(Protocol):
    def propose(self, count: int, state: SearchState, exclude: set[Config]) -> list[Config]:
        """Up to ``count`` configs that are neither measured nor in ``exclude``."""
        ...


def _random_unmeasured(
    count: int, state: SearchState, exclude: set[Config], rng: random.Random
) -> list[Config]:
    """Uniformly random configs never measured nor excluded (fewer if the space runs out)."""
    taken = set(state.measured) | exclude
    found: list[Config] = []
    if len(state.space) <= 1 << 16:
        pool = [c for c in state.space.configs() if c not in taken]
        rng.shuffle(pool)
        return pool[:count]
    for _ in range(count * 50):
        if len(found) == count:
            break
        config = state.space.sample(rng)
        if config not in taken:
            taken.add(config)
            found.append(config)
    return found


@dataclasses.dataclass
class RandomSearch:
    seed: int = 0

    def propose(self, count: int, state: SearchState, exclude: set[Config]) -> list[Config]:
        return _random_unmeasured(count, state, exclude, state.rng(self.seed, "random"))


@dataclasses.dataclass
class ModelSearch:
    """Simulated annealing chains run side by side, scored in one batch per step."""

    seed: int = 0
    epsilon: float = 0.125
    chains: int = 16
    steps: int = 60

    def anneal(self, state: SearchState, rng: random.Random) -> dict[Config, float]:
        """Every config the chains visited, with its score."""
        scores: dict[Config, float] = {}

        def scored(configs: Sequence[Config]) -> list[float]:
            missing = [c for c in dict.fromkeys(configs) if c not in scores]
            if missing:
                for config, value in zip(missing, state.score(missing)):
                    scores[config] = float(value)
            return [scores[c] for c in configs]

        best_measured = sorted(state.measured, key=lambda c: -state.measured[c])
        starts = list(dict.fromkeys([*state.seeds, *best_measured[: self.chains // 2]]))
        while len(starts) < self.chains:
            starts.append(state.space.sample(rng))
        points = starts[: self.chains]
        energies = scored(points)
        spread = float(np.std(energies)) or 1.0
        for step in range(self.steps):
            temperature = spread * (1.0 - step / self.steps)
            moves = [
                rng.choice(state.space.neighbours(p)) if len(state.space) > 1 else p for p in points
            ]
            new = scored(moves)
            for k, (move, value) in enumerate(zip(moves, new)):
                gain = value - energies[k]
                if gain >= 0 or (temperature > 0 and rng.random() < math.exp(gain / temperature)):
                    points[k], energies[k] = move, value
        return scores

    def propose(self, count: int, state: SearchState, exclude: set[Config]) -> list[Config]:
        rng = state.rng(self.seed, "model")
        if not state.trained:
            return _random_unmeasured(count, state, exclude, rng)
        explore = min(count, round(self.epsilon * count))
        scores = self.anneal(state, rng)
        ranked = sorted(scores, key=lambda c: (-scores[c], repr(c)))
        chosen = [c for c in ranked if c not in state.measured and c not in exclude][
            : count - explore
        ]
        randoms = _random_unmeasured(count - len(chosen), state, exclude | set(chosen), rng)
        # interleaved, so that the first k proposals hold about epsilon * k random ones (the
        # tuner may take fewer than it asked for)
        period = max(1, round(1 / self.epsilon)) if self.epsilon > 0 else count + 1
        merged: list[Config] = []
        while chosen or randoms:
            if randoms and (not chosen or (len(merged) + 1) % period == 0):
                merged.append(randoms.pop(0))
            else:
                merged.append(chosen.pop(0))
        return merged

    def choose(self, state: SearchState, candidates: Sequence[Config]) -> Config | None:
        """The best predicted of ``candidates`` (first of equals)."""
        unique = list(dict.fromkeys(candidates))
        if not state.trained or not unique:
            return None
        scores = state.score(unique)
        return unique[int(np.argmax(scores))]

    def top(self, state: SearchState, candidates: Sequence[Config] = ()) -> Config | None:
        """The best predicted config among the annealing's visits and ``candidates``."""
        if not state.trained:
            return None
        scores = self.anneal(state, state.rng(self.seed, "top"))
        extra = [c for c in candidates if c not in scores]
        for config, value in zip(extra, state.score(extra) if extra else []):
            scores[config] = float(value)
        return max(scores, key=lambda c: (scores[c], repr(c))) if scores else None


@dataclasses.dataclass
class GeneticSearch:
    """Tournament selection, uniform crossover and mutation on measured throughputs."""

    seed: int = 0
    mutation: float = 0.1
    population: int = 16

    def propose(self, count: int, state: SearchState, exclude: set[Config]) -> list[Config]:
        rng = state.rng(self.seed, "ga")
        elite = sorted(state.measured, key=lambda c: (-state.measured[c], repr(c)))
        elite = [c for c in elite[: self.population] if state.measured[c] > 0]
        if len(elite) < 2:
            return _random_unmeasured(count, state, exclude, rng)
        taken = set(state.measured) | exclude
        children: list[Config] = []
        for _ in range(count * 20):
            if len(children) == count:
                break
            a = min(rng.sample(elite, 2), key=elite.index)  # tournaments of two
            b = min(rng.sample(elite, 2), key=elite.index)
            genes = {}
            for knob in state.space.knobs:
                genes[knob.name] = (a if rng.random() < 0.5 else b)[knob.name]
                if rng.random() < self.mutation:
                    genes[knob.name] = rng.choice(knob.choices)
            child = Config(genes)
            if child not in taken:
                taken.add(child)
                children.append(child)
        children += _random_unmeasured(count - len(children), state, taken, rng)
        return children


def strategy(name: StrategyName, seed: int, epsilon: float = 0.125) -> Strategy:
    """The strategy called ``name``."""
    if name == "model":
        return ModelSearch(seed, epsilon)
    if name == "random":
        return RandomSearch(seed)
    if name == "ga":
        return GeneticSearch(seed)
    raise ValueError(f"unknown search strategy {name!r}; expected one of {', '.join(STRATEGIES)}")
