# SPDX-License-Identifier: GPL-2.0-only
"""The decompressor's KASLR slots on hand-built e820 maps (arch/x86/boot/compressed/kaslr.c), and on real boots."""

from __future__ import annotations

from pathlib import Path

import pytest

from kho_replay.replay.whatif.kaslr import (
    SlotArea,
    all_slots,
    sample_slots,
    slot_areas,
    slot_count,
    trace_slots,
)

from .conftest import A72, A73, B72, B73, D72, D73, H73, IMAGE73, log

M, G = 1 << 20, 1 << 30
IMG = 46 * M


def _spans(areas: list[SlotArea]) -> list[tuple[int, int]]:
    return [(a.addr, a.num) for a in areas]


def test_one_region_counts_every_aligned_start_that_fits() -> None:
    # [0, 1G) RAM: minimum is 16M (LOAD_PHYSICAL_ADDR), the ZO range [16M, 16M+46M) is avoided, so
    # slots run from 62M while start + 46M <= 1G, every 2M: 1 + (1G - 62M - 46M) / 2M.
    areas = slot_areas([(0, G)], image_size=IMG)
    assert _spans(areas) == [(62 * M, 1 + (G - 62 * M - IMG) // (2 * M))]
    assert all_slots(areas)[-1] + IMG <= G


def test_avoided_region_splits_an_area_and_too_small_pieces_vanish() -> None:
    # initrd at [512M, 532M): the head keeps its slots, the tail restarts aligned past the initrd.
    areas = slot_areas([(0, G)], image_size=IMG, avoid=[(512 * M, 20 * M)])
    assert _spans(areas) == [(62 * M, 1 + (512 * M - 62 * M - IMG) // (2 * M)),
                             (532 * M, 1 + (G - 532 * M - IMG) // (2 * M))]
    # A 40M gap between two avoided regions holds no 46M image.
    areas = slot_areas([(0, G)], image_size=IMG, avoid=[(512 * M, 20 * M), (572 * M, 8 * M)])
    assert [a.addr for a in areas] == [62 * M, 580 * M]


def test_unaligned_region_start_rounds_up_to_physical_align() -> None:
    areas = slot_areas([(0, 64 * M), (G + 0x1234, G)], image_size=IMG)
    assert [a.addr for a in areas] == [G + 2 * M]


def test_hugepages_1g_skips_whole_blocks_in_table_order() -> None:
    ram = [(0x100000, 0xBFEE0000), (4 * G, 4 * G)]
    # hugepagesz=1G hugepages=2: [1G, 2G) in the first entry (its only whole block), then [4G, 5G).
    areas = slot_areas(ram, image_size=IMG, cmdline="hugepagesz=1G hugepages=2")
    assert [(a.addr, a.num) for a in areas] == [
        (62 * M, 1 + (G - 62 * M - IMG) // (2 * M)),
        (2 * G, 1 + (0xBFFE0000 - 2 * G - IMG) // (2 * M)),
        (5 * G, 1 + (3 * G - IMG) // (2 * M)),
    ]
    # More pages than blocks: every whole block goes; the pieces too small for a block stay.
    areas = slot_areas(ram, image_size=IMG, cmdline="hugepagesz=1G hugepages=64")
    assert [a.addr for a in areas] == [62 * M, 2 * G]


def test_hugepages_needs_hugepagesz_1g_before_it() -> None:
    ram = [(0x100000, 0xBFEE0000), (4 * G, 4 * G)]
    plain = slot_areas(ram, image_size=IMG)
    # parse_gb_huge_pages(): only hugepagesz=1G arms the count; default_hugepagesz= is not read, 2M disarms.
    assert slot_areas(ram, image_size=IMG, cmdline="hugepages=2") == plain
    assert slot_areas(ram, image_size=IMG, cmdline="default_hugepagesz=1G hugepages=2") == plain
    assert slot_areas(ram, image_size=IMG, cmdline="hugepagesz=1G hugepagesz=2M hugepages=2") == plain
    # boot_kstrtoul(..., 0) reads a leading 0 as octal: 02 is two pages, as 2 is
    assert slot_areas(ram, image_size=IMG, cmdline="hugepagesz=1G hugepages=02") == slot_areas(
        ram, image_size=IMG, cmdline="hugepagesz=1G hugepages=2")
    # A per-node list does not parse as a number: no blocks are kept.
    assert slot_areas(ram, image_size=IMG, cmdline="hugepagesz=1G hugepages=0:2") == plain


def test_mem_and_memmap_limits() -> None:
    ram = [(0, 8 * G)]
    areas = slot_areas(ram, image_size=IMG, cmdline="mem=2G")
    assert all_slots(areas)[-1] + IMG <= 2 * G < all_slots(areas)[-1] + IMG + 2 * M
    # memmap=nn$ss avoids [ss, ss+nn); a bare memmap=nn limits like mem=.
    areas = slot_areas(ram, image_size=IMG, cmdline="memmap=1G$0x40000000")
    assert not any(G - IMG < s < 2 * G for s in all_slots(areas))
    assert slot_areas(ram, image_size=IMG, cmdline="memmap=3G") == slot_areas(ram, image_size=IMG,
                                                                              cmdline="mem=3G")
    # memparse(): mem= takes the leading size and reads a leading 0 as octal (04G is 4 GiB, 010G 8 GiB)
    assert slot_areas(ram, image_size=IMG, cmdline="mem=2Gfoo") == slot_areas(ram, image_size=IMG, cmdline="mem=2G")
    octal = slot_areas(ram, image_size=IMG, cmdline="memmap=010M$0x40000000")
    assert octal == slot_areas(ram, image_size=IMG, cmdline="memmap=8M$0x40000000")
    assert octal != slot_areas(ram, image_size=IMG, cmdline="memmap=10M$0x40000000")
    assert slot_areas(ram, image_size=IMG, cmdline="memmap=02G") == slot_areas(ram, image_size=IMG, cmdline="mem=2G")
    # More than four memmap= regions disables physical KASLR (memmap_too_large).
    many = "memmap=" + ",".join(f"4K${n}G" for n in range(1, 7))
    assert slot_areas(ram, image_size=IMG, cmdline=many) == []
    assert slot_areas(ram, image_size=IMG, cmdline="nokaslr") == []


def test_slot_area_array_holds_at_most_100() -> None:
    # 200 separate 64M RAM entries: store_slot_info() stops at MAX_SLOT_AREA.
    ram = [(G + i * 128 * M, 64 * M) for i in range(200)]
    areas = slot_areas(ram, image_size=IMG)
    assert len(areas) == 100 and areas[-1].addr == G + 99 * 128 * M


def test_sample_is_seeded_and_within_the_slots() -> None:
    areas = slot_areas([(0, 8 * G)], image_size=IMG)
    a, b = sample_slots(areas, 50, seed=3), sample_slots(areas, 50, seed=3)
    assert a == b and len(set(a)) == 50 and set(a) <= set(all_slots(areas))
    assert sample_slots(areas, 50, seed=4) != a
    assert sample_slots(areas, 10**9) == all_slots(areas)


_X86 = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "traces").glob("x86_64-*") if p.is_dir())


@pytest.mark.parametrize("name", _X86)
def test_recorded_image_is_a_slot(name: str) -> None:
    # Every real boot's image sits in a slot of its own machine, hugepages= blocks and initrd excluded.
    from kho_replay.replay.whatif import find_image

    t = log(name)
    assert find_image(t).base in set(all_slots(trace_slots(t)))


@pytest.mark.parametrize(("name", "same"), [(A72, A73), (B72, B73), (D72, D73)])
def test_where_73_put_the_image_is_a_slot_of_the_same_machine(name: str, same: str) -> None:
    # Same machine and command line, other kernel: its decompressor chose among these slots.
    assert IMAGE73[same] in set(all_slots(trace_slots(log(name))))


def test_hugepages_blocks_on_a_real_map() -> None:
    t = log(B72)  # 8 GiB, hugepagesz=1G hugepages=2: [1G, 2G) and [4G, 5G) are kept free of the image
    slots = all_slots(trace_slots(t))
    assert slot_count(trace_slots(t)) == len(slots)
    for s in slots:
        assert not (G - IMG < s < 2 * G) and not (4 * G - IMG < s < 5 * G)
    from kho_replay.replay.whatif import apply_sets

    # With hugepages=4 the blocks [4G, 7G) go too; H's 7.3 image (0x1ecc00000) is still a slot.
    four = all_slots(trace_slots(apply_sets(t, [("hugepages", "4")])))
    assert min(s for s in four if s > 4 * G) == 7 * G
    assert IMAGE73[H73] in set(four)
