"""The ``jitune`` command: ``info``, ``cache list | clear | export | import`` and ``report``
(tuning curves from the records)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from . import config
from .cache import open_store
from .cache.store import Store
from .runtime.devices import DEVICES
from .version import __version__


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _age(created: Any) -> str:
    if not isinstance(created, (int, float)):
        return "?"
    seconds = max(0.0, time.time() - created)
    for unit, span in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= span:
            return f"{seconds / span:.0f} {unit}"
    return f"{seconds:.0f} s"


def _with_store(action: Callable[[argparse.Namespace, Any, Store], int]) -> Callable[..., int]:
    """Run ``action`` with the open store; exit status 1 if the disk cache is off."""

    def run(args: argparse.Namespace, out: Any) -> int:
        store = open_store(config.get())
        if store is None:
            print(
                "the disk cache is off (JITUNE_DISABLE_CACHE) or unusable; see the warning above",
                file=out,
            )
            return 1
        return action(args, out, store)

    return run


def _opencl_devices(out: Any) -> None:
    """Every OpenCL device pyopencl lists, and whether it builds programs (a driver can list
    a device it cannot compile for)."""
    from .runtime import opencl

    devices = opencl.all_devices()
    if not devices:
        print(f"opencl devices: none ({opencl.unavailable_reason()})", file=out)
        return
    print("opencl devices:", file=out)
    for device in devices:
        failure = opencl.build_failure(device)
        status = "builds programs" if failure is None else f"UNUSABLE: {failure}"
        print(f"  {opencl.describe(device)}: {status}", file=out)
    if not opencl.working_devices():
        print(f"  {opencl.INSTALL_ADVICE}", file=out)


def _info(args: argparse.Namespace, out: Any) -> int:
    settings = config.get()
    print(f"jitune {__version__}", file=out)
    print("targets:", file=out)
    for device in DEVICES:
        if device.available():
            target = device.target()
            print(
                f"  {device.name}: {target.arch}, {target.vector_bytes * 8}-bit vectors, "
                f"{target.toolchain}",
                file=out,
            )
            print(f"    fingerprint: {target.fingerprint()}", file=out)
    _opencl_devices(out)
    store = open_store(settings)
    if store is None:
        print(f"cache: off ({settings.cache_dir})", file=out)
    else:
        print(
            f"cache: {store.path}, {_size(store.volume())} of {_size(settings.cache_size)}, "
            f"{len(store.artifacts())} compiled kernels",
            file=out,
        )
    print("settings:", file=out)
    for field in dataclasses.fields(settings):
        print(f"  {field.name} = {getattr(settings, field.name)!r}", file=out)
    return 0


@_with_store
def _list(args: argparse.Namespace, out: Any, store: Store) -> int:
    rows = [("kernel", "signature", "target", "compile ms", "measured ms", "GFLOP/s", "age")]
    for meta in sorted(
        store.artifacts(), key=lambda m: (str(m.get("kernel")), m.get("created", 0))
    ):
        measured = meta.get("measured_seconds")
        flops = meta.get("flops")
        rows.append(
            (
                str(meta.get("kernel")),
                str(meta.get("signature")),
                str(meta.get("target", "")).split("|")[1]
                if "|" in str(meta.get("target"))
                else "?",
                f"{1e3 * meta['compile_seconds']:.1f}" if meta.get("compile_seconds") else "-",
                f"{1e3 * measured:.3f}" if measured else "-",
                f"{flops / measured / 1e9:.1f}" if measured and flops else "-",
                _age(meta.get("created")),
            )
        )
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip(), file=out)
    print(f"{len(rows) - 1} compiled kernels, {_size(store.volume())} in {store.path}", file=out)
    return 0


@_with_store
def _clear(args: argparse.Namespace, out: Any, store: Store) -> int:
    removed = store.clear(args.kernel)
    what = f"of kernel {args.kernel!r} " if args.kernel else ""
    print(f"removed {removed} entries {what}from {store.path}", file=out)
    return 0


@_with_store
def _export(args: argparse.Namespace, out: Any, store: Store) -> int:
    count = 0
    with open(args.file, "w", encoding="utf-8") as sink:
        for line in store.export_lines():
            sink.write(line + "\n")
            count += 1
    print(f"wrote {count} rows to {args.file}", file=out)
    return 0


@_with_store
def _import(args: argparse.Namespace, out: Any, store: Store) -> int:
    with open(args.file, encoding="utf-8") as source:
        try:
            configs, records = store.import_lines(iter(source))
        except ValueError as exc:
            print(f"jitune: {args.file}: {exc}", file=sys.stderr)
            return 2
    print(f"imported {configs} configs and {records} records into {store.path}", file=out)
    return 0


def _tunings(rows: list[dict[str, Any]], kernel: str | None) -> dict[str, list[dict[str, Any]]]:
    """Records grouped by tuned signature (cache key), each in measuring order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if kernel is not None and row.get("kernel") != kernel:
            continue
        if "gflops" not in row or "key" not in row or row.get("alias_of"):
            continue  # not a tuner's row, or a config that shares a measured program
        if "confirmation" in row:
            continue  # a finalist measured again after the search: not a trial
        groups.setdefault(str(row["key"]), []).append(row)
    for group in groups.values():
        group.sort(key=lambda r: (float(r.get("created", 0.0)), int(r.get("trial", 0))))
    return groups


def _report(args: argparse.Namespace, out: Any) -> int:
    if args.records:
        with open(args.records, encoding="utf-8") as source:
            rows = [json.loads(line) for line in source if line.strip()]
        rows = [row for row in rows if row.pop("type", "record") == "record"]
        where = args.records
    else:
        store = open_store(config.get())
        if store is None:
            print("the disk cache is off (JITUNE_DISABLE_CACHE); pass --records FILE", file=out)
            return 1
        rows, where = store.records(), store.path
    groups = _tunings(rows, args.kernel)
    if not groups:
        print(f"no tuning records in {where}", file=out)
        return 1
    curves = []
    for group in groups.values():
        best, curve, failed = 0.0, [], 0
        for row in group:
            best = max(best, float(row.get("gflops") or 0.0))
            curve.append(best)
            failed += row.get("error") is not None
        label = f"{group[0].get('kernel')} {group[0].get('signature', '')}".strip()
        curves.append((label, curve))
        print(
            f"{label}: {len(curve)} trials, best {best:.1f} GFLOP/s, first {curve[0]:.1f}, "
            f"{failed} failed",
            file=out,
        )
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(
            "jitune report: plotting needs matplotlib (pip install 'jitune[plot]'); "
            "the summary above is all",
            file=sys.stderr,
        )
        return 1
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for number, (label, curve) in enumerate(curves, start=1):
        # numbered: matplotlib hides labels that start with "_"
        axis.plot(range(1, len(curve) + 1), curve, label=f"{number}. {label}")
    axis.set_xlabel("measured trials")
    axis.set_ylabel("best GFLOP/s so far")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(args.output, dpi=120)
    print(f"wrote {args.output}", file=out)
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="jitune", description="jitune's compiled-kernel cache")
    commands = top.add_subparsers(dest="command", required=True)
    commands.add_parser("info", help="version, targets, cache directory and settings")
    cache = commands.add_parser("cache", help="list, clear, export or import cached kernels")
    actions = cache.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="a table of the compiled kernels in the cache")
    clear = actions.add_parser("clear", help="remove cached kernels")
    clear.add_argument("--kernel", help="only the kernels of this name")
    export = actions.add_parser("export", help="write configs and records as JSON lines")
    export.add_argument("file")
    importer = actions.add_parser("import", help="read configs and records from JSON lines")
    importer.add_argument("file")
    report = commands.add_parser("report", help="plot best-so-far speed against trials")
    report.add_argument("--kernel", help="only the tunings of this kernel name")
    report.add_argument("--records", help="a JSON-lines export instead of the cache")
    report.add_argument("--output", "-o", default="jitune-report.png", help="the PNG to write")
    return top


_ACTIONS = {"list": _list, "clear": _clear, "export": _export, "import": _import}


def main(argv: Sequence[str] | None = None, out: Any = None) -> int:
    """Run the command line; returns the exit status."""
    args = parser().parse_args(argv)
    out = out or sys.stdout
    try:
        if args.command == "info":
            return _info(args, out)
        if args.command == "report":
            return _report(args, out)
        return _ACTIONS[args.action](args, out)
    except BrokenPipeError:  # `jitune cache list | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
