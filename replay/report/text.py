# SPDX-License-Identifier: GPL-2.0-only
"""Diffs as reports: text (rich), JSON (versioned schema) — the HTML one is in ``replay/html.py``.

A report is a list of :class:`Comparison` s, one per (strategy, boot):
a one-line verdict each, then per comparison a bloat-o-meter style table
(metric, old, new, delta), the first divergence with ``file:line``, caller
and the kernel's words, messages added and gone, and the changed requests
grouped by subsystem.

JSON schema (``DIFF_SCHEMA_VERSION``; keys sorted, addresses as
``"0x%016x"`` strings, sizes and counts as integers)::

    {"schema_version": 1, "trace": str, "against": str, "kexec": bool,
     "preserve": str | null, "threshold": int, "diverged": bool,
     "comparisons": [{"strategy": str, "boot": "cold" | "kexec", "diverged": bool,
                      "verdict": str, "first": CHANGE | null, "changes": [CHANGE],
                      "metrics": [{"name", "old", "new", "delta", "unit", "informational"}],
                      "messages_added": [str], "messages_gone": [str],
                      "panic": {"old": str | null, "new": str | null},
                      "regions": [{"kind": "merged" | "split", "base": str, "size": int, "parts": int}]}]}
    CHANGE = {"kind", "op_index", "api", "caller", "subsystem", "nid", "old_addr",
              "new_addr", "old_size", "new_size", "distance", "old_in_scratch",
              "new_in_scratch", "synthesized", "src", "words"}

Only changed metrics are listed (after ``--threshold``); ``delta`` is null
for word-valued metrics such as ``scratch reserved``.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..compare.diff import Change, Diff, Kind, Metric, requests_phrase
from .units import human, signed

__all__ = ["DIFF_SCHEMA_VERSION", "Comparison", "Report", "addr", "change_line", "comparison_json", "metric_delta",
           "metric_value", "report_json", "report_text", "request_totals", "sorted_metrics"]

#: Bumped whenever the JSON shape of a diff report changes.
DIFF_SCHEMA_VERSION = 1
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
    return "failed" if a is None else f"{a:#018x}"


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


def change_json(c: Change) -> dict[str, object]:
    """One changed request as JSON-ready data."""
    return {
        "kind": c.kind.value, "op_index": c.op_index, "api": c.api, "caller": c.caller,
        "subsystem": c.subsystem, "nid": c.nid,
        "old_addr": None if c.old_addr is None else addr(c.old_addr),
        "new_addr": None if c.new_addr is None else addr(c.new_addr),
        "old_size": c.old_size, "new_size": c.new_size, "distance": c.distance,
        "old_in_scratch": c.old_in_scratch, "new_in_scratch": c.new_in_scratch,
        "synthesized": c.synthesized, "src": c.src, "words": c.words,
    }


def comparison_json(c: Comparison) -> dict[str, object]:
    """One comparison as JSON-ready data (see the module docstring)."""
    d = c.diff
    first = d.first
    return {
        "strategy": c.label, "boot": c.boot, "diverged": d.diverged, "verdict": d.verdict(),
        "first": None if first is None else change_json(first),
        "changes": [change_json(x) for x in d.shown_changes],
        "metrics": [{"name": m.name, "old": m.old, "new": m.new, "delta": m.delta, "unit": m.unit,
                     "informational": m.informational} for m in d.shown_metrics],
        "messages_added": list(d.messages_added), "messages_gone": list(d.messages_gone),
        "panic": {"old": d.old.panic, "new": d.new.panic},
        "regions": [{"kind": r.kind, "base": addr(r.base), "size": r.size, "parts": r.parts} for r in d.regions],
    }


def report_json(rep: Report) -> str:
    """The report as JSON text: sorted keys, same input same bytes."""
    doc = {
        "schema_version": DIFF_SCHEMA_VERSION, "trace": rep.trace, "against": rep.against, "kexec": rep.kexec,
        "preserve": rep.preserve, "threshold": rep.threshold, "diverged": rep.diverged,
        "comparisons": [comparison_json(c) for c in rep.comparisons],
    }
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"
