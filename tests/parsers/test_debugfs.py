# SPDX-License-Identifier: GPL-2.0-only
"""Both debugfs generations, the x node, joined flag names, and load() sniffing them."""

from __future__ import annotations

from pathlib import Path

import pytest

from kho_replay.parsers import load
from kho_replay.parsers.debugfs import parse_debugfs_lines, read_debugfs
from kho_replay.replay.errors import FormatError
from kho_replay.replay.flags import Flag
from kho_replay.replay.ops import Region


def test_old_generation_has_no_node_or_flags() -> None:
    regions, bad = parse_debugfs_lines([(1, "   0: 0x0000000040000000..0x00000000bfffffff")])
    assert bad == [] and regions == [Region(0x40000000, 0x80000000, -1, None)]


@pytest.mark.parametrize(
    "row, flags, nid",
    [
        ("   7: 0x00000000bff00000..0x00000000bfffffff    x NONE", 0, None),
        ("   1: 0x0000000080000000..0x00000000801fffff    0 NOMAP", Flag.MEMBLOCK_NOMAP, 0),
        ("   5: 0x0000000100001000..0x000000013fffffff    0 RSV_NIT|RSV_KERN",
         Flag.MEMBLOCK_RSRV_NOINIT | Flag.MEMBLOCK_RSRV_KERN, 0),
        ("  12: 0x0000000140000000..0x000000017fffffff    1 RSV_KERN|RSV_HUGETLB",
         Flag.MEMBLOCK_RSRV_KERN | Flag.MEMBLOCK_RSRV_HUGETLB, 1),
        ("   3: 0x0000000140000000..0x000000017fffffff    1 UNKNOWN", -1, 1),
    ],
)
def test_new_generation_rows(row: str, flags: int, nid: int | None) -> None:
    idx = int(row.split(":")[0])
    lines = [(i + 1, f"{i:4d}: 0x{i:016x}..0x{i:016x}    0 NONE") for i in range(idx)] + [(idx + 1, row)]
    regions, bad = parse_debugfs_lines(lines)
    assert bad == []
    assert (regions[-1].flags, regions[-1].nid) == (flags, nid)


def test_out_of_sequence_row_is_reported() -> None:
    _, bad = parse_debugfs_lines([(1, "   1: 0x0000000040000000..0x00000000bfffffff    0 NONE")])
    assert bad and bad[0][0] == 1


def test_kernel_file_names_in_a_directory(tmp_path: Path) -> None:
    (tmp_path / "memory").write_text("   0: 0x0000000040000000..0x000000013fffffff    0 NONE\n")
    (tmp_path / "reserved").write_text("   0: 0x0000000040200000..0x000000004270ffff    0 NONE\n")
    t = load(tmp_path)
    assert sorted(o.name for o in t.observations) == ["memory", "reserved"]


def test_single_file_sniffed(tmp_path: Path) -> None:
    p = tmp_path / "reserved"
    p.write_text("   0: 0x0000000040200000..0x000000004270ffff    0 RSV_KERN\n")
    (table,) = load(p).observations
    assert table.name == "reserved" and table.regions[0].flags == Flag.MEMBLOCK_RSRV_KERN


def test_garbage_file_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "memory"
    p.write_text("hello\n")
    with pytest.raises(FormatError):
        read_debugfs(p)
