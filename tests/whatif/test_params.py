# SPDX-License-Identifier: GPL-2.0-only
"""--set PARAM=VALUE: the command line as the kernel would read it, gigantic pages added or dropped."""

from __future__ import annotations

import pytest

from kho_replay.replay.errors import KhoReplayError
from kho_replay.replay.kho.boot import run_cold
from kho_replay.replay.whatif import apply_sets, set_cmdline
from kho_replay.replay.whatif.params import parse_set

from .conftest import A72, B72, log

G = 1 << 30


@pytest.mark.parametrize(("cmdline", "key", "value", "want"), [
    ("a hugepagesz=1G hugepages=2 b", "hugepages", "0:1,1:1", "a hugepagesz=1G hugepages=0:1,1:1 b"),
    ("hugepagesz=2M hugepages=512 hugepagesz=1G", "hugepages", "3",
     "hugepagesz=2M hugepages=512 hugepagesz=1G hugepages=3"),
    ("default_hugepagesz=1G hugepages=6", "hugepages", "2", "default_hugepagesz=1G hugepages=2"),
    ("console=ttyS0", "kho", "off", "console=ttyS0 kho=off"),
    ("kho=on kho_scratch=50%", "kho_scratch", "200%", "kho=on kho_scratch=200%"),
])
def test_set_cmdline(cmdline: str, key: str, value: str, want: str) -> None:
    assert set_cmdline(cmdline, key, value) == want


@pytest.mark.parametrize(("key", "value", "match"), [
    ("hugepage", "4", "unknown parameter"),
    ("hugepages", "four", "expected a count"),
    ("hugepagesz", "4M", "x86_64 supports 2M, 1G"),
    ("kho", "maybe", "expected on/off"),
    ("kho_scratch", "64M,512M", "three sizes"),
    ("kho_scratch", "x%", "expected N%"),
    ("hugetlb_cma", "1536M", "cma area must be a multiple of 1024 MiB"),
    ("hugetlb_cma", "0:1G,1:512M", "cma area of node 1 must be a multiple of 1024 MiB"),
    ("hugetlb_cma", "2X", "expected SIZE or nid:SIZE"),
    ("hugetlb_cma", "25%", r"N% since 7\.3"),
    ("hugetlb_cma_only", "maybe", "expected on/off"),
])
def test_bad_parameter_is_one_error(key: str, value: str, match: str) -> None:
    with pytest.raises(KhoReplayError, match=match) as e:
        apply_sets(log(B72), [(key, value)])
    assert "\n" not in str(e.value)


def test_a_kernel_older_than_kho_does_not_know_kho_scratch() -> None:
    t = log("x86_64-debian-6.1.192-4G")
    with pytest.raises(KhoReplayError, match=r"kernel 6\.1\S* does not know kho_scratch="):
        apply_sets(t, [("kho_scratch", "50%")])


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4])
def test_hugepages_count_more_or_fewer_pages(n: int) -> None:
    # B asked for two; fewer drops the recorded allocations (and their tail marks), more are allocated by
    # the hugetlb loop, top-down over the free 1 GiB blocks.
    t = apply_sets(log(B72), [("hugepages", str(n))])
    o = run_cold(t, "merged")
    order = (0x1C0000000, 0x140000000, 0x100000000, 0x40000000)
    assert o.gigantic.requested == n and tuple(o.gigantic.addrs) == order[:n]
    assert o.rsrv_kern == run_cold(log(B72), "merged").rsrv_kern + (n - 2) * G


def test_hugepages_decides_whether_baseline_keeps_scratch() -> None:
    # Up to 7.2 gigantic pages count as RSRV_KERN: with none, baseline's scratch fits; with two it does not.
    assert run_cold(apply_sets(log(B72), [("hugepages", "0")]), "baseline").scratch.enabled
    assert not run_cold(log(B72), "baseline").scratch.enabled


def test_hugepages_on_a_boot_without_1g_pages_adds_the_hstate() -> None:
    t = apply_sets(log(A72), [("hugepages", "2")])
    assert "hugepagesz=1G hugepages=2" in t.context.cmdline
    assert run_cold(t, "merged").gigantic.allocated == 2


def test_kho_scratch_sizes_and_kho_off() -> None:
    o = run_cold(apply_sets(log(B72), [("kho_scratch", "64M,512M,256M")]), "baseline")
    assert o.scratch.enabled and (o.scratch.lowmem, o.scratch.global_) == (64 << 20, 512 << 20)
    assert not run_cold(apply_sets(log(B72), [("kho", "off")]), "merged").scratch.enabled


def test_parse_set_values() -> None:
    assert parse_set("hugepages=0,2,4") == ("hugepages", ["0", "2", "4"])
    assert parse_set("hugepages=0:1,1:1;0:2,1:2") == ("hugepages", ["0:1,1:1", "0:2,1:2"])
    assert parse_set("kho_scratch=64M,512M,256M") == ("kho_scratch", ["64M,512M,256M"])
    assert parse_set("kho_scratch=50%,100%") == ("kho_scratch", ["50%", "100%"])
    with pytest.raises(KhoReplayError):
        parse_set("hugepages")
