"""Transfer: what earlier tunings on the same target say about a new task.

Records of other tasks on the same target train a *base model* whose prediction becomes the
base margin of the new task's model: other shapes of the same kernel when there are enough
of them, otherwise those plus other kernels of the same stage kind. The best configs of the
nearest tuned shapes of the same kernel *seed* the search (measured in the first batch).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..schedule.space import Config
from . import features as feature_mod
from .model import CostModel, Objective
from .space import from_json

ENOUGH_SAME_KERNEL = 32  # rows of the same kernel that make other kernels unnecessary
GOOD_PER_TASK = 8  # fastest configs of each earlier task offered to a budget-0 choice


@dataclasses.dataclass(frozen=True)
class Transfer:
    base: CostModel | None = None
    seeds: tuple[Config, ...] = ()
    # configs that were fast on earlier tasks (valid here): where a model that has seen no
    # measurement of this task is trusted to choose (it extrapolates badly elsewhere)
    candidates: tuple[Config, ...] = ()
    rows: int = 0  # records the base model was trained on
    tasks: int = 0  # earlier tasks they came from


def usable(row: dict[str, Any], target: str) -> bool:
    """A successful or failed measurement whose features this version can read."""
    found = row.get("features")
    return (
        row.get("target") == target
        and row.get("features_version") == feature_mod.VERSION
        and isinstance(found, list)
        and len(found) == feature_mod.LENGTH
    )


def distance(a: Sequence[int], b: Sequence[int]) -> float:
    """How far two shapes of one kernel are apart (sum of |log2| ratios of extents)."""
    if len(a) != len(b):
        return math.inf
    return sum(abs(math.log2(max(x, 1)) - math.log2(max(y, 1))) for x, y in zip(a, b))


def prepare(
    rows: Sequence[dict[str, Any]],
    *,
    key: str,
    target: str,
    family: str,
    kind: str,
    shape: Sequence[int],
    space: Any,
    objective: Objective,
    seed: int,
    seeds: int = 3,
) -> Transfer:
    """The base model and seed configs for a task, from every record this process can see."""
    others = [r for r in rows if r.get("key") != key and usable(r, target)]
    same = [r for r in others if r.get("family") == family]
    related = [r for r in others if r.get("family") != family and r.get("kind") == kind]
    training = same if len(same) >= ENOUGH_SAME_KERNEL else same + related
    base = None
    tasks = sorted({r["key"] for r in training})
    if sum(1 for r in training if (r.get("gflops") or 0) > 0) >= 2:
        group_of = {digest: k for k, digest in enumerate(tasks)}
        features = np.asarray([r["features"] for r in training], dtype=np.float64)
        throughputs = np.asarray([r.get("gflops") or 0.0 for r in training], dtype=np.float64)
        groups = np.asarray([group_of[r["key"]] for r in training])
        base = CostModel(objective, seed)
        base.update(features, throughputs, groups)
    # seeds: the best config of each tuned shape of this kernel, nearest shapes first
    best: dict[str, tuple[float, dict[str, Any]]] = {}
    for row in same:
        gflops = row.get("gflops") or 0.0
        if gflops > 0 and gflops > best.get(row["key"], (0.0, {}))[0]:
            best[row["key"]] = (gflops, row)
    nearest = sorted(
        best.values(), key=lambda item: (distance(shape, item[1].get("shape", [])), item[1]["key"])
    )
    chosen: list[Config] = []
    for _, row in nearest:
        config = from_json(row.get("config"), space)
        if config is not None and config not in chosen:
            chosen.append(config)
    good: list[Config] = []
    for digest in tasks:
        rows_of = [r for r in training if r["key"] == digest and (r.get("gflops") or 0) > 0]
        rows_of.sort(key=lambda r: -r["gflops"])
        for row in rows_of[:GOOD_PER_TASK]:
            config = from_json(row.get("config"), space)
            if config is not None and config not in good:
                good.append(config)
    return Transfer(base, tuple(chosen[:seeds]), tuple(good), len(training), len(tasks))
