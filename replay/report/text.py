# SPDX-License-Identifier: GPL-2.0-only
"""Diffs as text reports (rich); the JSON ones are in :mod:`.json`, the HTML one in :mod:`.html`.

A report is a list of :class:`Comparison` s, one per (strategy, boot):
a one-line verdict each, then per comparison a bloat-o-meter style table
(metric, old, new, delta), the first divergence with ``file:line``, caller
and the kernel's words, messages added and gone, and the changed requests
grouped by subsystem.
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..compare.diff import Change, Diff, Kind, Metric, requests_phrase
from ..kho.outcome import Outcome
from .units import human, phys_addr, signed

__all__ = ["Comparison", "Report", "addr", "change_line", "format_outcome", "metric_delta", "metric_value",
           "report_text", "request_totals", "sorted_metrics"]

#: Changed requests listed per subsystem in text (JSON lists them all).
TEXT_PER_SUBSYSTEM = 12


@dataclass(frozen=True, slots=True)
class Comparison:
    """One diff with the labels a report prints: strategy (or second trace) and boot."""

    label: str
    boot: str
    diff: Diff


@dataclass(frozen=True, slots=True)
class Report:
    """Everything one invocation compared."""

    trace: str
    against: str
    kexec: bool
    preserve: str | None
    threshold: int
    comparisons: tuple[Comparison, ...]

    @property
    def diverged(self) -> bool:
        """True when any comparison diverged."""
        return any(c.diff.diverged for c in self.comparisons)


def addr(a: int | None) -> str:
    """An address as the kernel prints ``phys_addr_t`` (``0x000000023ffd2f80``), or ``failed``."""
    return "failed" if a is None else phys_addr(a)


def metric_value(m: Metric, v: int | str | None) -> str:
    """A metric's value as a report prints it: sizes as 64MiB, words and counts as they are."""
    if v is None:
        return "-"
    if m.unit == "bytes" and isinstance(v, int):
        return human(v)
    return str(v)


def metric_delta(m: Metric) -> str:
    """A metric's delta with its sign ('' for words)."""
    d = m.delta
    if d is None:
        return ""
    if m.unit == "bytes":
        return signed(d)
    return f"{d:+d}"


def change_line(c: Change) -> str:
    """One changed request on one line: kind, caller, api, size, nid, old -> new, distance, scratch, source."""
    size = human(c.new_size if c.new_size is not None else c.old_size or 0)
    if c.old_size is not None and c.new_size is not None and c.old_size != c.new_size:
        size = f"{human(c.old_size)} -> {human(c.new_size)}"
    where = f"{addr(c.old_addr) if c.old_size is not None else 'none'} -> " \
            f"{addr(c.new_addr) if c.new_size is not None else 'none'}"
    dist = c.distance
    bits = [f"{c.kind.value:12}", f"{c.caller or c.api}", f"{c.api} {size} nid={c.nid}", where]
    if dist:
        bits.append(f"({signed(dist)})")
    if c.scratch_note:
        bits.append(c.scratch_note)
    if c.src:
        bits.append(f"[{c.src}]")
    return "  ".join(bits)


def sorted_metrics(d: Diff) -> list[Metric]:
    """Shown metrics as bloat-o-meter sorts its rows: words first, then bytes and counts by delta, largest
    growth first; cost proxies last."""
    def key(m: Metric) -> tuple[int, int, int, int]:
        unit = 0 if m.unit == "" else (1 if m.unit == "bytes" else 2)
        return (m.informational, unit, -(m.delta or 0), 0)
    return sorted(d.shown_metrics, key=key)


def request_totals(d: Diff) -> str:
    """The requests' totals line, as bloat-o-meter's ``add/remove: 1/0 grow/shrink: 2/1 up/down: 64/-8 (56)``.

    add/remove counts requests only the new (old) side placed (added or now
    succeeding; gone or now failing); grow/shrink the resized ones; up/down
    the bytes those bring and take, and their sum; then the moves.
    """
    add = rem = grow = shrink = up = down = 0
    for c in d.shown_changes:
        old = c.old_size if c.old_addr is not None else 0
        new = c.new_size if c.new_addr is not None else 0
        old, new = old or 0, new or 0
        if c.kind in (Kind.added, Kind.now_succeeds):
            add += 1
        elif c.kind in (Kind.gone, Kind.now_fails):
            rem += 1
        elif c.kind is Kind.resized:
            grow += new > old
            shrink += new < old
        if c.kind is not Kind.moved:
            up += max(new - old, 0)
            down += max(old - new, 0)
    net = up - down
    return (f"add/remove: {add}/{rem} grow/shrink: {grow}/{shrink} up/down: {signed(up)}/{signed(-down)} "
            f"({signed(net)}); moved: {d.count(Kind.moved)}")


def _title(c: Comparison, against: str) -> str:
    return f"{c.label} vs {against} ({c.boot} boot)"


def report_text(rep: Report, *, color: bool = False, width: int = 120) -> str:
    """The report as text; *color* adds ANSI colour (only for a terminal)."""
    buf = io.StringIO()
    con = Console(file=buf, width=width, force_terminal=color, no_color=not color,
                  color_system="standard" if color else None, highlight=False, soft_wrap=True)
    against = rep.against
    con.print(Text(f"{rep.trace}: {len(rep.comparisons)} comparison(s) against {against}"
                   + (f", --kexec --preserve {rep.preserve}" if rep.kexec else "")
                   + (f", threshold {human(rep.threshold)}" if rep.threshold else ""), style="bold"))
    for c in rep.comparisons:
        style = "red" if c.diff.diverged else "green"
        con.print(Text.assemble(f"  {_title(c, against)}: ", (c.diff.verdict(), style)))
    for c in rep.comparisons:
        d = c.diff
        if not d.diverged:
            continue
        con.print()
        con.print(Text(f"== {_title(c, against)}", style="bold"))
        shown = sorted_metrics(d)
        if shown:
            t = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
            t.add_column("metric")
            t.add_column(against, justify="right")
            t.add_column(c.label, justify="right")
            t.add_column("delta", justify="right")
            for m in shown:
                t.add_row(m.name + (" (cost)" if m.informational else ""), metric_value(m, m.old),
                          metric_value(m, m.new), metric_delta(m))
            con.print(t)
            same = len([m for m in d.metrics if not m.changed])
            con.print(Text(f"  ({same} metrics unchanged)", style="dim"))
        first = d.first
        if first is not None:
            con.print(Text("first divergence:", style="bold"))
            con.print(Text(f"  {first.src or 'op ' + str(first.op_index)}: {first.caller or '?'} ({first.subsystem})"))
            con.print(Text(f"  {change_line(first)}"))
            if first.words:
                con.print(Text(f"  kernel: {first.words}", style="dim"))
            elif d.messages_gone or d.messages_added:  # a synthesized request: the kernel's words are its messages
                said = d.messages_gone[0] if d.messages_gone else d.messages_added[0]
                con.print(Text(f"  kernel {'said' if d.messages_gone else 'now says'}: {said}", style="dim"))
        for title, msgs, sty in (("messages added", d.messages_added, "yellow"),
                                 ("messages gone", d.messages_gone, "yellow")):
            if msgs:
                con.print(Text(f"{title}:", style="bold"))
                for msg in msgs:
                    con.print(Text(f"  {'+' if 'added' in title else '-'} {msg}", style=sty))
        if d.old.panic != d.new.panic:
            con.print(Text(f"panic: {d.old.panic or '-'} -> {d.new.panic or '-'}", style="red"))
        if d.regions:
            con.print(Text(f"reservations merged or split ({len(d.regions)}):", style="bold"))
            for rc in d.regions[:TEXT_PER_SUBSYSTEM]:
                con.print(Text(f"  {rc.kind:6}  [{addr(rc.base)}-{addr(rc.base + rc.size - 1)}] {human(rc.size)}: "
                               + (f"{rc.parts} regions now one" if rc.kind == "merged" else f"now {rc.parts} regions")))
            if len(d.regions) > TEXT_PER_SUBSYSTEM:
                con.print(Text(f"  ... {len(d.regions) - TEXT_PER_SUBSYSTEM} more", style="dim"))
        groups: dict[str, list[Change]] = defaultdict(list)
        for ch in d.shown_changes:
            groups[ch.subsystem].append(ch)
        if groups:
            con.print(Text(f"{requests_phrase(len(d.shown_changes), 'changed')}, by subsystem:", style="bold"))
            con.print(Text(f"  {request_totals(d)}"))
        for sub in sorted(groups, key=lambda s: (-len(groups[s]), s)):
            items = groups[sub]
            con.print(Text(f"  {sub} ({len(items)})", style="cyan"))
            # bloat-o-meter order: what moved furthest (or changed most) first; boot order breaks ties
            items.sort(key=lambda ch: (-abs(ch.distance or (ch.new_size or 0) - (ch.old_size or 0)), ch.op_index))
            for ch in items[:TEXT_PER_SUBSYSTEM]:
                con.print(Text(f"    {change_line(ch)}"))
            if len(items) > TEXT_PER_SUBSYSTEM:
                con.print(Text(f"    ... {len(items) - TEXT_PER_SUBSYSTEM} more (--format json lists all)",
                               style="dim"))
    return buf.getvalue()


def format_outcome(o: Outcome) -> list[str]:
    """The outcome as report lines (hex addresses as the kernel prints them)."""
    sc, g = o.scratch, o.gigantic
    kind = "KHO boot" if o.kho_boot else ("plain kexec (no KHO)" if o.boot == "kexec" else "cold boot")
    lines = [f"{o.source}: {o.strategy}, {kind}"]
    if o.boot == "cold":
        if sc.k_all or sc.k_low:
            lines.append(", ".join([f"  RSRV_KERN for sizing: low {human(sc.k_low)}", f"all {human(sc.k_all)}"]
                                   + [f"node{n} {human(k)}" for n, k in sc.k_nodes]))
        lines.append(", ".join([f"  scratch requested: lowmem {human(sc.lowmem)}", f"global {human(sc.global_)}"]
                               + [f"node{n} {human(s)}" for n, s in sc.pernode]))
        lines.append("  scratch: " + ("reserved" if sc.enabled else
                                      f"not reserved ({'failed: ' + sc.failed if sc.failed else 'KHO off'})"))
    for name, base, size in sc.areas:
        lines.append(f"    {name:8} [{base:#018x}-{base + size - 1:#018x}] {human(size)}")
    lines.append(f"  gigantic pages: {g.allocated}/{g.requested} placed, per node "
                 + (", ".join(f"{n}:{c}" for n, c in g.per_node) or "-")
                 + f"; fallbacks {g.fallbacks}; in kho_scratch[] {g.in_scratch}; in extension {g.in_extended}"
                 + (f"; adopted {g.adopted}" if g.adopted else ""))
    for nid, base, size in o.hugetlb_cma:
        lines.append(f"  hugetlb_cma: node {nid} [{base:#018x}-{base + size - 1:#018x}] {human(size)}")
    lines.append(f"  RSRV_KERN {human(o.rsrv_kern)}  RSRV_HUGETLB {human(o.rsrv_hugetlb)}  preserved "
                 f"{human(o.preserved_bytes)}  est. free pages {o.estimated_nr_free_pages}  "
                 f"max_threads {o.max_threads}")
    lines.append(f"  reserved regions: peak {o.reserved_cnt_peak}, final {o.reserved_cnt_final}; doublings "
                 f"{len(o.doublings)}" + "".join(f" [{d.name} {d.new_max} at {d.base:#018x}"
                                                 f"{' in scratch' if o.in_scratch(d) else ''}]" for d in o.doublings))
    if o.scratch_left:
        lines.append("  scratch left: " + ", ".join(f"after {p} {human(b)}" for p, b in o.scratch_left))
    if o.extended_bytes:
        lines.append(f"  extended: {human(o.extended_bytes)}")
    lines.append(f"  cost: regions scanned {o.cost.regions_scanned}, memmove entries {o.cost.memmove_entries}, "
                 f"digest keys {o.cost.digest_keys}")
    lines += [f"  | {m}" for m in o.messages]
    if o.panic:
        lines.append(f"  PANIC: {o.panic}")
    return lines
