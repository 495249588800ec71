"""The learned cost model: XGBoost on loop-context features, predicting relative speed.

Labels are throughputs normalized per task (1.0 = the fastest config measured for that
program), so tasks of different sizes share one scale and a model trained on other tasks can
serve as the base of a new one: its prediction is the new model's base margin, and the new
trees only learn the correction.

Two objectives (the tuning-curves benchmark compares them):

- ``"rank"``: ``rank:pairwise`` with one query group per task: only the order within a task
  is learned, which is what the search needs;
- ``"regression"``: squared error weighted by the label (MetaSchedule's choice): the fast
  configs, which decide the search, are fitted more closely than the slow ones.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    import xgboost as xgb


def _xgb() -> Any:
    """xgboost, imported on first use: importing it costs ~0.2 s, which a process that only
    loads cached kernels (or tunes with budget 0 and no history) never needs to pay."""
    import xgboost

    return xgboost


Objective = Literal["rank", "regression"]
DEFAULT_OBJECTIVE: Objective = "rank"
ROUNDS = 60


def normalize(throughputs: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Throughput divided by the best of its group (failed candidates: 0)."""
    labels = np.zeros(len(throughputs), dtype=np.float64)
    for group in np.unique(groups):
        mask = groups == group
        best = float(np.max(throughputs[mask], initial=0.0))
        if best > 0:
            labels[mask] = throughputs[mask] / best
    return labels


class CostModel:
    """Predicts a score per feature row; higher means faster (comparable within a task)."""

    def __init__(
        self, objective: Objective = DEFAULT_OBJECTIVE, seed: int = 0, base: CostModel | None = None
    ) -> None:
        if objective not in ("rank", "regression"):
            raise ValueError(f"unknown cost model objective {objective!r}")
        self.objective: Objective = objective
        self.seed = seed
        self.base = base
        self.booster: xgb.Booster | None = None  # type only: see _xgb()

    @property
    def trained(self) -> bool:
        return self.booster is not None or (self.base is not None and self.base.trained)

    def _params(self) -> dict[str, object]:
        params: dict[str, object] = {
            "max_depth": 6,
            "eta": 0.2,
            "min_child_weight": 1e-3 if self.objective == "rank" else 1.0,
            "subsample": 1.0,
            "seed": self.seed,
            "nthread": 1,  # the data are small; threads would only fight the measurements
            "verbosity": 0,
        }
        if self.objective == "rank":
            params.update(
                objective="rank:pairwise",
                lambdarank_pair_method="mean",
                lambdarank_num_pair_per_sample=32,
            )
        else:
            params.update(objective="reg:squarederror")
        return params

    def _margin(self, features: np.ndarray) -> np.ndarray | None:
        return None if self.base is None or not self.base.trained else self.base.predict(features)

    def update(
        self, features: np.ndarray, throughputs: np.ndarray, groups: np.ndarray | None = None
    ) -> None:
        """Retrain from scratch on every row given (a tuning retrains after each batch).

        ``throughputs`` are raw (e.g. GFLOP/s, 0 for failures); ``groups`` names each row's
        task (rows of one task are compared with each other only).
        """
        features = np.asarray(features, dtype=np.float64)
        throughputs = np.asarray(throughputs, dtype=np.float64)
        groups = np.zeros(len(features), dtype=np.int64) if groups is None else np.asarray(groups)
        if len(features) < 2 or not np.any(throughputs > 0):
            return
        order = np.argsort(groups, kind="stable")  # rank:pairwise wants groups contiguous
        features, throughputs, groups = features[order], throughputs[order], groups[order]
        labels = normalize(throughputs, groups)
        xgb = _xgb()
        matrix = xgb.DMatrix(features, label=labels)
        if self.objective == "rank":
            _, sizes = np.unique(groups, return_counts=True)
            matrix.set_group(sizes)
        else:
            matrix.set_weight(np.maximum(labels, 0.05))  # failures still pull toward 0
        margin = self._margin(features)
        if margin is not None:
            matrix.set_base_margin(margin)
        self.booster = xgb.train(self._params(), matrix, num_boost_round=ROUNDS)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Scores of ``features`` rows (the raw margin, base model included)."""
        features = np.asarray(features, dtype=np.float64)
        margin = self._margin(features)
        if self.booster is None:
            return margin if margin is not None else np.zeros(len(features))
        matrix = _xgb().DMatrix(features)
        if margin is not None:
            matrix.set_base_margin(margin)
        return self.booster.predict(matrix, output_margin=True).astype(np.float64)

    # -- persistence ---------------------------------------------------------------------------
    def to_json(self) -> dict[str, object]:
        raw = (
            None
            if self.booster is None
            else base64.b64encode(bytes(self.booster.save_raw("ubj"))).decode()
        )
        return {
            "objective": self.objective,
            "seed": self.seed,
            "booster": raw,
            "base": None if self.base is None else self.base.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> CostModel:
        base = data.get("base")
        model = cls(
            data["objective"],  # type: ignore[arg-type]
            int(data["seed"]),  # type: ignore[arg-type]
            cls.from_json(base) if isinstance(base, dict) else None,
        )
        raw = data.get("booster")
        if isinstance(raw, str):
            model.booster = _xgb().Booster(params={"nthread": 1})
            model.booster.load_model(bytearray(base64.b64decode(raw)))
        return model

    def save(self, path: str) -> None:
        """Write the model (and its base) as one JSON file."""
        with open(path, "w", encoding="utf-8") as file:
            json.dump(self.to_json(), file)

    @classmethod
    def load(cls, path: str) -> CostModel:
        """A model written by :meth:`save`."""
        with open(path, encoding="utf-8") as file:
            return cls.from_json(json.load(file))
