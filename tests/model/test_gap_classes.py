# SPDX-License-Identifier: GPL-2.0-only
"""The gap classes the search filters by: monotone, and never the reason a gap is missed.

A gap's class byte (``_q()``) has sixteen steps per power of two from 4 KiB, so a
gap a little shorter than a request often shares its class.  The search must then
check it exactly and go on; these tests put many such gaps around each request's
size and compare the fast search with the kernel's literal walk.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from test_search_equivalence import reference_find

from kho_replay.replay.memblock.engine import Memblock
from kho_replay.replay.memblock.regions import _q

PAGE = 4096
MIB = 1 << 20


@given(st.integers(0, 1 << 64), st.integers(0, 1 << 64))
def test_class_is_monotone_and_a_byte(a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    assert 0 <= _q(lo) <= _q(hi) <= 255


def test_sixteen_classes_per_power_of_two_from_4k() -> None:
    for k in range(12, 26):
        assert len({_q(n) for n in range(1 << k, 2 << k, (1 << k) // 64)}) == 16
    assert _q(4095) < _q(4096) and _q(124 * MIB) == 255 and _q(1 << 40) == 255


@st.composite
def near_misses(draw):
    """A node of memory cut by reservations into gaps just below, at and above a request's size."""
    size = draw(st.integers(1, 2048)) * PAGE
    mb = Memblock.for_kernel("7.3", "harness")
    mb.allow_resize()
    mb.add_node(0, 1 << 34, 0, 0)
    pos = PAGE
    for _ in range(draw(st.integers(1, 120))):
        # around size: pages short, exact, pages over, or a few bytes off a page
        gap = max(PAGE, size + draw(st.sampled_from([-3, -2, -1, 0, 1, 2])) * PAGE
                  + draw(st.sampled_from([0, 0, 64, -64])))
        pos += gap
        used = draw(st.integers(1, 16)) * PAGE // draw(st.sampled_from([1, 1, 4]))
        mb.reserve_range(pos, used, -1, 0)
        pos += used
    mb.bottom_up = draw(st.booleans())
    return mb, size, pos


@settings(max_examples=150, deadline=None)
@given(near_misses(), st.data())
def test_search_passes_same_class_gaps_that_are_too_short(case, data) -> None:
    mb, size, top = case
    for _ in range(8):
        align = data.draw(st.sampled_from([64, PAGE, 2 * PAGE, size if not size & (size - 1) else PAGE]))
        want_size = size + data.draw(st.sampled_from([-PAGE, 0, PAGE, 64]))
        end = data.draw(st.sampled_from([top, top // 2, 1 << 34]))
        start = data.draw(st.sampled_from([0, top // 3]))
        want = reference_find(mb, want_size, align, start, end, -1, 0)
        got = mb.find_in_range_node(want_size, align, start, end, -1, 0)
        assert got == want, (want_size, align, start, end)
    mb.reserved.check()


def _exact_classes(t) -> None:
    """Rebuild *t*'s storage from its regions: every gap class exact, as before any cut or free."""
    t._rebuild([(r.base, r.end, (r.flags, r.nid)) for r in t])


stream_op = st.one_of(
    st.tuples(st.just("reserve"), st.integers(0, 4095), st.integers(1, 64)),
    st.tuples(st.just("alloc"), st.integers(1, 300), st.sampled_from([64, PAGE, 2 * PAGE, 16 * PAGE])),
    st.tuples(st.just("free"), st.integers(0, 1 << 16), st.sampled_from(["whole", "head", "tail", "middle"])),
)


@settings(max_examples=120, deadline=None)
@given(st.lists(stream_op, min_size=1, max_size=150), st.booleans(), st.booleans())
def test_classes_left_high_give_the_same_replay_as_exact_ones(ops, bottom_up: bool, tiny: bool) -> None:
    """The classes a cut keeps and a free raises to the top (upper bounds) against classes worked out
    exactly before every op: the same addresses, the same tables, the invariants after every op."""
    from kho_replay.replay.memblock.regions import chunk_geometry

    with chunk_geometry(*((4, 2, 2) if tiny else (96, 16, 1024))):
        fast, ref = (Memblock.for_kernel("7.3", "harness") for _ in range(2))
        for mb in (fast, ref):
            mb.allow_resize()
            mb.add_node(0, 16 * MIB, 0, 0)
            mb.bottom_up = bottom_up
        for kind, a, b in ops:
            _exact_classes(ref.reserved)
            got = []
            for mb in (fast, ref):
                if kind == "reserve":
                    mb.reserve(a * PAGE, b * PAGE // 2)
                elif kind == "alloc":
                    got.append(mb.alloc_range_nid(a * 512, b, 0, 16 * MIB, -1, False))
                else:
                    regs = mb.reserved.regions()
                    if not regs:
                        continue
                    r = regs[a % len(regs)]
                    half = r.size // 2 or r.size
                    base, size = {"whole": (r.base, r.size), "head": (r.base, half),
                                  "tail": (r.end - half, half), "middle": (r.base + r.size // 4, half)}[b]
                    mb.phys_free(base, size)
            assert got[:1] == got[1:], (kind, a, b)
            fast.reserved.check()
            assert fast.reserved.regions() == ref.reserved.regions()
            assert fast.reserved.peak_cnt == ref.reserved.peak_cnt
