# SPDX-License-Identifier: GPL-2.0-only
"""Line two outcomes up request by request and metric by metric.

A :class:`Diff` answers "what changes?" between an ``old`` outcome (usually
``baseline``) and a ``new`` one (a strategy, or a second real boot): which
allocation requests moved (old -> new address, distance, now inside or
outside ``kho_scratch[]``), which now fail or now succeed, which one only
one side made, how every metric moved (old, new, delta, as
``scripts/bloat-o-meter`` prints them), which kernel messages were added or
are gone, and the first divergence in boot order with its caller.

Requests pair by op index; several requests of one op (the synthesized
``kho_reserve_scratch()`` allocations) pair by their order within the op.
A *threshold* hides byte deltas and moves smaller than it; what is hidden
does not count as a divergence.

>>> from kho_replay.parsers import load
>>> from kho_replay.replay.kho.boot import run_cold
>>> t = load("traces/x86_64-kho-7.2.13-B-8G-hugepages1G2-defaultscale-scratchfail/console-kernel1.log.gz")
>>> d = diff(run_cold(t, "baseline"), run_cold(t, "merged"), trace=t)
>>> d.diverged, d.metric("scratch reserved").old, d.metric("scratch reserved").new
(True, 'no (failed: global)', 'yes')
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ..kho.classify import Subsystem
from ..kho.outcome import Outcome, Request, ScratchArea
from ..ops import Trace, caller_function
from ..report.units import human, signed  # noqa: F401 - human: re-exported for older callers

__all__ = ["Change", "Diff", "Kind", "Metric", "RegionChange", "diff", "in_areas", "metrics", "region_changes",
           "requests_phrase"]


class Kind(enum.StrEnum):
    """How one request changed."""

    moved = "moved"
    now_fails = "now fails"
    now_succeeds = "now succeeds"
    resized = "resized"
    added = "added"
    gone = "gone"


@dataclass(frozen=True, slots=True)
class Change:
    """One request that differs: old and new result, scratch membership on each side, source line."""

    kind: Kind
    op_index: int
    api: str
    caller: str | None
    subsystem: Subsystem
    nid: int
    old_size: int | None
    new_size: int | None
    old_addr: int | None
    new_addr: int | None
    old_in_scratch: bool
    new_in_scratch: bool
    synthesized: bool
    #: ``file:line`` of the op in the trace, when known.
    src: str | None = None
    #: The console line the kernel printed for the op, when it can be read back.
    words: str | None = None

    @property
    def distance(self) -> int | None:
        """new - old address in bytes (None unless both sides placed the request)."""
        if self.old_addr is None or self.new_addr is None:
            return None
        return self.new_addr - self.old_addr

    @property
    def scratch_note(self) -> str:
        """``now inside scratch`` / ``now outside scratch`` when membership changed, else ''."""
        if self.old_in_scratch == self.new_in_scratch or self.subsystem is Subsystem.KHO_SCRATCH:
            return ""
        return "now inside scratch" if self.new_in_scratch else "now outside scratch"


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric on both sides; ``unit`` is ``bytes``, ``count`` or ``''`` (a word such as yes/no)."""

    name: str
    old: int | str | None
    new: int | str | None
    unit: str = "count"
    #: Cost proxies are shown but are not outcomes: they never make a diff diverge.
    informational: bool = False

    @property
    def delta(self) -> int | None:
        """new - old for numbers (a missing side counts as 0), None for words."""
        if self.unit == "" or isinstance(self.old, str) or isinstance(self.new, str):
            return None
        return (self.new or 0) - (self.old or 0)

    @property
    def changed(self) -> bool:
        """Whether the two sides differ."""
        return self.old != self.new


@dataclass(frozen=True, slots=True)
class RegionChange:
    """A final ``reserved[]`` region of one side that holds several whole regions of the other side.

    ``merged``: the new region covers ``parts`` old ones (they now touch and
    merged); ``split``: the old region covers ``parts`` new ones.
    """

    kind: str
    base: int
    size: int
    parts: int


def _covering(outer: Sequence[tuple[int, int]], inner: Sequence[tuple[int, int]]) -> Iterator[tuple[int, int, int]]:
    """(base, size, n) for each region of *outer* that contains n >= 2 whole regions of *inner* (both sorted)."""
    j = 0
    for base, size in outer:
        end = base + size
        while j < len(inner) and inner[j][0] < base:
            j += 1
        k, n = j, 0
        while k < len(inner) and inner[k][0] < end:
            if inner[k][0] + inner[k][1] <= end:
                n += 1
            k += 1
        if n >= 2:
            yield base, size, n


def region_changes(old: Sequence[tuple[int, int]], new: Sequence[tuple[int, int]]) -> tuple[RegionChange, ...]:
    """Reservations that merged or split between two final ``reserved[]`` tables of ``(base, size)``."""
    a, b = sorted(old), sorted(new)
    out = [RegionChange("merged", base, size, n) for base, size, n in _covering(b, a)]
    out += [RegionChange("split", base, size, n) for base, size, n in _covering(a, b)]
    return tuple(sorted(out, key=lambda r: r.base))


@dataclass(frozen=True, slots=True)
class Diff:
    """What changed from *old* to *new* (see the module docstring)."""

    old: Outcome
    new: Outcome
    changes: tuple[Change, ...]
    metrics: tuple[Metric, ...]
    messages_added: tuple[str, ...]
    messages_gone: tuple[str, ...]
    threshold: int = 0
    #: Reservations that merged or split (only when both final tables were given).
    regions: tuple[RegionChange, ...] = ()

    @property
    def shown_metrics(self) -> tuple[Metric, ...]:
        """Changed metrics whose delta is not hidden by the threshold."""
        return tuple(m for m in self.metrics if m.changed and not self._hidden(m))

    def _hidden(self, m: Metric) -> bool:
        return m.unit == "bytes" and m.delta is not None and abs(m.delta) < self.threshold

    @property
    def shown_changes(self) -> tuple[Change, ...]:
        """Changed requests, without moves shorter than the threshold."""
        return tuple(c for c in self.changes
                     if not (c.kind is Kind.moved and not c.scratch_note and abs(c.distance or 0) < self.threshold))

    @property
    def diverged(self) -> bool:
        """True when anything shown differs (cost proxies aside)."""
        return bool(self.shown_changes or self.messages_added or self.messages_gone
                    or any(not m.informational for m in self.shown_metrics)
                    or self.old.panic != self.new.panic)

    @property
    def first(self) -> Change | None:
        """The first changed request in boot order."""
        shown = self.shown_changes
        return min(shown, key=lambda c: c.op_index) if shown else None

    def count(self, kind: Kind) -> int:
        """How many shown requests changed this way."""
        return sum(c.kind is kind for c in self.shown_changes)

    def metric(self, name: str) -> Metric:
        """The metric called *name*.  Raises KeyError when there is none."""
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    def verdict(self) -> str:
        """One line: same, or what diverged first and how much."""
        if not self.diverged:
            return "same"
        parts = []
        for kind in Kind:
            if n := self.count(kind):
                parts.append(requests_phrase(n, kind))
        words = [m for m in self.shown_metrics if m.unit == "" and not m.informational]
        parts += [f"{m.name}: {m.old} -> {m.new}" for m in words]
        nums = [m for m in self.shown_metrics if m.unit != "" and not m.informational]
        parts += [f"{m.name} {_signed(m)}" for m in nums[:3]]
        if len(nums) > 3:
            parts.append(f"{len(nums) - 3} more metrics")
        if self.messages_added or self.messages_gone:
            parts.append(f"messages +{len(self.messages_added)}/-{len(self.messages_gone)}")
        if self.old.panic != self.new.panic:
            parts.append("panic " + ("now" if self.new.panic else "gone"))
        return "DIVERGED: " + "; ".join(parts)


def requests_phrase(n: int, kind: Kind | str) -> str:
    """``1 request now fails``, ``2 requests now fail``, ``3 requests moved``: number and verb agree."""
    words = str(kind.value if isinstance(kind, Kind) else kind)
    if n != 1 and words.startswith("now ") and words.endswith("s"):
        words = words[:-1]
    return f"{n} {'request' if n == 1 else 'requests'} {words}"


def _signed(m: Metric) -> str:
    d = m.delta or 0
    if m.unit == "bytes":
        return signed(d)
    return f"{d:+d}"


def in_areas(addr: int | None, size: int, areas: tuple[ScratchArea, ...]) -> bool:
    """Whether ``[addr, addr + size)`` overlaps any scratch area."""
    if addr is None:
        return False
    return any(addr < a.end and a.base < addr + max(size, 1) for a in areas)


def _keyed(o: Outcome, by_caller: bool) -> dict[tuple[object, ...], Request]:
    """Requests by (op index, n) or, for two different boots, by (caller function, api, nid, n)."""
    seen: dict[tuple[object, ...], int] = {}
    out = {}
    for r in o.requests:
        k: tuple[object, ...] = (caller_function(r.caller), r.api, r.nid) if by_caller else (r.op_index,)
        n = seen.get(k, 0)
        seen[k] = n + 1
        out[(*k, n)] = r
    return out


def _source(trace: Trace | None, op_index: int, side: str | None = None) -> tuple[str | None, str | None]:
    """``file:line`` of op *op_index* of *trace* (prefixed with *side*, A or B, for two boots) and its words."""
    if trace is None or not 0 <= op_index < len(trace.ops):
        return None, None
    src = trace.ops[op_index].src
    if src is None:
        return None, None
    from pathlib import Path

    # The parser kept the kernel's own line with the op: the diff never re-reads the log.
    where = f"{Path(src.path).name}:{src.line}" if src.line is not None else str(src)
    return (f"{side} {where}" if side else where), src.text


def _changes(old: Outcome, new: Outcome, trace: Trace | None, by_caller: bool, old_trace: Trace | None = None,
             sides: tuple[str, str] | None = None) -> Iterator[Change]:
    ka, kb = _keyed(old, by_caller), _keyed(new, by_caller)
    order = {k: i for i, k in enumerate([*ka, *(k for k in kb if k not in ka)])}
    for k in sorted(order, key=lambda k: (min(x.op_index for x in (ka.get(k), kb.get(k)) if x is not None),
                                          order[k])):
        a, b = ka.get(k), kb.get(k)
        r = b if b is not None else a
        if r is None:  # keys come from one side or the other
            continue
        if a is not None and b is not None:
            if a.addr == b.addr and a.size == b.size:
                continue
            if a.addr is None:
                kind = Kind.now_succeeds
            elif b.addr is None:
                kind = Kind.now_fails
            elif a.size != b.size:
                kind = Kind.resized
            else:
                kind = Kind.moved
        else:
            kind = Kind.added if a is None else Kind.gone
        if sides is not None:  # two boots: each location names its file, A's, B's or both
            sa, wa = _source(old_trace, a.op_index, sides[0]) if a is not None else (None, None)
            sb, wb = _source(trace, b.op_index, sides[1]) if b is not None else (None, None)
            src = ", ".join(x for x in (sa, sb) if x) or None
            words = wb if wb is not None else wa
        else:
            src, words = _source(trace if b is not None else old_trace or trace, r.op_index)
        if r.synthesized:  # no console line of its own: say where the model inserted it
            src, words = (None if src is None else f"synthesized before {src}"), None
        yield Change(
            kind=kind, op_index=r.op_index, api=r.api, caller=r.caller, subsystem=r.subsystem, nid=r.nid,
            old_size=None if a is None else a.size, new_size=None if b is None else b.size,
            old_addr=None if a is None else a.addr, new_addr=None if b is None else b.addr,
            old_in_scratch=a is not None and in_areas(a.addr, a.size, old.scratch.areas),
            new_in_scratch=b is not None and in_areas(b.addr, b.size, new.scratch.areas),
            synthesized=r.synthesized, src=src, words=words,
        )


def _scratch_word(o: Outcome) -> str:
    if o.scratch.enabled:
        return "yes"
    return f"no (failed: {o.scratch.failed})" if o.scratch.failed else "no (KHO off)"


def _area(name: str) -> tuple[int, str]:
    return ({"lowmem": 0, "global": 1}.get(name, 2), name)


def _scratch_sizes(o: Outcome) -> dict[str, int]:
    """Scratch sizes by area name: a KHO boot's inherited areas, else the sizes the cold boot computed."""
    sc = o.scratch
    if o.kho_boot:
        sizes: dict[str, int] = {}
        for name, _, size in sc.areas:
            sizes[name] = sizes.get(name, 0) + size
        return sizes
    return {"lowmem": sc.lowmem, "global": sc.global_, **{f"node{n}": s for n, s in sc.pernode}}


def metrics(old: Outcome, new: Outcome) -> tuple[Metric, ...]:
    """Every metric of an outcome on both sides, in report order."""
    sa, sb, ga, gb = old.scratch, new.scratch, old.gigantic, new.gigantic
    out = [Metric("scratch reserved", _scratch_word(old), _scratch_word(new), "")]
    # A cold boot's sizes are what kho_reserve_scratch() asked for (reserved or not: see "scratch reserved");
    # a KHO boot sizes nothing: it inherits kho_scratch[] areas, so its sizes are those areas'.
    how = "inherited" if old.kho_boot or new.kho_boot else "requested"
    za, zb = _scratch_sizes(old), _scratch_sizes(new)
    out += [Metric(f"scratch {k} {how}", za.get(k), zb.get(k), "bytes") for k in sorted(set(za) | set(zb), key=_area)]
    out.append(Metric("kho_scratch[] total", sa.reserved, sb.reserved, "bytes"))
    out += [
        Metric("gigantic requested", ga.requested, gb.requested),
        Metric("gigantic allocated", ga.allocated, gb.allocated),
    ]
    na, nb = dict(ga.per_node), dict(gb.per_node)
    out += [Metric(f"gigantic node{n}" if n >= 0 else "gigantic any node", na.get(n, 0), nb.get(n, 0))
            for n in sorted(set(na) | set(nb))]
    out += [
        Metric("gigantic fallbacks", ga.fallbacks, gb.fallbacks),
        Metric("gigantic in scratch", ga.in_scratch, gb.in_scratch),
        Metric("gigantic in extension", ga.in_extended, gb.in_extended),
        Metric("gigantic adopted", ga.adopted, gb.adopted),
        Metric("RSRV_KERN", old.rsrv_kern, new.rsrv_kern, "bytes"),
        Metric("RSRV_HUGETLB", old.rsrv_hugetlb, new.rsrv_hugetlb, "bytes"),
        Metric("preserved", old.preserved_bytes, new.preserved_bytes, "bytes"),
        Metric("extended", old.extended_bytes, new.extended_bytes, "bytes"),
        Metric("est. free pages", old.estimated_nr_free_pages, new.estimated_nr_free_pages),
        Metric("max_threads", old.max_threads, new.max_threads),
        Metric("reserved regions peak", old.reserved_cnt_peak, new.reserved_cnt_peak),
        Metric("reserved regions final", old.reserved_cnt_final, new.reserved_cnt_final),
        Metric("doublings", len(old.doublings), len(new.doublings)),
        Metric("doublings in scratch", old.doublings_in_scratch, new.doublings_in_scratch),
        Metric("cost: regions scanned", old.cost.regions_scanned, new.cost.regions_scanned, informational=True),
        Metric("cost: memmove entries", old.cost.memmove_entries, new.cost.memmove_entries, informational=True),
        Metric("cost: digest keys", old.cost.digest_keys, new.cost.digest_keys, informational=True),
    ]
    return tuple(out)


def _multiset_minus(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    left = list(b)
    out = []
    for m in a:
        if m in left:
            left.remove(m)
        else:
            out.append(m)
    return tuple(out)


def diff(old: Outcome, new: Outcome, *, trace: Trace | None = None, threshold: int = 0,
         by_caller: bool = False, old_trace: Trace | None = None, sides: tuple[str, str] | None = None,
         reserved: tuple[Sequence[tuple[int, int]], Sequence[tuple[int, int]]] | None = None) -> Diff:
    """Compare *new* against *old*; *trace* (the one *new* replayed) names source lines.

    *old_trace* is the one *old* replayed when it differs (two real boots): a
    request only *old* made is located there.  *sides* labels the two traces
    (``("A", "B")``) so that every location says whose file it is.

    Two strategies on one trace pair requests by op index.  Two different
    real boots (*by_caller*) pair them by caller function, API and nid in
    order of occurrence, since their op streams need not line up.  With
    *reserved*, the two final ``reserved[]`` tables as ``(base, size)``, the
    diff also names reservations that merged or split.
    """
    return Diff(
        old=old, new=new,
        changes=tuple(_changes(old, new, trace, by_caller, old_trace, sides)),
        metrics=metrics(old, new),
        messages_added=_multiset_minus(new.messages, old.messages),
        messages_gone=_multiset_minus(old.messages, new.messages),
        threshold=threshold,
        regions=() if reserved is None else region_changes(*reserved),
    )
