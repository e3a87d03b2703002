# SPDX-License-Identifier: GPL-2.0-only
"""tools/testing/memblock/tests/alloc_nid_api.c and alloc_exact_nid_api.c, on the model.

Range groups run on ``setup_memblock()`` (``[B, B + 32K)``) for
``memblock_alloc_try_nid``, ``_try_nid_raw`` and ``memblock_alloc_exact_nid_raw``
with ``NUMA_NO_NODE``.  NUMA groups run on the 8-node layout
``{2500, 625, 1250, 1250, 625, 625, 2500, 625}/10000`` of 32 KiB, with the
nodes HOTPLUG-flagged as common.c does (and, like ``main -m``, once more with
``movable_node`` on and unflagged nodes).

Besides the kernel test's own assertions each case states the nid the
reservation records in 7.x: the requested nid when the node attempt
succeeded, -1 after the any-node fallback (memblock_reserve_kern()).
"""

from __future__ import annotations

import pytest
from _harness import (
    MEM_SIZE,
    NUMA_NO_NODE,
    RSRV_KERN,
    SMP,
    B,
    node_base,
    node_end,
    node_size,
    regs,
    setup_memblock,
    setup_numa_memblock,
)

from kho_replay.replay.ops import Alloc

E = B + MEM_SIZE
DIRS = pytest.mark.parametrize("bottom_up", [False, True], ids=["top_down", "bottom_up"])
TRY_APIS = ["memblock_alloc_try_nid", "memblock_alloc_try_nid_raw"]
ALL_APIS = [*TRY_APIS, "memblock_alloc_exact_nid_raw"]


def _run(mb, api, size, min_addr, max_addr, nid, align=SMP):
    return mb.alloc(Alloc(api, size, align=align, nid=nid, min_addr=min_addr, max_addr=max_addr))


def _check(mb, want):
    assert regs(mb.reserved) == want
    assert mb.reserved.cnt == len(want)
    assert mb.reserved.total_size == sum(s for _, s in want)
    mb.reserved.check()


# ================================================================== range groups

@pytest.mark.parametrize("api", ALL_APIS)
@DIRS
def test_simple(api, bottom_up):
    mb = setup_memblock(bottom_up=bottom_up)
    lo = B + SMP * 2
    hi = lo + 512
    got = _run(mb, api, 128, lo, hi, NUMA_NO_NODE)
    assert got == (lo if bottom_up else hi - 128)
    assert lo <= got and got + 128 <= hi
    _check(mb, [(got, 128)])


@pytest.mark.parametrize("api", ALL_APIS)
@DIRS
def test_misaligned(api, bottom_up):
    mb = setup_memblock(bottom_up=bottom_up)
    if bottom_up:
        lo = B + 2
        hi = lo + 512
        assert _run(mb, api, 128, lo, hi, NUMA_NO_NODE) == lo + (SMP - 2)
    else:
        lo = B + SMP * 2
        hi = lo + 512 + 2
        got = _run(mb, api, 128, lo, hi, NUMA_NO_NODE)
        assert got == hi - 128 - 2 and got + 128 < hi
    assert mb.reserved.cnt == 1 and mb.reserved.total_size == 128


@pytest.mark.parametrize("api", ALL_APIS)
@DIRS
def test_narrow_range(api, bottom_up):
    """The window is smaller than the request: retried from 0 (min_addr dropped)."""
    mb = setup_memblock(bottom_up=bottom_up)
    lo = B + 512
    hi = lo + SMP
    got = _run(mb, api, 256, lo, hi, NUMA_NO_NODE)
    assert got == (B if bottom_up else hi - 256)
    _check(mb, [(got, 256)])


@pytest.mark.parametrize("api", ALL_APIS)
@DIRS
def test_reserved_with_space(api, bottom_up):
    mb = setup_memblock(bottom_up=bottom_up)
    r1 = (E - SMP * 2, SMP)
    r2 = (r1[0] - (64 + SMP + 128), 128)
    mb.reserve_kern(*r1)
    mb.reserve_kern(*r2)
    lo, hi = r2[0] + r2[1], r1[0]
    got = _run(mb, api, 64, lo, hi, NUMA_NO_NODE)
    if bottom_up:
        assert got == lo
        _check(mb, [(r2[0], r2[1] + 64), r1])
    else:
        assert got == hi - 64
        _check(mb, [r2, (hi - 64, r1[1] + 64)])


@pytest.mark.parametrize("api", ALL_APIS)
@DIRS
def test_reserved_no_space(api, bottom_up):
    mb = setup_memblock(bottom_up=bottom_up)
    r1 = (E - SMP * 2, SMP)
    r2 = (r1[0] - (128 + SMP), 128)
    lo, hi = r2[0] + r2[1], r1[0]
    if bottom_up:
        mb.reserve(*r1)
        mb.reserve(*r2)
        assert _run(mb, api, 256, lo, hi, NUMA_NO_NODE) == B
        _check(mb, [(B, 256), r2, r1])
    else:
        mb.reserve_kern(*r1)
        mb.reserve_kern(*r2)
        assert _run(mb, api, 256, lo, hi, NUMA_NO_NODE) == r2[0] - 256
        _check(mb, [(r2[0] - 256, r2[1] + 256), r1])


@pytest.mark.parametrize("api", ALL_APIS)
@DIRS
def test_cap_max(api, bottom_up):
    mb = setup_memblock(bottom_up=bottom_up)
    if bottom_up:
        lo, want = B + 1024, B + 1024
    else:
        lo, want = E - 1024, E - 256
    assert _run(mb, api, 256, lo, E + 256, NUMA_NO_NODE) == want
    _check(mb, [(want, 256)])


@pytest.mark.parametrize("api", ALL_APIS)
@DIRS
def test_cap_min(api, bottom_up):
    mb = setup_memblock(bottom_up=bottom_up)
    if bottom_up:
        got = _run(mb, api, 1024, B, E - 256, NUMA_NO_NODE)
        assert got == B
    else:
        got = _run(mb, api, 1024, B - 256, E, NUMA_NO_NODE)
        assert got == E - 1024
    _check(mb, [(got, 1024)])


@pytest.mark.parametrize("api", ALL_APIS)
@DIRS
def test_min_reserved(api, bottom_up):
    mb = setup_memblock(bottom_up=bottom_up)
    hi = E
    lo = hi - 64
    mb.reserve_kern(lo - 128, 128)
    assert _run(mb, api, 64, lo, hi, NUMA_NO_NODE) == lo
    _check(mb, [(lo - 128, 192)])


@pytest.mark.parametrize("api", ALL_APIS)
@DIRS
def test_max_reserved(api, bottom_up):
    mb = setup_memblock(bottom_up=bottom_up)
    hi = E - 64
    lo = hi - 128
    mb.reserve_kern(hi, 64)
    assert _run(mb, api, 128, lo, hi, NUMA_NO_NODE) == lo
    _check(mb, [(lo, 192)])


@pytest.mark.parametrize("api", ALL_APIS)
@DIRS
def test_exact_address(api, bottom_up):
    mb = setup_memblock(bottom_up=bottom_up)
    lo = B + SMP
    assert _run(mb, api, 1024, lo, lo + 1024, NUMA_NO_NODE) == lo
    _check(mb, [(lo, 1024)])


@pytest.mark.parametrize("api", ALL_APIS)
@DIRS
def test_reserved_full_merge(api, bottom_up):
    mb = setup_memblock(bottom_up=bottom_up)
    r1 = (E - SMP * 2, SMP)
    r2 = (r1[0] - (64 + 128), 128)
    mb.reserve_kern(*r1)
    mb.reserve_kern(*r2)
    assert _run(mb, api, 64, r2[0] + 128, r1[0], NUMA_NO_NODE) == r2[0] + 128
    _check(mb, [(r2[0], 128 + 64 + SMP)])


@pytest.mark.parametrize("api", ALL_APIS)
@DIRS
def test_reserved_all(api, bottom_up):
    mb = setup_memblock(bottom_up=bottom_up)
    r1 = (E - SMP, SMP)
    r2 = (B, MEM_SIZE - (SMP + SMP))
    mb.reserve(*r1)
    mb.reserve(*r2)
    assert _run(mb, api, 256, r2[0] + r2[1], r1[0], NUMA_NO_NODE) is None
    _check(mb, [r2, r1])


@pytest.mark.parametrize("api", ALL_APIS)
@DIRS
def test_low_max(api, bottom_up):
    mb = setup_memblock(bottom_up=bottom_up)
    assert _run(mb, api, 1024, B, B + SMP, NUMA_NO_NODE) is None
    assert mb.reserved.cnt == 0


# ================================================================== NUMA groups

nb, ne, ns = node_base, node_end, node_size
K = RSRV_KERN


def _numa_cases(exact: bool):
    """name -> (nid, size, min, max, pre-reservations, expected top-down, expected bottom-up).

    pre: (base, size, nid, flags) reserved before the call; nid None means plain
    memblock_reserve().  Expectations: sorted (base, size, nid, flags) or None (fails).
    """
    r_split_all2 = (nb(7) + 128, E - (nb(7) + 128))
    r_split_all1 = (B, MEM_SIZE - (r_split_all2[1] + 256))
    full_merge_pre = [(nb(7), 128, 6, K), (nb(7) - ns(6) - 128, 128, 6, K)]
    full_merge = [(nb(6) - 128, ns(6) + 256, 6, K)]
    r_fb = (nb(4) + 512, 1024, -1, 0)
    cases = {
        "simple": (3, ns(3) // 4, B, E, [], [(ne(3) - 1024, 1024, 3, K)], [(nb(3), 1024, 3, K)]),
        "split_range_low": (2, 512, ne(2) - 256, ne(2) + 256, [],
                            [(ne(2) - 512, 512, 2, K)], [(nb(2), 512, 2, K)]),
        "no_overlap_split": (2, 512, nb(6) - 256, nb(6) + 256, [],
                             [(ne(2) - 512, 512, 2, K)], [(nb(2), 512, 2, K)]),
        "large_region": (3, MEM_SIZE // 2, B, E, [], None, None),
        "reserved_full_merge": (6, ns(6), nb(6), nb(7), full_merge_pre, full_merge, full_merge),
        "split_all_reserved": (NUMA_NO_NODE, 256, r_split_all1[0] + r_split_all1[1], r_split_all2[0],
                               [(*r_split_all1, None, 0), (*r_split_all2, None, 0)], None, None),
    }
    if not exact:
        cases |= {
            "small_node": (1, 2 * ns(1), B, E, [], [(ne(6) - 4096, 4096, -1, K)], [(nb(0), 4096, -1, K)]),
            "node_reserved": (2, ns(2), B, E, [(nb(2), ns(2), None, 0)],
                              [(nb(2), 4096, -1, 0), (ne(6) - 4096, 4096, -1, K)],
                              [(nb(0), 4096, -1, K), (nb(2), 4096, -1, 0)]),
            "part_reserved": (4, ns(4) // 8, B, E, [(nb(4), ns(4) // 2, None, 0)],
                              [(nb(4), 1024, -1, 0), (ne(4) - 256, 256, 4, K)],
                              [(nb(4), 1024, -1, 0), (nb(4) + 1024, 256, 4, K)]),
            "part_reserved_fallback": (4, ns(4) // 2, B, E, [(r_fb[0], r_fb[1], None, 0)],
                                       [r_fb, (ne(7) - 1024, 1024, -1, K)],
                                       [(nb(0), 1024, -1, K), r_fb]),
            "split_range_high": (3, 512, nb(3) - 256, nb(3) + 256, [],
                                 [(ne(2) - 512, 512, -1, K)], [(nb(0), 512, -1, K)]),
            "no_overlap_low": (0, 64, nb(2), ne(5), [], [(ne(5) - 64, 64, -1, K)], [(nb(2), 64, -1, K)]),
            "no_overlap_high": (7, 64, nb(2), ne(5), [], [(ne(5) - 64, 64, -1, K)], [(nb(2), 64, -1, K)]),
        }
    else:
        cases |= {
            "small_node": (1, 2 * ns(1), B, E, [], None, None),
            "node_reserved": (2, ns(2), B, E, [(nb(2), ns(2), None, 0)], None, None),
            "part_reserved": (4, ns(4) // 8, B, E, [(nb(4), ns(4) // 2, None, 0)],
                              [(nb(4), 1024, -1, 0), (ne(4) - 256, 256, 4, K)],
                              [(nb(4), 1024, -1, 0), (nb(4) + 1024, 256, 4, K)]),
            "part_reserved_fail": (4, ns(4) // 2, B, E, [(r_fb[0], r_fb[1], None, 0)], None, None),
            "split_range_high": (3, 512, nb(3) - 256, nb(3) + 256, [], None, None),
            "no_overlap_low": (0, 64, nb(2), ne(5), [], [(ne(0) - 64, 64, 0, K)], [(nb(0), 64, 0, K)]),
            "no_overlap_high": (7, 64, nb(2), ne(5), [], None, None),
        }
    return cases


NUMA_PARAMS = []
for _api in ALL_APIS:
    _exact = _api == "memblock_alloc_exact_nid_raw"
    for _name, _case in sorted(_numa_cases(_exact).items()):
        NUMA_PARAMS.append(pytest.param(_api, _case, id=f"{_api}-{_name}"))


def _tuples(mb):
    return [(r.base, r.size, r.nid, r.flags) for r in mb.reserved]


@pytest.mark.parametrize("movable_node", [False, True], ids=["hotplug_nodes", "movable_node"])
@DIRS
@pytest.mark.parametrize(("api", "case"), NUMA_PARAMS)
def test_numa(api, case, bottom_up, movable_node):
    nid, size, lo, hi, pre, td, bu = case
    mb = setup_numa_memblock(bottom_up=bottom_up, movable_node=movable_node)
    for base, sz, pnid, flags in pre:
        if pnid is None:
            mb.reserve(base, sz)
        else:
            mb.reserve_range(base, sz, pnid, flags)
    before = _tuples(mb)
    want = bu if bottom_up else td
    got = _run(mb, api, size, lo, hi, nid)
    if want is None:
        assert got is None
        assert _tuples(mb) == before
        return
    assert got is not None
    assert _tuples(mb) == want
    assert mb.reserved.total_size == sum(w[1] for w in want)
    # the block lies in one node's memory region
    m = mb.memory.search(got)
    assert m is not None and got + size <= m.end


def test_split_range_low_worked_example():
    """memblock-spec §7 worked example 3: [B+13824, B+14336)."""
    mb = setup_numa_memblock()
    lo = ne(2) - 256
    got = _run(mb, "memblock_alloc_try_nid", 512, lo, lo + 512, 2)
    assert (got - B, got + 512 - B) == (13824, 14336)


def test_small_node_worked_example():
    """memblock-spec §7 worked example 4: [B+26624, B+30720)."""
    mb = setup_numa_memblock()
    got = _run(mb, "memblock_alloc_try_nid", 4096, B, E, 1)
    assert (got - B, got + 4096 - B) == (26624, 30720)


@DIRS
def test_alloc_node_on_correct_nid(bottom_up):
    mb = setup_numa_memblock(bottom_up=bottom_up)
    got = mb.alloc(Alloc("memblock_alloc_node", 512, align=SMP, nid=2))
    assert got == (nb(2) if bottom_up else ne(2) - 512)
    (r,) = mb.reserved
    assert (r.nid, r.flags) == (2, RSRV_KERN)
    assert mb.memory.search(got).nid == 2
