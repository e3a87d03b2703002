# SPDX-License-Identifier: GPL-2.0-only
"""CMA's message forms: cma= (``Reserved N MiB at``) and hugetlb_cma (``Reserved N MiB in K range(s)``)."""

from __future__ import annotations

from kho_replay.parsers.console import read_console_text
from kho_replay.replay.compare.validate import validate
from kho_replay.replay.ops import FAILED, Alloc, SetBottomUp

VERSION = "Linux version 7.3.4-kho73 (root@vm) (gcc (Debian 12.2.0-14+deb12u1) 12.2.0) #1 SMP PREEMPT_DYNAMIC"
G = 1 << 30
RSV = "memblock_alloc_range_nid+0xcf/0x190"


def boot(*cma_lines: str) -> str:
    body = [
        VERSION,
        "BIOS-e820: [mem 0x0000000000100000-0x000000023fffffff]  System RAM",
        "memblock_add: [0x0000000000100000-0x000000023fffffff] e820__memblock_setup+0x57/0xc0",
        "memblock_phys_alloc_range: 2097152 bytes align=0x200000 from=0x0000000000100000 "
        "max_addr=0x0000000240000000 init_mem_mapping+0x209/0x390",
        "__memblock_reserve: [0x000000023fe00000-0x000000023fffffff] nid=-1 flags=20 " + RSV,
        "memblock_phys_free: [0x000000023fe00000-0x000000023fffffff] init_mem_mapping+0x229/0x390",
        "No NUMA configuration found",
        "Faking a node at [mem 0x0000000000000000-0x000000023fffffff]",
        "__memblock_reserve: [0x000000023ffd5000-0x000000023fffffff] nid=0 flags=20 " + RSV,
        "NODE_DATA(0) allocated [mem 0x23ffd5000-0x23fffffff]",
        # something already sits at 4 GiB
        "__memblock_reserve: [0x0000000100000000-0x00000001001fffff] nid=-1 flags=0 setup_arch+0x40/0x500",
        *cma_lines,
    ]
    return "".join(f"[    0.{i:06d}] {b}\n" for i, b in enumerate(body))


def test_hugetlb_cma_aligns_to_the_gigantic_page_bottom_up_from_4g() -> None:
    t = read_console_text(boot(
        "hugetlb_cma: reserve 2048 MiB, up to 2048 MiB per node",
        "__memblock_reserve: [0x0000000140000000-0x00000001bfffffff] nid=0 flags=20 " + RSV,
        "cma: Reserved 2048 MiB in 1 range"), "t.log")
    (a,) = [o for o in t.ops if isinstance(o, Alloc) and o.size == 2 * G]
    assert (a.align, a.min_addr, a.nid, a.exact, a.expect) == (G, 4 * G, 0, True, 0x140000000)
    i = t.ops.index(a)
    assert t.ops[i - 1] == SetBottomUp(True, inferred=t.ops[i - 1].inferred) and isinstance(t.ops[i + 1], SetBottomUp)
    rep = validate(t)
    assert rep.ok, rep.summary()


def test_cma_below_4g_tries_bottom_up_first_and_falls_back() -> None:
    # cma=: CMA's minimum alignment; a result below 4 GiB means the bottom-up try above 4 GiB failed
    t = read_console_text(boot(
        "__memblock_reserve: [0x00000000b8000000-0x00000000bfffffff] nid=-1 flags=20 " + RSV,
        "cma: Reserved 128 MiB at 0x00000000b8000000"), "t.log")
    tries = [o for o in t.ops if isinstance(o, Alloc) and o.size == 128 << 20]
    assert [(o.min_addr, o.align, o.expect) for o in tries] == [(4 * G, 2 << 20, FAILED), (0, 2 << 20, 0xb8000000)]
