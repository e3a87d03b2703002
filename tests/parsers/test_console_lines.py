# SPDX-License-Identifier: GPL-2.0-only
"""Every memblock debug line format and prefix style, built from real lines of our traces."""

from __future__ import annotations

import pytest

from kho_replay.parsers.console import read_console_text
from kho_replay.parsers.console.prefixes import clean_line
from kho_replay.replay.errors import FormatError
from kho_replay.replay.flags import Flag
from kho_replay.replay.ops import (
    FAILED,
    Add,
    Alloc,
    Doubling,
    Free,
    KernelMessage,
    MemblockDump,
    Remove,
    Reserve,
)

from .conftest import VERSION_61, stamped

ADD = "memblock_add: [0x0000000000100000-0x00000000bffdffff] e820__memblock_setup+0x94/0xc0"
API = ("memblock_alloc_try_nid: 104 bytes align=0x40 nid=-1 from=0x0000000000000000 "
       "max_addr=0x0000000000000000 firmware_map_add_early+0x2f/0x60")
RES = ("__memblock_reserve: [0x000000013ffd2bc0-0x000000013ffd2c27] nid=-1 flags=20 "
       "memblock_alloc_range_nid+0xe9/0x190")


def ops_of(text: str, **kw):
    return read_console_text(text, "t.log", **kw).ops


def logged(ops):
    """Ops read from lines, not inferred."""
    return [o for o in ops if o.inferred is None]


@pytest.mark.parametrize(
    "raw",
    [
        f"[    0.021187] {ADD}",
        f"[    0.021187] [    T0] {ADD}",
        f"[    0.021187][    C1] {ADD}",
        f"[Wed Nov 25 18:10:00 2026] {ADD}",
        f"Nov 25 18:10:00 host kernel: {ADD}",
        f"<6>[    0.021187] {ADD}",
        f"kern  :info  : [    0.021187] {ADD}",
        f"\x1bc\x1b[?7l\x1b[2J[    0.021187] {ADD}\r",
        ADD,
    ],
)
def test_prefix_styles(raw: str) -> None:
    assert clean_line(raw)[1] == ADD


def test_crlf_log_without_timestamps() -> None:
    text = "\r\n".join([VERSION_61, ADD.replace("0x0000000000100000", "0x00100000"), ""])
    (op,) = logged(ops_of(text))
    assert op == Add(0x100000, 0xbffe0000 - 0x100000, caller="e820__memblock_setup+0x94/0xc0")


def test_add_and_add_node() -> None:
    node = "memblock_add_node: [0x0000000100000000-0x000000013fffffff] nid=1 flags=8 add_memory+0x1/0x2"
    a, b = logged(ops_of(stamped(ADD, node)))
    assert (a.base, a.size, a.nid) == (0x100000, 0xbfee0000, None)
    assert (b.nid, b.flags) == (1, Flag.MEMBLOCK_DRIVER_MANAGED)


def test_remove_with_wrapping_end_is_ullong_max() -> None:
    # arm64_memblock_init(): memblock_remove(1ULL << PHYS_MASK_SHIFT, ULLONG_MAX) prints end < base
    line = "memblock_remove: [0x0010000000000000-0x000ffffffffffffe] arm64_memblock_init+0xf8/0x318"
    (op,) = logged(ops_of(stamped(line)))
    assert op == Remove(1 << 52, (1 << 64) - 1, caller="arm64_memblock_init+0xf8/0x318")


def test_zero_size_free_prints_end_below_base() -> None:
    line = "memblock_phys_free: [0x000000013f5c1000-0x000000013f5c0fff] memblock_free+0x5c/0x80"
    (op,) = logged(ops_of(stamped(line)))
    assert op == Free(0x13f5c1000, 0, caller="memblock_free+0x5c/0x80")


def test_reserve_new_and_old_formats() -> None:
    new = "__memblock_reserve: [0x00000000000f5ba0-0x00000000000f5baf] nid=-1 flags=0 smp_scan_config+0xb1/0x110"
    (n,) = logged(ops_of(stamped(new)))
    assert n == Reserve(0xf5ba0, 0x10, -1, Flag.MEMBLOCK_NONE, caller="smp_scan_config+0xb1/0x110")
    old = "memblock_reserve: [0x00000000000f5ba0-0x00000000000f5baf] smp_scan_config+0xb1/0x110"
    (o,) = logged(ops_of(stamped(old, version=VERSION_61)))
    assert o == Reserve(0xf5ba0, 0x10, caller="smp_scan_config+0xb1/0x110")


@pytest.mark.parametrize("fn", ["memblock_free", "memblock_phys_free"])
def test_free_lines(fn: str) -> None:
    (op,) = logged(ops_of(stamped(f"{fn}: [0x000000013fe00000-0x000000013fffffff] init_mem_mapping+0x227/0x340",
                                  version=VERSION_61)))
    assert op == Free(0x13fe00000, 2 << 20, caller="init_mem_mapping+0x227/0x340")


@pytest.mark.parametrize("fn", ["memblock_free_late", "__memblock_free_late"])
def test_late_free_is_an_observation_not_an_op(fn: str) -> None:
    t = read_console_text(stamped(ADD, f"{fn}: [0x0000000001000000-0x0000000001000fff] efi_free_boot_services+0x1/0x2",
                                  version=VERSION_61), "t.log")
    assert len(logged(t.ops)) == 1
    assert any(isinstance(o, KernelMessage) and o.kind == "free_late" for o in t.observations)


def test_allocation_gets_its_reservation_as_result() -> None:
    ops = logged(ops_of(stamped(ADD, API, RES)))
    alloc = ops[-1]
    assert isinstance(alloc, Alloc)
    assert (alloc.api, alloc.size, alloc.align, alloc.nid, alloc.min_addr, alloc.max_addr, alloc.expect) == (
        "memblock_alloc_try_nid", 104, 0x40, -1, 0, 0, 0x13ffd2bc0)
    assert not any(isinstance(o, Reserve) for o in ops)


def test_allocation_without_reservation_failed() -> None:
    raw = ("memblock_alloc_try_nid_raw: 2097152 bytes align=0x200000 nid=0 from=0x0000000001000000 "
           "max_addr=0x0000000000000001 vmemmap_populate_hugepages+0x1/0x2")
    ops = logged(ops_of(stamped(ADD, raw, API, RES)))
    first, second = [o for o in ops if isinstance(o, Alloc)]
    assert first.expect == FAILED and first.api == "memblock_alloc_try_nid_raw"
    assert second.expect == 0x13ffd2bc0


@pytest.mark.parametrize(
    "line, api, fields",
    [
        ("memblock_alloc_exact_nid_raw: 1073741824 bytes align=0x40000000 nid=1 from=0x0000000001000000 "
         "max_addr=0x0000000000000000 alloc_bootmem+0x1/0x2", "memblock_alloc_exact_nid_raw", {"nid": 1}),
        ("memblock_phys_alloc_range: 28672 bytes align=0x1000 from=0x0000000000000000 "
         "max_addr=0x0000000000100000 reserve_real_mode+0x6c/0xd0", "memblock_phys_alloc_range",
         {"max_addr": 0x100000, "nid": None}),
        ("memblock_alloc_hugetlb: 1073741824 bytes, nid=0, exact_nid=1 alloc_bootmem+0x1/0x2",
         "memblock_alloc_hugetlb", {"nid": 0, "exact": True, "align": None}),
        ("memblock_virt_alloc_try_nid: 4096 bytes align=0x1000 nid=-1 from=0 max_addr=0 setup_arch+0x1/0x2",
         "memblock_alloc_try_nid", {"min_addr": 0, "max_addr": 0}),
    ],
)
def test_api_lines(line: str, api: str, fields: dict) -> None:
    (alloc,) = [o for o in ops_of(stamped(line)) if isinstance(o, Alloc)]
    assert alloc.api == api and alloc.expect == FAILED
    for k, v in fields.items():
        assert getattr(alloc, k) == v


def test_doubling_lines_are_observations_not_ops() -> None:
    lines = [
        API,
        "memblock: reserved is doubled to 512 at [0x000000043ffe1000-0x000000043ffe3fff]",
        "memblock_phys_free: [0x000000043fffc000-0x000000043fffdfff] memblock_double_array+0x1de/0x2f0",
        "__memblock_reserve: [0x000000043ffe1000-0x000000043ffe3fff] nid=-1 flags=20 memblock_double_array+0x2b5/0x2f0",
        RES,
    ]
    t = read_console_text(stamped(ADD, *lines), "t.log")
    assert [type(o) for o in logged(t.ops)] == [Add, Alloc]
    (d,) = [o for o in t.observations if isinstance(o, Doubling)]
    assert (d.name, d.new_max, d.base, d.base + d.size) == ("reserved", 512, 0x43ffe1000, 0x43ffe4000)
    kinds = {o.kind for o in t.observations if isinstance(o, KernelMessage)}
    assert {"double_array_free", "double_array_reserve"} <= kinds


def test_dump_becomes_observation() -> None:
    dump = [
        "MEMBLOCK configuration:",
        " memory size = 0x00000000bfeda000 reserved size = 0x0000000000001000",
        " memory.cnt  = 0x1",
        " memory[0x0]\t[0x0000000000100000-0x00000000bffdffff], 0x00000000bfee0000 bytes on node 0 flags: 0x0",
        " reserved.cnt  = 0x1",
        " reserved[0x0]\t[0x0000000000098000-0x0000000000098fff], 0x0000000000001000 bytes flags: 0x20",
    ]
    t = read_console_text(stamped(ADD, *dump), "t.log")
    (d,) = [o for o in t.observations if isinstance(o, MemblockDump)]
    assert (d.memory_cnt, d.reserved_cnt, d.memory[0].nid, d.reserved[0].flags) == (1, 1, 0, 0x20)
    # the reservation no line explains is seeded, marked inferred
    (seed,) = [o for o in t.ops if isinstance(o, Reserve)]
    assert seed.inferred and (seed.base, seed.size) == (0x98000, 0x1000)


def test_node_data_reservation_is_an_inferred_allocation() -> None:
    t = read_console_text(stamped(
        ADD,
        "__memblock_reserve: [0x000000013ffd2f80-0x000000013fffdfff] nid=0 flags=20 "
        "memblock_alloc_range_nid+0xe9/0x190",
        "NODE_DATA(0) allocated [mem 0x13ffd2f80-0x13fffdfff]",
    ), "t.log")
    (alloc,) = [o for o in t.ops if isinstance(o, Alloc)]
    assert alloc.api == "memblock_phys_alloc_try_nid" and alloc.nid == 0 and alloc.expect == 0x13ffd2f80
    assert alloc.inferred and "alloc_node_data" in alloc.inferred


def test_unknown_memblock_line_is_skipped_or_strict_error() -> None:
    bad = "memblock_reserve: [0x0000000000001000 something odd"
    t = read_console_text(stamped(ADD, bad), "t.log")
    (s,) = t.skipped
    assert s.position == "3" and s.raw.endswith(bad)
    with pytest.raises(FormatError, match=r"^t\.log:3: "):
        read_console_text(stamped(ADD, bad), "t.log", strict=True)


def test_context_lines() -> None:
    t = read_console_text(stamped(
        "Command line: console=ttyS0 memblock=debug hugepagesz=1G hugepages=4",
        "BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff]  System RAM",
        ADD,
        "KHO: found kexec handover data.",
        "HugeTLB: allocating 2 of page size 1.00 GiB failed node0.  Only allocated 1 hugepages.",
        "Memory: 3993424K/4193784K available (19554K kernel code, 343636K reserved, 0K cma-reserved)",
        "Initmem setup node 0 [mem 0x0000000000100000-0x00000000bffdffff]",
    ), "t.log")
    assert t.context.cmdline.endswith("hugepages=4") and t.context.arch == "x86_64"
    assert t.context.nodes == ((0, 0x100000, 0xbffe0000),)
    kinds = [o.kind for o in t.observations if isinstance(o, KernelMessage)]
    assert {"e820", "kho", "hugetlb", "memory"} <= set(kinds)


def test_firmware_junk_before_stamp_but_not_quoted_dmesg() -> None:
    assert clean_line(f"k[    0.000000] {ADD}") == (0.0, ADD)
    assert clean_line(f"dmesg| [    2.0] {ADD}")[0] is None


def test_4x_formats_read_without_a_replay_profile() -> None:
    # 4.x: "%#016llx" ranges (14 hex digits), %pF callers, from/max_addr without 0x
    v = "Linux version 4.19.0-27-amd64 (debian-kernel@lists.debian.org) (gcc version 8.3.0 (Debian 8.3.0-6))"
    t = read_console_text(stamped(
        "memblock_reserve: [0x0000000009f000-0x000000000fffff] reserve_bios_regions+0x9e/0xbb",
        "memblock_virt_alloc_try_nid: 4096 bytes align=0x1000 nid=-1 from=0 max_addr=0 alloc_low_pages+0x1/0x2",
        "memblock_reserve: [0x0000013ffff000-0x0000013fffffff] memblock_virt_alloc_internal+0x1a6/0x20f",
        version=v,
    ), "t.log")
    res, alloc = logged(t.ops)
    assert (res.base, res.size) == (0x9f000, 0x61000)
    assert alloc.api == "memblock_alloc_try_nid" and alloc.expect == 0x13ffff000
    assert "no_replay_profile" in dict(t.context.facts)
