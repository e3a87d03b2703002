# SPDX-License-Identifier: GPL-2.0-only
"""The printf engine and symbol rendering, against C and trace-cmd 3.1.6 behaviour."""

from __future__ import annotations

from pathlib import Path

import pytest
from tracedat_testdata import SYNTHETIC

from kho_replay.parsers.tracedat import open_tracedat
from kho_replay.parsers.tracedat.render import _Ctx, bprint_args, c_printf, render_report
from kho_replay.parsers.tracedat.symbols import Kallsyms

KS = Kallsyms(b"ffffffff81001000 T setup_arch\nffffffff81002000 T memblock_reserve\n")


def ctx(long_size: int = 8) -> _Ctx:
    return _Ctx(long_size, lambda: KS, lambda: {0xFFFFFFFF82A00010: "from printk_formats"})


@pytest.mark.parametrize(
    "fmt,args,want",
    [
        ("%#x|%#018llx", [0, 0x1000006], "0|0x0000000001000006"),  # C: no 0x on zero
        ("%d %u", [0xFFFFFFFF, -1], "-1 4294967295"),  # no length modifier: a C int
        ("%lx", [0x1_0000_0001], "1"),  # 4-byte long truncates
        ("%Lx %lld", [1 << 40, -(1 << 40)], "10000000000 -1099511627776"),
        ("[%5s|%-5d|%05d]", ["ab", 7, -3], "[   ab|7    |-0003]"),
        ("100%% %c", [65], "100% A"),
        ("%.3s|%*d", ["abcdef", 4, 9], "abc|   9"),
        ("%s", [0xFFFFFFFF82A00010], "from printk_formats"),  # %s of an address: printk_formats
    ],
)
def test_c_printf(fmt: str, args: list[object], want: str) -> None:
    long_size = 4 if fmt == "%lx" else 8
    assert c_printf(fmt, args, ctx(long_size)) == want


def test_pointer_extensions() -> None:
    c = ctx()
    got = c_printf("%ps %pS %pF", [0xFFFFFFFF81001010] * 3, c)
    assert got == "setup_arch setup_arch+0x10 setup_arch+0x10"
    assert c_printf("%pS", [0xFFFFFFFF81002000], c) == "memblock_reserve+0x0"
    assert c_printf("%pS|%p", [0x1000, 0xABC], c) == "0x1000|0xabc"  # below every symbol: the address


def test_bprint_packing_aligns_numbers_not_strings() -> None:
    buf = (b"\x07\0\0\0" + b"hi\0" + b"\0" + b"\x10\0\0\0\0\0\0\0" + b"\xff\xff\xff\xff"
           + b"\x00\x10\x00\x81\xff\xff\xff\xff")
    assert bprint_args("%d %s %llx %d %pS", buf, 8, False) == [7, "hi", 16, 0xFFFFFFFF, 0xFFFFFFFF81001000]
    assert bprint_args("%d %d", b"\x01\0\0\0", 8, False) == [1]  # a short buffer ends the list


def _patched(tmp_path: Path, edits: list[tuple[bytes, bytes]]) -> Path:
    data = bytearray((SYNTHETIC / "v6.dat").read_bytes())
    for old, new in edits:
        i = data.find(old)
        data[i:i + len(new)] = new
    path = tmp_path / "patched.dat"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    "edits,tail",
    [
        # trace-cmd 3.1.6 prints "+0x0" for an exact symbol address ...
        ([(b"ffffffff81001000 T setup_arch", b"ffffffff81001010")], " nid=0 setup_arch+0x0"),
        # ... and the bare address when no symbol lies below it.
        ([(b"ffffffff81000000 T _stext", b"ffffffff81001011"),
          (b"ffffffff81001000 T setup_arch", b"ffffffff81001011")], " nid=0 0xffffffff81001010"),
    ],
)
def test_bprint_symbols_as_trace_cmd_prints_them(tmp_path: Path, edits: list[tuple[bytes, bytes]],
                                                 tail: str) -> None:
    with open_tracedat(_patched(tmp_path, edits)) as td:
        first = next(line for line in render_report(td) if " bprint: " in line)
    assert first.endswith("[0x0000000001000006-0x0000000001001005]" + tail)
