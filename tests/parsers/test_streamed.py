# SPDX-License-Identifier: GPL-2.0-only
"""A long capture is read as it is split, keeping only the lines some pass reads: that must change nothing.

Reference: the same reader with every line kept (the relevance filter matching everything) and the
whole-list path (lines split up front, as a capture holding several boots is read).
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from kho_replay.parsers import read_text
from kho_replay.parsers.console import reader as reader_mod
from kho_replay.parsers.console.reader import ConsoleReader, count_boots, read_console_text
from kho_replay.replay.ops import Trace

from .conftest import VERSION_72

ROOT = Path(__file__).parents[2] / "traces"
#: one boot each (a banner quoted in a script's section is no boot)
LOGS = sorted(p for p in ROOT.glob("*/console*.log") if count_boots(read_text(p)) == 1)

#: Console output a memblock boot never reads, some of it looking a little like what it does read.
NOISE = [
    "[  {t:.6f}] usb 1-1: new high-speed USB device number 3 using xhci_hcd",
    "[  OK  ] Started systemd-journald.service - Journal Service.",
    "         Starting systemd-udev-trigger.service - Coldplug All udev Devices...",
    "\x1b[0;32m  OK  \x1b[0m] Reached target network.target.\r",
    "[  {t:.6f}] Memory cgroup out of memory: Killed process 1234 (stress)",
    "root@kho:~# cat /proc/meminfo | head -2",
    "[  {t:.6f}] EXT4-fs (vda1): mounted filesystem with ordered data mode",
]


def _streamed(text: str, path: str) -> Trace:
    """Read as it is split (what read_console_text() does with a capture of one banner)."""
    reader = ConsoleReader(path, [])
    reader.source = lambda: (text,)
    return reader.read()


def _read_all_kept(text: str, path: str, monkeypatch: pytest.MonkeyPatch) -> Trace:
    with monkeypatch.context() as m:
        m.setattr(reader_mod, "RELEVANT", re.compile(""))  # every line is kept: nothing dropped
        return ConsoleReader(path, text.splitlines(keepends=True)).read()


def _same(a: Trace, b: Trace) -> None:
    assert a.ops == b.ops
    assert [o.src.text if o.src else None for o in a.ops] == [o.src.text if o.src else None for o in b.ops]
    assert a.observations == b.observations
    assert a.skipped == b.skipped
    assert a.context == b.context


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.parent.name)
def test_real_boot_streamed_reads_as_every_line_kept(log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = read_text(log)
    _same(_streamed(text, str(log)), _read_all_kept(text, str(log), monkeypatch))


@pytest.mark.parametrize("seed", range(6))
def test_noise_anywhere_changes_nothing_the_filter_could_see(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Other output between any two lines of a real boot (inside dumps and listings too): streamed and
    filtered, the result is the one of reading every line."""
    rng = random.Random(seed)
    lines = read_text(LOGS[seed % len(LOGS)]).splitlines(keepends=True)
    out = []
    for k, ln in enumerate(lines):
        out.append(ln)
        if rng.random() < 0.15:
            out += [NOISE[rng.randrange(len(NOISE))].format(t=k / 1000) + "\n" for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.02:
            out.append("\n")  # a blank line: a cut mark in a stamped log, when rare
    text = "".join(out)
    _same(_streamed(text, "n.log"), _read_all_kept(text, "n.log", monkeypatch))


def test_mail_excerpt_streamed_as_listed() -> None:
    """Joins of hard-wrapped lines and blank-line cuts decided at the end come out as the list path's."""
    text = (f"[    0.000000] {VERSION_72}\n"
            + "".join(f"[    0.00{k}000] memblock_reserve: [0x000000000{k}000000-0x000000000{k}0fffff] "
                      f"setup_arch+0x40/0x500\n" for k in range(1, 9))
            + "\n"
            + "[    0.010000] memblock_reserve: [0x0000000010000000-\n0x00000000100fffff] setup_arch+0x40/0x500\n"
            + "".join(f"[    0.02{k}000] memblock_add: [0x00000001{k}0000000-0x00000001{k}0ffffff] "
                      f"e820__memblock_setup+0x94/0xc0\n" for k in range(6))
            + "".join(f"[    0.03{k}000] other message {k}\n" for k in range(10)))
    streamed = read_console_text(text, "m.log")
    _same(streamed, ConsoleReader("m.log", text.splitlines(keepends=True)).read())
    assert any(o.base == 0x10000000 for o in streamed.ops if hasattr(o, "base")), "the wrapped line was not joined"
    assert any(getattr(o, "kind", "") == "cut" for o in streamed.observations), "the blank line is not a cut"


def test_read_after_count_boots_takes_what_the_count_read() -> None:
    """validate and kho count a capture's boots, then read it: the read reuses the count's lines."""
    text = read_text(LOGS[0])
    alone = read_console_text(text, "c.log")
    assert count_boots(text, "c.log") == 1
    assert reader_mod._last_counted is not None
    _same(read_console_text(text, "c.log"), alone)
    assert reader_mod._last_counted is None  # taken once, not held


#: Lines that are, or nearly are, plain lines no pass reads (runs of them are passed on whole): quote
#: and cut marks, commentary, prefixes, glued and inner stamps, blank and non-ASCII text.
NEAR_PLAIN = [
    "[  OK  ] Started foo.service - Foo.", "-rw-r----- 1 root adm 1234 Dec  7 03:44 syslog",
    "----- cut here -----", "[...]", "[ snipped ]", "[cut]", "...", "8<------", "%< --", "....", ". not dots",
    "# commentary", "> quoted [    0.1] usb 1-1: x", "  >> deeper", "a>b early mark",
    "Dec  7 03:44:01 kho kernel: [    1.0] usb 1-1: journal", "<6>[    1.0] syslog pri",
    "kern  :info  : [    1.0] dmesg -x", "[Mon Dec  7 03:44:01 2026] dmesg -T", "[    T1] caller id", " [C0] id",
    "junk[    1.5] usb: glued stamp", "text with [ 1.5] inside", "[    1.500000] [    T1] caller after stamp",
    "[    1.500000]  [x] bracket", "[    1.500000] ", "   ", "", "user: root", "kho login: root", "tab\there",
    "caf\u00e9 non-ascii", "[    1.600000] a line naming memblock", "x ..0x y", "plain ] with bracket",
    "[    1.700000] usb 1-1: plain stamped", "[    1.800000] EXT4-fs (vda1): re-mounted", "plain words",
    "lone\rCR", "form\x0cfeed", "         Starting x.service", "kernel: nope", "[ 2 ] not a stamp",
    "[    1.900000] usb 1-1: serial CRLF\r", "plain CRLF words\r", "\r", "[  OK  ] CRLF\r", "CR\r\r",
]


@pytest.mark.parametrize("seed", range(6))
def test_plain_runs_anywhere_change_nothing(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of (nearly) plain lines long enough to be passed on whole, between any two lines of a
    real boot: streamed, the result is the one of reading every line."""
    rng = random.Random(seed)
    lines = read_text(LOGS[seed % len(LOGS)]).splitlines(keepends=True)
    out = []
    for k, ln in enumerate(lines):
        out.append(ln)
        if rng.random() < 0.05:
            for _ in range(rng.randint(1, 40)):
                pick = NEAR_PLAIN[rng.randrange(len(NEAR_PLAIN))] if rng.random() < 0.3 else NOISE[0]
                out.append(pick.format(t=k / 1000) + "\n" if "{t" in pick else pick + "\n")
    text = "".join(out)
    _same(_streamed(text, "p.log"), _read_all_kept(text, "p.log", monkeypatch))


def test_plain_run_lines_are_plain() -> None:
    """Every line a run holds is read as no pass reads it: no note, no prefix taken off, not relevant."""
    from kho_replay.parsers.console.grammar import RELEVANT
    from kho_replay.parsers.console.prefixes import PlainRun, _excerpt_line

    rng = random.Random(1)
    text = "".join((rng.choice(NEAR_PLAIN) if rng.random() < 0.2 else NOISE[0].format(t=k / 1000)) + "\n"
                   for k in range(20000))
    runs = [r for r in reader_mod._plain_runs(text, 1) if isinstance(r, PlainRun)]
    assert sum(r.count for r in runs) > 1000, "no run found: the test tests nothing"
    split = text.splitlines(keepends=True)
    for run in runs:
        got = run.lines()
        assert [ln.raw for ln in got] == split[run.lineno - 1: run.lineno - 1 + run.count]
        for ln in got:
            assert ln == _excerpt_line(ln.lineno, ln.raw) and ln.note == ""
            assert ln.text == ln.raw.rstrip("\r\n") or ln.ts is not None
            assert not RELEVANT.match(ln.text) and not any(s in ln.text for s in ("memblock", "..0x", "====="))
        assert run.stamped() == sum(ln.ts is not None for ln in got)
        assert run.last_line() == got[-1]
        stamped = [ln for ln in got if ln.ts is not None]
        assert run.last_stamped_line() == (stamped[-1] if stamped else None)


def test_plain_run_stamps_read_as_its_lines() -> None:
    """split.scan() reads the stamp and text of a run's stamped lines with one regex: those of its Lines."""
    from kho_replay.parsers.console.prefixes import PlainRun
    from kho_replay.parsers.console.split import _RUN_STAMPED

    rng = random.Random(2)
    text = "".join((rng.choice(NEAR_PLAIN) if rng.random() < 0.3 else NOISE[0].format(t=k / 1000)) + "\n"
                   for k in range(20000))
    runs = [r for r in reader_mod._plain_runs(text, 1) if isinstance(r, PlainRun)]
    assert runs
    for run in runs:
        assert ([(ln.ts, ln.text) for ln in run.lines() if ln.ts is not None]
                == [(float(m[1]), m[2]) for m in _RUN_STAMPED.finditer(run.text, run.start, run.end)])
