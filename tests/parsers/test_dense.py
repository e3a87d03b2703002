# SPDX-License-Identifier: GPL-2.0-only
"""Dense memblock logs take shortcuts (runs of call lines made into Lines at once, handlers chosen by a
line's first character): each must read exactly what the line-by-line rules read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kho_replay.parsers import read_text
from kho_replay.parsers.console import reader as reader_mod
from kho_replay.parsers.console.reader import ConsoleReader

from .test_streamed import LOGS, _read_all_kept, _same, _streamed

ROOT = Path(__file__).parents[2] / "traces"


@pytest.mark.parametrize("log", LOGS[:4], ids=lambda p: p.parent.name)
def test_call_run_lines_are_excerpt_lines(log: Path) -> None:
    """A run of memblock call lines is made into the Lines the line-by-line rules make, each complete
    (nothing joins it), read by the walk and no section marker."""
    from kho_replay.parsers.console.grammar import RELEVANT
    from kho_replay.parsers.console.prefixes import CallRun, _excerpt_line, _may_join

    text = read_text(log)
    split = text.splitlines(keepends=True)
    runs = [r for r in reader_mod._plain_runs(text, 1) if isinstance(r, CallRun)]
    assert sum(len(r.lines) for r in runs) > 100, "no run found: the test tests nothing"
    for run in runs:
        for ln in run.lines:
            assert ln.raw == split[ln.lineno - 1]
            assert ln == _excerpt_line(ln.lineno, ln.raw) and ln.ts is not None
            assert not _may_join(ln, reader_mod._wrapped)
            assert RELEVANT.match(ln.text) and "=====" not in ln.text


def test_call_runs_quoted_in_a_section_stream_as_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stamped memblock lines a script quoted (``dmesg | grep``, older stamps) inside a section, and a
    wrapped line waiting for its piece before a run: streamed as every line read."""
    lines = read_text(LOGS[0]).splitlines(keepends=True)
    calls = [ln for ln in lines if re.match(r"\[ *[0-9.]+\] memblock_\w+: \[", ln)][:40]
    assert len(calls) >= 20
    at = next(i for i, ln in enumerate(lines) if ln.startswith("=====")) if any(
        ln.startswith("=====") for ln in lines) else len(lines)
    quoted = ["===== BEGIN dmesg-memblock =====\n", *calls, "===== END =====\n"]
    wrapped = [calls[0].rsplit(" ", 1)[0] + "\n", calls[0].rsplit(" ", 1)[1]]
    text = "".join([*lines[:at], *quoted, *lines[at:]])
    _same(_streamed(text, "q.log"), _read_all_kept(text, "q.log", monkeypatch))
    half = len(lines) // 2
    text = "".join([*lines[:half], *wrapped, *calls[1:], *lines[half:]])
    _same(_streamed(text, "w.log"), _read_all_kept(text, "w.log", monkeypatch))


def test_handlers_by_first_character_are_the_handlers_in_order() -> None:
    """Every kept line of every bundled boot goes to the handler the full list in order gives it."""
    texts = [ln for p in sorted(ROOT.glob("*/console*.log*")) for ln in read_text(p).splitlines()]
    seen = 0
    for raw in texts:
        t = reader_mod.clean_line(raw)[1]
        want = next((h for rx, h in ConsoleReader._handlers if rx.match(t)), None)
        start = t[:1]
        some = ConsoleReader._handlers_from.get(start) or ConsoleReader._handlers_from[" " if start.isspace() else ""]
        assert next((h for rx, h in some if rx.match(t)), None) is want, t
        seen += want is not None
    assert seen > 1000, "no handled line: the test tests nothing"
