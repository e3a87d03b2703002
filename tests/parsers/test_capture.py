# SPDX-License-Identifier: GPL-2.0-only
"""Capture artifacts: quoted dmesg inside a script's section is not live output, glued markers still count."""

from __future__ import annotations

from kho_replay.parsers.console import read_console_text
from kho_replay.parsers.console.reader import boot_lines, count_boots

from .conftest import VERSION_72

ADD = "memblock_add: [0x0000000000100000-0x00000000bffdffff] e820__memblock_setup+0x94/0xc0"
RES = "memblock_reserve: [0x0000000001000000-0x0000000001ffffff] setup_arch+0x40/0x500"
QUOTED_RES = "memblock_reserve: [0x0000000002000000-0x0000000002ffffff] setup_arch+0x40/0x500"


def capture(quoted: list[str], end: str = "===== END =====") -> str:
    """A live boot, then a script section quoting kernel lines with their original stamps."""
    return "".join([
        f"[    0.000000] {VERSION_72}\n",
        f"[    0.001000] {ADD}\n",
        f"[    0.002000] {RES}\n",
        "[    3.500000] Run /init as init process\n",
        "===== BEGIN dmesg-kho-grep =====\n",
        *(f"{q}\n" for q in quoted),
        f"{end}\n",
    ])


def test_quoted_banner_is_not_a_second_boot() -> None:
    text = capture([f"[    0.000000] {VERSION_72}", f"[    0.002000] {RES}"])
    assert count_boots(text) == 1
    reserves = [o for o in read_console_text(text, "t.log").ops if o.inferred is None and "setup_arch" in o.caller]
    assert len(reserves) == 1, "the quoted reservation was replayed again"


def test_quoted_lines_that_were_never_live_are_not_ops() -> None:
    # the quote holds a line cut from the live capture: going back in time marks it quoted
    text = capture([f"[    0.002500] {QUOTED_RES}"])
    ops = read_console_text(text, "t.log").ops
    assert all(o.base != 0x2000000 for o in ops if hasattr(o, "base"))


def test_live_line_inside_a_section_stays_live() -> None:
    # serial consoles interleave printk output with the script's: a later stamp is live
    text = capture([f"[    4.000000] {QUOTED_RES}"])
    ops = read_console_text(text, "t.log").ops
    assert any(getattr(o, "base", None) == 0x2000000 for o in ops)


def test_glued_end_marker_closes_the_section() -> None:
    # head -c cut the section: the END marker is glued to its last text; the next boot is real
    text = capture(["  free_highatomic 0", "  free_highatomi"], end="  free_highatomi===== END =====")
    second = text.replace(RES, RES.replace("0x0000000001", "0x0000000003"))
    both = text + second
    assert count_boots(both) == 2
    lines = boot_lines(both, boot=2)
    assert lines[0].endswith(f"{VERSION_72}\n") and len(lines) == len(second.splitlines())
    assert any("0x0000000003000000" in line for line in lines)


def test_the_same_boot_pasted_twice_is_one_boot() -> None:
    # journalctl -k then dmesg of the same boot: every stamped line repeats, stamp and text
    once = capture([])
    twice = once + once.split("===== BEGIN")[0]
    assert count_boots(twice) == 1
    t = read_console_text(twice, "t.log")
    assert len([o for o in t.ops if o.inferred is None and "setup_arch" in (o.caller or "")]) == 1
    assert any("pasted again" in s.reason for s in t.skipped)


def test_a_reboot_of_the_same_kernel_is_a_second_boot() -> None:
    once = capture([]).split("===== BEGIN")[0]
    rebooted = once.replace("[    0.002000]", "[    0.002113]")  # the same kernel, other timings
    assert count_boots(once + rebooted) == 2
