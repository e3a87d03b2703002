# SPDX-License-Identifier: GPL-2.0-only
"""kho=/kho_scratch= parsing, kho_reserve_scratch() sizing and failure, preserved sets."""

from __future__ import annotations

import pytest

from kho_replay.replay.errors import KhoReplayError
from kho_replay.replay.kho.params import parse_kho_cmdline
from kho_replay.replay.kho.preserve import PreservedSet, busy_blocks, parse_preserve
from kho_replay.replay.kho.scratch import reserve_scratch
from kho_replay.replay.memblock.engine import Memblock
from kho_replay.replay.ops import parse_script

M, G = 1 << 20, 1 << 30


def test_explicit_sizes_and_message():
    p = parse_kho_cmdline("kho=on kho_scratch=16M,512M,256M")
    assert (p.enable, p.scale, p.lowmem, p.global_, p.pernode) == (True, 0, 16 * M, 512 * M, 256 * M)
    assert p.messages == ("KHO: scratch areas: lowmem: 16MiB global: 512MiB pernode: 256MiB",)


def test_kho_scratch_sizes_read_as_memparse_reads_them():
    # simple_strtoull(..., 0): a leading 0 is octal, 0x hex; a suffix is upper or lower case
    p = parse_kho_cmdline("kho=on kho_scratch=010m,0x20000000,0")
    assert (p.lowmem, p.global_, p.pernode) == (8 * M, 512 * M, 0)
    # an octal literal with an 8 stops the number there: "08M" leaves "8M" unread, -EINVAL
    assert parse_kho_cmdline("kho=on kho_scratch=08M,1G,1G").lowmem == 0


@pytest.mark.parametrize("bad", ["kho_scratch=1M,2M", "kho_scratch=1M,2M,3Q", "kho_scratch=0,0,0",
                                 "kho_scratch=123456789012%", "kho_scratch=x%"])
def test_malformed_kho_scratch_keeps_the_default_scale(bad):
    p = parse_kho_cmdline("kho=on " + bad)
    assert (p.scale, p.lowmem, p.global_, p.pernode, p.messages) == (200, 0, 0, 0, ())


def test_kho_off_and_default():
    assert parse_kho_cmdline("kho=off").enable is False
    assert parse_kho_cmdline("").enable is False
    assert parse_kho_cmdline("kho=1").enable is True


def _mb(script: str) -> Memblock:
    mb = Memblock.for_kernel("7.2", "x86_64")
    mb.run(parse_script(script))
    return mb


def test_sizing_by_hand():
    # 100 MiB RSRV_KERN below 4 GiB, 1 GiB node-0 RSRV_KERN above: scale 200 %.
    mb = _mb("""
add 0x0 3G nid=0
add 0x100000000 13G nid=0
reserve 0x1000000 100M flags=rsrv_kern
reserve 0x200000000 1G nid=0 flags=rsrv_kern
""")
    r = reserve_scratch(mb, parse_kho_cmdline("kho=on"), (0,)).scratch
    assert r.enabled and r.failed is None
    assert r.lowmem == 200 * M                       # 2 x 100 MiB, already 4 MiB aligned
    assert r.global_ == 2 * (G + 100 * M) - 200 * M  # 2 GiB
    assert r.pernode == ((0, 2 * G),)                # the node-tagged 1 GiB only
    names = [a.name for a in r.areas]
    assert names == ["lowmem", "global", "node0"]
    low = r.areas[0]
    assert low.base + low.size <= 0x100000000 and low.base % (4 * M) == 0


def test_failure_rolls_back_with_the_kernel_messages():
    mb = _mb("""
add 0x0 2G nid=0
reserve 0x1000000 700M flags=rsrv_kern
""")
    before = mb.reserved.regions()
    res = reserve_scratch(mb, parse_kho_cmdline("kho=on"), (0,))
    r = res.scratch
    assert not r.enabled and r.failed == "lowmem" and r.areas == ()
    assert res.messages == ("KHO: Failed to reserve lowmem scratch buffer",
                          "KHO: Failed to reserve scratch area, disabling kexec handover")
    assert mb.reserved.regions() == before  # the 48-byte descriptor array went back too


def test_memfd_preserve_is_seeded_and_outside_the_given_ranges():
    free = [(0x100000000, 0x140000000), (0x200000000, 0x200400000)]
    a = parse_preserve("memfd:64M:2M", free_ranges=free, seed=3)
    b = parse_preserve("memfd:64M:2M", free_ranges=free, seed=3)
    c = parse_preserve("memfd:64M:2M", free_ranges=free, seed=4)
    assert a == b and a.blocks != c.blocks
    assert a.total == 64 * M and len(a.blocks) == 32
    assert all(any(s <= base and base + size <= e for s, e in free) for base, size in a.blocks)
    assert len({base for base, _ in a.blocks}) == 32


def test_preserve_errors():
    with pytest.raises(KhoReplayError):
        parse_preserve("memfd:4M:3K", free_ranges=[(0, G)])
    with pytest.raises(KhoReplayError):
        parse_preserve("memfd:4G", free_ranges=[(0, G)])
    with pytest.raises(KhoReplayError):
        parse_preserve("everything")


def test_busy_blocks_digest():
    p = PreservedSet("t", ((0x40000000 - 4096, 8192), (5 * G, 4096)))
    # The first block straddles the 1 GiB boundary: blocks 0 and 1 are both busy.
    assert busy_blocks(p) == [0, 1, 5]
