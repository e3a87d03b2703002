# SPDX-License-Identifier: GPL-2.0-only
"""The console text of a trace.dat, made as the console parser reads it: the same Trace as the text made whole."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kho_replay.parsers.tracedat import extract
from kho_replay.parsers.tracedat.extract import KHO_REPLAY_OPTION, read_tracedat
from kho_replay.parsers.tracedat.reader import TraceDat
from kho_replay.parsers.tracedat.writer import ConsoleLine, write_tracedat
from kho_replay.replay.errors import InputError

LOG = Path(__file__).parents[2] / "traces/x86_64-debian-7.2.13-4G/console.log"
_STAMPED = re.compile(r"\[ *([0-9]+)\.([0-9]{6})\] (.*)")


def _kernel_lines(banner: bool) -> list[ConsoleLine]:
    """The log's stamped kernel messages as console events over 2 CPUs, its banner kept or not."""
    out = []
    for i, raw in enumerate(LOG.read_text(errors="surrogateescape").splitlines()):
        m = _STAMPED.search(raw)
        if m is None or (not banner and m[3].startswith("Linux version")):
            continue
        # strictly rising times: a CPU's records ascend, and the merge has no ties to break
        out.append(ConsoleLine(int(m[1]) * 1_000_000_000 + int(m[2]) * 1000 + i, i % 2, 1, m[3]))
    return out


def _shapes() -> dict[str, tuple[list[ConsoleLine], dict[str, object] | None]]:
    plain = _kernel_lines(banner=False)
    with_banner = _kernel_lines(banner=True)
    last = plain[-1].ts
    return {
        "no banner": (plain, None),
        "banner": (with_banner, None),
        # a second boot pasted into the ring buffer: the text is read whole
        "two banners": (with_banner + [ln._replace(ts=ln.ts + last + 1) for ln in with_banner[:400]], None),
        # a NUL inside a message cuts it, as trace-cmd prints it
        "nul inside": ([*plain[:50], ConsoleLine(plain[50].ts, 0, 1, "memblock_reserve: cut\0here"), *plain[51:]],
                       None),
        "kept-aside text": (plain, {"text": [[3, "firmware noise\n"], [len(plain) - 2, "more noise\n"]]}),
        "banner in kept-aside text": (plain, {"text": [[0, "Linux version 7.2.13 (x) #1\n"]]}),
        "debugfs": (plain, {"debugfs": {"memblock/memory": "   0: 0x0000000000001000..0x000000000009efff\n"}}),
        "no memblock line": ([ConsoleLine(1_000_000 * i, 0, 1, f"line {i}") for i in range(1, 9000)], None),
    }


def _trace_repr(path: Path, whole: bool) -> str:
    """read_tracedat()'s Trace, every field; *whole*: the text made whole before the parser reads it."""
    if whole:
        original = extract._Extractor._console_trace

        def made_whole(self: extract._Extractor, meta: dict[str, object]) -> object:
            self.banner = True  # the path that makes the whole text first, then looks at it
            return original(self, meta)  # type: ignore[arg-type]

        extract._Extractor._console_trace = made_whole  # type: ignore[method-assign]
    try:
        t = read_tracedat(path)
    except InputError as e:
        return f"error: {e}"
    finally:
        if whole:
            extract._Extractor._console_trace = original  # type: ignore[method-assign]
    return repr((t.context, t.ops, [op.src for op in t.ops], t.observations, [o.src for o in t.observations],
                 t.skipped))


@pytest.mark.parametrize("shape", list(_shapes()))
def test_text_made_as_read_is_the_text_made_whole(tmp_path: Path, shape: str) -> None:
    lines, meta = _shapes()[shape]
    options = [(KHO_REPLAY_OPTION, json.dumps(meta).encode())] if meta else []
    path = tmp_path / "c.dat"
    write_tracedat(path, lines, compression="none", uname="Linux host 7.2.13+deb14-amd64 #1 SMP x86_64",
                   options=options)
    lazy = _trace_repr(path, whole=False)
    assert lazy == _trace_repr(path, whole=True)
    # two boots: --boot is asked for; no memblock line: no activity to read
    assert lazy.startswith("error") == (shape in ("two banners", "no memblock line"))


def test_the_walk_formats_no_console_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.dat"
    write_tracedat(path, _kernel_lines(banner=True), compression="none")
    made: list[int] = []
    stamped = extract._stamped
    monkeypatch.setattr(extract, "_stamped", lambda tss, msgs: made.append(len(msgs)) or stamped(tss, msgs))
    with TraceDat(path) as td:
        ex = extract._Extractor(td, str(path), False, None)
        ex.walk(ex._meta())
        assert made == [] and ex.banner
        text = "".join(ex.console_text())
    assert sum(made) == len(_kernel_lines(banner=True)) == text.count("\n")
