# SPDX-License-Identifier: GPL-2.0-only
"""Regression fixtures: a real boot under ``traces/<name>/`` and ``expected.json`` beside it.

``expected.json`` holds the outcome of every strategy on the trace, cold and
as the KHO boot after it (``--kexec``, ``--preserve hugetlb``, the real
second kernel's log when the directory has one).  Each outcome is stored as
:func:`~.report.json.outcome_object` gives it (the JSON convention of
:mod:`.report.json`), except that its requests are
summarized (count, a digest of every request, and one line for each that
moved: from the recorded boot for baseline's cold boot, from baseline's cold
boot for its KHO boot, from baseline's same boot for every other strategy), which keeps the file small
while any moved request still changes it.  :func:`check` replays a fixture
and lists every difference as ``strategy/boot: key: old -> new``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import KhoReplayError
from .kho.outcome import Outcome
from .ops import Alloc, Trace, caller_function
from .report.json import SCHEMA_VERSION, dumps, outcome_object
from .report.units import phys_addr_or_none

__all__ = ["FIXTURE_SCHEMA_VERSION", "EXPECTED", "add", "check", "compute", "fixtures", "trace_files"]

#: expected.json follows the one JSON convention, so it carries the one schema version.
FIXTURE_SCHEMA_VERSION = SCHEMA_VERSION
EXPECTED = "expected.json"
PRESERVE = "hugetlb"



def trace_files(path: Path) -> tuple[Path, Path | None]:
    """The cold-boot log of *path* (a file or trace directory) and a KHO second kernel's log, if any.

    :raises KhoReplayError: for a missing path or a directory without a console log.
    """
    from .inputs import resolve

    t = resolve(path)
    first = t.first.path
    if first.is_dir():
        logs = sorted(first.glob("console.log*"))
        if not logs:
            raise KhoReplayError(f"{path}: no console log (console-kernel1.log, console.log or trace.dat)")
        first = logs[0]
    return first, None if t.second is None else t.second.path


def _request_rows(o: Outcome, trace: Trace, ref: Outcome | None) -> dict[str, object]:
    """Request summary: count, digest, and a row for each request that is not where *ref* put it.

    *ref* is None for baseline's cold boot (compare with the recorded boot),
    baseline's cold boot for baseline's KHO boot, and baseline's same boot
    for any other strategy: each list then holds only what that step moved.
    """
    rows = [f"{r.op_index} {r.api} {r.size} {r.nid} {r.addr}" for r in o.requests]
    before = {(r.op_index, r.api, r.size): r.addr for r in ref.requests} if ref is not None else {}
    off: list[dict[str, object]] = []
    for r in o.requests:
        if ref is not None:
            known = (r.op_index, r.api, r.size) in before
            same = known and before[(r.op_index, r.api, r.size)] == r.addr
        else:
            op = trace.ops[r.op_index] if 0 <= r.op_index < len(trace.ops) else None
            same = isinstance(op, Alloc) and not r.synthesized and op.expect == r.addr
        if not same:
            off.append({"op_index": r.op_index, "caller": caller_function(r.caller) or None, "size": r.size,
                        "addr": phys_addr_or_none(r.addr)})
    return {"count": len(rows), "sha256": hashlib.sha256("\n".join(rows).encode()).hexdigest(),
            "moved": off}


def _compact(o: Outcome, trace: Trace, ref: Outcome | None = None) -> dict[str, object]:
    doc = outcome_object(o)
    doc.pop("source", None)  # a path: differs between checkouts
    doc["requests"] = _request_rows(o, trace, ref)
    return doc


def compute(path: Path, progress: Callable[[str], None] | None = None) -> dict[str, object]:
    """The expected.json document for trace *path*: every strategy, cold and KHO boot.

    :raises KhoReplayError: when the trace cannot be read or replayed.
    """
    from kho_replay.parsers import load

    from .kho.boot import run_kexec
    from .strategies import BUILTIN

    cold_path, second_path = trace_files(path)
    t = load(cold_path)
    t2 = load(second_path) if second_path is not None else None
    outcomes: dict[str, object] = {}
    base: tuple[Outcome, Outcome] | None = None
    for name in BUILTIN:
        if progress is not None:
            progress(name)
        cold, kx = run_kexec(t, name, preserve=PRESERVE, second=t2)
        if base is None:  # baseline comes first in BUILTIN
            base = (cold, kx)
            outcomes[name] = {"cold": _compact(cold, t), "kexec": _compact(kx, t, cold)}
        else:
            outcomes[name] = {"cold": _compact(cold, t, base[0]), "kexec": _compact(kx, t, base[1])}
    return {
        "schema_version": FIXTURE_SCHEMA_VERSION,
        "cold_log": cold_path.name,
        "second_log": None if second_path is None else second_path.name,
        "preserve": PRESERVE,
        "outcomes": outcomes,
    }


def _fixture_name(trace: Path) -> str:
    """A trace directory's name; a log's stem, or its directory's name when the file is a generic capture name."""
    if trace.is_dir():
        return trace.name
    stem = trace.name.split(".")[0]
    generic = stem in ("console", "trace") or stem.startswith("console-kernel")
    return trace.resolve().parent.name if generic else stem


def add(trace: Path, root: Path, name: str | None = None) -> Path:
    """Store *trace* (a log or a trace directory) as fixture ``root/<name>`` and write its expected.json.

    A trace already under *root* stays where it is.  Returns the fixture directory.
    Nothing is left behind when it fails: what this call copied is removed again.

    :raises KhoReplayError: when the trace is missing or does not replay.
    """
    from .output import write_output

    if not trace.exists():
        raise KhoReplayError(f"{trace}: no such file or directory")
    src_dir = trace if trace.is_dir() else None
    name = name or _fixture_name(trace)
    dest = root / name
    created: list[Path] = []  # what to remove again on failure, deepest first
    try:
        if src_dir is not None and src_dir.resolve() == dest.resolve():
            pass
        elif src_dir is not None:
            if dest.exists():
                raise KhoReplayError(f"{dest} exists; pick another --name")
            shutil.copytree(src_dir, dest)
            created.append(dest)
        else:
            if not dest.exists():
                dest.mkdir(parents=True)
                created.append(dest)
            suffix = "".join(trace.suffixes[-1:]) if trace.suffix in (".gz", ".xz") else ""
            target = dest / ("trace.dat" if trace.suffix == ".dat" else f"console.log{suffix}")
            if target.exists() and target.resolve() != trace.resolve():
                raise KhoReplayError(f"{target} exists; pick another --name")
            if not target.exists():
                shutil.copyfile(trace, target)
                created.insert(0, target)
        write_output(dest / EXPECTED, dumps(compute(dest)))
    except OSError as e:
        _undo(created)
        raise KhoReplayError(f"{dest}: {e.strerror or e}") from None
    except BaseException:
        _undo(created)
        raise
    return dest


def _undo(created: list[Path]) -> None:
    for p in created:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def fixtures(root: Path) -> list[Path]:
    """Every fixture directory under *root* (those holding expected.json), sorted."""
    return sorted(d for d in root.iterdir() if (d / EXPECTED).is_file()) if root.is_dir() else []


def _walk(key: str, a: object, b: object) -> Iterator[str]:
    if a == b:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            yield from _walk(f"{key}.{k}" if key else k, a.get(k), b.get(k))
        return
    if key.startswith("requests.moved") and isinstance(a, list) and isinstance(b, list):
        ja, jb = [json.dumps(x, sort_keys=True) for x in a], [json.dumps(x, sort_keys=True) for x in b]
        for x in ja:
            if x not in jb:
                yield f"{key}: - {x}"
        for x in jb:
            if x not in ja:
                yield f"{key}: + {x}"
        return
    yield f"{key}: {json.dumps(a)} -> {json.dumps(b)}"


def check(fixture: Path, progress: Callable[[str], None] | None = None) -> list[str]:
    """Replay *fixture* and list how it differs from its expected.json (empty: unchanged).

    :raises KhoReplayError: when expected.json is unreadable or the trace does not replay.
    """
    try:
        want = json.loads((fixture / EXPECTED).read_text())
    except (OSError, ValueError) as e:
        raise KhoReplayError(f"{fixture / EXPECTED}: {e}") from None
    if want.get("schema_version") != FIXTURE_SCHEMA_VERSION:
        raise KhoReplayError(f"{fixture / EXPECTED}: schema_version {want.get('schema_version')!r}, "
                             f"expected {FIXTURE_SCHEMA_VERSION} (re-run fixture add)")
    got = compute(fixture, progress)
    out = []
    for name in sorted(set(want["outcomes"]) | set(got["outcomes"])):
        a, b = want["outcomes"].get(name), got["outcomes"].get(name)  # type: ignore[union-attr]
        if a is None or b is None:
            out.append(f"{name}: strategy {'added' if a is None else 'gone'}")
            continue
        for boot in ("cold", "kexec"):
            out += [f"{name}/{boot}: {line}" for line in _walk("", a.get(boot), b.get(boot))]
    for key in ("cold_log", "second_log", "preserve"):
        if want.get(key) != got.get(key):
            out.append(f"{key}: {want.get(key)!r} -> {got.get(key)!r}")
    return out
