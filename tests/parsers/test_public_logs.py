# SPDX-License-Identifier: GPL-2.0-only
"""The 19 public logs of traces/public (mails, bug reports, notes; provenance in INDEX.md):
each parses without a traceback, every skipped line carries its reason, and validate checks
everything it can and reproduces every checkable allocation, or says what it could not check."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kho_replay.parsers import assumptions, load
from kho_replay.replay.compare.validate import validate
from kho_replay.replay.ops import Alloc

PUBLIC = Path(__file__).resolve().parents[2] / "traces" / "public"
LOGS = sorted(PUBLIC.glob("*.txt"))
#: INDEX.md: complete from the banner (or, hisilicon, from the first memblock_add) to the end of memblock's use
COMPLETE = ("alpha-pc164", "mips-bmips5200", "arm-hisilicon")
#: lines skipped for a reason a reader of the mail can check (the INDEX.md header of each file says why)
EXPLAINED = re.compile(
    r"^(?:text after a dump line is not the kernel's|memblock line with spaces inside an address"
    r"|memblock line cut short|incomplete MEMBLOCK configuration dump|allocation without API line|commentary)"
)


def test_the_corpus_is_there() -> None:
    assert len(LOGS) == 19 and (PUBLIC / "INDEX.md").is_file()


@pytest.mark.parametrize("path", LOGS, ids=lambda p: p.stem)
def test_parses_with_every_skip_explained(path: Path) -> None:
    t = load(path)
    assert t.ops or t.observations
    for s in t.skipped:
        assert EXPLAINED.match(s.reason), f"{s.path}:{s.position}: {s.reason}: {s.raw}"


@pytest.mark.parametrize("path", LOGS, ids=lambda p: p.stem)
def test_validates_fully_or_as_a_stated_partial(path: Path) -> None:
    t = load(path)
    report = validate(t)
    assert report.ok, report.summary()
    api_lines = sum(1 for op in t.ops if isinstance(op, Alloc) and op.expect is not None)
    assert report.allocations + report.allocations_unchecked == api_lines
    if report.allocations_unchecked or not t.ops:
        assert report.partial is not None and report.partial.startswith(
            f"partial: {report.allocations} of {api_lines} allocations checkable; ")
    if path.name.startswith(COMPLETE):
        assert report.partial is None and report.allocations > 20


@pytest.mark.parametrize("path", LOGS, ids=lambda p: p.stem)
def test_what_was_assumed_is_one_line(path: Path) -> None:
    note = assumptions(load(path))
    banner = "Linux version" in path.read_text()
    if note is not None:
        assert "\n" not in note
    if not banner:
        # the release came from the line formats, and the warning says which
        assert note is not None and re.search(r"(?:no 'Linux version' line|debugfs tables name no kernel): .*"
                                              r"assumed \d+\.\d+", note)
