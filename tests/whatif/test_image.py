# SPDX-License-Identifier: GPL-2.0-only
"""--image-at: the boot with the kernel image in another KASLR slot, checked against real boots."""

from __future__ import annotations

import pytest

from kho_replay.replay.errors import KhoReplayError
from kho_replay.replay.kho.boot import run_cold, run_kexec
from kho_replay.replay.kho.outcome import Outcome
from kho_replay.replay.ops import Reserve
from kho_replay.replay.whatif import find_image, move_image, whatif

from .conftest import A72, A73, B72, B73, D73, H73, IMAGE73, log

M, G = 1 << 20, 1 << 30


def _mib(o: Outcome) -> tuple[int, int, int]:
    s = o.scratch
    return s.lowmem >> 20, s.global_ >> 20, sum(z for _, z in s.pernode) >> 20


def test_image_is_found_by_the_brk_after_it() -> None:
    t = log(A72)
    img = find_image(t)
    assert (img.base, img.size) == (0x61A00000, 45540 << 10)
    assert img.span == (45540 + 68) << 10  # reserve_brk()'s 68K follow the image


def test_moved_ops_say_why_and_nothing_else_changes() -> None:
    t = log(A72)
    img = find_image(t)
    m = move_image(t, 0x141000000)
    changed = [i for i, (a, b) in enumerate(zip(t.ops, m.ops, strict=True)) if a != b]
    assert changed == list(img.indexes)
    for i in changed:
        assert isinstance(m.ops[i], Reserve)
        assert m.ops[i].base - t.ops[i].base == 0x141000000 - 0x61A00000
        assert "what-if: kernel image at 0x141000000 (was 0x61a00000)" in (m.ops[i].inferred or "")


def test_a_72_with_the_73_image_address_gives_the_73_scratch() -> None:
    # 7.2 A had its image below 4 GiB (252/316 MiB lowmem/global); 7.3 A's sat at 0x141000000 and
    # reserved 164/404/380 MiB at 0xb0800000, 0x21cc00000, 0x205000000 (RESULT.txt).
    t = log(A72)
    assert _mib(run_cold(t, "merged"))[:2] != (164, 404)
    o = run_cold(move_image(t, IMAGE73[A73]), "merged")
    assert o.scratch.enabled and _mib(o) == (164, 404, 380)
    assert [(n, b) for n, b, _ in o.scratch.areas] == [("lowmem", 0xB0800000), ("global", 0x21CC00000),
                                                       ("node0", 0x205000000)]


@pytest.mark.parametrize(("image", "pages"), [
    # The image inside a 1 GiB block keeps gigantic pages out of it: memblock_alloc_hugetlb() goes top-down
    # over whole free blocks below the top block (where the memmap and early allocations sit).
    (IMAGE73[A73], (0x1C0000000, 0x180000000)),  # image in [5G, 6G)
    (IMAGE73[D73], (0x1C0000000, 0x180000000)),  # image below 4G: the top two blocks
    (IMAGE73[B73], (0x180000000, 0x140000000)),  # image in [7G, 8G)
    (IMAGE73[H73], (0x180000000, 0x140000000)),
])
def test_b_72_pages_step_around_the_image(image: int, pages: tuple[int, ...]) -> None:
    o = run_cold(move_image(log(B72), image), "merged")
    assert o.gigantic.allocated == 2 and tuple(o.gigantic.addrs) == pages


def test_b_72_with_h_boot_parameters_and_image_is_the_h_boot() -> None:
    # H is B's machine with hugepages=4; its 7.3 kernel put the image at 0x1ecc00000 and reserved
    # 164/404/380 MiB with pages at 6G, 5G, 4G, 1G (RESULT.txt).
    o = run_cold(whatif(log(B72), image_at=IMAGE73[H73], sets=[("hugepages", "4")]), "merged")
    assert _mib(o) == (164, 404, 380)
    assert tuple(o.gigantic.addrs) == (0x180000000, 0x140000000, 0x100000000, 0x40000000)


def test_an_impossible_slot_is_one_error() -> None:
    t = log(B72)
    for bad in (0x141100000, 0x41000000, 0x1000000, 0x240000000):  # unaligned, hugepages block, ZO range, no RAM
        with pytest.raises(KhoReplayError, match=f"image at {bad:#x}: not a slot") as e:
            move_image(t, bad)
        assert "\n" not in str(e.value)


def test_arm64_has_one_slot() -> None:
    t = log("arm64-kho-7.2.13-A-8G-nohuge-memfd16M")
    img = find_image(t)
    assert move_image(t, img.base) is t
    with pytest.raises(KhoReplayError, match="shows no physical KASLR"):
        move_image(t, img.base + 0x200000)


# ------------------------------------------------------------ 7.3 boots

_73 = [A73, B73, D73, H73]
_PAGES73 = {A73: (), B73: (0x180000000, 0x140000000), D73: (0x1C0000000, 0x180000000),
            H73: (0x180000000, 0x140000000, 0x100000000, 0x40000000)}


@pytest.mark.parametrize("name", _73)
def test_73_own_image_reproduces_own_pages(name: str) -> None:
    t = log(name)
    assert find_image(t).base == IMAGE73[name]
    o = run_cold(move_image(t, IMAGE73[name]), "merged")
    assert tuple(o.gigantic.addrs) == _PAGES73[name]


@pytest.mark.parametrize(("name", "other", "pages"), [
    (B73, D73, (0x1C0000000, 0x180000000)),   # image below 4G: B's pages take the top two free blocks, like D's
    (D73, B73, (0x180000000, 0x140000000)),   # image in [7G, 8G): D's pages step below it, like B's
    (B73, A73, (0x1C0000000, 0x180000000)),   # image in [5G, 6G): no longer in the way of 7G and 6G
    (H73, D73, (0x1C0000000, 0x180000000, 0x140000000, 0x100000000)),  # 4 pages, [1G, 2G) no longer needed
    (H73, B73, (0x180000000, 0x140000000, 0x100000000, 0x40000000)),   # B's image is in H's block too
    (A73, H73, ()),                           # no pages asked: none appear
])
def test_73_with_another_boots_image(name: str, other: str, pages: tuple[int, ...]) -> None:
    # Scratch follows the image: below 4 GiB it counts in lowmem (252/316 MiB, as 7.2 A), above it in global.
    t = log(name)
    o = run_cold(move_image(t, IMAGE73[other]), "merged")
    assert o.gigantic.allocated == len(_PAGES73[name])  # keeps its own page count
    assert tuple(o.gigantic.addrs) == pages
    if name != D73:  # D sets kho_scratch= sizes
        assert _mib(o)[:2] == ((252, 316) if IMAGE73[other] < 4 * G else (164, 404))


def test_h_73_refuses_an_image_in_a_block_hugepages_keeps_free() -> None:
    # hugepages=4 keeps [1G, 2G) and [4G, 7G) free: A's 7.3 image at 0x141000000 could not be H's.
    with pytest.raises(KhoReplayError, match="not a slot"):
        move_image(log(H73), IMAGE73[A73])


def test_b_73_set_hugepages_4_at_h_image_is_the_real_h_boot() -> None:
    b, h2 = log(B73), log(H73, 2)
    t = whatif(b, image_at=IMAGE73[H73], sets=[("hugepages", "4")])
    cold, kx = run_kexec(t, "merged", preserve="log", second=h2)
    assert _mib(cold) == (164, 404, 380)
    pages = (0x180000000, 0x140000000, 0x100000000, 0x40000000)
    assert tuple(cold.gigantic.addrs) == pages
    assert sorted(kx.gigantic.addrs) == sorted(pages)


def test_nokaslr_keeps_the_image_where_it_was() -> None:
    from dataclasses import replace

    from kho_replay.replay.whatif import sweep

    t = log(B72)
    t = replace(t, context=replace(t.context, cmdline=t.context.cmdline + " nokaslr"))
    img = find_image(t)
    assert move_image(t, img.base) is t
    with pytest.raises(KhoReplayError, match="physical KASLR is off"):
        move_image(t, 0x141000000)
    with pytest.raises(KhoReplayError, match="no KASLR slots"):
        sweep(t, kaslr="all", jobs=1)
