"""A fuzz program: inputs (values and memory layouts) and a straight-line NumPy function.

A :class:`Program` is plain data: every input's base values and the view expression that
gives its layout, and the statements of the function as Python source. So the same program
runs on NumPy arrays and through ``jitune.kernel``, and prints as a standalone reproducer.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

import jitune


@dataclasses.dataclass(frozen=True)
class Input:
    """One argument. ``kind`` is "array" (``view`` applied to a contiguous ``base``),
    "numpy" (a NumPy scalar of ``dtype``) or "python" (a Python bool/int/float)."""

    name: str
    kind: str
    dtype: str
    base: np.ndarray  # the values: the array's contiguous base, or a 0-d array for scalars
    view: str = "base"  # a Python expression of `base` (and `np`) giving the argument

    def make(self) -> Any:
        """A fresh argument (a new copy of the base, so a kernel cannot affect later runs)."""
        if self.kind == "python":
            return self.base.item()
        if self.kind == "numpy":
            return self.base[()].copy()
        return eval(self.view, {"np": np, "base": self.base.copy()})  # noqa: S307 - our own text

    def source(self) -> str:
        """A Python statement that builds this argument exactly (bits, layout, kind)."""
        if self.kind == "python":
            return f"{self.name} = {_literal(self.base.item())}"
        if self.kind == "numpy":
            return f"{self.name} = np.{self.dtype}({_literal(self.base.item())})"
        values = _literal(self.base.reshape(-1).tolist())
        base = f"np.array({values}, dtype=np.{self.dtype}).reshape({self.base.shape})"
        return f"{self.name} = {self.view.replace('base', '(' + base + ')', 1)}"


def _literal(value: Any) -> str:
    """repr of a Python value with nan/inf spelled as valid Python (np.nan, np.inf)."""
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, float):
        if value != value:
            return "np.nan"
        if value in (float("inf"), float("-inf")):
            return "np.inf" if value > 0 else "-np.inf"
    return repr(value)


@dataclasses.dataclass(frozen=True)
class Node:
    """One statement ``name = expr``. ``op`` names the operation (for the error model and the
    known-bug table); ``args`` are the names of the values it reads; ``params`` what else
    the error model needs (axes, counts)."""

    name: str
    op: str
    expr: str
    args: tuple[str, ...]
    params: tuple[tuple[str, Any], ...] = ()

    def param(self, key: str, default: Any = None) -> Any:
        return dict(self.params).get(key, default)

    def statements(self) -> list[str]:
        """The node as Python lines. An "update" node is a copy of ``base`` with
        ``name[key] <assign> expr`` (``=``, ``+=``, ...): an in-place update of a new array;
        with the param ``argument``, ``base`` is an input updated in place (the caller's
        array), and the node is a copy of its new value."""
        if self.op != "update":
            return [f"{self.name} = {self.expr}"]
        base, key, assign = self.param("base"), self.param("key"), self.param("assign")
        if self.param("argument"):
            return [f"{base}[{key}] {assign} {self.expr}", f"{self.name} = {base}.copy()"]
        return [f"{self.name} = {base}.copy()", f"{self.name}[{key}] {assign} {self.expr}"]


@dataclasses.dataclass(frozen=True)
class Program:
    """Inputs, statements and the names returned (one name: a single array, else a tuple)."""

    seed: int
    inputs: tuple[Input, ...]
    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]
    parallel: bool = False  # run with JITUNE_PARALLEL_MIN_WORK=1 (the threaded loops)

    def function_source(self) -> str:
        """The ``def fuzzed(...)`` text."""
        lines = [f"def fuzzed({', '.join(i.name for i in self.inputs)}):"]
        for node in self.nodes:
            lines += [f"    {line}" for line in node.statements()]
        returned = (
            self.outputs[0] if len(self.outputs) == 1 else "(" + ", ".join(self.outputs) + ")"
        )
        lines.append(f"    return {returned}")
        return "\n".join(lines)

    def function(self) -> Callable[..., Any]:
        """The program as a Python function of its inputs (fresh each call: no shared state)."""
        namespace: dict[str, Any] = {"np": np, "jitune": jitune}
        code = compile(self.function_source(), f"<fuzz program {self.seed}>", "exec")
        exec(code, namespace)  # noqa: S102 - our own generated text
        return namespace["fuzzed"]

    def arguments(self) -> list[Any]:
        return [i.make() for i in self.inputs]

    def reproducer(self) -> str:
        """A standalone script: builds the inputs and the function, runs both ways, prints."""
        setting = "os.environ['JITUNE_PARALLEL_MIN_WORK'] = '1'\n" if self.parallel else ""
        inputs = "\n".join(i.source() for i in self.inputs)
        names = ", ".join(i.name for i in self.inputs)
        budget = os.environ.get("JITUNE_BUDGET", "0")  # the worker's: 0 unless --budget
        return (
            "import os\n"
            f"os.environ['JITUNE_BUDGET'] = {budget!r}\n"
            f"{setting}"
            "import numpy as np\nimport jitune\n\n"
            f"{inputs}\n\n{self.function_source()}\n\n"
            "with np.errstate(all='ignore'):\n"
            f"    print('numpy: ', repr(fuzzed({names})))\n"
            f"print('jitune:', repr(jitune.kernel(fuzzed)({names})))\n"
        )

    def evaluate(self, args: list[Any]) -> dict[str, Any]:
        """Every input and node value, computed with NumPy statement by statement."""
        env = self._namespace(args)
        for _ in self._run(env):
            pass
        return env

    def steps(self, args: list[Any]) -> Iterator[tuple[Node, dict[str, Any]]]:
        """Each node with the values right after its statements ran (one namespace, updated
        as the program runs: an input updated in place has its new value from then on)."""
        env = self._namespace(args)
        return ((node, env) for node in self._run(env))

    def _run(self, env: dict[str, Any]) -> Iterator[Node]:
        for node in self.nodes:
            exec("\n".join(node.statements()), env)  # noqa: S102 - our own generated text
            yield node

    def _namespace(self, args: list[Any]) -> dict[str, Any]:
        return {"np": np, "jitune": jitune, **{i.name: a for i, a in zip(self.inputs, args)}}

    def size(self) -> int:
        """What shrinking minimizes: statements, then input elements, then views."""
        elements = sum(i.base.size for i in self.inputs)
        return 1000 * len(self.nodes) + 2 * elements + sum(i.view != "base" for i in self.inputs)
