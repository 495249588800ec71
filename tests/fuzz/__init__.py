"""A differential fuzzer: random small NumPy programs run through ``jitune.kernel`` and
compared with NumPy itself. Run ``python -m tests.fuzz --help``; README.md ("Fuzzing")
describes what it covers.

Modules: ``program`` (the program data and reproducers), ``values`` (inputs),
``generate`` (random programs), ``bounds`` (how far from NumPy a correct result may be),
``compare`` (running and judging one program), ``shrink``, ``known`` (open bugs),
``worker`` and ``pool`` (processes), ``__main__`` (the command line).
"""
