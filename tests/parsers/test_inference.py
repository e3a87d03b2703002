# SPDX-License-Identifier: GPL-2.0-only
"""What the log does not show: seeded state, hidden calls, rebuilt requests, boot selection, doublings.

Each expectation is the kernel source's behaviour (cited), checked on bundled real boots.
"""

from __future__ import annotations

from kho_replay.parsers import load
from kho_replay.parsers.console import read_console_text
from kho_replay.replay.compare.validate import validate
from kho_replay.replay.flags import Flag
from kho_replay.replay.ops import (
    Add,
    Alloc,
    AllowResize,
    Clear,
    KhoScratchOnly,
    Mark,
    Phase,
    Reserve,
    SetBottomUp,
    SetCurrentLimit,
    SetNode,
    TrimMemory,
)

from .conftest import TRACES, VERSION_61, stamped

X86 = TRACES / "x86_64-debian-7.2.13-4G" / "console.log"
X86_KHO2 = TRACES / "x86_64-kho-7.2.13-C-12G-hugepages1G2-kho_scratch3G" / "console-kernel2.log.gz"
ARM_KHO = TRACES / "arm64-kho-7.2.13-E-numa2-12G-hugepages1G-pernode-kho_scratch"


def kinds(ops):
    return [type(o) for o in ops]


def test_x86_e820_setup_hidden_calls_in_kernel_order() -> None:
    ops = load(X86).ops
    inferred = [o for o in ops if o.inferred]
    # arch/x86/kernel/e820.c e820__memblock_setup(): limit, resize, adds, mark [0, 1M), trim
    first = kinds(inferred[:])
    i = first.index(SetCurrentLimit)
    assert first[i:i + 2] == [SetCurrentLimit, AllowResize]
    assert inferred[i].addr == 0x100000
    mark = next(o for o in inferred if isinstance(o, Mark))
    assert (mark.flag, mark.base, mark.size) == (Flag.MEMBLOCK_KHO_SCRATCH, 0, 1 << 20)
    trim = next(o for o in inferred if isinstance(o, TrimMemory))
    assert trim.align == 4096 and ops.index(trim) == ops.index(mark) + 1
    # arch/x86/realmode/init.c reserve_real_mode(): reserve(0, 1M) then clear the scratch mark
    clear = next(o for o in ops if isinstance(o, Clear))
    before = ops[ops.index(clear) - 1]
    assert isinstance(before, Reserve) and before.caller.startswith("reserve_real_mode+")


def test_x86_limit_raised_after_init_mem_mapping() -> None:
    ops = load(X86).ops
    limits = [o for o in ops if isinstance(o, SetCurrentLimit)]
    assert [hex(o.addr) for o in limits] == ["0x100000", "0x140000000"]
    k = ops.index(limits[1])
    assert ops[k - 1].caller.startswith("alloc_low_pages+")


def test_kho_second_kernel_seeds_scratch_from_first_dump() -> None:
    t = load(X86_KHO2)
    seeds = [o for o in t.ops if o.inferred and "first MEMBLOCK configuration" in o.inferred]
    marks = [o for o in seeds if isinstance(o, Mark)]
    assert marks and all(m.flag == Flag.MEMBLOCK_KHO_SCRATCH for m in marks)
    assert any(isinstance(o, KhoScratchOnly) and o.on for o in t.ops)
    off = [o for o in t.ops if isinstance(o, KhoScratchOnly) and not o.on]
    assert len(off) == 1 and "memblock_free_all" in off[0].inferred
    assert dict(t.context.facts)["kho_boot"].startswith("second kernel")


def test_kho_preserved_memory_is_marked_noinit() -> None:
    ops = load(X86_KHO2).ops
    preserved = [i for i, o in enumerate(ops) if isinstance(o, Reserve)
                 and (o.caller or "").startswith("kho_preserved_memory_reserve+")]
    assert preserved
    for i in preserved:
        mark = ops[i + 1]
        assert isinstance(mark, Mark) and mark.flag == Flag.MEMBLOCK_RSRV_NOINIT
        assert (mark.base, mark.size) == (ops[i].base, ops[i].size)


def test_first_kernel_scratch_per_node_is_rebuilt() -> None:
    t = load(ARM_KHO / "console-kernel1.log.gz")
    scratch = [o for o in t.ops if isinstance(o, Alloc) and o.inferred and "kho_reserve_scratch" in o.inferred]
    assert [o.nid for o in scratch] == [0, 1] and all(o.exact for o in scratch)
    assert any(isinstance(o, Phase) and o.name == "kho_reserve_scratch" for o in t.ops)


def test_cma_bottom_up_try_above_4g() -> None:
    t = load(TRACES / "x86_64-debian-7.2.13-8G-crashkernel256M-cma128M-hugepages1G2" / "console.log")
    ops = list(t.ops)
    (cma,) = [o for o in ops if isinstance(o, Alloc) and o.inferred and "cma" in o.inferred]
    k = ops.index(cma)
    assert isinstance(ops[k - 1], SetBottomUp) and ops[k - 1].on
    assert isinstance(ops[k + 1], SetBottomUp) and not ops[k + 1].on
    assert cma.min_addr == 1 << 32 and cma.expect == 1 << 32


def test_numa_node_ids_set_before_node_data() -> None:
    t = load(TRACES / "x86_64-debian-7.2.13-numa2-8G-hugepages1G-pernode" / "console.log")
    ops = list(t.ops)
    nd = next(o for o in ops if isinstance(o, Alloc) and o.api == "memblock_phys_alloc_try_nid")
    before = [o for o in ops[: ops.index(nd)] if isinstance(o, SetNode)]
    memory = [(o.nid, o.base, o.base + o.size) for o in before if not o.reserved and o.nid >= 0]
    assert memory == [(0, 0x1000, 0x140000000), (1, 0x140000000, 0x240000000)]
    assert t.context.nodes == ((0, 0x1000, 0x140000000), (1, 0x140000000, 0x240000000))


def test_arm64_log_starts_late_and_is_seeded() -> None:
    t = load(TRACES / "arm64-debian-7.2.13-4G" / "console.log.gz")
    (mem,) = [o for o in t.ops if isinstance(o, Add) and o.inferred]
    assert (mem.base, mem.size) == (0x40000000, 4 << 30)
    assert t.ops[0] is mem


def test_combined_log_boot_selection_matches_split_logs() -> None:
    combined = TRACES / "x86_64-kho-7.2.13-C-12G-hugepages1G2-kho_scratch3G"
    whole = combined.parent / "arm64-kho-7.2.13-E-numa2-12G-hugepages1G-pernode-kho_scratch" / "console.log.gz"
    second = load(whole, boot=2)
    assert second.ops == load(ARM_KHO / "console-kernel2.log.gz").ops
    assert load(whole, boot=-1).ops == second.ops


def test_era_mismatch_is_noted_not_dropped() -> None:
    line = "__memblock_reserve: [0x00000000000f5ba0-0x00000000000f5baf] nid=-1 flags=0 smp_scan_config+0xb1/0x110"
    t = read_console_text(stamped(line, version=VERSION_61), "t.log")
    assert len(t.ops) == 1
    assert "era_mismatch" in dict(t.context.facts)


def _doubling_log(doubled_at: str) -> str:
    # x86 7.2: 128 reserved slots; memory only below 1M and above 256M, limit ISA_END_ADDRESS (inferred).
    lines = [
        "memblock_add: [0x0000000000001000-0x000000000009efff] e820__memblock_setup+0x94/0xc0",
        "memblock_add: [0x0000000010000000-0x000000001fffffff] e820__memblock_setup+0x94/0xc0",
    ]
    for i in range(129):
        b = 0x10000000 + i * 0x2000
        lines.append(f"__memblock_reserve: [{b:#018x}-{b + 0xfff:#018x}] nid=-1 flags=0 test_caller+0x1/0x2")
    lines += [
        f"memblock: reserved is doubled to 256 at [{doubled_at}]",
        "__memblock_reserve: [0x000000000009d000-0x000000000009efff] nid=-1 flags=20 "
        "memblock_double_array+0x2b5/0x2f0",
    ]
    return stamped(*lines)


def test_doubling_reproduced() -> None:
    # memblock_double_array(): 256 * 24 bytes = 6 KiB -> 8 KiB page aligned; nothing is free above the
    # pending region below the 1 MiB limit, so the fallback takes the top 8 KiB of [0x1000, 0x9f000)
    t = read_console_text(_doubling_log("0x000000000009d000-0x000000000009e7ff"), "t.log")
    report = validate(t)
    assert (report.doublings_ok, report.doublings) == (1, 1), report.summary()


def test_doubling_at_a_wrong_address_is_reported() -> None:
    t = read_console_text(_doubling_log("0x0000000000010000-0x00000000000117ff"), "t.log")
    report = validate(t)
    assert report.doublings_ok == 0 and report.first_mismatch.what == "array doubling"


def test_movable_node_bottom_up_until_numa_init() -> None:
    t = read_console_text(stamped(
        "Command line: console=ttyS0 memblock=debug movable_node",
        "memblock_add: [0x0000000000100000-0x00000000bffdffff] e820__memblock_setup+0x94/0xc0",
        "No NUMA configuration found",
        "__memblock_reserve: [0x00000000bffd2f80-0x00000000bffdffff] nid=0 flags=20 "
        "memblock_alloc_range_nid+0xe9/0x190",
        "NODE_DATA(0) allocated [mem 0xbffd2f80-0xbffdffff]",
        "Initmem setup node 0 [mem 0x0000000000100000-0x00000000bffdffff]",
    ), "t.log")
    names = [(type(o).__name__, getattr(o, "on", None)) for o in t.ops]
    # arch/x86/kernel/e820.c: bottom-up before the ISA limit; mm/numa_memblks.c: back to top-down
    assert names.index(("MovableNode", True)) < names.index(("SetBottomUp", True)) < names.index(
        ("SetCurrentLimit", None))
    assert names.index(("SetBottomUp", False)) < names.index(("Alloc", None))
