# SPDX-License-Identifier: GPL-2.0-only
"""The region table's chunking is invisible: tiny chunks give the same replay.

Real tables hold up to 96 regions per chunk, so the model tests, whose
tables are small, rarely cross a chunk edge.  Here every table is cut into
chunks of 2-4 regions, whose maxima are read two at a time, and the property and search
tests run again, plus a direct comparison with the default geometry.
"""

from __future__ import annotations

import pytest
import test_properties as props
import test_search_equivalence as search
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kho_replay.replay.errors import KernelPanic
from kho_replay.replay.memblock.engine import Memblock
from kho_replay.replay.memblock.regions import chunk_geometry
from kho_replay.replay.report.json import run_document

TINY = (4, 2, 2)


@pytest.fixture(autouse=True, scope="module")
def tiny() -> object:
    with chunk_geometry(*TINY):
        yield


def test_random_streams_keep_invariants() -> None:
    props.test_random_streams_keep_invariants()


def test_random_streams_past_128_regions() -> None:
    props.test_random_streams_past_128_regions()


def test_fast_search_equals_literal_walk_on_dense_layouts() -> None:
    props.test_fast_search_equals_literal_walk_on_dense_layouts()


def test_fast_search_equals_literal_walk() -> None:
    for name in dir(search):
        if name.startswith("test_"):
            getattr(search, name)()


def _replay(ops) -> dict[str, object]:
    mb = Memblock.for_kernel("7.3", "harness")
    try:
        res = mb.run(ops)
    except KernelPanic as e:  # pragma: no cover - run() reports panics itself
        return {"panic": str(e)}
    mb.memory.check()
    mb.reserved.check()
    return {**run_document(mb, res), "chunks": len(mb.reserved._B)}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(props.streams())
def test_same_replay_as_default_chunks(ops) -> None:
    tiny = _replay(ops)
    with chunk_geometry(96, 16, 256):
        default = _replay(ops)
    chunks = (tiny.pop("chunks"), default.pop("chunks"))
    assert tiny == default
    # the tiny geometry really cut the table up
    assert chunks[0] >= chunks[1]


@pytest.mark.parametrize("bottom_up", [False, True])
def test_one_exact_fit_found_at_every_position(bottom_up: bool) -> None:
    """40 gaps one byte too short, one exactly *size*: found wherever it sits in the
    chunks and groups, from either end, including the chunk and group edges."""
    size, unit, n = 0x3000, 0x10000, 40
    for pos in range(n):
        mb = Memblock.for_kernel("7.3", "harness")
        mb.allow_resize()
        mb.bottom_up = bottom_up
        mb.add(unit, (n + 2) * unit)
        for i in range(n + 1):
            # region i ends where gap i starts; gap i is size - 1 bytes, or size at pos
            gap = size if i == pos else size - 1
            mb.reserve(unit + i * unit, unit - gap)
        mb.reserve(unit + (n + 1) * unit, unit)
        want = unit + pos * unit + unit - size
        assert search.reference_find(mb, size, 1, 0, 0, -1, 0) == want
        assert mb.find_in_range_node(size, 1, 0, 0) == want, pos
        assert mb.find_in_range_node(size + 1, 1, 0, 0) is None


@pytest.mark.parametrize("bottom_up", [False, True])
def test_one_aligned_fit_among_long_misaligned_gaps(bottom_up: bool) -> None:
    """40 gaps of 24 KiB that hold no 16 KiB-aligned 16 KiB block, one of exactly
    16 KiB that is aligned: the self-aligned request finds that one, wherever it sits."""
    size, unit, n = 0x4000, 0x10000, 40
    for pos in range(n):
        mb = Memblock.for_kernel("7.3", "harness")
        mb.allow_resize()
        mb.bottom_up = bottom_up
        mb.add(unit, n * unit)
        for i in range(n):
            slot = unit * (i + 1)
            gs, ge = (slot + 0x4000, slot + 0x8000) if i == pos else (slot + 0x1000, slot + 0x7000)
            mb.reserve(slot, gs - slot)
            mb.reserve(ge, slot + unit - ge)
        want = unit * (pos + 1) + 0x4000
        assert search.reference_find(mb, size, size, 0, 0, -1, 0) == want
        assert mb.find_in_range_node(size, size, 0, 0) == want, pos
        # page alignment takes the first long gap instead
        first = unit * n + 0x7000 - size if not bottom_up else unit + 0x1000
        if pos in ((n - 1) if not bottom_up else 0,):
            first = want
        assert mb.find_in_range_node(size, 0x1000, 0, 0) == first


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(props.streams(), st.data())
def test_a_wrong_placement_hint_changes_nothing(ops, data) -> None:
    """The allocator leaves the table a hint of where its next reservation goes;
    any hint, stale or wrong, must give the same table as no hint."""
    with_hint = Memblock.for_kernel("7.3", "harness")
    plain = Memblock.for_kernel("7.3", "harness")
    with_hint.run(ops)
    plain.run(ops)
    t = with_hint.reserved
    for _ in range(5):
        nch = len(t._B)
        c = data.draw(st.integers(0, max(nch, 1)))
        j = data.draw(st.integers(0, len(t._B[c]) if c < nch else 3))
        base = data.draw(props.addr)
        size = data.draw(props.size_any)
        t._hint = (c, j)
        with_hint.reserve(base, size)
        plain.reserve(base, size)
        t.check()
        assert t.regions() == plain.reserved.regions()
        assert t.total_size == plain.reserved.total_size
