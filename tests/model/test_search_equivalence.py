# SPDX-License-Identifier: GPL-2.0-only
"""The allocator's gap-index search must equal the kernel's literal two-table walk.

The reference here is ``__memblock_find_range_{top_down,bottom_up}()`` written
over :mod:`kho_replay.replay.memblock.search` (which walks exactly as
``__next_mem_range[_rev]()``), clamps and all.
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from kho_replay.replay.memblock.engine import Memblock
from kho_replay.replay.memblock.search import find_range_literal

PAGE = 4096


def reference_find(mb: Memblock, size: int, align: int, start: int, end: int, nid: int, flags: int) -> int | None:
    """The kernel's search over the literal __next_mem_range[_rev]() walk, clamps and all."""
    if end in (0, 1):
        end = mb.current_limit
    start = max(start, PAGE)
    end = max(start, end)
    return find_range_literal(mb.memory, mb.reserved, lambda m: mb.should_skip_region(m, nid, flags),
                              start, end, size, align, mb.bottom_up)


UNIT = 0x1000
addr = st.integers(0, 4096).map(lambda x: x * UNIT // 4)
span = st.integers(1, 512).map(lambda x: x * UNIT // 4)


@st.composite
def layouts(draw):
    mb = Memblock.for_kernel("7.3", "harness")
    mb.allow_resize()
    for _ in range(draw(st.integers(1, 6))):
        base, size = draw(addr), draw(span) * 8
        nid = draw(st.integers(0, 2))
        mb.add_node(base, size, nid, draw(st.sampled_from([0, 0, 0, 4, 0x40])))
    for _ in range(draw(st.integers(0, 300))):
        base, size = draw(addr), draw(span)
        if draw(st.booleans()):
            mb.reserve_range(base, size, draw(st.sampled_from([-1, 0, 1])), draw(st.sampled_from([0, 0x20])))
        else:
            mb.phys_free(base, size)
    mb.bottom_up = draw(st.booleans())
    return mb


@settings(max_examples=120, deadline=None)
@given(
    mb=layouts(),
    reqs=st.lists(
        st.tuples(
            st.integers(0, 64).map(lambda x: x * 256),
            st.sampled_from([1, 8, 64, 256, 4096, 0x10000, 3, 24]),
            addr,
            st.one_of(st.just(0), addr),
            st.sampled_from([-1, 0, 1, 2]),
            st.sampled_from([0, 0x40]),
        ),
        min_size=1,
        max_size=20,
    ),
)
def test_fast_search_equals_kernel_walk(mb: Memblock, reqs) -> None:
    for size, align, start, end, nid, flags in reqs:
        want = reference_find(mb, size, align, start, end, nid, flags)
        got = mb.find_in_range_node(size, align, start, end, nid, flags)
        assert got == want, (size, align, start, end, nid, flags)
    mb.reserved.check()
    mb.memory.check()
