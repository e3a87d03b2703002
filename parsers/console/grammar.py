# SPDX-License-Identifier: GPL-2.0-only
"""The kernel's console messages that carry memblock activity, and each era's spelling.

Regexes for every ``memblock_dbg()`` line and for the context lines around them
(version, command line, NUMA, zones, CMA, ``Memory:``, ``KHO:``, ``HugeTLB:``);
:data:`ERAS` says how a range of releases names its reserve and free calls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ARCH_HINTS", "ERAS", "ERA_CLUES", "Era", "EraClue", "era_for", "infer_release", "range_of",
           "stated_kib", "why_not_understood"]

# --------------------------------------------------------------------------
# Constants

PHYS_MASK = (1 << 64) - 1
ULLONG_MAX = PHYS_MASK
SZ_1M = 1 << 20
SZ_4G = 1 << 32
#: 4 KiB pages on every arch whose boots we read (x86_64, arm64 Debian and KHO builds).
PAGE_SIZE = 4096
#: x86 ISA_END_ADDRESS: memblock's limit until init_mem_mapping() is done.
ISA_END_ADDRESS = 0x100000
#: CMA_MIN_ALIGNMENT_BYTES with 4 KiB pages (pageblock_order 9).
CMA_MIN_ALIGNMENT_BYTES = 2 << 20
#: kernel/liveupdate/kexec_handover.c SCRATCH_ALIGNMENT_BYTES (CMA alignment).
SCRATCH_ALIGNMENT_BYTES = CMA_MIN_ALIGNMENT_BYTES
#: arm64 DMA limit for the global CMA area when the log prints no "Zone ranges:" (4 GiB: ZONE_DMA32).
ARM64_DMA_PHYS_LIMIT = SZ_4G

# --------------------------------------------------------------------------
# Compiled regexes: printk text

_HEX = r"(?:0x)?[0-9a-fA-F]+"
_RANGE = rf"\[(?P<base>{_HEX})-(?P<end>{_HEX})\]"
_CALLER = r"(?P<caller>\S+(?: \[\S+\])?)"

#: ``memblock_add: [a-b] caller`` and every other plain range line (4.x: ``flags 0x0`` before the caller).
RANGE_LINE = re.compile(
    r"^\s*(?P<fn>memblock_add|memblock_remove|memblock_reserve|memblock_free|memblock_phys_free"
    r"|__memblock_free_late|memblock_free_late|memblock_physmem_add|__memblock_free_early"
    rf"|memblock_free_early): {_RANGE} (?:flags (?P<oldflags>0x[0-9a-fA-F]+) )?{_CALLER}$"
)
#: ``__memblock_reserve`` (>= 6.16) and ``memblock_add_node`` (>= 5.16): nid and flags.
NID_RANGE_LINE = re.compile(
    rf"^(?P<fn>__memblock_reserve|memblock_add_node): {_RANGE} nid=(?P<nid>-?\d+) "
    rf"flags=(?P<flags>[0-9a-fA-F]+) {_CALLER}$"
)
#: ``memblock_alloc_try_nid[_raw]`` / ``memblock_alloc_exact_nid_raw`` (and 4.x
#: ``memblock_virt_alloc_*``, whose from/max_addr had no ``0x``).
ALLOC_NID_LINE = re.compile(
    r"^(?P<fn>memblock_alloc_try_nid|memblock_alloc_try_nid_raw|memblock_alloc_exact_nid_raw"
    r"|memblock_alloc_try_nid_nopanic|memblock_virt_alloc_try_nid(?:_raw|_nopanic)?): "
    rf"(?P<size>\d+) bytes align=0x(?P<align>[0-9a-fA-F]+) nid=(?P<nid>-?\d+) "
    rf"from=(?P<min>{_HEX}) max_addr=(?P<max>{_HEX}) {_CALLER}$"
)
#: ``memblock_phys_alloc_range`` (>= ~5.12).
PHYS_ALLOC_LINE = re.compile(
    r"^(?P<fn>memblock_phys_alloc_range): (?P<size>\d+) bytes align=0x(?P<align>[0-9a-fA-F]+) "
    rf"from=(?P<min>{_HEX}) max_addr=(?P<max>{_HEX}) {_CALLER}$"
)
#: ``memblock_alloc_hugetlb`` (7.3): note the commas, no align.
HUGETLB_ALLOC_LINE = re.compile(
    r"^(?P<fn>memblock_alloc_hugetlb): (?P<size>\d+) bytes, nid=(?P<nid>-?\d+), "
    rf"exact_nid=(?P<exact>\d+) {_CALLER}$"
)
#: ``memblock: reserved is doubled to 256 at [a-b]`` (3.x said ``reserved array``).
DOUBLED_LINE = re.compile(
    rf"^memblock: (?P<name>\w+) (?:array )?is doubled to (?P<max>\d+) at {_RANGE}(?P<rest>.*)$"
)
DOUBLE_FAILED_LINE = re.compile(
    r"^memblock: Failed to double (?P<name>\w+) array from (?P<old>\d+) to (?P<new>\d+) entries !$"
)
RESIZE_PANIC_LINE = re.compile(r"^.*memblock: cannot resize (?P<name>\w+) array$")
MIRROR_FAIL_LINE = re.compile(r"^Could not allocate (?P<size>0x[0-9a-f]+) bytes of mirrored memory$")

DUMP_HEAD = re.compile(r"^MEMBLOCK configuration:$")
DUMP_SIZES = re.compile(rf"^\s*memory size = (?P<mem>{_HEX}) reserved size = (?P<res>{_HEX})$")
DUMP_CNT = re.compile(r"^\s*(?P<type>memory|reserved|physmem)\.cnt\s+=\s+0x(?P<cnt>[0-9a-f]+)$")
DUMP_REGION = re.compile(
    rf"^\s*(?P<type>memory|reserved|physmem)\[0x(?P<idx>[0-9a-f]+)\]\s+{_RANGE}, (?P<size>{_HEX}) bytes"
    r"(?: on node (?P<nid>-?\d+))? flags: (?P<flags>0x[0-9a-f]+|0)(?:\s+(?P<note>\S.*?))?\s*$"
)

#: A line that claims to be memblock output: anything not understood is Skipped.
MEMBLOCKISH = re.compile(r"^\s*(?:__)?(?:memblock_\w+:|memblock: |MEMBLOCK |(?:memory|reserved|physmem)[.\[])")

#: How every line a pass after cleaning reads begins (memblock lines, dumps, listings, context lines,
#: section markers): the rest of a capture (other kernel messages, userspace) is dropped before the walk
#: with this one test, ``"memblock" in text`` (``... memblock: cannot resize ...``) and ``".." in text``
#: (debugfs rows).
RELEVANT = re.compile(
    r"\s*(?:__)?(?:memblock|MEMBLOCK|memory|reserved|physmem)|\s+(?:\w+\s+(?:\[mem |empty)|node\s)"
    r"|Linux version |(?:Kernel )?[Cc]ommand line: |BIOS-e820|e820|user: |NODE_DATA\(|Memory: |KHO: |HugeTLB: "
    r"|cma: Reserved |Freeing |Could not allocate |Zone ranges:|Early memory node ranges|====="
    r"|ACPI: SRAT: |NUMA: |Faking a node|No NUMA|Initmem setup"
)

#: The start of a memblock line a mail may have hard-wrapped (joined back when the result parses).
WRAPPED_START = re.compile(r"^\s*(?:(?:__)?memblock_\w+:|(?:memory|reserved|physmem)(?:\[|\.cnt| size))")
#: How a complete memblock line ends (a caller, a dump row's flags, a count): no need to try a join.
COMPLETE_END = re.compile(r"(?:\+0x[0-9a-f]+/0x[0-9a-f]+(?: \[\S+\])?|flags: 0x[0-9a-f]+|= 0x[0-9a-f]+)\s*$")

VERSION_LINE = re.compile(r"^Linux version (?P<release>\S+)(?P<rest>.*)$")
CMDLINE_LINE = re.compile(r"^(?:Kernel )?[Cc]ommand line: (?P<cmdline>.*)$")
E820_LINE = re.compile(r"^(?:BIOS-e820|e820|user): \[mem (?P<base>0x[0-9a-f]+)-(?P<end>0x[0-9a-f]+)\] (?P<type>.+)$")
SRAT_LINE = re.compile(r"^ACPI: SRAT: Node (?P<nid>\d+) PXM \d+ \[mem (?P<base>0x[0-9a-f]+)-(?P<end>0x[0-9a-f]+)\]")
NUMA_MERGE_LINE = re.compile(
    r"^NUMA: Node (?P<nid>\d+) \[mem .*\] \+ \[mem .*\] -> \[mem (?P<base>0x[0-9a-f]+)-(?P<end>0x[0-9a-f]+)\]$"
)
FAKE_NODE_LINE = re.compile(r"^(?:NUMA: )?Faking a node at \[mem (?P<base>0x[0-9a-f]+)-(?P<end>0x[0-9a-f]+)\]$")
NO_NUMA_LINE = re.compile(r"^No NUMA configuration found$")
INITMEM_LINE = re.compile(r"^Initmem setup node (?P<nid>\d+) \[mem (?P<base>0x[0-9a-f]+)-(?P<end>0x[0-9a-f]+)\]$")
NODE_DATA_LINE = re.compile(
    r"^NODE_DATA\((?P<nid>\d+)\) allocated \[mem (?P<base>0x[0-9a-f]+)-(?P<end>0x[0-9a-f]+)\]$"
)
ZONE_LINE = re.compile(r"^\s+(?P<zone>DMA|DMA32)\s+\[mem (?P<base>0x[0-9a-f]+)-(?P<end>0x[0-9a-f]+)\]$")
#: free_area_init()'s listings: ``Zone ranges:`` then one line per zone, ``Early memory node ranges``
#: then one line per memory[] region.
ZONE_RANGES_HEAD = re.compile(r"^Zone ranges:$")
ZONE_ANY_LINE = re.compile(
    r"^\s+(?P<zone>\w+)\s+(?:\[mem (?P<base>0x[0-9a-f]+)-(?P<end>0x[0-9a-f]+)\]|empty)$"
)
NODE_RANGES_HEAD = re.compile(r"^Early memory node ranges$")
NODE_RANGE_ITEM = re.compile(r"^\s+node\s+(?P<nid>\d+): \[mem (?P<base>0x[0-9a-f]+)-(?P<end>0x[0-9a-f]+)\]$")
#: Callers of 7.3 kho_memory_init_early() / kho_extend_scratch() and the frees of its busy-block tree.
KHO_EARLY_CALLERS = frozenset({"kho_memory_init_early", "kho_radix_add_key", "kho_extend_scratch"})
KHO_RADIX_FREE_CALLERS = frozenset({"__kho_radix_destroy_tree", "kho_radix_destroy_tree"})
CMA_LINE = re.compile(r"^cma: Reserved (?P<mib>\d+) MiB at (?P<base>0x[0-9a-f]+)")
#: cma_declare_contiguous_multi() (hugetlb_cma's path): no address, the number of ranges.
CMA_MULTI_LINE = re.compile(r"^cma: Reserved (?P<mib>\d+) MiB in (?P<ranges>\d+) ranges?$")
#: hugetlb_cma's CMA alignment: the gigantic page (PAGE_SIZE << arch_hugetlb_cma_order(), 1 GiB with 4 KiB pages).
HUGETLB_CMA_ALIGN = 1 << 30
# free_initmem() / free_initrd_mem() after boot: sizes only, no ranges.
FREEING_LINE = re.compile(r"^Freeing (?P<what>initrd memory|unused kernel (?:image \(\w+\) )?memory): (?P<kib>\d+)K$")
MEMORY_LINE = re.compile(r"^Memory: (?P<avail>\d+)K/(?P<total>\d+)K available \((?P<detail>.*)\)$")
KHO_LINE = re.compile(r"^KHO: (?P<text>.*)$")
HUGETLB_LINE = re.compile(r"^HugeTLB: (?P<text>.*)$")
#: Sections the fixtures' init scripts print: ``===== BEGIN memblock-reserved =====``.
SECTION_BEGIN = re.compile(r"^===== BEGIN (?P<name>.+) =====$")
SECTION_END = re.compile(r"^===== END =====$")
#: Callers whose reservation line is the result of an allocation.
ALLOC_RESERVE_CALLERS = ("memblock_alloc_range_nid", "memblock_alloc_internal", "memblock_alloc_base_nid",
                         "memblock_alloc_hugetlb", "__memblock_alloc_base", "memblock_virt_alloc_internal")
DOUBLE_CALLER = "memblock_double_array"
#: Callers of the KHO memory init (kernel/liveupdate/kexec_handover.c), inlined or not.
KHO_INIT_CALLERS = frozenset({"kho_memory_init", "kho_reserve_scratch", "kho_preserved_memory_reserve"})
#: mm/hugetlb.c callers of the boot-time gigantic page allocations.
HUGETLB_BOOTMEM_CALLERS = frozenset({"alloc_bootmem", "__alloc_bootmem_huge_page", "alloc_bootmem_huge_page"})


# --------------------------------------------------------------------------
# Console-format eras: what the kernel printed, chosen once from the release.


@dataclass(frozen=True, slots=True)
class Era:
    """How one range of kernel releases spells its memblock lines."""

    name: str
    #: reservation line: ``memblock_reserve`` (no nid/flags) or ``__memblock_reserve``.
    reserve_fn: str
    #: reserved-array free line: ``memblock_free`` (<= 5.15) or ``memblock_phys_free``.
    free_fn: str
    #: late free that leaves memblock.reserved alone (None: folded into the free line).
    free_late_fn: str | None
    #: x86 e820__memblock_setup() marks [0, 1M) KHO_SCRATCH and reserve_real_mode() clears it.
    x86_lowmem_scratch: bool
    #: numa_cleanup_meminfo() clips node blocks to memblock_start_of_DRAM() (mm/numa_memblks.c,
    #: ~6.12) so they match the Initmem spans; before, blocks started where firmware said (low = 0).
    numa_blocks_from_dram: bool
    #: Since ~6.6 (hugetlb vmemmap optimisation at boot) __alloc_bootmem_huge_page() marks a gigantic
    #: page's tail MEMBLOCK_RSRV_NOINIT right after allocating it; before, no flag was set.
    hugetlb_tail_noinit: bool
    #: numa_init() reset memory and reserved node ids to MAX_NUMNODES before the numa_memblks move
    #: (~6.12), to NUMA_NO_NODE since.
    numa_reset_to_max: bool


#: One row per era, newest first; the first row whose minimum release <= the trace's wins.
ERAS: tuple[tuple[tuple[int, int], Era], ...] = (
    ((6, 16), Era("6.16+", "__memblock_reserve", "memblock_phys_free", None,
                  x86_lowmem_scratch=True, numa_blocks_from_dram=True, hugetlb_tail_noinit=True,
                  numa_reset_to_max=False)),
    ((6, 12), Era("6.12-6.15", "memblock_reserve", "memblock_phys_free", "memblock_free_late",
                  x86_lowmem_scratch=False, numa_blocks_from_dram=True, hugetlb_tail_noinit=True,
                  numa_reset_to_max=False)),
    ((6, 6), Era("6.6-6.11", "memblock_reserve", "memblock_phys_free", "memblock_free_late",
                 x86_lowmem_scratch=False, numa_blocks_from_dram=False, hugetlb_tail_noinit=True,
                 numa_reset_to_max=True)),
    ((5, 16), Era("5.16-6.5", "memblock_reserve", "memblock_phys_free", "memblock_free_late",
                  x86_lowmem_scratch=False, numa_blocks_from_dram=False, hugetlb_tail_noinit=False,
                  numa_reset_to_max=True)),
    ((4, 0), Era("4.x-5.15", "memblock_reserve", "memblock_free", "__memblock_free_late",
                 x86_lowmem_scratch=False, numa_blocks_from_dram=False, hugetlb_tail_noinit=False,
                 numa_reset_to_max=True)),
)


def era_for(version: tuple[int, int]) -> Era | None:
    """The console era of a kernel ``(major, minor)``; None when older than every era."""
    for since, era in ERAS:
        if version >= since:
            return era
    return None


# --------------------------------------------------------------------------
# A log without a 'Linux version' banner: the line formats say which releases could have printed it.


@dataclass(frozen=True, slots=True)
class EraClue:
    """A line format only some releases print: ``since`` <= release <= ``until`` (None: open)."""

    pattern: re.Pattern[str]
    since: tuple[int, int] | None
    until: tuple[int, int] | None
    says: str


ERA_CLUES: tuple[EraClue, ...] = (
    EraClue(re.compile(r"^memblock_alloc_hugetlb: "), (7, 3), None, "memblock_alloc_hugetlb"),
    EraClue(re.compile(r"^__memblock_reserve: \[\S+\] nid=-?\d+ flags="), (6, 16), None,
            "__memblock_reserve ... nid= flags="),
    EraClue(re.compile(r"^memblock_phys_free: "), (5, 16), None, "memblock_phys_free"),
    EraClue(re.compile(r"^memblock_free_late: "), (5, 16), None, "memblock_free_late"),
    EraClue(re.compile(r"^memblock_add_node: \[\S+\] nid="), (5, 16), None, "memblock_add_node ... nid= flags="),
    EraClue(re.compile(r"^memblock_phys_alloc_range: "), (5, 12), None, "memblock_phys_alloc_range"),
    EraClue(re.compile(r"^memblock_alloc_exact_nid_raw: "), (5, 10), None, "memblock_alloc_exact_nid_raw"),
    EraClue(re.compile(r"^\s*\d+: 0x[0-9a-f]+\.\.0x[0-9a-f]+\s+(?:-?\d+|x)\s+[A-Z_|]+\s*$"), (6, 5), None,
            "debugfs rows with nid and flag names"),
    EraClue(re.compile(r"^\s*\d+: 0x[0-9a-f]+\.\.0x[0-9a-f]+\s*$"), None, (6, 4), "debugfs rows without nid"),
    EraClue(re.compile(r"^memblock_reserve: "), None, (6, 15), "memblock_reserve without nid/flags"),
    EraClue(re.compile(r"^memblock_free: \["), None, (5, 15), "memblock_free of a physical range"),
    EraClue(re.compile(r"^__memblock_free_late: "), None, (5, 15), "__memblock_free_late"),
    EraClue(re.compile(r"^(?:memblock_alloc_try_nid_nopanic|__memblock_free_early): "), None, (5, 0),
            "memblock_alloc_try_nid_nopanic / __memblock_free_early"),
    EraClue(re.compile(r"^memblock_virt_alloc"), None, (4, 19), "memblock_virt_alloc_*"),
    EraClue(re.compile(r"^memblock_\w+: \[\S+\] flags 0x"), None, (4, 19), "'flags 0x..' before the caller"),
    EraClue(re.compile(r"^\s*(?:memory|reserved)\[0x[0-9a-f]+\]\s+\[0x[0-9a-f]{14}-"), None, (5, 3),
            "%#016llx dump addresses"),
)

#: The oldest release whose formats we read (4.4: the ``flags 0x0`` reserve lines).
OLDEST_READ = (4, 4)


def infer_release(texts: list[str], newest: tuple[int, int]) -> tuple[tuple[int, int], str]:
    """The release a banner-less log most likely came from, and why, from its line formats.

    The newest release every clue allows is assumed (a range with no upper bound: *newest*); when
    clues disagree (distribution backports), the newest lower bound wins: a new name proves new code.
    """
    lo: tuple[tuple[int, int], str] | None = None
    hi: tuple[tuple[int, int], str] | None = None
    for clue in ERA_CLUES:
        if not any(clue.pattern.match(t) for t in texts):
            continue
        if clue.since is not None and (lo is None or clue.since > lo[0]):
            lo = (clue.since, clue.says)
        if clue.until is not None and (hi is None or clue.until < hi[0]):
            hi = (clue.until, clue.says)
    def v(x: tuple[int, int]) -> str:
        return f"{x[0]}.{x[1]}"
    if lo is None and hi is None:
        return newest, f"no era-specific memblock line: assumed {v(newest)}"
    if hi is None:
        assert lo is not None
        return max(lo[0], newest), f"'{lo[1]}' is printed since {v(lo[0])}: assumed {v(max(lo[0], newest))}"
    if lo is None:
        return hi[0], f"'{hi[1]}' is printed up to {v(hi[0])}: assumed {v(hi[0])}"
    if lo[0] > hi[0]:
        return lo[0], (f"'{lo[1]}' (since {v(lo[0])}) and '{hi[1]}' (up to {v(hi[0])}) disagree (a backport?): "
                       f"assumed {v(lo[0])}")
    return hi[0], f"'{lo[1]}' (since {v(lo[0])}) and '{hi[1]}' (up to {v(hi[0])}): assumed {v(hi[0])}"


#: Lines that name the architecture, strongest first: (pattern on the printk text, arch).
ARCH_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^Linux version .*\b(?:aarch64|arm64)\b"), "arm64"),
    (re.compile(r"^Linux version .*\b(?:x86_64|amd64)\b"), "x86_64"),
    (re.compile(r"^Linux version .*\briscv64"), "riscv64"),
    (re.compile(r"^Linux version .*\bmips"), "mips"),
    (re.compile(r"^Linux version .*\b(?:powerpc|ppc)"), "ppc"),
    (re.compile(r"^Linux version .*\bsparc"), "sparc"),
    (re.compile(r"^Linux version .*\balpha"), "alpha"),
    (re.compile(r"^Linux version .*\barm-"), "arm"),
    (re.compile(r"^CPU: ARMv[4-7]|^CPU: .*\(ARMv[4-7]|\barm_memblock_init\+"), "arm"),
    (re.compile(r"^Booting Linux on physical CPU|\b(?:arm64_memblock_init|early_pgtable_alloc)\+"
                r"|^efi: Getting EFI parameters from FDT"), "arm64"),
    (re.compile(r"^(?:BIOS-e820|e820|x86/\w+):|\be820__\w+\+"), "x86_64"),
    (re.compile(r"^riscv: |^SBI specification|^earlycon: sbi|\bsetup_bootmem\+.*\briscv"), "riscv64"),
    (re.compile(r"^MIPS: |^CPU0 revision is: |^Determined physical RAM map:"), "mips"),
    (re.compile(r"\b(?:srmmu_|sparc_|leon_)\w*\+|^PROMLIB: "), "sparc"),
    (re.compile(r"using machine vector|^Booting on .* from SRM"), "alpha"),
    (re.compile(r"^(?:Using .* machine description|Hash_table|ppc64_)"), "ppc"),
)

_NO_CALLER = re.compile(rf"^\s*(?:__)?memblock_\w+: {_RANGE}\s*$")
_SPACED_HEX = re.compile(r"\[0x[0-9a-fA-F]+ [0-9a-fA-F ]+-|-0x[0-9a-fA-F]+ [0-9a-fA-F ]+\]")


def why_not_understood(text: str) -> str:
    """The reason a memblock-looking line is skipped, as precise as the line allows."""
    if _NO_CALLER.match(text):
        return "memblock line cut short: no caller after the range"
    if _SPACED_HEX.search(text):
        return "memblock line with spaces inside an address (edited by hand?)"
    return "memblock-looking line not understood"


def range_of(m: re.Match[str]) -> tuple[int, int]:
    """(base, size) of a printed inclusive ``[base-end]``, in phys_addr_t arithmetic."""
    base = int(m.group("base"), 16)
    end = int(m.group("end"), 16)
    # size 0 prints end = base - 1, and arm64 removes [1 << 52, ULLONG_MAX): both wrap
    return base, (end + 1 - base) & PHYS_MASK


def stated_kib(kind: str, text: str) -> int | None:
    """The size a ``Memory: ...K/...K available`` (*kind* ``memory``: the total) or ``Freeing ...K``
    line states, in KiB, as :class:`~kho_replay.replay.ops.KernelMessage` keeps it; None for other lines."""
    if kind == "memory" and (m := MEMORY_LINE.match(text)) is not None:
        return int(m.group("total"))
    if (m := FREEING_LINE.match(text)) is not None:
        return int(m.group("kib"))
    return None
