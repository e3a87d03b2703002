# SPDX-License-Identifier: GPL-2.0-only
"""The strategy object: named decision points a design changes, nothing else.

A strategy never runs the boot.  :mod:`..boot` replays the ops and asks the
strategy at each decision point of kho-spec §10 (knobs A accounting, P
placement, O ordering):

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

from dataclasses import dataclass, field, replace

from ..errors import KhoReplayError

__all__ = ["EXCLUDE_HUGETLB", "Strategy"]

#: Option for the designs whose proposal leaves accounting open (alternatives 2 and 4, E1):
#: pair them with the merged design's scratch sizing instead of baseline's (kho-spec §10.5).
EXCLUDE_HUGETLB = ("exclude-hugetlb", "size cold-boot scratch without gigantic pages, as 7.3 does (A-M)")


@dataclass(frozen=True)
class Strategy:
    """A design as knob settings; subclasses or instances set the knobs and describe the source."""

    name: str = "baseline"
    description: str = ""
    source: str = ""
    gigantic_api: str = "trace"
    hugetlb_rsrv_kern: bool = True
    hugetlb_in_scratch_sizing: bool = True
    extension: str | None = None
    preserved_reserved_at: str = "kho_memory_init"
    scratch_only_ends: str = "free_all"
    reserve_scratch_around_hugetlb: bool = False
    adopt_preserved_gigantic: bool = False
    #: --option values this strategy understands, name -> one-line help.
    known_options: tuple[tuple[str, str], ...] = ()
    options: frozenset[str] = field(default_factory=frozenset)

    def with_options(self, options: frozenset[str] | set[str] | tuple[str, ...]) -> Strategy:
        """This strategy with ``--option`` values applied.

        :raises KhoReplayError: for an option the strategy does not know.
        """
        opts = frozenset(options)
        known = {k for k, _ in self.known_options}
        bad = sorted(opts - known)
        if bad:
            raise KhoReplayError(f"strategy {self.name} has no option {', '.join(bad)} "
                                 f"(known: {', '.join(sorted(known)) or 'none'})")
        return self.configure(replace(self, options=opts))

    def configure(self, s: Strategy) -> Strategy:
        """Turn options into knob settings: ``exclude-hugetlb`` where the strategy offers it."""
        if EXCLUDE_HUGETLB[0] in s.options:
            return replace(s, hugetlb_in_scratch_sizing=False)
        return s
