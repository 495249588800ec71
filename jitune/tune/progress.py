"""What the user sees while a kernel tunes: a tqdm bar on stderr (terminals only, or as
``JITUNE_PROGRESS`` says) and one log line per finished tuning (logger ``jitune.tune``)."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from ..config import Budget, ProgressMode

log = logging.getLogger("jitune.tune")


def wanted(mode: ProgressMode) -> bool:
    if mode == "auto":
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return mode == "on"


class Progress:
    """A progress bar over trials (or seconds, for a time budget); silent when not wanted."""

    def __init__(self, name: str, budget: Budget, done: int, mode: ProgressMode) -> None:
        self.budget = budget
        self.began = time.monotonic()
        self.bar: Any = None
        if not wanted(mode):
            return
        try:
            from tqdm import tqdm
        except ImportError:  # tqdm is a dependency, but a bar is never worth a failure
            return
        if budget.trials is not None:
            total: float = budget.trials
            unit = "trial"
            initial: float = done
        else:
            total = float(budget.seconds or 0.0)
            unit = "s"
            initial = 0.0
        self.bar = tqdm(
            total=total,
            initial=initial,
            desc=f"jitune: tuning {name}",
            unit=unit,
            file=sys.stderr,
            leave=False,
            dynamic_ncols=True,
            bar_format="{desc}: {n:.0f}/{total:.0f} {unit} |{bar}| {postfix} [{elapsed}<{remaining}]",
        )

    def update(self, trials: int, best_gflops: float) -> None:
        if self.bar is None:
            return
        if self.budget.trials is not None:
            self.bar.update(trials)
        else:
            elapsed = min(time.monotonic() - self.began, self.bar.total)
            self.bar.update(elapsed - self.bar.n)
        self.bar.set_postfix_str(f"best {best_gflops:.1f} GFLOP/s", refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
