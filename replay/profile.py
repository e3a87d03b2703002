# SPDX-License-Identifier: GPL-2.0-only
"""Version and architecture differences of memblock, in one table.

The engine never asks "which version is this?"; it reads a named behaviour
from a :class:`Profile` (kernel era) or an :class:`Arch` (per-arch constants),
chosen once from the trace's ``Linux version`` line and arch hints.

>>> profile_for("7.2.13").name, arch_for("x86_64").smp_cache_bytes
('7.2', 64)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .errors import KhoReplayError
from .flags import Flag

__all__ = ["ARCHES", "GENERIC_ARCHES", "PROFILES", "Arch", "Profile", "arch_for", "describe_arch", "profile_for",
           "profile_or_oldest"]


@dataclass(frozen=True, slots=True)
class Profile:
    """Named memblock behaviours of one kernel era."""

    name: str
    version: tuple[int, int]

    #: Since ~6.16 (KHO preparation series): allocations and the doubled array are
    #: reserved MEMBLOCK_RSRV_KERN; before, plain memblock_reserve() (flags 0).
    has_rsrv_kern: bool
    #: nid recorded by plain memblock_reserve(): MAX_NUMNODES up to ~6.15 ("max"),
    #: NUMA_NO_NODE since __memblock_reserve() appeared ("none").
    reserve_nid: str
    #: Allocations record the requested nid (>= ~6.16) instead of MAX_NUMNODES.
    alloc_records_nid: bool
    #: An empty memblock_type has cnt 0 (new) or a dummy entry and cnt 1 (old).
    empty_cnt: int
    #: Before 2dcb39645441 ("memblock: do not start bottom-up allocations with
    #: kernel_end") (v5.11): bottom-up searched above the kernel image first,
    #: then fell back to top-down.
    bottom_up_from_kernel_end: bool
    #: memblock_double_array() before memblock_allow_resize(): panic (new) or
    #: fail the operation with -ENOMEM (old).
    resize_unallowed_panics: bool
    #: Since v6.5 memblock_merge_regions() scans only around the touched range;
    #: before, the whole array.
    ranged_merge: bool
    #: memblock_alloc_hugetlb() and MEMBLOCK_RSRV_HUGETLB (7.3).
    has_alloc_hugetlb: bool
    #: KHO scratch-only support (CONFIG_MEMBLOCK_KHO_SCRATCH exists).
    has_kho_scratch: bool
    #: Any invalid nid means "all nodes" (numa_valid_node(), ~6.10); before,
    #: MAX_NUMNODES was turned into NUMA_NO_NODE with a WARN.
    numa_valid_node: bool
    #: memblock_estimated_nr_free_pages(): "kern" = memory - RSRV_KERN (Nov 2025
    #: fix), "reserved" = memory - reserved (6.12 .. 6.18), None = not present
    #: (fork.c used totalram_pages()).
    nr_free_pages: str | None
    #: Debug line names: the free line and the reserve line.
    free_line: str
    reserve_line: str
    #: memblock_phys_alloc_range prints its own debug line (~5.12).
    phys_alloc_range_dbg: bool
    #: debugfs prints all flag names joined by '|' (7.x) or the lowest only (6.5).
    debugfs_all_flags: bool
    #: sizeof(struct memblock_region) on 64-bit.
    region_size: int = 24
    # --- what the kernel's hugetlb and KHO code do with memblock (the trace's kernel *is* a design)
    #: The gigantic-page API of hugetlb_bootmem_alloc(): "hugetlb" = memblock_alloc_hugetlb() (7.3,
    #: RSRV_KERN|RSRV_HUGETLB, never in kho_scratch[]); "nid_raw" = memblock_alloc_try_nid_raw() /
    #: memblock_alloc_exact_nid_raw() (plain RSRV_KERN).
    gigantic_api: str = "hugetlb"
    #: kho_reserve_scratch() sizes scratch from RSRV_KERN less RSRV_HUGETLB (7.3 scratch_size_update()).
    scratch_sizing_subtracts_hugetlb: bool = True
    #: A KHO boot runs kho_memory_init_early() -> kho_extend_scratch(): every 1 GiB block free of
    #: preserved memory becomes KHO_SCRATCH (7.3).
    kho_boot_extends_scratch: bool = True
    #: The gigantic page's tail is marked NOINIT only when the page stays in one zone (7.3); before,
    #: unconditionally (from ~6.6).
    hugetlb_noinit_same_zone_only: bool = True
    #: mm_core_init_early() order: "7.3" = kho_memory_init_early, free_area_init (zones printed),
    #: hugetlb, sparse_init; "7.2" = hugetlb first, then free_area_init (sparse_init inside).
    mm_core_init_early_order: str = "7.3"

    @property
    def alloc_flags(self) -> int:
        """Flags a memblock allocation's reservation carries."""
        return int(Flag.MEMBLOCK_RSRV_KERN) if self.has_rsrv_kern else 0


_BASE = Profile(
    name="7.3",
    version=(7, 3),
    has_rsrv_kern=True,
    reserve_nid="none",
    alloc_records_nid=True,
    empty_cnt=0,
    bottom_up_from_kernel_end=False,
    resize_unallowed_panics=True,
    ranged_merge=True,
    has_alloc_hugetlb=True,
    has_kho_scratch=True,
    numa_valid_node=True,
    nr_free_pages="kern",
    free_line="memblock_phys_free",
    reserve_line="__memblock_reserve",
    phys_alloc_range_dbg=True,
    debugfs_all_flags=True,
)

#: What 7.3 changed in hugetlb and KHO, undone for every earlier era.
_PRE_73 = dict(
    gigantic_api="nid_raw",
    scratch_sizing_subtracts_hugetlb=False,
    kho_boot_extends_scratch=False,
    hugetlb_noinit_same_zone_only=False,
    mm_core_init_early_order="7.2",
)

_OLD = dict(
    _PRE_73,
    has_rsrv_kern=False,
    reserve_nid="max",
    alloc_records_nid=False,
    empty_cnt=1,
    resize_unallowed_panics=False,
    has_alloc_hugetlb=False,
    has_kho_scratch=False,
    reserve_line="memblock_reserve",
    debugfs_all_flags=False,
)

#: One profile per kernel era we replay, keyed by "major.minor".
PROFILES: dict[str, Profile] = {
    "5.4": replace(_BASE, name="5.4", version=(5, 4), **_OLD, bottom_up_from_kernel_end=True,
                   ranged_merge=False, numa_valid_node=False, nr_free_pages=None,
                   free_line="memblock_free", phys_alloc_range_dbg=False),
    "5.10": replace(_BASE, name="5.10", version=(5, 10), **_OLD, bottom_up_from_kernel_end=True,
                    ranged_merge=False, numa_valid_node=False, nr_free_pages=None,
                    free_line="memblock_free", phys_alloc_range_dbg=False),
    "5.15": replace(_BASE, name="5.15", version=(5, 15), **_OLD, ranged_merge=False,
                    numa_valid_node=False, nr_free_pages=None, free_line="memblock_free"),
    "6.1": replace(_BASE, name="6.1", version=(6, 1), **_OLD, ranged_merge=False,
                   numa_valid_node=False, nr_free_pages=None),
    "6.6": replace(_BASE, name="6.6", version=(6, 6), **_OLD, numa_valid_node=False, nr_free_pages=None),
    "6.12": replace(_BASE, name="6.12", version=(6, 12), **_OLD, nr_free_pages="reserved"),
    "7.2": replace(_BASE, name="7.2", version=(7, 2), has_alloc_hugetlb=False, **_PRE_73),
    "7.3": _BASE,
}


def profile_for(release: str) -> Profile:
    """The profile for a kernel release string (``7.2.13``, ``6.1.0-56-amd64``).

    A release between two eras takes the older era's profile.

    :raises KhoReplayError: for a release older than the oldest profile.
    """
    m = re.match(r"(\d+)\.(\d+)", release.strip())
    if not m:
        raise KhoReplayError(f"cannot read a kernel version from {release!r}")
    want = (int(m.group(1)), int(m.group(2)))
    best = None
    for p in PROFILES.values():
        if p.version <= want and (best is None or p.version > best.version):
            best = p
    if best is None:
        known = ", ".join(PROFILES)
        raise KhoReplayError(f"kernel {release} is older than every profile we model ({known})")
    return best


@dataclass(frozen=True, slots=True)
class Arch:
    """Per-architecture constants memblock depends on."""

    name: str
    page_size: int
    #: Alignment used when a caller passes align == 0 (alloc_range_nid).
    smp_cache_bytes: int
    arch_low_address_limit: int
    init_memory_regions: int
    init_reserved_regions: int
    #: CONFIG_NODES_SHIFT (MAX_NUMNODES = 1 << nodes_shift).
    nodes_shift: int
    numa: bool = True
    thread_size: int = 16 << 10
    #: The direction arch code leaves memblock in (memblock_set_bottom_up() prints nothing).
    bottom_up: bool = False
    #: CONFIG_PHYS_ADDR_T_64BIT or not (ARM without LPAE, MIPS32, SPARC32: 32).
    phys_addr_bits: int = 64
    #: Constants assumed for an arch we have no measured profile of (see :func:`describe_arch`).
    generic: bool = False

    @property
    def max_numnodes(self) -> int:
        """``MAX_NUMNODES``."""
        return 1 << self.nodes_shift


ARCHES: dict[str, Arch] = {
    # Debian and MAXSMP configs: NODES_SHIFT=10.
    "x86_64": Arch("x86_64", 4096, 64, 0xFFFFFFFF, 128, 128, 10),
    # arm64: reserved = INIT_MEMBLOCK_REGIONS + NR_CPUS + 1 (NR_CPUS 512 on Debian),
    # memory = INIT_MEMBLOCK_REGIONS * 8 with EFI.
    "arm64": Arch("arm64", 4096, 64, 0xFFFFFFFF, 1024, 128 + 512 + 1, 4),
    # tools/testing/memblock built with NUMA=1: SMP_CACHE_BYTES 32, NODES_SHIFT 4.
    "harness": Arch("harness", 4096, 32, 0xFFFFFFFF, 128, 128, 4),
}


#: Generic profiles: (PAGE_SIZE, SMP_CACHE_BYTES i.e. L1_CACHE_BYTES of the usual config, bottom-up,
#: phys_addr_t bits, CONFIG_NUMA) of arches whose boots we read but never measured.  Each is an
#: assumption, printed with the trace and overridable: ``--arch mips,page=16K,cache=64,top-down,phys=64``.
GENERIC_ARCHES: dict[str, tuple[int, int, bool, int, bool]] = {
    "arm": (4096, 64, False, 32, False),  # ARMv7 L1 64 bytes; LPAE builds: phys=64
    "riscv64": (4096, 64, False, 64, True),
    "riscv32": (4096, 64, False, 32, False),
    "mips": (4096, 32, True, 32, False),  # arch_mem_init() allocates bottom-up, away from highmem
    "mips64": (4096, 32, True, 64, True),
    "sparc": (4096, 32, True, 32, False),  # sparc32 (srmmu/leon): bottom-up from the kernel image
    "sparc64": (8192, 64, False, 64, True),
    "alpha": (8192, 32, False, 64, False),
    "ppc": (4096, 128, False, 64, True),
    "ppc32": (4096, 32, False, 32, False),
    "s390": (4096, 256, False, 64, True),
    "loongarch64": (16384, 64, False, 64, True),
}
_ARCH_ALIASES = {"aarch64": "arm64", "amd64": "x86_64", "x86-64": "x86_64", "armv7": "arm", "armhf": "arm",
                 "arm32": "arm", "riscv": "riscv64", "mipsel": "mips", "powerpc": "ppc", "ppc64": "ppc",
                 "ppc64le": "ppc", "powerpc64": "ppc", "sparc32": "sparc", "loongarch": "loongarch64",
                 "i386": "x86", "i686": "x86"}
_SIZE = re.compile(r"^(\d+)([KkMm]?)$")


def _size(text: str, spec: str) -> int:
    m = _SIZE.match(text)
    if not m:
        raise KhoReplayError(f"arch {spec!r}: {text!r} is not a size (4096, 16K, 64K)")
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20}[m.group(2).lower()]


def arch_for(name: str) -> Arch:
    """The constants for *name*: ``x86_64``, ``arm64``, ``harness`` (measured), any other arch on a
    generic profile (:data:`GENERIC_ARCHES`, else 4 KiB pages, 64-byte cache lines, top-down).

    *name* may carry overrides: ``ARCH[,page=N][,cache=N][,bottom-up|top-down][,phys=32|64]``.

    >>> a = arch_for("mips,page=16K,top-down")
    >>> a.name, a.page_size, a.smp_cache_bytes, a.bottom_up, a.phys_addr_bits, a.generic
    ('mips', 16384, 32, False, 32, True)

    :raises KhoReplayError: for an override that cannot be read.
    """
    head, *opts = [p.strip() for p in name.split(",")]
    key = _ARCH_ALIASES.get(head.lower(), head.lower())
    if key in ARCHES:
        arch = ARCHES[key]
    else:
        page, cache, up, bits, numa = GENERIC_ARCHES.get(key, (4096, 64, False, 64, True))
        # without CONFIG_NUMA every region's nid reads 0 and MAX_NUMNODES is 1
        arch = Arch(key or "generic", page, cache, 0xFFFFFFFF, 128, 128, 4 if numa else 0, numa=numa,
                    bottom_up=up, phys_addr_bits=bits, generic=True)
    for opt in opts:
        k, _, v = opt.partition("=")
        k = k.strip().lower()
        if k in ("page", "page_size"):
            arch = replace(arch, page_size=_size(v, name))
        elif k in ("cache", "smp_cache_bytes"):
            arch = replace(arch, smp_cache_bytes=_size(v, name))
        elif k in ("bottom-up", "bottom_up", "top-down", "top_down") and not v:
            arch = replace(arch, bottom_up=k.startswith("bottom"))
        elif k == "phys" and v in ("32", "64"):
            arch = replace(arch, phys_addr_bits=int(v))
        else:
            raise KhoReplayError(f"arch {name!r}: unknown override {opt!r} "
                                 "(page=N, cache=N, bottom-up, top-down, phys=32|64)")
    return arch


def describe_arch(arch: Arch) -> str:
    """The assumptions a generic arch profile makes, as one clause of a warning."""
    return (f"{arch.name} replays on a generic arch profile: PAGE_SIZE {arch.page_size}, "
            f"SMP_CACHE_BYTES {arch.smp_cache_bytes}, {'bottom-up' if arch.bottom_up else 'top-down'}, "
            f"{arch.phys_addr_bits}-bit phys_addr_t (override: --arch {arch.name},page=N,cache=N,"
            f"{'top-down' if arch.bottom_up else 'bottom-up'})")


def profile_or_oldest(release: str) -> tuple[Profile, str | None]:
    """:func:`profile_for`, but a release older than every profile (or unreadable) is replayed on the
    nearest profile we have, with a note saying so, instead of refused."""
    try:
        return profile_for(release), None
    except KhoReplayError:
        pass
    m = re.match(r"(\d+)\.(\d+)", release.strip())
    if m:
        oldest = min(PROFILES.values(), key=lambda p: p.version)
        return oldest, f"kernel {release} is older than every profile: replayed with {oldest.name}'s behaviours"
    newest = max(PROFILES.values(), key=lambda p: p.version)
    return newest, f"cannot read a kernel version from {release!r}: replayed as {newest.name}"
