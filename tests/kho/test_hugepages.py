# SPDX-License-Identifier: GPL-2.0-only
"""hugepagesz=/default_hugepagesz=/hugepages= read in the order and by the rules of hugetlb_parse_params()."""

import pytest

from kho_replay.replay.kho.hugepages import (
    GIGANTIC,
    HugepagesRequest,
    hugepages_request,
    hugetlb_params,
    memparse_prefix,
)
from kho_replay.replay.whatif.kaslr import _cmdline_limits

G = "hugepagesz=1G"


@pytest.mark.parametrize(("cmdline", "want"), [
    # memparse(): any spelling of 1 GiB names the gigantic hstate
    ("hugepagesz=1073741824 hugepages=2", HugepagesRequest(2)),
    ("hugepagesz=0x40000000 hugepages=2", HugepagesRequest(2)),
    ("hugepagesz=1g hugepages=2", HugepagesRequest(2)),
    # a count before any size is the default hstate's; default_hugepagesz= given later takes it
    ("hugepages=2 default_hugepagesz=1G", HugepagesRequest(2)),
    ("hugepages=2", None),  # no default_hugepagesz=: the count is HPAGE_SIZE's (2 MiB)
    # "hugepages= specified twice without interleaving hugepagesz=": the second is ignored
    (f"{G} hugepages=2 hugepages=3", HugepagesRequest(2)),
    # a size named twice is ignored, and so is the hugepages= after it
    (f"{G} {G} hugepages=3", None),
    (f"{G} hugepages=2 {G} hugepages=3", HugepagesRequest(2)),
    # ... except the default hstate while it has no count
    (f"default_hugepagesz=1G {G} hugepages=3", HugepagesRequest(3)),
    (f"default_hugepagesz=1G hugepages=2 {G} hugepages=3", HugepagesRequest(2)),
    # an unsupported size makes the next hugepages= ignored; the one after applies again
    ("hugepagesz=4M hugepages=3 hugepagesz=1G hugepages=1", HugepagesRequest(1)),
    # sscanf("%lu"): a count stops at the first non-digit
    (f"{G} hugepages=2x", HugepagesRequest(2)),
    # an invalid list clears the counts it was filling
    (f"{G} hugepages=0:1,x", None),
    (f"{G} hugepages=0:1,1:2,3", None),
    (f"{G} hugepages=0:1,1:3", HugepagesRequest(4, ((0, 1), (1, 3)))),
    (f"{G} hugepages=0:1,", HugepagesRequest(1, ((0, 1),))),
    # the same node twice: the total adds both, the node keeps the last
    (f"{G} hugepages=0:1,0:2", HugepagesRequest(3, ((0, 2),))),
    # after "--" the words are init's
    (f"{G} -- hugepages=2", None),
    # x86: HUGE_MAX_HSTATE 2, so only 5 of these parameters are recorded
    ("hugepagesz=2M hugepages=1 hugepagesz=64K hugepages=1 hugepagesz=1G hugepages=2", None),
])
def test_x86_rules(cmdline: str, want: HugepagesRequest | None) -> None:
    assert hugepages_request(cmdline, "x86_64") == want


def test_arm64_sizes_and_limits() -> None:
    # arm64 has CONT_PTE (64K) and CONT_PMD (32M) hstates, and HUGE_MAX_HSTATE 4
    line = "hugepagesz=2M hugepages=1 hugepagesz=64K hugepages=1 hugepagesz=1G hugepages=2"
    assert hugepages_request(line, "arm64") == HugepagesRequest(2)
    assert [h.size for h in hugetlb_params(line, "arm64").hstates] == [2 << 20, 64 << 10, GIGANTIC]
    # MAX_NUMNODES 16 with Debian's NODES_SHIFT 4: node 16 is invalid there, not on x86 (1024)
    assert hugepages_request(f"{G} hugepages=16:1", "arm64") is None
    assert hugepages_request(f"{G} hugepages=16:1", "x86_64") == HugepagesRequest(1, ((16, 1),))


def test_offline_node_invalidates_the_list() -> None:
    assert hugepages_request(f"{G} hugepages=0:1,1:1", online=frozenset({0})) is None
    both = HugepagesRequest(2, ((0, 1), (1, 1)))
    assert hugepages_request(f"{G} hugepages=0:1,1:1", online=frozenset({0, 1})) == both


def test_warnings_name_the_ignored_word() -> None:
    w = hugetlb_params(f"{G} hugepages=2 hugepages=3").warnings
    assert w == ["HugeTLB: hugepages= specified twice without interleaving hugepagesz=, ignoring hugepages=3"]


@pytest.mark.parametrize(("text", "value"), [
    ("1G", 1 << 30), ("1024M", 1 << 30), ("1Gx", 1 << 30), ("010M", 8 << 20), ("0x", 0), ("G", 0), ("", 0),
    ("2k", 2048), ("16E", (1 << 64) - 1),
])
def test_memparse_prefix(text: str, value: int) -> None:
    assert memparse_prefix(text) == value


def test_kaslr_reads_hugepagesz_as_memparse_does() -> None:
    # parse_gb_huge_pages(): memparse() takes the leading size, so "1Gx" still arms the 1 GiB count
    assert _cmdline_limits("hugepagesz=1Gx hugepages=2")[2] == 2
    assert _cmdline_limits("hugepagesz=2M hugepages=2")[2] == 0
