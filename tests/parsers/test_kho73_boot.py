# SPDX-License-Identifier: GPL-2.0-only
"""7.3 KHO boot (kernel 2): kho_memory_init_early() and kho_extend_scratch() as ops, node/zone listings checked."""

from __future__ import annotations

import dataclasses

from kho_replay.parsers.console import read_console_text
from kho_replay.replay.compare.validate import validate
from kho_replay.replay.flags import Flag
from kho_replay.replay.ops import Alloc, KhoExtendScratch, KhoScratchArea, Mark, NodeRanges, ZoneRanges

VERSION = "Linux version 7.3.4-kho73 (root@vm) (gcc (Debian 12.2.0-14+deb12u1) 12.2.0) #1 SMP PREEMPT_DYNAMIC"
G = 1 << 30


def _r(base: int, end: int) -> str:
    return f"[{base:#018x}-{end - 1:#018x}]"


def kernel2(node_ranges: list[tuple[int, int]], preserved: list[int]) -> str:
    """A KHO boot of a 9 GiB machine that inherited scratch [0x205000000, 0x236000000)."""
    scratch = (0x205000000, 0x236000000)
    body = [
        VERSION,
        "Command line: console=ttyS0 memblock=debug kho=on",
        "BIOS-e820: [mem 0x0000000000100000-0x000000023fffffff]  System RAM",
        "KHO: found kexec handover data.",
        f"memblock_add: {_r(0x100000, 0x240000000)} e820__memblock_setup+0x57/0xc0",
        "MEMBLOCK configuration:",
        " memory size = 0x000000023ff00000 reserved size = 0x0000000000001000",
        " memory.cnt  = 0x3",
        f" memory[0x0]\t{_r(0x100000, scratch[0])}, {scratch[0] - 0x100000:#018x} bytes flags: 0x0",
        f" memory[0x1]\t{_r(*scratch)}, {scratch[1] - scratch[0]:#018x} bytes flags: 0x40",
        f" memory[0x2]\t{_r(scratch[1], 0x240000000)}, {0x240000000 - scratch[1]:#018x} bytes flags: 0x0",
        " reserved.cnt  = 0x1",
        f" reserved[0x0]\t{_r(0x1000000, 0x1001000)}, 0x0000000000001000 bytes flags: 0x20",
        # x86 init_mem_mapping() lifts memblock's limit from 1 MiB to the end of memory
        "memblock_phys_alloc_range: 2097152 bytes align=0x200000 from=0x0000000000100000 "
        "max_addr=0x0000000240000000 init_mem_mapping+0x209/0x390",
        f"__memblock_reserve: {_r(0x235e00000, 0x236000000)} nid=-1 flags=20 memblock_alloc_range_nid+0xcf/0x190",
        f"memblock_phys_free: {_r(0x235e00000, 0x236000000)} init_mem_mapping+0x229/0x390",
        "No NUMA configuration found",
        "Faking a node at [mem 0x0000000000000000-0x000000023fffffff]",
        f"__memblock_reserve: {_r(0x235fddf80, 0x236000000)} nid=0 flags=20 memblock_alloc_range_nid+0xcf/0x190",
        "NODE_DATA(0) allocated [mem 0x235fddf80-0x235ffffff]",
        "memblock_alloc_try_nid: 4096 bytes align=0x1000 nid=-1 from=0x0000000000000000 "
        "max_addr=0x0000000000000000 kho_memory_init_early+0xf6/0x200",
        f"__memblock_reserve: {_r(0x235fdc000, 0x235fdd000)} nid=-1 flags=20 memblock_alloc_range_nid+0xcf/0x190",
        f"memblock_phys_free: {_r(0x235fdc000, 0x235fdd000)} kho_radix_destroy_tree+0x54/0x70",
        "Zone ranges:",
        "  DMA      [mem 0x0000000000100000-0x0000000000ffffff]",
        "  DMA32    [mem 0x0000000001000000-0x00000000ffffffff]",
        "  Normal   [mem 0x0000000100000000-0x000000023fffffff]",
        "  Device   empty",
        "Early memory node ranges",
        *(f"  node   0: [mem {b:#018x}-{e - 1:#018x}]" for b, e in node_ranges),
        "memblock_alloc_hugetlb: 1073741824 bytes, nid=0, exact_nid=0 alloc_bootmem_huge_page+0x13/0x1a0",
        f"__memblock_reserve: {_r(0x1c0000000, 0x200000000)} nid=0 flags=a0 memblock_alloc_hugetlb+0xe4/0x100",
        *(f"__memblock_reserve: {_r(p, p + 0x1000)} nid=-1 flags=0 kho_preserved_memory_reserve+0x91/0xd0"
          for p in preserved),
    ]
    return "".join(f"[    0.{i:06d}] {b}\n" for i, b in enumerate(body))


# block 4 (0x100000000) holds preserved memory, block 8 the inherited scratch's top: the rest is extended
RANGES = [(0x100000, 4 * G), (4 * G, 5 * G), (5 * G, 8 * G), (8 * G, 0x205000000),
          (0x205000000, 0x236000000), (0x236000000, 0x240000000)]


def test_kho_scratch_and_extension_are_ops() -> None:
    t = read_console_text(kernel2(RANGES, [4 * G + 0x5000, 8 * G + 0x10000]), "k2.log")
    areas = [o for o in t.ops if isinstance(o, KhoScratchArea)]
    assert [(a.base, a.size) for a in areas] == [(0x205000000, 0x31000000)]
    (ext,) = [o for o in t.ops if isinstance(o, KhoExtendScratch)]
    assert ext.busy == (4 * G, 8 * G) and "completed" not in (ext.inferred or "")
    # kho_scratch[] is set before kho_memory_init_early()'s first allocation, the marks before the tree's free
    kinds = [type(o).__name__ for o in t.ops]
    tree_free = next(i for i, o in enumerate(t.ops) if "kho_radix_destroy_tree" in (o.caller or ""))
    assert kinds.index("KhoScratchArea") < kinds.index("KhoExtendScratch") == tree_free - 1
    assert next(o for o in t.observations if isinstance(o, NodeRanges)).ranges[0] == (0, 0x100000, 4 * G)
    assert len(next(o for o in t.observations if isinstance(o, ZoneRanges)).zones) == 3
    rep = validate(t)
    assert rep.ok, rep.summary()
    # the gigantic page lands in an extended block (not in kho_scratch[]), where the kernel put it
    assert rep.allocations_ok == rep.allocations == 4
    assert (rep.node_ranges_ok, rep.zone_ranges_ok) == (1, 1)


def test_a_block_busy_only_with_tree_pages_comes_from_the_listing() -> None:
    # block 6 shows as its own range, yet no reservation is in it: a page of the incoming radix tree
    ranges = [(0x100000, 4 * G), (4 * G, 5 * G), (5 * G, 6 * G), (6 * G, 7 * G), (7 * G, 8 * G),
              (8 * G, 0x205000000), (0x205000000, 0x236000000), (0x236000000, 0x240000000)]
    t = read_console_text(kernel2(ranges, [4 * G + 0x5000, 8 * G + 0x10000]), "k2.log")
    (ext,) = [o for o in t.ops if isinstance(o, KhoExtendScratch)]
    assert ext.busy == (4 * G, 6 * G, 8 * G) and "completed by the Early memory node ranges" in ext.inferred
    rep = validate(t)
    assert rep.ok, rep.summary()


def test_node_ranges_the_model_does_not_reproduce_are_a_mismatch() -> None:
    # the listing says block 5 is not scratch: nothing explains it (no reservation, no extra boundary)
    t = read_console_text(kernel2([*RANGES[:1], (4 * G, 0x205000000), *RANGES[4:]], [4 * G + 0x5000]), "k2.log")
    rep = validate(t)
    assert rep.node_ranges == 1 and rep.node_ranges_ok == 0
    assert any("Early memory node ranges" in m.what for m in rep.mismatches)


def test_zone_ranges_end_at_the_end_of_dram() -> None:
    text = kernel2(RANGES, [4 * G + 0x5000, 8 * G + 0x10000]).replace("0x000000023fffffff]\n", "0x000000027fffffff]\n")
    rep = validate(read_console_text(text, "k2.log"))
    assert rep.zone_ranges == 1 and rep.zone_ranges_ok == 0


def test_the_reservations_nid_and_flags_are_kept_and_checked() -> None:
    text = kernel2(RANGES, [4 * G + 0x5000, 8 * G + 0x10000])
    t = read_console_text(text, "k2.log")
    (huge,) = [o for o in t.ops if isinstance(o, Alloc) and o.api == "memblock_alloc_hugetlb"]
    assert (huge.res_nid, huge.res_flags) == (0, Flag.MEMBLOCK_RSRV_KERN | Flag.MEMBLOCK_RSRV_HUGETLB)
    # a kernel that printed plain RSRV_KERN on that page is not what the model does
    rep = validate(read_console_text(text.replace("nid=0 flags=a0", "nid=0 flags=20"), "k2.log"))
    assert rep.allocations_ok == rep.allocations - 1
    assert rep.first_mismatch is not None and "memblock_alloc_hugetlb reservation" in rep.first_mismatch.what


def test_resync_reserves_with_the_apis_flags_and_the_printed_nid() -> None:
    t = read_console_text(kernel2(RANGES, [4 * G + 0x5000, 8 * G + 0x10000]), "k2.log")
    # without the extension the model cannot place the page; validate then takes the kernel's address
    rep = validate(dataclasses.replace(t, ops=tuple(o for o in t.ops if not isinstance(o, KhoExtendScratch))))
    assert rep.allocations_ok == rep.allocations - 1
    assert rep.model is not None
    r = rep.model.reserved.search(0x1c0000000)
    assert r is not None and r.nid == 0
    huge = Flag.MEMBLOCK_RSRV_KERN | Flag.MEMBLOCK_RSRV_HUGETLB
    assert r.flags & huge == huge


def test_a_gigantic_page_across_two_zones_gets_no_tail_noinit() -> None:
    # 7.3 marks the tail NOINIT only for a page inside one zone; 7.2 marks every page
    one_zone = read_console_text(kernel2(RANGES, [4 * G + 0x5000]), "k2.log")
    crossing = kernel2(RANGES, [4 * G + 0x5000]).replace(
        "  Normal   [mem 0x0000000100000000-0x000000023fffffff]",
        "  Normal   [mem 0x0000000100000000-0x00000001dfffffff]\n"
        "[    0.100000]   Movable  [mem 0x00000001e0000000-0x000000023fffffff]")
    two_zones = read_console_text(crossing, "k2.log")

    def tail_marks(t):  # type: ignore[no-untyped-def]
        return [o for o in t.ops
                if isinstance(o, Mark) and o.flag == Flag.MEMBLOCK_RSRV_NOINIT and o.base == 0x1c0001000]

    assert len(tail_marks(one_zone)) == 1 and tail_marks(two_zones) == []
    as72 = read_console_text(crossing.replace("7.3.4-kho73", "7.2.13-kho72"), "k2.log")
    assert len(tail_marks(as72)) == 1


def test_preserve_log_takes_the_tree_pages_blocks_from_the_extension() -> None:
    from kho_replay.replay.kho.preserve import busy_blocks, parse_preserve

    ranges = [(0x100000, 4 * G), (4 * G, 5 * G), (5 * G, 6 * G), (6 * G, 7 * G), (7 * G, 8 * G),
              (8 * G, 0x205000000), (0x205000000, 0x236000000), (0x236000000, 0x240000000)]
    t = read_console_text(kernel2(ranges, [4 * G + 0x5000, 8 * G + 0x10000]), "k2.log")
    pset = parse_preserve("log", trace=t)
    assert pset.tree_pages == (6 * G,) and busy_blocks(pset) == [4, 6, 8]
