# SPDX-License-Identifier: GPL-2.0-only
"""strip_debug(): what a boot without memblock=debug prints; read_plain() of what is left."""

from __future__ import annotations

import pytest
from conftest import DEB72, KHO72, trace_dir

from kho_replay.parsers import read_text
from kho_replay.parsers.console.grammar import MEMBLOCKISH
from kho_replay.parsers.console.prefixes import clean_line
from kho_replay.parsers.plain import is_debug_line, parse_plain, strip_debug
from kho_replay.replay.errors import FormatError
from kho_replay.replay.retarget import _cold_log


@pytest.mark.parametrize("name", [KHO72[0], DEB72[4]])
def test_strip_removes_every_debug_line_and_nothing_else(name: str) -> None:
    text = read_text(_cold_log(trace_dir(name)))
    plain = strip_debug(text)
    kept = [clean_line(ln)[1] for ln in plain.splitlines()]
    assert not [t for t in kept if MEMBLOCKISH.match(t)]
    assert "memblock=debug" not in "\n".join(t for t in kept if "ommand line:" in t)
    gone = len(text.splitlines()) - len(plain.splitlines())
    assert gone == sum(1 for ln in text.splitlines() if is_debug_line(ln)) > 100
    # the facts a plain boot prints survive, unchanged
    a, b = parse_plain(text), parse_plain(plain)
    def facts(p):  # line numbers differ, values must not
        return ([(e.base, e.end, e.kind) for e in p.e820], {n: v[:2] for n, v in p.node_data.items()},
                p.ramdisk[:2], [x[:3] for x in p.acpi], p.memory[:2], {k: (v[0], v[2]) for k, v in p.hashes.items()},
                [r[:2] for r in p.ram()], p.cmdline.replace("memblock=debug ", ""))

    assert facts(a) == facts(b)
    assert a.debug_lines > 0 and b.debug_lines == 0


def test_quoted_dmesg_memblock_line_is_debug_output_too() -> None:
    assert is_debug_line("dmesg| [    0.1] memblock_add: [0x1000-0x9fbff] e820__memblock_setup+0x57/0xc0")
    assert is_debug_line("[    0.2]  reserved[0x3]\t[0x00-0x0f], 0x10 bytes flags: 0x0")
    assert not is_debug_line("[    0.2] NODE_DATA(0) allocated [mem 0x23ffdbf80-0x23fffdfff]")


def test_plain_facts_of_a_real_boot() -> None:
    b = parse_plain(read_text(_cold_log(trace_dir(DEB72[2]))))
    assert b.crashkernel[:2] == (0xAF000000, 0xBF000000)
    assert b.cma[0][:2] == (128 << 20, 0x100000000)
    assert b.node_data[0][0] == 0x23FFD2F80
    assert [(s, e) for s, e, _ in b.ram()] == [(0x1000, 0x9FC00), (0x100000, 0xBFFE0000),
                                               (0x100000000, 0x240000000)]
    assert b.hugetlb[1 << 30][0] == 2 and b.pcpu_groups == [[0, 1]]


def test_no_memory_map_is_one_error_naming_the_file() -> None:
    with pytest.raises(FormatError, match=r"host\.log:1: no memory map"):
        parse_plain("[    0.0] Linux version 7.2.13\n[    1.0] Memory: 1K/2K available\n", "host.log")


def test_node_spans_fall_back_when_the_log_is_cut_before_initmem() -> None:
    text = read_text(_cold_log(trace_dir(DEB72[4])))
    full = parse_plain(text)
    assert {n: v[:2] for n, v in full.node_spans().items()} == {0: (0x1000, 0x140000000),
                                                                 1: (0x140000000, 0x240000000)}
    cut = "\n".join(ln for ln in text.splitlines() if "Initmem setup node" not in ln and "  node  " not in ln)
    srat = parse_plain(cut)
    assert {n: v[:2] for n, v in srat.node_spans().items()} == {0: (0x1000, 0x140000000),
                                                                1: (0x140000000, 0x240000000)}
    one = parse_plain("\n".join(ln for ln in cut.splitlines() if "SRAT: Node" not in ln))
    assert {n: v[:2] for n, v in one.node_spans().items()} == {0: (0x1000, 0x240000000)}
