"""Faults around the disk cache: killed builders, racing processes, full and read-only disks,
damaged and planted entries, foreign files. Each test checks what happened (who built, what is
stored, what was warned), never how long it took."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import warnings

import diskcache
import numpy as np
import pytest
from test_cache import _fresh_call, _key, _store

import jitune
from jitune.cache import CacheKey, CacheWarning
from jitune.cache.health import DATABASE
from jitune.cache.lock import Holder, this_host
from jitune.cache.store import _stores

# A small kernel in a fresh process; prints what it did as one JSON line.
SCRIPT = textwrap.dedent(
    """
    import json, logging, sys
    import numpy as np
    import jitune
    from jitune.cache import open_store

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)

    @jitune.kernel
    def mm(x, w):
        return x @ w

    rng = np.random.default_rng(0)
    x = rng.random((24, 16), dtype=np.float32)
    w = rng.random((16, 20), dtype=np.float32)
    out = mm(x, w)
    store = open_store(jitune.config.get())
    print(json.dumps({
        "compiled": mm.compile_count,
        "loaded": mm.load_count,
        "tuned": mm.last.tuned is not None,
        "ok": bool(np.allclose(out, x @ w, rtol=1e-5, atol=1e-5)),
        "events": dict(store.events) if store is not None else None,
    }))
    """
)


def _env(cache_dir, budget: str = "0") -> dict[str, str]:
    env = dict(os.environ, JITUNE_CACHE_DIR=str(cache_dir), JITUNE_DISABLE_CACHE="0")
    env.update(JITUNE_BUDGET=budget, JITUNE_PROGRESS="off")
    env.pop("JITUNE_DEBUG", None)
    return env


def _start(cache_dir, budget: str = "0") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        env=_env(cache_dir, budget),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _mm(x, w):
    return x @ w


def _mm_args():
    rng = np.random.default_rng(0)
    return rng.random((24, 16), dtype=np.float32), rng.random((16, 20), dtype=np.float32)


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture(autouse=True)
def _fresh_stores():
    """Every test opens its cache directory anew, as a new process would."""
    _stores.clear()
    yield
    _stores.clear()


def _wait_for(condition, what: str, limit: float = 120.0) -> None:
    """Poll ``condition`` until it holds (the limit only stops a broken test from hanging)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


# -- the build lock ---------------------------------------------------------------------------


def test_lock_of_a_dead_process_is_taken_over(cache_dir):
    args = _mm_args()
    key = _key(_mm, args)
    dead = Holder(_dead_pid(), this_host(), "killed-while-tuning")
    _store().cache.set(f"lock:{key.digest}", dead.to_text(), expire=3600)
    with jitune.config.override(cache_wait=5.0):  # old code: waits it out, then stores nothing
        kernel = _fresh_call(_mm, args)
    assert kernel.compile_count == 1
    assert _store().events["lock_taken_from_dead_owner"] == 1
    assert _store().events["lock_wait_ran_out"] == 0
    assert _fresh_call(_mm, args).load_count == 1  # the builder stored its artifact


def test_lock_of_a_live_process_is_not_taken_and_nothing_is_tuned_twice(cache_dir):
    args = _mm_args()
    key = _key(_mm, args)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        live = Holder(sleeper.pid, this_host(), "still-tuning")
        name = f"lock:{key.digest}"
        _store().cache.set(name, live.to_text(), expire=3600)
        with jitune.config.override(cache_wait=0.2, budget=jitune.config.Budget(trials=4)):
            kernel = _fresh_call(_mm, args)
        assert kernel.compile_count == 1
        assert kernel.last.tuned is None or kernel.last.tuned.trials == 0  # measured nothing
        assert [r for r in _store().records() if r["key"] == key.digest] == []
        assert _store().events["lock_wait_ran_out"] == 1
        assert Holder.from_text(_store().cache.get(name)) == live  # still the tuner's
        assert _store().artifacts() == []  # the waiter's untuned build is not stored
    finally:
        sleeper.kill()
        sleeper.wait()


def test_holder_renews_its_lease_while_it_builds(cache_dir, monkeypatch):
    import jitune.cache.store as store_mod

    monkeypatch.setattr(store_mod, "LEASE_SECONDS", 0.5)
    monkeypatch.setattr(store_mod, "RENEW_SECONDS", 0.05)
    key = _key(_mm, _mm_args())
    store = _store()
    rival = Holder(os.getppid(), this_host(), "a second process")  # alive, so only the lease counts
    with store.building(key, 0.0, lambda: False) as owner:
        assert owner
        _wait_for(lambda: store.events["lock_renewed"] >= 15, "renewals past the lease")
        assert not store._take_lock(f"lock:{key.digest}", rival, time.monotonic())
    assert store.cache.get(f"lock:{key.digest}") is None  # released


def test_lease_that_ran_out_frees_the_lock(cache_dir):
    key = _key(_mm, _mm_args())
    elsewhere = Holder(1, "another-host|pid:[1]", "hung or on another machine")
    _store().cache.set(f"lock:{key.digest}", elsewhere.to_text(), expire=-1)  # expired lease
    with _store().building(key, 0.0, lambda: False) as owner:
        assert owner
        assert _store().events["lock_taken_from_dead_owner"] == 0  # freed by its lease


@pytest.mark.slow
def test_restart_after_sigkill_during_tuning_takes_over_at_once(tmp_path):
    cache = tmp_path / "cache"
    tuner = _start(cache, budget="300s")  # tunes far longer than this test waits
    with jitune.config.override(disable_cache=False, cache_dir=str(cache)):
        _wait_for(lambda: (cache / "cache.db").exists(), "the tuner's cache")
        _wait_for(lambda: len(_store().records()) > 0, "the tuner's first measurements")
        tuner.send_signal(signal.SIGKILL)
        tuner.communicate()
        restarted = _result(_start(cache, budget="2"))
        assert restarted["ok"] and restarted["compiled"] == 1 and restarted["tuned"]
        assert restarted["events"]["lock_taken_from_dead_owner"] == 1
        assert restarted["events"].get("lock_wait_ran_out", 0) == 0
        _stores.clear()
        assert len(_store().artifacts()) == 1
        assert all(isinstance(row.get("trial"), int) for row in _store().records())


@pytest.mark.slow
def test_eight_processes_racing_on_a_new_kernel_tune_it_once(tmp_path):
    cache = tmp_path / "cache"
    results = [_result(p) for p in [_start(cache, budget="3") for _ in range(8)]]
    assert all(r["ok"] for r in results)
    assert sum(r["tuned"] for r in results) == 1
    assert sum(r["compiled"] for r in results) == 1
    assert sum(r["loaded"] for r in results) == 7
    with jitune.config.override(disable_cache=False, cache_dir=str(cache)):
        (meta,) = _store().artifacts()
        assert meta["tuning"]["trials"] == 3
        trials = [r for r in _store().records() if "confirmation" not in r]
        assert len({r["trial"] for r in trials}) == len(trials)  # no trial measured twice


# -- a full, read-only or refusing disk -------------------------------------------------------


def _cache_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]


def _populated(cache_dir) -> bytes:
    """Store ``_mm``'s artifact in ``cache_dir``, close the store; the database's bytes."""
    _fresh_call(_mm, _mm_args())
    _store().cache.close()
    _stores.clear()
    return (cache_dir / DATABASE).read_bytes()


WRITE_ERRORS = {
    "sqlite-full": sqlite3.OperationalError("database or disk is full"),
    "sqlite-readonly": sqlite3.OperationalError("attempt to write a readonly database"),
    "ENOSPC": OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
    "EDQUOT": OSError(errno.EDQUOT, os.strerror(errno.EDQUOT)),
    "EROFS": OSError(errno.EROFS, os.strerror(errno.EROFS)),
    "EACCES": PermissionError(errno.EACCES, os.strerror(errno.EACCES)),
}


@pytest.mark.parametrize("error", WRITE_ERRORS, ids=list(WRITE_ERRORS))
def test_disk_that_refuses_writes_at_open_keeps_the_database(cache_dir, monkeypatch, error):
    stored = _populated(cache_dir)

    def refuse(*args, **kwargs):
        raise WRITE_ERRORS[error]

    monkeypatch.setattr(diskcache.Cache, "__init__", refuse)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _fresh_call(_mm, _mm_args()).compile_count == 1
        assert _fresh_call(_dense, _dense_args()).compile_count == 1
    assert len(_cache_warnings(caught)) == 1
    assert not any(".corrupt-" in p.name for p in cache_dir.iterdir())  # nothing set aside
    assert (cache_dir / DATABASE).read_bytes() == stored
    monkeypatch.undo()  # the space is back
    _stores.clear()
    assert _fresh_call(_mm, _mm_args()).load_count == 1


@pytest.mark.parametrize("error", WRITE_ERRORS, ids=list(WRITE_ERRORS))
def test_disk_that_refuses_writes_while_running_keeps_what_is_stored(cache_dir, monkeypatch, error):
    _populated(cache_dir)
    store = _store()

    def refuse(*args, **kwargs):
        raise WRITE_ERRORS[error]

    monkeypatch.setattr(store.cache, "set", refuse)
    monkeypatch.setattr(store.cache, "add", refuse)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _fresh_call(_mm, _mm_args()).load_count == 1  # reading still works
        assert _fresh_call(_dense, _dense_args()).compile_count == 1
        assert _fresh_call(_dense, _dense_args()).compile_count == 1  # in memory from now on
    assert len(_cache_warnings(caught)) == 1
    assert not any(".corrupt-" in p.name for p in cache_dir.iterdir())
    monkeypatch.undo()
    _stores.clear()
    assert _fresh_call(_mm, _mm_args()).load_count == 1


@contextlib.contextmanager
def _tmpfs(path, size: str):
    """A tmpfs of ``size`` mounted at ``path`` (root with mount permission only)."""
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'not root'})")
    try:
        yield path
    finally:
        _stores.clear()
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(directory) -> None:
    """Write into ``directory`` until its filesystem is full."""
    with open(directory / "filler", "wb", buffering=0) as filler:
        with contextlib.suppress(OSError):
            while True:
                filler.write(b"\0" * 4096)


def test_really_full_filesystem_keeps_the_cache(tmp_path):
    with _tmpfs(tmp_path / "fs", "1m") as fs:
        cache = fs / "cache"
        with jitune.config.override(disable_cache=False, cache_dir=str(cache)):
            stored = _populated(cache)
            _fill(fs)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                for scale in range(3):  # new kernels: their artifacts need space
                    _fresh_call(lambda x, w, s=float(scale): (x @ w) * s, _mm_args())
            assert len(_cache_warnings(caught)) == 1
            assert not any(".corrupt-" in p.name for p in cache.iterdir())
            (fs / "filler").unlink()  # space is freed
            _stores.clear()
            assert (cache / DATABASE).read_bytes()[:100] == stored[:100]
            assert _fresh_call(_mm, _mm_args()).load_count == 1


def test_read_only_filesystem_loads_what_is_stored(tmp_path):
    with _tmpfs(tmp_path / "fs", "4m") as fs:
        cache = fs / "cache"
        with jitune.config.override(disable_cache=False, cache_dir=str(cache)):
            _populated(cache)
            subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                kernel = _fresh_call(_mm, _mm_args())
                _fresh_call(_dense, _dense_args())
            assert len(_cache_warnings(caught)) <= 1
            assert kernel.compile_count + kernel.load_count == 1
            subprocess.run(["mount", "-o", "remount,rw", str(fs)], check=True)
            assert sorted(p.name for p in cache.iterdir()) == [DATABASE]
            _stores.clear()
            assert _fresh_call(_mm, _mm_args()).load_count == 1


def _dense(x, w):
    return np.maximum(x @ w + 1.0, 0)


def _dense_args():
    rng = np.random.default_rng(2)
    return rng.random((9, 5)), rng.random((5, 7))


# -- damaged entries --------------------------------------------------------------------------


def _entry_name() -> str:
    return f"artifact:{_key(_mm, _mm_args()).digest}"


def _header_span(data: bytes) -> tuple[int, int]:
    """Where the JSON header of packed artifact bytes lies (16-byte magic, 8-byte length)."""
    length = int.from_bytes(data[16:24], "big")
    return 24, 24 + length


def _edit_header(data: bytes, edit) -> bytes:
    """``data`` with its JSON header replaced by ``edit(header)``, the rest kept as it was
    (as a hand edit of the stored entry would)."""
    start, end = _header_span(data)
    header = edit(json.loads(data[start:end]))
    text = header if isinstance(header, bytes) else json.dumps(header, sort_keys=True).encode()
    return data[:16] + len(text).to_bytes(8, "big") + text + data[end:]


def _plan_edit(field: str, change):
    def edit(meta):
        meta["plan"][field] = change(meta["plan"][field])
        return meta

    return edit


def _flip(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x10]) + data[position + 1 :]


DAMAGE = {
    "truncated-binary": lambda data: data[: len(data) - 40],
    "flipped-bit-in-binary": lambda data: _flip(data, (_header_span(data)[1] + len(data)) // 2),
    "flipped-bit-in-header": lambda data: _flip(data, _header_span(data)[1] - 30),
    "plan-allocations": lambda data: _edit_header(
        data, _plan_edit("allocations", lambda allocations: [[[1], a[1]] for a in allocations])
    ),
    "plan-buffer-count": lambda data: _edit_header(
        data, _plan_edit("buffer_count", lambda n: n + 1)
    ),
    "plan-results": lambda data: _edit_header(data, _plan_edit("results", lambda r: [0])),
    "plan-missing": lambda data: _edit_header(data, lambda meta: {**meta, "plan": None}),
    "garbage-json": lambda data: _edit_header(data, lambda meta: b'{"plan": [unclosed'),
    "not-an-object": lambda data: _edit_header(data, lambda meta: b"[1, 2, 3]"),
}


def _warnings_logged(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def _assert_dropped_and_rebuilt(caplog) -> None:
    """A fresh call rebuilds (with the right answer) after exactly one warning; the call
    after it loads the good entry that replaced the bad one."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="jitune.cache"):
        kernel = _fresh_call(_mm, _mm_args())
    assert (kernel.compile_count, kernel.load_count) == (1, 0)
    assert len(_warnings_logged(caplog)) == 1, _warnings_logged(caplog)
    assert _fresh_call(_mm, _mm_args()).load_count == 1


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_each_kind_of_damage_drops_the_entry_and_rebuilds(cache_dir, caplog, damage):
    _fresh_call(_mm, _mm_args())
    store = _store()
    store.cache.set(_entry_name(), DAMAGE[damage](store.cache.get(_entry_name())))
    _assert_dropped_and_rebuilt(caplog)


def test_plan_that_cannot_be_this_kernels_is_refused_even_with_a_valid_checksum(cache_dir, caplog):
    from jitune.cache.artifact import Artifact, unpack

    _fresh_call(_mm, _mm_args())
    store = _store()
    artifact = unpack(store.cache.get(_entry_name()))
    plan = dict(artifact.meta["plan"], allocations=[[[1], "<f4"]])  # a 1-element output
    store.cache.set(_entry_name(), Artifact(dict(artifact.meta, plan=plan), artifact.binary).pack())
    _assert_dropped_and_rebuilt(caplog)


def test_any_loader_exception_drops_the_entry_and_rebuilds(cache_dir, caplog, monkeypatch):
    from jitune.runtime.cpu import CpuDevice

    _fresh_call(_mm, _mm_args())
    real_load = CpuDevice.load
    calls = []

    def failing_once(self, binary, buffer_count):
        calls.append(buffer_count)
        if len(calls) == 1:
            raise RuntimeError("the loader fell over")
        return real_load(self, binary, buffer_count)

    monkeypatch.setattr(CpuDevice, "load", failing_once)
    _assert_dropped_and_rebuilt(caplog)


# -- foreign rows, planted pickles ------------------------------------------------------------


def _sql(cache_dir, statement: str, values: tuple = ()) -> None:
    """Run one statement on the cache database directly, as another program could."""
    with contextlib.closing(sqlite3.connect(cache_dir / DATABASE)) as connection:
        connection.execute(statement, values)
        connection.commit()


FOREIGN_SETTINGS = {
    "shadows-a-method": ("get", 1),  # diskcache sets every row as an attribute of its Cache
    "unknown-disk-option": ("disk_colour", "blue"),  # passed to the Disk's constructor
    "wrong-type": ("size_limit", "lots"),
    "pickle-as-value": ("cull_limit", b"\x80\x05K\x01."),
}


@pytest.mark.parametrize("row", FOREIGN_SETTINGS, ids=list(FOREIGN_SETTINGS))
def test_foreign_settings_row_degrades_to_memory_with_one_warning(cache_dir, row):
    _populated(cache_dir)
    _sql(cache_dir, "INSERT OR REPLACE INTO Settings VALUES (?, ?)", FOREIGN_SETTINGS[row])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _fresh_call(_mm, _mm_args()).compile_count == 1
        assert _fresh_call(_dense, _dense_args()).compile_count == 1
    assert len(_cache_warnings(caught)) == 1
    assert "Settings" in _cache_warnings(caught)[0]


def test_edited_known_setting_is_overridden(cache_dir):
    _populated(cache_dir)
    _sql(cache_dir, "UPDATE Settings SET value = 'off' WHERE key = 'sqlite_journal_mode'")
    _sql(cache_dir, "UPDATE Settings SET value = 0 WHERE key = 'disk_min_file_size'")
    assert _fresh_call(_mm, _mm_args()).load_count == 1
    assert _store().cache.disk_min_file_size == diskcache.DEFAULT_SETTINGS["disk_min_file_size"]
    assert _store().cache.sqlite_journal_mode == "wal"


@pytest.mark.parametrize("error", [TypeError("odd"), KeyError("x"), RuntimeError("odd")])
def test_unexpected_store_error_never_escapes_a_kernel_call(cache_dir, monkeypatch, error):
    store = _store()

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(store.cache, "get", fail)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _fresh_call(_mm, _mm_args()).compile_count == 1
        assert _fresh_call(_dense, _dense_args()).compile_count == 1
    assert len(_cache_warnings(caught)) == 1


# -- whose files ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o666, 0o620, 0o602])
def test_database_others_can_write_is_refused(cache_dir, mode):
    _populated(cache_dir)
    os.chmod(cache_dir / DATABASE, mode)
    with pytest.warns(CacheWarning, match="refusing the cache database .*other users can write"):
        kernel = _fresh_call(_mm, _mm_args())
    assert (kernel.compile_count, kernel.load_count) == (1, 0)  # nothing loaded from it


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to chown")
@pytest.mark.parametrize("companion", ["", "-wal"])
def test_database_file_owned_by_another_user_is_refused(cache_dir, companion):
    _populated(cache_dir)
    file = cache_dir / (DATABASE + companion)
    file.touch()
    os.chown(file, 12345, 12345)
    with pytest.warns(CacheWarning, match="belongs to user id 12345"):
        kernel = _fresh_call(_mm, _mm_args())
    assert (kernel.compile_count, kernel.load_count) == (1, 0)
    os.chown(file, os.getuid(), os.getgid())


class _Payload:
    """Unpickling this creates a marker file: proof that something unpickled it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _run_cli(*argv: str) -> None:
    import jitune.cli

    class Sink:
        def write(self, text: str) -> None:
            pass

        def flush(self) -> None:
            pass

    jitune.cli.main(list(argv), out=Sink())


def test_pickles_planted_in_every_table_and_column_are_never_unpickled(cache_dir, tmp_path):
    args = _mm_args()
    digest = _key(_mm, args).digest
    marker = tmp_path / "unpickled"
    payload = _Payload(str(marker))
    _store()  # creates the database
    with diskcache.Cache(str(cache_dir)) as raw:  # diskcache's default, pickling Disk
        for name in ("artifact", "config", "record", "lock"):
            raw.set(f"{name}:{digest}" + (":x" if name == "record" else ""), payload)
        raw.set(f"record:{digest}:big", [payload] + [b"\0" * 1024] * 64)  # a pickle in a file
        raw.set(("a", "pickled", "key"), b"x")
        raw.set("tagged", b"x", tag=pickle.dumps(payload))
    _sql(cache_dir, "INSERT INTO Settings VALUES (?, ?)", ("disk_payload", pickle.dumps(payload)))
    _stores.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _fresh_call(_mm, args).compile_count == 1  # refused: foreign Settings
    assert len(_cache_warnings(caught)) == 1
    _sql(cache_dir, "DELETE FROM Settings WHERE key = 'disk_payload'")
    _stores.clear()
    assert _fresh_call(_mm, args).compile_count == 1  # the planted artifact is dropped
    assert _fresh_call(_mm, args).load_count == 1
    _run_cli("cache", "list")
    _run_cli("cache", "export", str(tmp_path / "exported.jsonl"))
    _run_cli("report", "-o", str(tmp_path / "report.png"))
    assert not marker.exists()


def test_value_file_outside_the_cache_is_neither_read_nor_deleted(cache_dir, tmp_path):
    args = _mm_args()
    _fresh_call(_mm, args)
    victim = tmp_path / "someone-elses-file"
    victim.write_bytes(b"precious")
    name = f"artifact:{_key(_mm, args).digest}"
    _sql(
        cache_dir,
        "UPDATE Cache SET mode = 2, filename = ?, value = NULL WHERE key = ?",
        (str(victim), name),
    )
    _stores.clear()
    assert _fresh_call(_mm, args).compile_count == 1
    assert victim.read_bytes() == b"precious"
    assert _fresh_call(_mm, args).load_count == 1


# -- killed writers, a small cache, faulty candidates -----------------------------------------

WRITER = textwrap.dedent(
    """
    import os, sys
    import jitune
    from jitune.cache import CacheKey, open_store
    from jitune.cache.artifact import Artifact

    store = open_store(jitune.config.get())
    for n in range(100000):
        key = CacheKey(f"g{n}", (), "cpu|test", (), "test")
        binary = os.urandom(1000 + 97 * (n % 700))  # some inline, some in value files
        store.save(key, Artifact({"key": key.digest, "kernel": f"k{n}"}, binary))
        store.add_record(key, {"trial": n, "seconds": 1e-3})
        if n == 20:
            print("writing", flush=True)
    """
)


@pytest.mark.slow
def test_sigkill_during_cache_writes_leaves_a_consistent_cache(tmp_path):
    cache = tmp_path / "cache"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER], env=_env(cache), stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout.readline().strip() == "writing"
    time.sleep(0.3)  # let it get well into its writes; nothing below depends on how far
    writer.send_signal(signal.SIGKILL)
    writer.communicate()
    from jitune.cache.health import is_intact

    assert is_intact(str(cache / DATABASE))
    with jitune.config.override(disable_cache=False, cache_dir=str(cache)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            metas = _store().artifacts()  # only intact ones are listed
            records = _store().records()
            assert _fresh_call(_mm, _mm_args()).compile_count == 1
        assert _cache_warnings(caught) == []
        assert len(metas) > 20 and len(records) > 20
        _stores.clear()
        assert _fresh_call(_mm, _mm_args()).load_count == 1


def test_one_mib_cache_with_hundreds_of_kernels_evicts_without_errors(cache_dir):
    from jitune.cache.artifact import Artifact

    with jitune.config.override(cache_size=1 << 20):
        _stores.clear()
        store = _store()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            x = np.arange(5.0)
            for scale in range(12):  # real kernels, compiled and stored
                _fresh_call(lambda a, s=float(scale): a * s + 1.0, (x,))
            keys = [CacheKey(f"g{n}", (), "cpu|test", (), "test") for n in range(400)]
            for n, key in enumerate(keys):  # and hundreds more of a kernel's size
                store.save(key, Artifact({"key": key.digest}, bytes([n % 256]) * 9000))
                store.add_record(key, {"trial": n, "seconds": 1e-3})
            assert _fresh_call(lambda a: a * 3.5 + 1.0, (x,)).compile_count == 1
            assert _fresh_call(lambda a: a * 3.5 + 1.0, (x,)).load_count == 1  # newest kept
        assert _cache_warnings(caught) == []
        assert not store.broken
        assert store.volume() < 2 << 20
        assert 0 < len(store.artifacts()) < 400  # evicted, and what is left is intact


def test_faulty_candidates_cost_a_trial_and_the_stored_kernel_is_a_good_one(cache_dir, monkeypatch):
    from test_tune_measure import EXPECTED, FaultyTask

    from jitune.config import Budget
    from jitune.frontend import artifacts, kernel
    from jitune.tune import TuneOptions

    faults = {1: "crash", 2: "wrong", 3: "hang", 4: "garbage"}
    monkeypatch.setattr(
        FaultyTask, "fault_of", staticmethod(lambda config: faults.get(config["out0/mr"]))
    )
    monkeypatch.setattr(artifacts, "TuneTask", FaultyTask)
    options = TuneOptions(
        budget=Budget(trials=14), strategy="random", seed=3, progress="off", timeout=2.0
    )
    monkeypatch.setattr(kernel.Kernel, "_options", lambda self, **changes: options)
    args = (np.random.default_rng(3).random((48, 40)), np.random.default_rng(4).random((40, 56)))
    tuned = _fresh_call(_mm, args)
    assert tuned.compile_count == 1 and tuned.last.tuned.trials == 14
    errors = {row["error"] for row in _store().records()} - {None}
    assert len(errors) >= 3 and errors <= {kind.value for kind in EXPECTED.values()}
    (meta,) = _store().artifacts()
    assert meta["config"]["out0"]["mr"] not in faults  # a candidate that failed is never stored
    assert _fresh_call(_mm, args).load_count == 1
