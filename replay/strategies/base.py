# SPDX-License-Identifier: GPL-2.0-only
"""The strategy object: named decision points a design changes, nothing else.

A strategy never runs the boot.  :mod:`..kho.boot` replays the ops and asks
the strategy at each decision point; the knobs say how a design accounts for
gigantic pages, where it places them, and when it reserves preserved memory
and ends scratch-only:

* ``gigantic_api`` - which allocator a gigantic hugetlb request uses
  (``trace``: the API the trace recorded; ``nid_user``: v1's
  ``memblock_alloc_nid_user()``, searching SCRATCH_EXT; ``hugetlb``: 7.3's
  ``memblock_alloc_hugetlb()``, retrying past ``kho_scratch[]``);
* ``hugetlb_rsrv_kern`` - whether a gigantic page stays RSRV_KERN;
* ``hugetlb_in_scratch_sizing`` - whether cold-boot scratch sizing counts it;
* ``extension`` - what the KHO boot does with the 1 GiB digest of preserved
  memory at the start of ``mm_core_init_early()`` (``ext``: flag free blocks
  SCRATCH_EXT; ``scratch``: flag them KHO_SCRATCH; ``reserve_busy``: reserve
  the busy blocks; None);
* ``preserved_reserved_at`` - ``kho_memory_init`` or ``mm_core_init_early``;
* ``scratch_only_ends`` - ``free_all`` or ``mm_core_init_early``;
* ``reserve_scratch_around_hugetlb`` - reserve ``kho_scratch[]`` during the
  hugetlb allocations and release it afterwards (alternative 2);
* ``adopt_preserved_gigantic`` - take gigantic pages from the preserved set
  before allocating (alternative 3).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields, replace

from ..errors import KhoReplayError

__all__ = ["EXCLUDE_HUGETLB", "RAPOPORT_REPLY", "BootPoint", "Extension", "GiganticApi", "Option", "Strategy"]

#: The memblock maintainer's answer to the v1 series, which proposed the four alternative designs.
RAPOPORT_REPLY = ("Mike Rapoport, 2026-05-17, reply to [PATCH 12/12] mm/hugetlb: make bootmem allocation work "
                  "with KHO (https://lists.infradead.org/pipermail/kexec/2026-May/036260.html)")


class GiganticApi(enum.StrEnum):
    """Which allocator a gigantic hugetlb request uses (knob P)."""

    #: the API the trace recorded
    TRACE = "trace"
    #: v1's memblock_alloc_nid_user(), searching SCRATCH_EXT while scratch-only
    NID_USER = "nid_user"
    #: 7.3's memblock_alloc_hugetlb(), retrying past kho_scratch[]
    HUGETLB = "hugetlb"


class Extension(enum.StrEnum):
    """What a KHO boot does with the 1 GiB digest of preserved memory."""

    #: flag the free blocks MEMBLOCK_KHO_SCRATCH_EXT (the posted series)
    EXT = "ext"
    #: flag them MEMBLOCK_KHO_SCRATCH (7.3)
    SCRATCH = "scratch"
    #: reserve the busy blocks (alternative 4)
    RESERVE_BUSY = "reserve_busy"


class BootPoint(enum.StrEnum):
    """A point of the boot where a design reserves preserved memory or ends scratch-only."""

    MM_CORE_INIT_EARLY = "mm_core_init_early"
    KHO_MEMORY_INIT = "kho_memory_init"
    FREE_ALL = "free_all"
    #: preserved memory is never reserved on its own (alternative 4 reserves whole blocks)
    NEVER = "never"


class Option(enum.StrEnum):
    """The built-in strategies' options (``NAME+OPTION`` on the command line)."""

    EXCLUDE_HUGETLB = "exclude-hugetlb"
    PROTECT_SCRATCH = "protect-scratch"

#: Option for the designs whose proposal leaves accounting open (alternatives 2 and 4, the Dec 2025
#: RFC): pair them with the merged design's scratch sizing instead of baseline's.
EXCLUDE_HUGETLB = (Option.EXCLUDE_HUGETLB.value, "size cold-boot scratch without gigantic pages, as 7.3 does")


@dataclass(frozen=True)
class Strategy:
    """A design as knob settings; subclasses or instances set the knobs and describe the source."""

    name: str = "baseline"
    description: str = ""
    source: str = ""
    gigantic_api: GiganticApi = GiganticApi.TRACE
    hugetlb_rsrv_kern: bool = True
    hugetlb_in_scratch_sizing: bool = True
    extension: Extension | None = None
    preserved_reserved_at: BootPoint = BootPoint.KHO_MEMORY_INIT
    scratch_only_ends: BootPoint = BootPoint.FREE_ALL
    reserve_scratch_around_hugetlb: bool = False
    adopt_preserved_gigantic: bool = False
    #: --option values this strategy understands, name -> one-line help.
    known_options: tuple[tuple[str, str], ...] = ()
    options: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        # Knobs given as strings become their enums; a misspelt one is an error, not a silent default.
        for f in fields(self):
            kind = _KNOBS.get(f.name)
            value = getattr(self, f.name)
            if kind is None or value is None or isinstance(value, kind[0]):
                continue
            if value not in kind[1]:
                raise KhoReplayError(f"strategy {self.name}: {f.name} {value!r} is not one of "
                                     f"{', '.join(kind[1])}")
            object.__setattr__(self, f.name, kind[0](value))
        bad = sorted(set(self.options) - {k for k, _ in self.known_options})
        if bad:
            raise KhoReplayError(f"strategy {self.name} has no option {', '.join(bad)} "
                                 f"(known: {', '.join(sorted(k for k, _ in self.known_options)) or 'none'})")

    def with_options(self, options: frozenset[str] | set[str] | tuple[str, ...]) -> Strategy:
        """This strategy with ``--option`` values applied.

        :raises KhoReplayError: for an option the strategy does not know.
        """
        return self.configure(replace(self, options=frozenset(options)))

    def configure(self, s: Strategy) -> Strategy:
        """Turn options into knob settings: ``exclude-hugetlb`` where the strategy offers it."""
        if EXCLUDE_HUGETLB[0] in s.options:
            return replace(s, hugetlb_in_scratch_sizing=False)
        return s


#: Knob fields and the values each takes (decision points a design may move).
_KNOBS: dict[str, tuple[type[enum.StrEnum], tuple[str, ...]]] = {
    "gigantic_api": (GiganticApi, tuple(GiganticApi)),
    "extension": (Extension, tuple(Extension)),
    "preserved_reserved_at": (BootPoint, (BootPoint.MM_CORE_INIT_EARLY, BootPoint.KHO_MEMORY_INIT, BootPoint.NEVER)),
    "scratch_only_ends": (BootPoint, (BootPoint.MM_CORE_INIT_EARLY, BootPoint.FREE_ALL)),
}
