# SPDX-License-Identifier: GPL-2.0-only
"""Synthesized boots: two hosts whose scratch sizing can be worked by hand, and a mirror of the real trace B.

Each function returns a :class:`~.ops.Trace` whose op stream follows the
boot order of ``start_kernel()`` (early reservations in ``setup_arch()``,
``mm_core_init_early()`` with the gigantic pages, memmap, percpu,
``kho_memory_init()``, ``memblock_free_all()``) with round figures (RSRV_KERN
below 4 GiB, untagged and per node; memmap = RAM/64), so the outcomes can be
checked against a hand calculation (tests/kho/test_scenarios.py shows it).

>>> t = scenario_b()
>>> sum(op.size for op in t.ops if getattr(op, "caller", "") == "alloc_bootmem+0x53/0x130") >> 30
32
"""

from __future__ import annotations

from ..ops import Add, Alloc, AllowResize, Context, Free, Op, Phase, Reserve, ReserveKern, Trace

__all__ = ["SCENARIOS", "scenario", "scenario_a", "scenario_b", "trace_b_mirror"]

G = 1 << 30
M = 1 << 20
_HUGE = "alloc_bootmem+0x53/0x130"


def _boot(
    memory: list[tuple[int, int, int]],
    *,
    low_kern: int,
    other_kern: int,
    node_kern: dict[int, int],
    memmap: dict[int, int],
    gigantic: list[int],
) -> list[Op]:
    """The op stream of one synthesized boot.

    *low_kern* RSRV_KERN below 4 GiB (kernel image + swiotlb), *other_kern*
    untagged RSRV_KERN anywhere, *node_kern* node-tagged non-memmap RSRV_KERN
    (percpu, node data), *memmap* per node, *gigantic* the node of each
    gigantic request in order (round robin for the plain form).
    """
    ops: list[Op] = [Add(b, s, n, caller="e820__memblock_setup+0x57/0xc0") for b, s, n in memory]
    ops.append(Reserve(0, 64 << 10, caller="setup_arch+0x10/0xcd0"))
    # Kernel image at 16 MiB, reserved RSRV_KERN by x86 setup_arch(); swiotlb takes the rest of low_kern.
    ops.append(ReserveKern(16 * M, 48 * M, caller="setup_arch+0x20/0xcd0"))
    ops.append(AllowResize())
    ops.append(Alloc("memblock_alloc_try_nid", low_kern - 48 * M, align=4096, max_addr=0xFFFFFFFF,
                     caller="swiotlb_init_remap+0xd1/0x300"))
    if other_kern:
        ops.append(Alloc("memblock_alloc_try_nid", other_kern, align=2 * M,
                         caller="alloc_large_system_hash+0x21a/0x2e0"))
    ops.append(Phase("mm_core_init_early"))
    for n in gigantic:
        ops.append(Alloc("memblock_alloc_try_nid_raw", G, align=G, nid=n, caller=_HUGE))
    ops.append(Phase("hugetlb_bootmem_end"))
    for n, size in memmap.items():
        ops.append(Alloc("memblock_alloc_try_nid_raw", size, align=2 * M, nid=n, min_addr=16 * M, max_addr=1,
                         caller="vmemmap_populate_hugepages+0xd8/0x190"))
    for n, size in node_kern.items():
        ops.append(Alloc("memblock_alloc_try_nid", size, align=2 * M, nid=n, min_addr=16 * M,
                         caller="pcpu_embed_first_chunk+0xfc/0x630"))
    ops.append(Phase("kho_memory_init"))
    ops.append(Phase("free_all"))
    return ops


def scenario_a() -> Trace:
    """A two-socket host, 2 x 768 GiB, ``hugepagesz=1G hugepages=1024``: default scale fails on global scratch.

    Node 0 is [0, 2) and [4, 770) GiB, node 1 [770, 1538) GiB; memmap = RAM/64
    = 12 GiB per node; 128 MiB below 4 GiB, 512 MiB untagged, 256 MiB per node.
    """
    mem = [(0, 2 * G, 0), (4 * G, 766 * G, 0), (770 * G, 768 * G, 1)]
    ops = _boot(mem, low_kern=128 * M, other_kern=512 * M, node_kern={0: 256 * M, 1: 256 * M},
                memmap={0: 12 * G, 1: 12 * G}, gigantic=[i % 2 for i in range(1024)])
    ctx = Context(source="scenario-a", release="7.2.13", arch="x86_64",
                  cmdline="kho=on hugepagesz=1G hugepages=1024",
                  nodes=((0, 0, 770 * G), (1, 770 * G, 1538 * G)))
    return Trace(ctx, tuple(ops))


def scenario_b() -> Trace:
    """A 64 GiB VM, 1 node, ``hugepagesz=1G hugepages=32``.

    RAM [0, 2) and [4, 66) GiB; memmap 1 GiB; 128 MiB below 4 GiB, 128 MiB
    untagged, 64 MiB node-tagged.
    """
    mem = [(0, 2 * G, 0), (4 * G, 62 * G, 0)]
    ops = _boot(mem, low_kern=128 * M, other_kern=128 * M, node_kern={0: 64 * M}, memmap={0: G},
                gigantic=[0] * 32)
    ctx = Context(source="scenario-b", release="7.2.13", arch="x86_64", cmdline="kho=on hugepagesz=1G hugepages=32",
                  nodes=((0, 0, 66 * G),))
    return Trace(ctx, tuple(ops))


def trace_b_mirror() -> Trace:
    """The real trace B's machine and requests, simplified: 8 GiB, one node, 2 x 1 GiB, default scale.

    e820 RAM [0x1000, 0x9fc00), [0x100000, 0xbffe0000), [4 GiB, 9 GiB) as in
    x86_64-kho-7.2.13-B; 48 MiB kernel image and 64 MiB swiotlb below 4 GiB,
    the two gigantic pages, a 144 MiB vmemmap (9 GiB of sections / 64) in 2 MiB
    blocks and a 2 MiB percpu chunk whose tail percpu frees again.
    """
    ops: list[Op] = [
        Add(0x1000, 0x9EC00, 0, caller="e820__memblock_setup+0x57/0xc0"),
        Add(0x100000, 0xBFEE0000, 0, caller="e820__memblock_setup+0x57/0xc0"),
        Add(0x100000000, 0x140000000, 0, caller="e820__memblock_setup+0x57/0xc0"),
        Reserve(0, 0x100000, caller="reserve_real_mode+0xab/0xe0"),
        ReserveKern(0x1000000, 48 * M, caller="setup_arch+0x20/0xcd0"),
        AllowResize(),
        Alloc("memblock_alloc_try_nid", 64 * M, align=4096, max_addr=0xFFFFFFFF,
              caller="swiotlb_init_remap+0xd1/0x300"),
        Phase("mm_core_init_early"),
        Alloc("memblock_alloc_try_nid_raw", G, align=G, nid=0, caller=_HUGE),
        Alloc("memblock_alloc_try_nid_raw", G, align=G, nid=0, caller=_HUGE),
        Phase("hugetlb_bootmem_end"),
    ]
    ops += [Alloc("memblock_alloc_try_nid_raw", 2 * M, align=2 * M, nid=0, min_addr=16 * M, max_addr=1,
                  caller="vmemmap_populate_hugepages+0xd8/0x190") for _ in range(72)]
    # percpu: 2 MiB chunk, then its unused tail goes back (recorded at the cold boot's address 7 GiB - 146 MiB).
    ops.append(Alloc("memblock_alloc_try_nid", 2 * M, align=2 * M, nid=0, min_addr=16 * M,
                     expect=7 * G - 146 * M, caller="pcpu_embed_first_chunk+0xfc/0x630"))
    ops.append(Free(7 * G - 146 * M + M, M, caller="pcpu_embed_first_chunk+0x1e1/0x630"))
    ops.append(Phase("kho_memory_init"))
    ops.append(Phase("free_all"))
    ctx = Context(source="trace-b-mirror", release="7.2.13", arch="x86_64",
                  cmdline="kho=on liveupdate=on hugepagesz=1G hugepages=2", nodes=((0, 0, 9 * G),))
    return Trace(ctx, tuple(ops))


SCENARIOS = {"scenario-a": scenario_a, "scenario-b": scenario_b, "trace-b-mirror": trace_b_mirror}


def scenario(name: str) -> Trace:
    """The synthesized boot called *name* (``scenario-a``; a leading ``scenario:`` is allowed).

    :raises KhoReplayError: for a name that is not in :data:`SCENARIOS`.
    """
    from ..errors import KhoReplayError

    key = name.removeprefix("scenario:")
    if key not in SCENARIOS:
        raise KhoReplayError(f"unknown scenario {key!r} (known: {', '.join(SCENARIOS)})")
    return SCENARIOS[key]()
