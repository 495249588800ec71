"""The fuzzer's own machinery (``tests/fuzz``): programs run and match NumPy, a wrong answer
is reported, known bugs are recognized, and the worker pool answers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from fuzz.bounds import error_bounds
from fuzz.compare import compare_results, run_program
from fuzz.generate import generate
from fuzz.known import known_bug
from fuzz.pool import run_pool, worker_environment
from fuzz.program import Input, Node, Program
from fuzz.shrink import shrink

import jitune

SEEDS = range(700, 720)


def _wrong(result):
    """``result`` with its first element changed: what a buggy compiler might return."""
    items = list(result) if isinstance(result, tuple) else [result]
    first = np.array(items[0], order="C")
    if first.size:
        value = first.flat[0]
        if first.dtype == bool:
            first.flat[0] = not value
        elif first.dtype.kind == "i":
            first.flat[0] = value + 1
        else:  # far outside any rounding bound; nan and inf become an ordinary number
            first.flat[0] = value * 2 + 1 if np.isfinite(value) else 1.0
    else:
        first = first.astype(np.float64 if first.dtype != np.float64 else np.float32)
    items[0] = first
    return tuple(items) if isinstance(result, tuple) else items[0]


@pytest.mark.parametrize("seed", SEEDS)
def test_programs_run_and_planted_wrong_answers_are_caught(seed, tmp_path):
    program = generate(seed)
    finding = run_program(program, str(tmp_path / "cache"))
    if finding is not None and known_bug(program, finding) is None:
        pytest.fail(f"seed {seed}: {finding}\n{program.reproducer()}")
    with np.errstate(all="ignore"):
        try:
            env = program.evaluate(program.arguments())
        except Exception:  # noqa: BLE001 - a program NumPy refuses: nothing to plant into
            return
    outputs = [env[name] for name in program.outputs]
    truth = tuple(np.array(o) for o in outputs) if len(outputs) > 1 else np.array(outputs[0])
    bounds_ok = compare_results(program, env, truth, "NumPy itself")
    assert bounds_ok is None, bounds_ok
    wrong = compare_results(program, env, _wrong(truth), "planted")
    first = np.asarray(outputs[0])
    checked = np.isfinite(error_bounds(program, env)[program.outputs[0]])
    if first.size == 0 or checked.reshape(-1)[0]:
        assert wrong is not None and wrong.kind == "mismatch", "a wrong answer went unnoticed"


def _program(expr: str, *inputs: Input) -> Program:
    return Program(
        0, tuple(inputs), (Node("v0", "view", expr, tuple(i.name for i in inputs)),), ("v0",)
    )


def test_a_wrong_jit_is_reported_with_the_run_that_failed(tmp_path):
    program = _program(
        "a0.T", Input("a0", "array", "float32", np.arange(6, dtype=np.float32).reshape(2, 3))
    )

    def off_by_one(fn):
        compiled = jitune.kernel(fn)
        return lambda *args: compiled(*args) + np.float32(1)

    finding = run_program(program, str(tmp_path), jit=off_by_one)
    assert finding is not None and finding.kind == "mismatch" and "first call" in finding.message


def test_a_numpy_error_must_be_a_jitune_error(tmp_path):
    inputs = (
        Input("a0", "array", "float64", np.zeros((2, 3))),
        Input("a1", "array", "float64", np.zeros(4)),
    )
    program = _program("a0 + a1", *inputs)
    assert run_program(program, str(tmp_path)) is None  # jitune raises ShapeError: fine
    finding = run_program(program, str(tmp_path), jit=lambda fn: lambda *a: np.zeros(3))
    assert finding is not None and finding.kind == "accepted"


def test_known_bug_is_recognized_and_shrunk(tmp_path, monkeypatch):
    """A stand-in entry (the real table may be empty): a jit whose negation is off by one."""
    import fuzz.known

    entry = fuzz.known.Known(
        "planted-negative",
        "a planted bug",
        lambda p, f: f.kind == "mismatch" and any(n.expr == "-a0" for n in p.nodes),
    )
    monkeypatch.setattr(fuzz.known, "KNOWN", (entry,))
    base = Input("a0", "array", "int64", np.arange(1, 5))
    program = Program(
        0,
        (base,),
        (Node("v0", "power", "a0 ** 2", ("a0",)), Node("v1", "negative", "-a0", ("a0",))),
        ("v1", "v0"),
    )

    def planted(p: Program):
        """Run ``p`` with a jit that answers wrongly whenever ``p`` negates a0."""
        if not any(n.expr == "-a0" for n in p.nodes):
            return run_program(p, str(tmp_path))
        return run_program(
            p, str(tmp_path), jit=lambda fn: lambda *a: _wrong(jitune.kernel(fn)(*a))
        )

    finding = planted(program)
    assert finding is not None
    assert known_bug(program, finding).name == "planted-negative"
    small = shrink(program, lambda p: planted(p) is not None, seconds=30)
    assert [n.name for n in small.nodes] == ["v1"] and small.inputs[0].base.size == 1
    assert "-a0" in small.reproducer()


def test_contraction_of_non_finite_values_is_open_where_numpy_order_decides(tmp_path):
    """NumPy's einsum('i,->', [1, 0], inf) is inf (the stride-0 operand is factored out of
    the sum) but nan for the same values strided: the error model must not judge inf/nan
    there, and must still judge a contraction of finite values."""
    zero_one = Input("a0", "array", "float64", np.array([1.0, 0.0]))
    inf = Input("a1", "array", "float64", np.array(np.inf).reshape(()))
    node = Node("v0", "contract", "np.einsum('i,->', a0, a1)", ("a0", "a1"))
    program = Program(0, (zero_one, inf), (node,), ("v0",))
    env = program.evaluate(program.arguments())
    assert not np.isfinite(error_bounds(program, env)["v0"]).any()
    assert compare_results(program, env, np.array(np.nan), "nan order") is None
    three = dataclasses.replace(inf, base=np.array(3.0).reshape(()))
    program = Program(0, (zero_one, three), (node,), ("v0",))
    env = program.evaluate(program.arguments())
    assert compare_results(program, env, np.array(np.nan), "planted") is not None


def test_a_zero_std_does_not_make_its_bound_zero():
    """np.std of ten copies of 1e30 is 0.0 or one ulp of 1e30, by the order of its mean's
    sum; the bound sqrt(var bound) applies (var bound / std was 0 / 0 -> 0)."""
    base = Input("a0", "array", "float64", np.full(10, 1e30))
    program = Program(0, (base,), (Node("v0", "reduce", "a0.std()", ("a0",),
                                        (("reduction", "std"), ("axis", None))),), ("v0",))  # fmt: skip
    env = program.evaluate(program.arguments())
    assert env["v0"] == 0.0
    assert compare_results(program, env, np.array(np.spacing(1e30)), "one ulp") is None
    assert compare_results(program, env, np.array(1e25), "planted") is not None


def test_reproducer_rebuilds_the_inputs_exactly():
    values = np.array([np.nan, -0.0, np.inf, 1e-45, -3.5], np.float32)
    item = Input("a0", "array", "float32", values, "base[::-1]")
    namespace: dict = {"np": np}
    exec(item.source(), namespace)
    assert namespace["a0"].tobytes() == item.make().tobytes()
    assert namespace["a0"].strides == item.make().strides


def test_worker_pool_answers_every_seed():
    answers = []
    env = worker_environment(shrink_seconds=0)
    run_pool(
        iter(range(5)), 1, env, timeout=120, deadline=float("inf"), chunk=3, report=answers.append
    )
    assert sorted(a["seed"] for a in answers) == list(range(5))
    assert all("failure" not in a for a in answers), answers


def test_generated_programs_cover_every_family():
    programs = [generate(seed) for seed in range(300)]
    ops = {node.op for p in programs for node in p.nodes}
    assert {"reduce", "contract", "view", "fill", "astype", "where", "clip", "add"} <= ops
    kinds = {i.kind for p in programs for i in p.inputs}
    assert kinds == {"array", "numpy", "python"}
    assert any("np.nan" in i.source() for p in programs for i in p.inputs)
    assert dataclasses.replace(programs[0]).function_source() == programs[0].function_source()


def test_full_like_fill_with_more_leading_axes_has_a_bound():
    """np.full_like(a1, v0) with v0 of shape (1, 1, 1, 1) fills a (0, 1) result (copyto drops
    the extra leading unit axes); the error model broadcast v0's bound and crashed."""
    inputs = (
        Input("a0", "array", "float64", np.array(2.5).reshape(())),
        Input("a1", "array", "int32", np.zeros((0, 1), np.int32)),
    )
    nodes = (
        Node("v0", "view", "np.reshape(a0, (1, 1, 1, 1))", ("a0",)),
        Node("v1", "fill", "np.full_like(a1, v0, dtype=np.float64)", ("a1", "v0")),
    )
    program = Program(0, inputs, nodes, ("v1",))
    env = program.evaluate(program.arguments())
    assert error_bounds(program, env)["v1"].shape == (0, 1)


def test_generated_programs_update_arguments_in_place():
    programs = [generate(seed) for seed in range(300)]
    updated = [p for p in programs if any(node.param("argument") for node in p.nodes)]
    assert len(updated) >= 5
    text = updated[0].function_source()
    base = next(node for node in updated[0].nodes if node.param("argument")).param("base")
    assert f"    {base}[" in text  # the input itself is assigned to, not a copy of it


def test_an_argument_left_as_it_was_passed_is_a_finding(tmp_path):
    """A program that updates its argument: a kernel that returns the right value but leaves
    the caller's array unchanged is caught."""
    inputs = (Input("a0", "array", "float64", np.arange(4.0)),)
    params = (("argument", True), ("assign", "+="), ("base", "a0"), ("key", "1:"))
    program = Program(0, inputs, (Node("v0", "update", "1.0", ("a0",), params),), ("v0",))

    def on_copies(fn):
        return lambda *args: fn(*(np.copy(a) for a in args))

    finding = run_program(program, str(tmp_path / "cache"), jit=on_copies)
    assert finding is not None and "input 0 differs" in finding.message
    assert run_program(program, str(tmp_path / "cache")) is None


def test_bounds_see_an_argument_as_it_was_when_each_statement_ran():
    """``a1`` indexes ``v0`` and is then updated in place: the gather's bound must take the
    key's values from before the update (``env`` holds only the final state)."""
    inputs = (
        Input("a0", "array", "float64", np.arange(6.0).reshape(2, 3)),
        Input("a1", "array", "int64", np.array([0, 2])),
    )
    params = (("argument", True), ("assign", "="), ("base", "a1"), ("key", "..."))
    nodes = (
        Node("v0", "gather", "a0[:, a1]", ("a0", "a1")),
        Node("v1", "update", "7", ("a1",), params),
    )
    program = Program(0, inputs, nodes, ("v0",))
    env = program.evaluate(program.arguments())
    assert list(env["a1"]) == [7, 7]
    assert error_bounds(program, env)["v0"].shape == (2, 2)


def test_a_comparison_with_an_inexact_nan_is_open():
    """``np.log`` of an unspecified value is NaN in NumPy and any number in jitune: the
    comparison of it has no bound."""
    inputs = (Input("a0", "array", "float64", np.array([1.0, 2.0])),)
    nodes = (
        Node("v0", "fill", "np.empty_like(a0)", ("a0",)),
        Node("v1", "log", "np.log(v0 - 5)", ("v0",)),
        Node("v2", "less", "v1 < 0", ("v1",), (("operands", ("v1", "0")),)),
    )
    program = Program(0, inputs, nodes, ("v2",))
    with np.errstate(all="ignore"):
        env = program.evaluate(program.arguments())
    assert np.all(np.isinf(error_bounds(program, env)["v2"]))
