# SPDX-License-Identifier: GPL-2.0-only
"""Property: ops printed the way 7.2's memblock_dbg() prints them read back as the same ops."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kho_replay.parsers.console import read_console_text
from kho_replay.replay.flags import Flag
from kho_replay.replay.ops import FAILED, Add, Alloc, Free, Op, Remove, Reserve

from .conftest import stamped

MASK = (1 << 64) - 1
# callers no per-arch inference rule listens to
CALLERS = st.sampled_from(["setup_arch+0x848/0xc10", "acpi_table_upgrade+0x1/0x2", "some_driver+0x10/0x40",
                           "early_init_fdt_scan_reserved_mem+0x6c/0x120"])
API_CALLERS = st.sampled_from(["__memblock_alloc_or_panic+0x24/0x50", "sparse_init_nid+0x2c/0x180",
                               "swiotlb_init_remap+0xec/0x2a8"])
addr = st.integers(0, MASK)
size = st.integers(0, MASK)


def _rng(base: int, size: int) -> str:
    return f"[{base:#018x}-{(base + size - 1) & MASK:#018x}]"


@st.composite
def op_and_lines(draw: st.DrawFn) -> tuple[Op, list[str]]:
    kind = draw(st.sampled_from(["add", "remove", "reserve", "free", "alloc"]))
    b, s = draw(addr), draw(size)
    if kind == "alloc":
        s = draw(st.integers(0, 1 << 40))
        api = draw(st.sampled_from(["memblock_alloc_try_nid", "memblock_alloc_try_nid_raw",
                                    "memblock_alloc_exact_nid_raw"]))
        align, nid = 1 << draw(st.integers(0, 30)), draw(st.integers(-1, 7))
        lo, hi, c = draw(addr), draw(addr), draw(API_CALLERS)
        expect = draw(st.just(FAILED) | addr)
        lines = [f"{api}: {s} bytes align={align:#x} nid={nid} from={lo:#018x} max_addr={hi:#018x} {c}"]
        if expect != FAILED:
            lines.append(f"__memblock_reserve: {_rng(expect, s)} nid={nid} flags=20 "
                         "memblock_alloc_range_nid+0xe9/0x190")
        printed = {} if expect == FAILED else {"res_nid": nid, "res_flags": Flag.MEMBLOCK_RSRV_KERN}
        return Alloc(api, s, align=align, nid=nid, min_addr=lo, max_addr=hi, expect=expect, caller=c,
                     **printed), lines
    c = draw(CALLERS)
    if kind == "add":
        return Add(b, s, caller=c), [f"memblock_add: {_rng(b, s)} {c}"]
    if kind == "remove":
        return Remove(b, s, caller=c), [f"memblock_remove: {_rng(b, s)} {c}"]
    if kind == "free":
        return Free(b, s, caller=c), [f"memblock_phys_free: {_rng(b, s)} {c}"]
    nid, flags = draw(st.integers(-1, 7)), Flag(draw(st.integers(0, 0xFF)))
    return Reserve(b, s, nid, flags, caller=c), [f"__memblock_reserve: {_rng(b, s)} nid={nid} "
                                                 f"flags={int(flags):x} {c}"]


@settings(max_examples=200, deadline=None)
@given(st.lists(op_and_lines(), min_size=1, max_size=25))
def test_printed_ops_read_back(items: list[tuple[Op, list[str]]]) -> None:
    lines = [ln for _, lns in items for ln in lns]
    t = read_console_text(stamped(*lines), "prop.log")
    assert t.ops == tuple(op for op, _ in items)
    assert t.skipped == ()
