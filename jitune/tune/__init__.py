"""tune: a program's schedule spaces + measurements -> the config to compile.

The tuner sits beside the pipeline (it calls the same functions a cache miss calls):

- :mod:`.space`    the joint space of a program (one knob set per stage)
- :mod:`.measure`  build and time candidates, checked against the reference evaluator
- :mod:`.worker`   the worker process that measures so a faulty candidate cannot hurt the caller
- :mod:`.features` loop-IR features of a candidate, of fixed length
- :mod:`.model`    the XGBoost cost model
- :mod:`.search`   strategies that propose the next batch (model-guided annealing, random, GA)
- :mod:`.transfer` what earlier tunings on this target say about a new one
- :mod:`.records`  measurement rows, in the disk cache or in memory
- :mod:`.tuner`    the loop: propose, measure, record, update
"""

from __future__ import annotations

from .tuner import TuneOptions, TuneResult, TuneTask, tune

__all__ = ["TuneOptions", "TuneResult", "TuneTask", "tune"]

from . import device_measure  # noqa: E402, F401 - registers the OpenCL measurer
