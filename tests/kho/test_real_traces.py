# SPDX-License-Identifier: GPL-2.0-only
"""The designs on real 7.2.13 boots (x86_64 QEMU guests, kho-spec §12.6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kho_replay.replay.kho.boot import check_second_kernel, run_cold, run_kexec

from .conftest import B, C, D, G, log, trace_dir

M, G1 = 1 << 20, 1 << 30


def test_b_baseline_reproduces_the_recorded_scratch_failure():
    o = run_cold(log(B, 1), "baseline")
    # Logged by the real kernel: lowmem 171966464 bytes, global 4718592000 bytes, global fails.
    assert (o.scratch.lowmem, o.scratch.global_) == (171966464, 4718592000)
    assert not o.scratch.enabled and o.scratch.failed == "global" and o.scratch.areas == ()
    i = o.messages.index("KHO: Failed to reserve global scratch buffer")
    assert o.messages[i + 1] == "KHO: Failed to reserve scratch area, disabling kexec handover"
    assert o.gigantic.allocated == 2


def test_b_lowmem_area_lands_where_the_kernel_put_it_before_the_rollback():
    # The real boot freed [0xb0800000-0xbabfffff] after the global failure: that is where lowmem went.
    o = run_cold(log(B, 1), "merged")
    assert o.scratch.areas[0] == ("lowmem", 0xB0800000, 0xBAC00000 - 0xB0800000)


@pytest.mark.parametrize("name", ["ext-scratch", "hugetlb-alloc", "merged"])
def test_b_designs_that_exclude_hugetlb_reserve_scratch(name):
    o = run_cold(log(B, 1), name)
    assert o.scratch.enabled and o.scratch.failed is None
    assert [a[0] for a in o.scratch.areas] == ["lowmem", "global", "node0"]
    # Without the 2 GiB of pages, 200 % of the rest is well under 1 GiB in all.
    assert o.scratch.reserved < G1


def test_b_ext_scratch_inflates_max_threads_by_the_pool():
    t = log(B, 1)
    ext, hug, mer = (run_cold(t, n) for n in ("ext-scratch", "hugetlb-alloc", "merged"))
    # Same scratch sizes; only v1 drops the 2 GiB of pages from RSRV_KERN:
    # 2 GiB / 4 KiB pages x 4 KiB / (16 KiB x 8) = 16384 more threads.
    assert ext.scratch.reserved == mer.scratch.reserved == hug.scratch.reserved
    assert ext.max_threads - mer.max_threads == 16384
    assert hug.max_threads == mer.max_threads
    assert ext.rsrv_kern == mer.rsrv_kern - 2 * G1


def test_b_kexec_hugetlb_baseline_in_scratch_merged_not():
    t = log(B, 1)
    # Baseline's own first kernel has no scratch: the kexec after it is a plain one.
    cold, kx = run_kexec(t, "baseline", preserve="hugetlb")
    assert not cold.scratch.enabled and not kx.kho_boot and kx.boot == "kexec"
    # What-if: baseline's KHO boot after a first kernel that reserved the merged design's scratch.
    # No 1 GiB-aligned block fits in 164/404/380 MiB areas: every page it places is in scratch (none).
    _, kb = run_kexec(t, "baseline", preserve="hugetlb", scratch_from="merged")
    assert kb.kho_boot and kb.gigantic.allocated == kb.gigantic.in_scratch == 0
    assert "HugeTLB: allocating 2 of page size 1.00 GiB failed.  Only allocated 0 hugepages." in kb.messages
    _, km = run_kexec(t, "merged", preserve="hugetlb")
    assert km.kho_boot and km.gigantic.allocated == 2 and km.gigantic.in_scratch == 0


def test_c_kexec_baseline_pages_in_scratch_merged_none():
    t = log(C, 1)
    _, kb = run_kexec(t, "baseline", preserve="hugetlb")
    _, km = run_kexec(t, "merged", preserve="hugetlb")
    assert kb.gigantic.allocated == kb.gigantic.in_scratch == 2
    assert km.gigantic.allocated == 2 and km.gigantic.in_scratch == 0


def test_d_baseline_kexec_places_nothing():
    # kho_scratch=64M,512M,64M: no scratch area can hold a 1 GiB page (kho-spec §12.6 case D).
    _, k = run_kexec(log(D, 1), "baseline")
    assert k.gigantic.allocated == 0
    assert "HugeTLB: allocating 2 of page size 1.00 GiB failed.  Only allocated 0 hugepages." in k.messages


def _debugfs_areas(d: Path) -> list[tuple[int, int]]:
    phys = (d / "kernel1" / "kho-out-scratch_phys.txt").read_text().split()
    size = (d / "kernel1" / "kho-out-scratch_len.txt").read_text().split()
    return [(int(p, 16), int(s, 16)) for p, s in zip(phys, size, strict=True)]


@pytest.mark.parametrize("name", [
    "x86_64-kho-7.2.13-A-8G-nohuge-memfd64M", C, D, G,
    "arm64-kho-7.2.13-A-8G-nohuge-memfd16M", "arm64-kho-7.2.13-E-numa2-12G-hugepages1G-pernode-kho_scratch",
])
def test_cold_scratch_matches_the_kernels_debugfs(name):
    d = trace_dir(name, "kernel1/kho-out-scratch_phys.txt")
    o = run_cold(log(name, 1), "baseline")
    assert [(b, s) for _, b, s in o.scratch.areas] == _debugfs_areas(d)


@pytest.mark.parametrize("name", [C, D, G])
def test_real_second_kernel_agrees_with_its_log_and_the_synthesized_boot(name):
    chk = check_second_kernel(log(name, 1), log(name, 2))
    # Replayed under baseline, the real second kernel puts every request where it logged it.
    assert chk.vs_recorded.paired > 100 and chk.vs_recorded.same == chk.vs_recorded.paired
    # The synthesized KHO boot (first kernel's requests) agrees on most scratch-only placements;
    # the rest differ by what the first kernel's log cannot show (kexec_file segment details).
    assert chk.vs_synth.same >= 0.5 * chk.vs_synth.paired


def test_c_second_kernel_gigantic_pages_match_synthesized():
    chk = check_second_kernel(log(C, 1), log(C, 2))
    assert chk.real.gigantic.addrs == chk.synthesized.gigantic.addrs == (0x1C0000000, 0x180000000)
    assert chk.real.gigantic.in_scratch == 2


def test_g_synthesized_kho_boot_with_the_real_segments_matches_the_real_shortfall():
    # G: kho_scratch=64M,4G,256M, 6 x 1 GiB.  The real KHO boot logged "Only allocated 3 hugepages."
    _, kx = run_kexec(log(G, 1), "baseline", second=log(G, 2))
    assert kx.gigantic.allocated == kx.gigantic.in_scratch == 3
    assert "HugeTLB: allocating 6 of page size 1.00 GiB failed.  Only allocated 3 hugepages." in kx.messages


def test_plain_second_kernel_gives_no_segments():
    from kho_replay.replay.kho.boot import kexec_segments
    from kho_replay.replay.kho.scratch import ScratchArea

    assert kexec_segments(log(B, 2), [ScratchArea("global", 0, 1 << 40)]) == ()


@pytest.mark.parametrize("name", [C, D, G])
def test_scratch_counted_once(name):
    # The trace's own KHO requests are replaced, not replayed on top of the synthesized ones:
    # RSRV_KERN grows by exactly the areas plus the (1 node + 2) x 16-byte descriptor array.
    t = log(name, 1)
    on, off = run_cold(t, "baseline"), run_cold(t, "baseline", kho=False)
    assert on.scratch.enabled and not off.scratch.enabled
    assert on.rsrv_kern - off.rsrv_kern == on.scratch.reserved + 3 * 16


def test_b_synthesized_kho_requests_land_where_the_kernel_logged_them():
    # console-kernel1.log: the 48-byte array at [0x23ffd0000-0x23ffd002f], lowmem at
    # [0xb0800000-0xbabfffff] (both freed again by the rollback), the 4718592000-byte global fails.
    o = run_cold(log(B, 1), "baseline")
    kho = [(r.api, r.size, r.addr) for r in o.requests if r.subsystem == "KHO scratch"]
    assert kho == [("memblock_alloc", 48, 0x23FFD0000), ("memblock_phys_alloc_range", 171966464, 0xB0800000),
                   ("memblock_phys_alloc", 4718592000, None)]
    assert all(r.synthesized for r in o.requests if r.subsystem == "KHO scratch")
