# SPDX-License-Identifier: GPL-2.0-only
"""A capture holding several boots is read one boot at a time (parsers/console/split.py): each boot's Trace
is the one of choosing it from the list of every line, the capture's boot count that list's."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from kho_replay.parsers import read_text
from kho_replay.parsers.console import reader as reader_mod
from kho_replay.parsers.console.reader import ConsoleReader, count_boots, read_console_text
from kho_replay.replay.errors import KhoReplayError
from kho_replay.replay.ops import Trace

ROOT = Path(__file__).parents[2] / "traces"
LOGS = sorted(ROOT.glob("*/console*.log*"))


def _listed(text: str, boot: int | None) -> Trace | str:
    """The boot as the reader chooses it from every line (raw lines given: no stream)."""
    try:
        return ConsoleReader("c.log", text.splitlines(keepends=True), boot=boot).read()
    except KhoReplayError as e:
        return str(e)


def _streamed(text: str, boot: int | None) -> Trace | str:
    reader_mod._last_scan = None
    try:
        return read_console_text(text, "c.log", boot=boot)
    except KhoReplayError as e:
        return str(e)


def _listed_count(text: str) -> int:
    reader = ConsoleReader("c.log", text.splitlines(keepends=True))
    reader._clean_lines()
    return len(reader._boot_starts())


def _captures() -> list[tuple[str, str]]:
    rng = random.Random(7)
    texts = {p: read_text(p) for p in LOGS}
    out = []
    for k in range(8):
        picks = rng.sample(LOGS, rng.randint(2, 4))
        parts = [texts[p] for p in picks]
        if k % 3 == 0:
            parts.insert(rng.randrange(len(parts) + 1), parts[0])  # a boot pasted again
        if k % 4 == 1:
            # a reboot's noise between: firmware escapes, a blank line, a plain run of lines no pass reads
            parts = [p + "\x1b[2J\x1b[H\nSeaBIOS (version 1.16.2)\n\n" + "reboot: Restarting system\n" * 6
                     for p in parts]
        if k % 4 == 2:
            # plain lines stamped 0.0 before a banner (arm64's "Booting Linux" lines): that boot starts there
            parts = ["".join(f"[    0.000000] usb 1-{j}: plain early line\n" for j in range(6)) + p for p in parts]
        if k % 4 == 3:
            # the same kernel rebooted: its lines again, other stamps
            parts.append(parts[-1].replace("[    0.0", "[    0.9"))
        if k % 3 == 1:
            # a capture script's section quoting a boot (its banner starts a boot there, in the section), and
            # line breaks besides newlines before the next one (a boot read alone starts at its line number)
            parts[0] = "===== BEGIN dmesg =====\n" + parts[0] + "===== END =====\nform\x0cfeed\rcarriage\n"
        out.append(("+".join(p.parent.name[:20] for p in picks), "".join(parts)))
    return out


CAPTURES = _captures()


@pytest.mark.parametrize(("name", "text"), CAPTURES, ids=[c[0] for c in CAPTURES])
@pytest.mark.parametrize("chunk", [1 << 20, 1 << 12])
def test_each_boot_streamed_as_chosen_from_every_line(name: str, text: str, chunk: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader_mod, "_CHUNK", chunk)  # small: runs of plain lines cut at every boundary
    n = _listed_count(text)
    reader_mod._last_scan = None
    assert count_boots(text, "c.log") == n
    for boot in [None, *range(1, n + 2), -1, -n]:
        assert _streamed(text, boot) == _listed(text, boot), (name, boot)


def test_a_boot_pasted_again_is_listed_with_its_boot_only() -> None:
    """A kexec capture (kernel 1, kernel 2) with kernel 2 pasted again after it: the repeat is skipped once,
    listed with boot 2.  Main listed it with every boot: twice for a pair (the double-listing bug)."""
    d = ROOT / "x86_64-kho-7.2.13-C-12G-hugepages1G2-kho_scratch3G"
    k1, k2 = (read_text(next(d.glob(f"console-kernel{k}.log*"))) for k in (1, 2))
    text = k1 + k2 + k2
    again = len((k1 + k2).splitlines()) + 1
    for read in (_streamed, _listed):
        boots = [read(text, b) for b in (1, 2)]
        assert all(isinstance(t, Trace) for t in boots)
        listed = [[s.position for s in t.skipped if "pasted again" in s.reason] for t in boots]  # type: ignore[union-attr]
        assert listed == [[], [f"{again}-{len((k1 + k2 + k2).splitlines())}"]], read.__name__


def test_a_boot_is_read_from_its_first_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading the last boot of a capture splits no line of the boots before it again (the scan found where
    it starts, and the state the passes were in there)."""
    _, text = CAPTURES[1]
    seen: list[int] = []
    real = reader_mod._raw_items

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        for item in real(*args, **kwargs):
            seen.append(item.lineno if hasattr(item, "lineno") else -1)
            yield item

    reader_mod._last_scan = None
    first_start = reader_mod._scan(lambda: (text,), reader_mod._text_key("c.log", text)).starts[-1]
    monkeypatch.setattr(reader_mod, "_raw_items", spy)
    got = read_console_text(text, "c.log", boot=-1)  # the scan above is the one it reads by
    assert seen and first_start <= min(x for x in seen if x > 0) < first_start + 50
    assert got == _listed(text, -1)
