# SPDX-License-Identifier: GPL-2.0-only
"""Hypothesis properties over random op streams, checked after every op.

Tables (mm/memblock.c invariants): sorted, disjoint, ``total_size`` exact, and
maximally merged -- no two adjacent regions with the same nid and flags
(except memory after ``memblock_trim_memory()``/``memblock_cap_memory_range()``,
which shrink and remove without merging).

Allocations: inside ``[PAGE_SIZE, effective max)`` and inside
``[max(min, PAGE_SIZE), ...)`` unless the virt API dropped ``min_addr``; aligned;
inside one memory region; not overlapping any reservation that existed when
it was made; never in NOMAP/DRIVER_MANAGED memory, never off-node with
exact_nid, never outside KHO_SCRATCH in scratch-only mode, never in HOTPLUG
memory with movable_node; and then reserved.

The allocator's gap-index search must equal the kernel's literal two-table
walk also on dense layouts with long runs of too-small or misaligned gaps,
which the index passes over by class.
"""

from __future__ import annotations

import itertools
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kho_replay.replay.errors import KernelPanic
from kho_replay.replay.flags import Flag
from kho_replay.replay.memblock.engine import Memblock, round_up
from kho_replay.replay.memblock.regions import RegionTable
from kho_replay.replay.memblock.search import find_range_literal
from kho_replay.replay.ops import (
    MEMBLOCK_ALLOC_ANYWHERE,
    NUMA_NO_NODE,
    Add,
    Alloc,
    AllowResize,
    CapMemoryRange,
    Clear,
    EnforceMemoryLimit,
    Free,
    KhoScratchOnly,
    Mark,
    MirroredKernelcore,
    MovableNode,
    Phase,
    Remove,
    Reserve,
    ReserveKern,
    SetBottomUp,
    SetCurrentLimit,
    SetNode,
    TrimMemory,
)

PAGE = 4096
SMP = 32
K = 1 << 10
M = 1 << 20
BASE = 1 << 30
SPAN = 16 * M

F = Flag
NEVER = F.MEMBLOCK_NOMAP | F.MEMBLOCK_DRIVER_MANAGED

# ------------------------------------------------------------------ op strategies

addr = st.integers(0, SPAN // K).map(lambda x: BASE + x * K)
small = st.integers(1, 256).map(lambda x: x * K)
size_any = st.one_of(small, st.integers(1, 64).map(lambda x: x * 64), st.sampled_from([1, 3, 24, 2 * M]))
nid = st.sampled_from([0, 0, 1, 2, NUMA_NO_NODE])
pow2 = st.sampled_from([0, 1, 8, 32, 64, 4096, 64 * K, 2 * M])
mem_flags = st.sampled_from([0, 0, 0, F.MEMBLOCK_HOTPLUG, F.MEMBLOCK_NOMAP, F.MEMBLOCK_KHO_SCRATCH,
                             F.MEMBLOCK_DRIVER_MANAGED, F.MEMBLOCK_MIRROR])
mark_flags = st.sampled_from([F.MEMBLOCK_HOTPLUG, F.MEMBLOCK_MIRROR, F.MEMBLOCK_NOMAP, F.MEMBLOCK_KHO_SCRATCH,
                              F.MEMBLOCK_DRIVER_MANAGED, F.MEMBLOCK_RSRV_NOINIT, F.MEMBLOCK_RSRV_KERN])
APIS = [
    "memblock_phys_alloc_range", "memblock_phys_alloc", "memblock_phys_alloc_try_nid",
    "memblock_alloc_range_nid", "memblock_alloc_try_nid", "memblock_alloc_try_nid_raw",
    "memblock_alloc_exact_nid_raw", "memblock_alloc", "memblock_alloc_raw", "memblock_alloc_from",
    "memblock_alloc_low", "memblock_alloc_node", "memblock_alloc_hugetlb",
]
bound = st.one_of(st.just(0), st.just(1), st.just(MEMBLOCK_ALLOC_ANYWHERE), addr)


@st.composite
def alloc_op(draw):
    api = draw(st.sampled_from(APIS))
    if api == "memblock_alloc_hugetlb":
        size = draw(st.sampled_from([4 * K, 64 * K, 2 * M]))
        return Alloc(api, size, nid=draw(nid), exact=draw(st.booleans()))
    return Alloc(api, draw(size_any), align=draw(pow2), nid=draw(nid), min_addr=draw(st.one_of(st.just(0), addr)),
                 max_addr=draw(bound), exact=draw(st.booleans()))


@st.composite
def spray(draw):
    """Many small scattered reservations (to cross 128 regions and double arrays)."""
    n = draw(st.integers(10, 70))
    start = draw(addr)
    step = draw(st.sampled_from([8 * K, 16 * K, 3 * K]))
    kern = draw(st.booleans())
    cls = ReserveKern if kern else Reserve
    return [cls(start + i * step, K) for i in range(n)]


single = st.one_of(
    st.builds(Add, addr, small.map(lambda s: s * 8), st.one_of(st.none(), nid), mem_flags),
    st.builds(Remove, addr, small),
    st.builds(Reserve, addr, size_any),
    st.builds(Reserve, addr, size_any, nid, st.sampled_from([F(0), F.MEMBLOCK_RSRV_KERN])),
    st.builds(ReserveKern, addr, size_any),
    st.builds(Free, addr, size_any),
    st.builds(Mark, mark_flags, addr, small),
    st.builds(Clear, mark_flags, addr, small),
    st.builds(SetNode, addr, small, st.sampled_from([0, 1, 2]), st.booleans()),
    st.builds(SetCurrentLimit, st.one_of(addr, st.just(MEMBLOCK_ALLOC_ANYWHERE))),
    st.builds(SetBottomUp, st.booleans()),
    st.builds(KhoScratchOnly, st.booleans()),
    st.builds(MovableNode, st.booleans()),
    st.builds(MirroredKernelcore, st.booleans()),
    st.builds(TrimMemory, st.sampled_from([PAGE, 64 * K])),
    st.builds(EnforceMemoryLimit, st.integers(0, SPAN // M).map(lambda x: x * M)),
    st.builds(CapMemoryRange, addr, st.integers(1, SPAN // M).map(lambda x: x * M)),
    st.builds(Phase, st.just("free_all")),
    alloc_op(), alloc_op(), alloc_op(), alloc_op(),
)


@st.composite
def streams(draw):
    ops = [AllowResize(), Add(BASE, SPAN // 2, 0), Add(BASE + SPAN // 2, SPAN // 2, 1)]
    for _ in range(draw(st.integers(1, 30))):
        if draw(st.integers(0, 11)) == 0:
            ops += draw(spray())
        else:
            ops.append(draw(single))
    return ops


# ------------------------------------------------------------------ checks

def _check_table(t: RegionTable, merged: bool) -> None:
    t.check()
    rs = list(t)
    for a, b in itertools.pairwise(rs):
        assert a.end <= b.base
        if merged:
            assert not (a.end == b.base and a.nid == b.nid and a.flags == b.flags), (t.name, a, b)
    assert t.cnt == (len(rs) if rs else t.empty_cnt)
    assert len(rs) <= t.max


def _effective_max(mb: Memblock, op: Alloc) -> int:
    api = op.api
    hi = op.max_addr if op.max_addr is not None else 0
    if api in ("memblock_phys_alloc_range", "memblock_alloc_range_nid"):
        pass
    elif api in ("memblock_phys_alloc", "memblock_phys_alloc_try_nid", "memblock_alloc_hugetlb",
                 "memblock_alloc", "memblock_alloc_raw", "memblock_alloc_from", "memblock_alloc_node"):
        hi = 0
    elif api == "memblock_alloc_low":
        hi = min(0xFFFFFFFF, mb.current_limit)
    else:  # alloc_try_nid family: memblock_alloc_internal() clamps to current_limit
        hi = min(hi, mb.current_limit)
    if hi in (0, 1):
        hi = mb.current_limit
    return hi


def _min_addr(op: Alloc) -> int:
    if op.api in ("memblock_phys_alloc_range", "memblock_alloc_range_nid", "memblock_alloc_try_nid",
                  "memblock_alloc_try_nid_raw", "memblock_alloc_exact_nid_raw", "memblock_alloc_from"):
        return op.min_addr or 0
    return 0


def _check_alloc(mb: Memblock, op: Alloc, got: int, mem_before, res_before, state) -> None:
    size = op.size
    align = size if op.api == "memblock_alloc_hugetlb" else op.align or SMP
    assert got % align == 0
    hi = _effective_max(mb, op)
    lo = max(_min_addr(op), PAGE)
    assert got >= PAGE and got + size <= max(hi, PAGE)
    if got < lo:
        # only the virt API retries without min_addr
        assert op.api in ("memblock_alloc_try_nid", "memblock_alloc_try_nid_raw",
                          "memblock_alloc_exact_nid_raw", "memblock_alloc_from")
    # inside one memory region that the search may use
    (m,) = [r for r in mem_before if r.base <= got < r.end]
    assert got + size <= m.end
    assert not m.flags & NEVER
    if state["scratch_only"]:
        assert m.flags & F.MEMBLOCK_KHO_SCRATCH
    if state["movable_node"]:
        assert not m.flags & F.MEMBLOCK_HOTPLUG
    exact = op.exact if op.api in ("memblock_alloc_range_nid", "memblock_alloc_hugetlb") else (
        op.api == "memblock_alloc_exact_nid_raw")
    n = op.nid if op.nid is not None else NUMA_NO_NODE
    if exact and 0 <= n < mb.max_numnodes and op.api in (
            "memblock_alloc_range_nid", "memblock_alloc_hugetlb", "memblock_alloc_exact_nid_raw"):
        assert m.nid == n
    if op.api == "memblock_alloc_hugetlb":
        assert not mb.kho_scratch_overlap(got, size)
    # free when it was chosen
    for r in res_before:
        assert not (r.base < got + size and got < r.end), (hex(got), r)
    # and reserved now
    r = mb.reserved.search(got)
    assert r is not None and r.base <= got and got + size <= r.end


def _replay_checked(ops) -> Memblock:
    mb = Memblock.for_kernel("7.3", "harness")
    mem_merged = True
    for i, op in enumerate(ops):
        mb.op_index = i
        mem_before = list(mb.memory)
        res_before = list(mb.reserved)
        state = {"scratch_only": mb.kho_scratch_only, "movable_node": mb.movable_node}
        try:
            got = mb.apply(op)
        except KernelPanic:
            break
        if isinstance(op, TrimMemory | CapMemoryRange):
            mem_merged = False
        _check_table(mb.memory, mem_merged)
        _check_table(mb.reserved, True)
        if isinstance(op, Alloc) and got is not None:
            _check_alloc(mb, op, got, mem_before, res_before, state)
    return mb


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_random_streams_keep_invariants(ops):
    _replay_checked(ops)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.booleans())
def test_random_streams_with_mirror_and_scratch(ops, bottom_up):
    """Same, with mirror and KHO scratch present from the start."""
    pre = [AllowResize(), SetBottomUp(bottom_up), MirroredKernelcore(True), Add(BASE, SPAN // 2, 0),
           Add(BASE + SPAN // 2, SPAN // 2, 1), Mark(F.MEMBLOCK_MIRROR, BASE + M, 2 * M),
           Mark(F.MEMBLOCK_KHO_SCRATCH, BASE + 8 * M, 4 * M), KhoScratchOnly(True)]
    mb = _replay_checked(pre + ops[3:])
    mb.memory.check()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(120, 200), st.sampled_from([3 * K, 8 * K]), st.booleans(), streams())
def test_random_streams_past_128_regions(n, step, bottom_up, ops):
    """Start with enough scattered reservations to double the reserved array mid-stream."""
    pre = [AllowResize(), SetBottomUp(bottom_up), Add(BASE, SPAN // 2, 0), Add(BASE + SPAN // 2, SPAN // 2, 1)]
    pre += [Reserve(BASE + SPAN // 4 + i * step, K) for i in range(n)]
    mb = _replay_checked(pre + ops[3:])
    assert n < 129 or mb.doublings  # the 129th region doubled the array (allow_resize was on)


# ------------------------------------------------------------------ fast search == literal walk

def literal_find(mb: Memblock, size: int, align: int, start: int, end: int, nid: int, flags: int) -> int | None:
    """The kernel's search over the literal __next_mem_range[_rev]() walk, clamps and all."""
    if end in (0, 1):
        end = mb.current_limit
    start = max(start, PAGE)
    end = max(start, end)
    return find_range_literal(mb.memory, mb.reserved, lambda m: mb.should_skip_region(m, nid, flags),
                              start, end, size, align, mb.bottom_up)


@st.composite
def dense_layouts(draw):
    """Memory cut into a few node regions; reserved in a dense comb whose teeth leave
    mostly too-small gaps (8..1024 bytes), with a few larger holes sprinkled in."""
    mb = Memblock.for_kernel("7.3", "harness")
    mb.allow_resize()
    nodes = draw(st.integers(1, 3))
    per = 512 * K
    for n in range(nodes):
        mb.add_node(BASE + n * per, per, n, draw(st.sampled_from([0, 0, F.MEMBLOCK_KHO_SCRATCH])))
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))
    pos = BASE + rnd.randrange(0, 64) * 64
    top = BASE + nodes * per
    kern = draw(st.booleans())
    big = draw(st.sampled_from([0.0, 0.02, 0.1]))
    while pos < top:
        tooth = rnd.choice([1024, 2048, 4000, 4096])
        small_gap = rnd.random() >= big
        gap = rnd.randrange(1, 129) * 8 if small_gap else rnd.choice([4096 + 8, 8192, 3 * 4096 + 24])
        if kern:
            mb.reserve_kern(pos, tooth)
        else:
            mb.reserve(pos, tooth)
        pos += tooth + gap
    mb.bottom_up = draw(st.booleans())
    return mb


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    mb=dense_layouts(),
    reqs=st.lists(
        st.tuples(
            st.sampled_from([512, 1024, 1100, 2048, 4096, 4100, 8192, 12 * K]),
            st.sampled_from([1, 8, 32, 4096, 8192]),
            st.one_of(st.just(0), st.integers(0, 2 * M // 64).map(lambda x: BASE + x * 64)),
            st.one_of(st.just(0), st.integers(0, 2 * M // 64).map(lambda x: BASE + x * 64)),
            st.sampled_from([NUMA_NO_NODE, 0, 1, 2]),
            st.sampled_from([0, int(F.MEMBLOCK_KHO_SCRATCH)]),
        ),
        min_size=1,
        max_size=12,
    ),
)
def test_fast_search_equals_literal_walk_on_dense_layouts(mb, reqs):
    for size, align, start, end, n, flags in reqs:
        want = literal_find(mb, size, align, start, end, n, flags)
        assert mb.find_in_range_node(size, align, start, end, n, flags) == want
        if want is not None:
            mb.reserve(want, size)  # keep the layout changing between requests
    mb.reserved.check()


def _comb(bottom_up: bool, n_small: int):
    """A big hole at one end, then n_small 32-byte gaps, then nothing free."""
    mb = Memblock.for_kernel("7.3", "harness")
    mb.allow_resize()
    mb.bottom_up = bottom_up
    mb.add(BASE, M)
    if bottom_up:
        mb.reserve(BASE, 64 * K)
        first = BASE + 64 * K
        for i in range(n_small):
            mb.reserve(first + i * K, K - 32)
        hole = first + n_small * K
        mb.reserve(hole + 64 * K, BASE + M - (hole + 64 * K))
        return mb, hole
    first = BASE + 64 * K
    for i in range(n_small):
        mb.reserve(first + i * K, K - 32)
    mb.reserve(first + n_small * K - 32, BASE + M - (first + n_small * K - 32))
    return mb, BASE


def test_indexed_search_top_down_skips_long_run_of_small_gaps():
    for n in (5, 12, 13, 50, 120):
        mb, hole = _comb(False, n)
        assert mb.find_in_range_node(4096, 4096, 0, MEMBLOCK_ALLOC_ANYWHERE) == hole + 60 * K
        assert literal_find(mb, 4096, 4096, 0, MEMBLOCK_ALLOC_ANYWHERE, NUMA_NO_NODE, 0) == hole + 60 * K


def test_indexed_search_bottom_up_skips_long_run_of_small_gaps():
    for n in (5, 12, 13, 50, 120):
        mb, hole = _comb(True, n)
        got = mb.find_in_range_node(4096, 4096, 0, MEMBLOCK_ALLOC_ANYWHERE)
        assert got == round_up(hole - 32, 4096)
        assert got == literal_find(mb, 4096, 4096, 0, MEMBLOCK_ALLOC_ANYWHERE, NUMA_NO_NODE, 0)


def test_indexed_search_respects_alignment_in_big_enough_gaps():
    """Gaps of 4096 + 8 bytes that never contain an aligned 4 KiB block: all skipped."""
    mb = Memblock.for_kernel("7.3", "harness")
    mb.allow_resize()
    mb.add(BASE, 4 * M)
    mb.reserve(BASE, 8)
    pos = BASE + 8
    for _ in range(40):
        # gap [pos, pos + 4104) straddles a page boundary without containing a full aligned page
        pos += 4096 + 8
        mb.reserve(pos, 4096 - 8 + 4096)
        pos += 4096 - 8 + 4096
    mb.reserve(pos, BASE + 4 * M - pos)
    assert mb.find_in_range_node(4096, 4096, 0, MEMBLOCK_ALLOC_ANYWHERE) == literal_find(
        mb, 4096, 4096, 0, MEMBLOCK_ALLOC_ANYWHERE, NUMA_NO_NODE, 0)
    assert mb.find_in_range_node(4096, 1, 0, MEMBLOCK_ALLOC_ANYWHERE) is not None
