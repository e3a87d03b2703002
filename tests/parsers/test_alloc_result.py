# SPDX-License-Identifier: GPL-2.0-only
"""An allocation's result is the reservation the kernel guarantees, whatever caller a build prints."""

from __future__ import annotations

from kho_replay.parsers.console import read_console_text
from kho_replay.replay.ops import FAILED, Alloc, Reserve

VERSION_66 = ("Linux version 6.6.15-amd64 (debian-kernel@lists.debian.org) (x86_64-linux-gnu-gcc-13 (Debian "
              "13.2.0-13) 13.2.0, GNU ld (GNU Binutils for Debian) 2.42) #1 SMP PREEMPT_DYNAMIC Debian 6.6.15-2")
ADD = "memblock_add: [0x0000000000100000-0x000000013fffffff] e820__memblock_setup+0x57/0xc0"


def parse(*body: str) -> tuple[Alloc, ...]:
    text = "".join(f"[    0.{i:06d}] {b}\n" for i, b in enumerate((VERSION_66, ADD, *body)))
    return tuple(o for o in read_console_text(text, "t.log").ops if isinstance(o, Alloc))


def test_inlined_reserve_prints_the_allocators_caller() -> None:
    # gcc 13 inlines memblock_reserve() into memblock_alloc_range_nid(): _RET_IP_ is one level up
    (a,) = parse("memblock_alloc_try_nid: 4096 bytes align=0x1000 nid=-1 from=0x0000000000000000 "
                 "max_addr=0x0000000000000000 sparse_init+0x2e/0x1f0",
                 "memblock_reserve: [0x000000013ffff000-0x000000013fffffff] memblock_alloc_internal+0x4e/0xc0")
    assert a.expect == 0x13ffff000
    (b,) = parse("memblock_phys_alloc_range: 2097152 bytes align=0x200000 from=0x0000000000100000 "
                 "max_addr=0x0000000140000000 init_mem_mapping+0x209/0x390",
                 "memblock_reserve: [0x000000013fe00000-0x000000013fffffff] memblock_phys_alloc_range+0x5e/0x70")
    assert b.expect == 0x13fe00000


def test_a_reservation_that_breaks_the_guarantee_is_not_the_result() -> None:
    # misaligned for the request: the allocation failed and this is the boot code's own reservation
    ops = parse("memblock_alloc_try_nid: 4096 bytes align=0x1000 nid=-1 from=0x0000000000000000 "
                "max_addr=0x0000000000000000 sparse_init+0x2e/0x1f0",
                "memblock_reserve: [0x000000013ffff800-0x00000001400007ff] setup_arch+0x40/0x500")
    assert ops[0].expect == FAILED
    # above max_addr: not the result either
    ops = parse("memblock_phys_alloc_range: 4096 bytes align=0x1000 from=0x0000000000000000 "
                "max_addr=0x0000000000100000 reserve_real_mode+0x85/0xe0",
                "memblock_reserve: [0x000000013ffff000-0x000000013fffffff] reserve_real_mode+0xab/0xe0")
    assert ops[0].expect == FAILED


def test_node_data_is_confirmed_by_its_line_through_a_tail_call() -> None:
    # memblock_phys_alloc_try_nid() prints no API line; a tail call makes the reserve print numa_init
    text = "".join(f"[    0.{i:06d}] {b}\n" for i, b in enumerate((
        VERSION_66, ADD,
        "memblock_reserve: [0x000000013ffd5000-0x000000013fffffff] numa_init+0x365/0x4a0",
        "NODE_DATA(0) allocated [mem 0x13ffd5000-0x13fffffff]")))
    ops = read_console_text(text, "t.log").ops
    (a,) = [o for o in ops if isinstance(o, Alloc)]
    assert a.api == "memblock_phys_alloc_try_nid" and a.expect == 0x13ffd5000 and a.nid == 0
    assert not any(isinstance(o, Reserve) and o.base == 0x13ffd5000 for o in ops)
