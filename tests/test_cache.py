"""The disk cache: reuse across processes, concurrency, damage, trust, the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import diskcache
import numpy as np
import pytest

import jitune
import jitune.cli
from jitune.cache import CacheKey, CacheWarning, open_store
from jitune.cache.artifact import Artifact
from jitune.cache.store import _stores
from jitune.frontend.artifacts import cache_key
from jitune.frontend.kernel import _spec
from jitune.frontend.trace import trace
from jitune.runtime.devices import device_of

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import jitune

    @jitune.kernel
    def dense(x, w, b):
        return np.maximum(x @ w + b, 0)

    rng = np.random.default_rng(0)
    x = rng.random((37, 29), dtype=np.float32)
    w = rng.random((29, 19), dtype=np.float32)
    b = rng.random(19, dtype=np.float32) - 0.5
    out = dense(x, w, b)
    ok = bool(np.allclose(out, np.maximum(x @ w + b, 0), rtol=1e-5, atol=1e-5))
    print(json.dumps({"compiled": dense.compile_count, "loaded": dense.load_count, "ok": ok}))
    """
)


def _env(cache_dir) -> dict[str, str]:
    env = dict(os.environ, JITUNE_CACHE_DIR=str(cache_dir), JITUNE_DISABLE_CACHE="0")
    env.pop("JITUNE_DEBUG", None)
    return env


def _run_script(cache_dir) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=_env(cache_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def _dense(x, w, b):
    return np.maximum(x @ w + b, 0)


def _args():
    rng = np.random.default_rng(1)
    return (rng.random((9, 5)), rng.random((5, 7)), rng.random(7) - 0.5)


def _key(fn, args) -> CacheKey:
    specs = [_spec(a, k, "test") for k, a in enumerate(args)]
    return cache_key(trace(fn, specs), specs, device_of(args, "test"))


def _store():
    store = open_store(jitune.config.get())
    assert store is not None
    return store


def _fresh_call(fn, args):
    """Call ``fn`` through a new Kernel (an empty in-memory table), as a new process would."""
    kernel = jitune.kernel(fn)
    out = kernel(*args)
    # a tuned float32 contraction sums in another order than NumPy's: float32 rounding
    tolerance = 1e-5 if np.asarray(out).dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, fn(*args), rtol=tolerance, atol=tolerance)
    return kernel


# -- across processes ------------------------------------------------------------------------


def test_second_process_loads_instead_of_compiling(tmp_path):
    first = _run_script(tmp_path / "cache")
    second = _run_script(tmp_path / "cache")
    assert first == {"compiled": 1, "loaded": 0, "ok": True}
    assert second == {"compiled": 0, "loaded": 1, "ok": True}


def test_four_processes_build_one_kernel_once(tmp_path):
    cache = tmp_path / "cache"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT], env=_env(cache), stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    results = [
        json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in processes
    ]
    assert all(r["ok"] for r in results)
    assert sum(r["compiled"] for r in results) == 1
    assert sum(r["loaded"] for r in results) == 3
    with jitune.config.override(disable_cache=False, cache_dir=str(cache)):
        assert len(_store().artifacts()) == 1


# -- in one process --------------------------------------------------------------------------


def test_hit_in_a_new_kernel_object(cache_dir):
    args = _args()
    assert _fresh_call(_dense, args).compile_count == 1
    again = _fresh_call(_dense, args)
    assert (again.compile_count, again.load_count) == (0, 1)
    assert (cache_dir / "cache.db").exists()
    assert oct(os.stat(cache_dir).st_mode & 0o777) == oct(0o700)


def test_disable_cache_writes_nothing(tmp_path):
    with jitune.config.override(disable_cache=True, cache_dir=str(tmp_path / "c")):
        assert _fresh_call(_dense, _args()).compile_count == 1
        assert _fresh_call(_dense, _args()).compile_count == 1
    assert not (tmp_path / "c").exists()


def test_key_changes_with_everything_that_changes_the_code(cache_dir):
    args = _args()
    base = _key(_dense, args)
    assert _key(lambda a, b, c: np.maximum(a @ b + c, 0), args).digest == base.digest  # names
    assert _key(lambda x, w, b: np.maximum(x @ w - b, 0), args).digest != base.digest
    assert _key(_dense, (args[0].astype(np.float32),) + args[1:]).digest != base.digest
    assert _key(_dense, (np.asfortranarray(args[0]),) + args[1:]).digest != base.digest
    for change in (
        {"target": "cpu|other"},
        {"schema": base.schema + 1},
        {"version": "0.0"},
        {"knobs": (("parallel_min_work", 1),)},
    ):
        import dataclasses

        assert dataclasses.replace(base, **change).digest != base.digest


def _plant(key: CacheKey, data: object) -> None:
    """Write ``data`` under ``key``'s artifact name with diskcache's default (pickling) Disk,
    as another program sharing the directory could."""
    with diskcache.Cache(_store().path) as raw:
        raw.set(f"artifact:{key.digest}", data)


def _entry(key: CacheKey) -> bytes:
    return _store().cache.get(f"artifact:{key.digest}")


def _assert_rebuilt(key: CacheKey, args) -> None:
    kernel = _fresh_call(_dense, args)
    assert (kernel.compile_count, kernel.load_count) == (1, 0)
    assert _fresh_call(_dense, args).load_count == 1  # a good entry is back


@pytest.mark.parametrize("damage", ["garbage", "truncated", "checksum"])
def test_damaged_entry_is_dropped_and_rebuilt(cache_dir, damage):
    args = _args()
    _fresh_call(_dense, args)
    key = _key(_dense, args)
    good = _entry(key)
    bad = {
        "garbage": b"\x00garbage\xff" * 10,
        "truncated": good[: len(good) // 2],
        "checksum": good[:-8] + b"\x90" * 8,
    }[damage]
    _store().cache.set(f"artifact:{key.digest}", bad)
    _assert_rebuilt(key, args)


@pytest.mark.parametrize("field, value", [("schema", 0), ("target", "cpu|another-cpu|+x|llvm-1")])
def test_entry_for_another_schema_or_cpu_is_not_used(cache_dir, field, value):
    args = _args()
    _fresh_call(_dense, args)
    key = _key(_dense, args)
    artifact = Artifact(*_split(_entry(key)))
    meta = dict(artifact.meta, **{field: value})
    _store().cache.set(f"artifact:{key.digest}", Artifact(meta, artifact.binary).pack())
    _assert_rebuilt(key, args)


def _split(data: bytes):
    from jitune.cache.artifact import unpack

    artifact = unpack(data)
    return artifact.meta, artifact.binary


def test_unloadable_binary_with_a_valid_checksum_is_rebuilt(cache_dir):
    args = _args()
    _fresh_call(_dense, args)
    key = _key(_dense, args)
    meta, _ = _split(_entry(key))
    _store().cache.set(f"artifact:{key.digest}", Artifact(meta, b"\x7fELF not really").pack())
    _assert_rebuilt(key, args)


def test_truncated_database_file_is_set_aside(cache_dir):
    args = _args()
    _fresh_call(_dense, args)
    _store().cache.close()
    _stores.clear()  # as a new process would, open the directory again
    database = cache_dir / "cache.db"
    database.write_bytes(database.read_bytes()[:100])
    _assert_rebuilt(_key(_dense, args), args)
    assert any(p.name.startswith("cache.db.corrupt-") for p in cache_dir.iterdir())


class _Payload:
    """Unpickling this creates a marker file: proof that something unpickled it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_values_and_keys_are_never_unpickled(cache_dir, tmp_path):
    args = _args()
    key = _key(_dense, args)
    marker = tmp_path / "unpickled"
    _store()  # create the cache directory
    _plant(key, _Payload(str(marker)))
    with diskcache.Cache(str(cache_dir)) as raw:
        raw.set(("pickled", "key"), b"x")
    kernel = _fresh_call(_dense, args)
    assert kernel.compile_count == 1
    out = []
    jitune.cli.main(["cache", "list"], out=_Lines(out))
    jitune.cli.main(["cache", "export", str(tmp_path / "x.jsonl")], out=_Lines(out))
    assert not marker.exists()


class _Lines:
    def __init__(self, sink: list[str]) -> None:
        self.sink = sink

    def write(self, text: str) -> None:
        self.sink.append(text)

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("mode", [0o770, 0o707])
def test_directory_others_can_write_is_refused(tmp_path, mode):
    shared = tmp_path / "shared"
    with jitune.config.override(disable_cache=False, cache_dir=str(shared)):
        _fresh_call(_dense, _args())  # a good entry, written while the directory was private
        _stores.clear()
        os.chmod(shared, mode)
        with pytest.warns(CacheWarning, match="other users can write"):
            kernel = _fresh_call(_dense, _args())
        assert (kernel.compile_count, kernel.load_count) == (1, 0)  # nothing loaded from it
    _stores.clear()


def test_disk_errors_degrade_to_memory_with_one_warning(cache_dir, monkeypatch):
    import sqlite3

    store = _store()

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(store.cache, "set", broken)
    monkeypatch.setattr(store.cache, "add", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = _fresh_call(_dense, _args())
        second = _fresh_call(lambda x, w, b: x @ w + b, _args())
    assert first.compile_count == second.compile_count == 1
    assert len([w for w in caught if issubclass(w.category, CacheWarning)]) == 1
    _stores.clear()


def test_size_limit_evicts_least_recently_used(cache_dir):
    with jitune.config.override(cache_size=64 * 1024):
        _stores.clear()
        x = np.arange(6.0)
        for scale in range(40):
            jitune.kernel(lambda a, s=float(scale): np.exp(a) * s + a.sum())(x)
        store = _store()
        assert store.volume() < 1 << 20
        assert len(store.artifacts()) < 40
    _stores.clear()


def test_records_are_stored_as_json_rows(cache_dir):
    key = _key(_dense, _args())
    _store().add_record(key, {"config": {"schedule": "default"}, "seconds": 1e-3, "error": None})
    (row,) = _store().records()
    assert row["key"] == key.digest and row["seconds"] == 1e-3 and row["target"] == key.target


# -- the command line -------------------------------------------------------------------------


def test_cli_export_import_then_the_kernel_loads_without_tuning(tmp_path):
    source, target = tmp_path / "source", tmp_path / "target"
    first = _run_script(source)
    assert first["compiled"] == 1
    exported = tmp_path / "tuned.jsonl"
    cli = [sys.executable, "-m", "jitune"]
    run = dict(capture_output=True, text=True, timeout=120, check=True)
    listing = subprocess.run(cli + ["cache", "list"], env=_env(source), **run).stdout
    assert "dense" in listing and "float32[37,29]" in listing
    subprocess.run(cli + ["cache", "export", str(exported)], env=_env(source), **run)
    rows = [json.loads(line) for line in exported.read_text().splitlines()]
    assert [row["kernel"] for row in rows if row["type"] == "config"] == ["dense"]
    imported = subprocess.run(cli + ["cache", "import", str(exported)], env=_env(target), **run)
    assert "imported 1 configs" in imported.stdout
    second = _run_script(target)
    assert second["ok"] and second["compiled"] == 1  # binaries are rebuilt from the config
    with jitune.config.override(disable_cache=False, cache_dir=str(target)):
        (meta,) = _store().artifacts()
        assert meta["how"] == "rebuilt from an imported config"
    _stores.clear()
    info = subprocess.run(cli + ["info"], env=_env(target), **run).stdout
    assert "fingerprint: cpu|" in info and str(target) in info
    cleared = subprocess.run(cli + ["cache", "clear", "--kernel", "dense"], env=_env(target), **run)
    assert "removed 2 entries" in cleared.stdout  # the artifact and the imported config
    assert _run_script(target)["compiled"] == 1


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to chown")
def test_directory_owned_by_another_user_is_refused(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o700)
    os.chown(foreign, 12345, 12345)
    with jitune.config.override(disable_cache=False, cache_dir=str(foreign)):
        with pytest.warns(CacheWarning, match="belongs to user id 12345"):
            kernel = _fresh_call(_dense, _args())
        assert kernel.compile_count == 1
    assert list(foreign.iterdir()) == []
    _stores.clear()
