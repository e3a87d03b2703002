# SPDX-License-Identifier: GPL-2.0-only
"""Diffs as one self-contained HTML file with physical memory maps (SVG, no script, no network).

Per comparison the page shows baseline's map and the strategy's map side by
side, then the tables of the text report.  A map is a few bands over one
address axis in GiB:

* ``memory``: ``memblock.memory`` coloured by NUMA node, holes hatched;
* ``KHO``: ``kho_scratch[]`` areas, and memory a KHO boot flagged as scratch
  beyond them (extended scratch);
* ``hugetlb``: gigantic pages; ``preserved``: what the KHO boot reserved for
  the previous kernel (``RSRV_NOINIT`` without ``RSRV_KERN``);
* ``requests``: every placed allocation request, coloured by subsystem;
* ``reserved``: the final ``memblock.reserved`` table.

Every shape has a ``<title>`` (hover text) with address range, size and
caller; shapes closer than a pixel are drawn as one, and say how many.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..compare.diff import Change, human
from ..flags import Flag
from ..kho.outcome import Outcome
from ..memblock.engine import Memblock
from .text import Comparison, Report, addr, change_line, comparison_json, metric_delta, metric_value

__all__ = ["Map", "gib_axis", "report_html", "svg_map"]

#: (outcome, final model) for each boot a strategy ran: cold, then kexec.
Map = Sequence[tuple[Outcome, Memblock]]

WIDTH = 560
LEFT = 70
BANDS = (("memory", 22), ("KHO", 14), ("hugetlb", 14), ("preserved", 14), ("requests", 14), ("reserved", 10))
NODE_COLOURS = ("#9ecae1", "#a1d99b", "#fdd0a2", "#dadaeb", "#c7e9c0", "#fcbba1", "#d9d9d9", "#c6dbef")
SUBSYSTEM_COLOURS = {
    "hugetlb gigantic pages": "#e6550d", "hugetlb CMA": "#fd8d3c", "KHO scratch": "#31a354",
    "KHO preserved": "#756bb1", "memmap/vmemmap": "#3182bd", "percpu": "#6baed6", "page tables": "#9e9ac8",
    "hash tables": "#bcbddc", "swiotlb": "#e7ba52", "crashkernel": "#d6616b", "firmware/kernel image": "#636363",
    "memblock arrays": "#843c39", "other": "#969696",
}
CSS = """
body{font:13px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:2em;border-bottom:1px solid #ccc}
.same{color:#2a7d2a}.diverged{color:#b3261e}
.maps{display:grid;grid-template-columns:1fr 1fr;gap:1em}
.maps figure{margin:0}.maps figcaption{font-weight:bold}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:1px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}tr:nth-child(even){background:#f4f4f4}
code,pre{font-family:ui-monospace,monospace;font-size:12px}
.legend span{display:inline-block;margin-right:1em}
.legend i{display:inline-block;width:12px;height:10px;margin-right:4px;vertical-align:middle}
"""


@dataclass(frozen=True, slots=True)
class _Shape:
    base: int
    size: int
    cls: str
    colour: str
    title: str


def _range(base: int, size: int) -> str:
    return f"[{addr(base)}-{addr(base + size - 1)}] {human(size)}"


def _merge(shapes: Iterable[_Shape], scale: float) -> list[tuple[float, float, _Shape, int, str]]:
    """Shapes in pixels, (x, w, shape, count, title); same-class slivers less than a pixel apart become one."""
    out: list[list] = []
    for s in sorted(shapes, key=lambda s: s.base):
        x0, x1 = LEFT + s.base * scale, LEFT + (s.base + s.size) * scale
        # Only slivers merge: a shape a reader can point at keeps its own hover text.
        if out and out[-1][2].cls == s.cls and x0 <= out[-1][1] + 1 and x1 - x0 < 2 and out[-1][1] - out[-1][0] < 2:
            last = out[-1]
            last[1] = max(last[1], x1)
            last[3] += 1
            last[5] = max(last[5], s.base + s.size)
            continue
        out.append([x0, x1, s, 1, s.title, s.base + s.size])
    res = []
    for x0, x1, s, n, title, end in out:
        if n > 1:
            title = f"{n} regions in [{addr(s.base)}-{addr(end - 1)}]; first: {title}"
        res.append((x0, max(x1 - x0, 1.0), s, n, title))
    return res


def _shapes(o: Outcome, mb: Memblock) -> dict[str, list[_Shape]]:
    bands: dict[str, list[_Shape]] = {name: [] for name, _ in BANDS}
    for r in mb.memory:
        nid = r.nid if r.nid is not None and r.nid >= 0 else 0
        bands["memory"].append(_Shape(r.base, r.size, f"node{nid}", NODE_COLOURS[nid % len(NODE_COLOURS)],
                                      f"node {nid} memory {_range(r.base, r.size)} flags={Flag(r.flags)!s}"))
    for name, base, size in o.scratch.areas:
        bands["KHO"].append(_Shape(base, size, "scratch", "#31a354", f"kho_scratch {name} {_range(base, size)}"))
    scratch_flags = Flag.MEMBLOCK_KHO_SCRATCH | Flag.MEMBLOCK_KHO_SCRATCH_EXT
    for r in mb.memory:
        if o.kho_boot and r.flags & scratch_flags and not any(
                b <= r.base and r.base + r.size <= b + s for _, b, s in o.scratch.areas):
            bands["KHO"].append(_Shape(r.base, r.size, "extended", "#a1d99b",
                                       f"extended scratch {_range(r.base, r.size)}"))
    for a in o.gigantic.addrs:
        bands["hugetlb"].append(_Shape(a, 1 << 30, "gigantic", "#e6550d", f"gigantic page {_range(a, 1 << 30)}"))
    for r in mb.reserved:
        if o.kho_boot and r.flags & Flag.MEMBLOCK_RSRV_NOINIT and not r.flags & Flag.MEMBLOCK_RSRV_KERN:
            bands["preserved"].append(_Shape(r.base, r.size, "preserved", "#756bb1",
                                             f"preserved {_range(r.base, r.size)}"))
        bands["reserved"].append(_Shape(r.base, r.size, "reserved", "#525252",
                                        f"reserved {_range(r.base, r.size)} nid={r.nid} flags={Flag(r.flags)!s}"))
    for q in o.requests:
        if q.addr is None:
            continue
        bands["requests"].append(_Shape(q.addr, q.size, q.subsystem, SUBSYSTEM_COLOURS.get(q.subsystem, "#969696"),
                                        f"{q.subsystem}: {q.caller or q.api} {q.api} {_range(q.addr, q.size)} "
                                        f"nid={q.nid}"))
    return bands


def _end(maps: Iterable[tuple[Outcome, Memblock]]) -> int:
    return max((r.base + r.size for _, mb in maps for r in mb.memory), default=1 << 30)


def gib_axis(end: int, height: int) -> list[str]:
    """SVG grid lines and GiB labels over addresses 0..*end* (about 16 ticks), for a figure *height* tall."""
    scale = (WIDTH - LEFT - 10) / end
    gib = 1 << 30
    step = max(1, -(-end // gib // 16)) * gib
    parts = []
    for t in range(0, end + 1, step):
        x = LEFT + t * scale
        parts.append(f'<line x1="{x:.1f}" y1="14" x2="{x:.1f}" y2="{height - 4}" stroke="#eee"/>'
                     f'<text x="{x:.1f}" y="11" font-size="9" text-anchor="middle">{t // gib}</text>')
    parts.append(f'<text x="{LEFT - 6}" y="11" font-size="9" text-anchor="end">GiB</text>')
    return parts


def svg_map(o: Outcome, mb: Memblock, end: int, caption: str) -> str:
    """One outcome's physical memory map as an SVG element, addresses 0..*end*."""
    scale = (WIDTH - LEFT - 10) / end
    height = 24 + sum(h + 4 for _, h in BANDS) + 4
    e = html.escape
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{e(caption)}">',
             '<defs><pattern id="hole" width="6" height="6" patternUnits="userSpaceOnUse" '
             'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/>'
             '<line x1="0" y1="0" x2="0" y2="6" stroke="#bbb" stroke-width="3"/></pattern></defs>']
    parts += gib_axis(end, height)
    bands = _shapes(o, mb)
    y = 18
    for name, h in BANDS:
        parts.append(f'<text x="{LEFT - 6}" y="{y + h - 3}" font-size="10" text-anchor="end">{name}</text>')
        if name == "memory":
            parts.append(f'<rect x="{LEFT}" y="{y}" width="{end * scale:.1f}" height="{h}" fill="url(#hole)">'
                         f'<title>memory hole (not in memblock.memory)</title></rect>')
        for x, w, s, _n, title in _merge(bands[name], scale):
            parts.append(f'<rect class="{e(s.cls)}" x="{x:.2f}" y="{y}" width="{w:.2f}" height="{h}" '
                         f'fill="{s.colour}"><title>{e(title)}</title></rect>')
        y += h + 4
    parts.append("</svg>")
    return "".join(parts)


def _legend() -> str:
    items = [("hole", "url(#hole)", "#fff"), ("scratch", "", "#31a354"), ("extended scratch", "", "#a1d99b"),
             ("gigantic page", "", "#e6550d"), ("preserved", "", "#756bb1"), ("reserved (final)", "", "#525252")]
    items += [(f"node {n}", "", c) for n, c in enumerate(NODE_COLOURS[:2])]
    items += [(s, "", c) for s, c in SUBSYSTEM_COLOURS.items()]
    return '<p class="legend">' + "".join(
        f'<span><i style="background:{c};border:1px solid #999"></i>{html.escape(n)}</span>' for n, _, c in items
    ) + "</p>"


def _change_row(c: Change) -> str:
    e = html.escape
    dist = c.distance
    cells = [c.kind.value, c.caller or c.api, c.api, human(c.new_size if c.new_size is not None else c.old_size or 0),
             str(c.nid), addr(c.old_addr) if c.old_size is not None else "none",
             addr(c.new_addr) if c.new_size is not None else "none",
             "" if not dist else ("+" if dist > 0 else "-") + human(abs(dist)), c.scratch_note, c.src or ""]
    return "<tr>" + "".join(f"<td><code>{e(x)}</code></td>" for x in cells) + "</tr>"


def _section(i: int, c: Comparison, against: str, base: tuple[Outcome, Memblock] | None,
             mine: tuple[Outcome, Memblock] | None, end: int) -> str:
    e = html.escape
    d = c.diff
    cls = "diverged" if d.diverged else "same"
    out = [f'<section id="c{i}" data-strategy="{e(c.label)}" data-boot="{e(c.boot)}">',
           f'<h2>{e(c.label)} vs {e(against)} ({e(c.boot)} boot): <span class="{cls}">{e(d.verdict())}</span></h2>']
    if base is not None and mine is not None:
        out.append('<div class="maps">')
        for label, (o, mb) in ((against, base), (c.label, mine)):
            kind = "KHO boot" if o.kho_boot else ("plain kexec" if o.boot == "kexec" else "cold boot")
            out.append(f"<figure><figcaption>{e(label)} — {kind}</figcaption>"
                       f"{svg_map(o, mb, end, f'{label} {o.boot}')}</figure>")
        out.append("</div>")
    js = comparison_json(c)
    if js["metrics"]:
        out.append(f"<table><tr><th>metric</th><th>{e(against)}</th><th>{e(c.label)}</th><th>delta</th></tr>")
        for m in d.shown_metrics:
            out.append(f"<tr><td>{e(m.name)}</td><td>{e(metric_value(m, m.old))}</td>"
                       f"<td>{e(metric_value(m, m.new))}</td><td>{e(metric_delta(m))}</td></tr>")
        out.append("</table>")
    first = d.first
    if first is not None:
        out.append(f"<p><b>first divergence:</b> <code>{e(first.src or f'op {first.op_index}')}</code> "
                   f"<code>{e(first.caller or '?')}</code> ({e(first.subsystem)})<br>"
                   f"<code>{e(change_line(first))}</code></p>")
        if first.words:
            out.append(f"<pre>{e(first.words)}</pre>")
    for title, msgs in (("messages added", d.messages_added), ("messages gone", d.messages_gone)):
        if msgs:
            out.append(f"<p><b>{title}:</b></p><pre>{e(chr(10).join(msgs))}</pre>")
    if d.regions:
        out.append("<p><b>reservations merged or split:</b></p><pre>" + e("\n".join(
            f"{r.kind:6}  [{addr(r.base)}-{addr(r.base + r.size - 1)}] {human(r.size)}: "
            + (f"{r.parts} regions now one" if r.kind == "merged" else f"now {r.parts} regions")
            for r in d.regions)) + "</pre>")
    if d.shown_changes:
        out.append(f"<details><summary>{len(d.shown_changes)} requests changed</summary><table>"
                   "<tr><th>kind</th><th>caller</th><th>api</th><th>size</th><th>nid</th><th>old</th><th>new</th>"
                   "<th>distance</th><th>scratch</th><th>source</th></tr>")
        for sub in sorted({x.subsystem for x in d.shown_changes}):
            out.append(f'<tr><th colspan="10">{e(sub)}</th></tr>')
            out += [_change_row(x) for x in d.shown_changes if x.subsystem == sub]
        out.append("</table></details>")
    out.append("</section>")
    return "\n".join(out)


_BOOT = {"cold": 0, "kexec": 1}


def report_html(rep: Report, maps: dict[str, Map]) -> str:
    """The report as one HTML document; *maps* gives each label's (outcome, model) per boot."""
    e = html.escape
    every = [pair for m in maps.values() for pair in m]
    end = _end(every)
    head = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>kho-replay: {e(rep.trace)}</title><style>{CSS}</style></head><body>")
    body = [f"<h1>kho-replay: {e(rep.trace)}</h1>",
            f"<p>{len(rep.comparisons)} comparison(s) against <b>{e(rep.against)}</b>"
            + (f", --kexec --preserve {e(rep.preserve or '')}" if rep.kexec else "")
            + (f", threshold {human(rep.threshold)}" if rep.threshold else "") + "</p><ul>"]
    for i, c in enumerate(rep.comparisons):
        cls = "diverged" if c.diff.diverged else "same"
        body.append(f'<li><a href="#c{i}">{e(c.label)} vs {e(rep.against)} ({e(c.boot)} boot)</a>: '
                    f'<span class="{cls}">{e(c.diff.verdict())}</span></li>')
    body.append("</ul>" + _legend())
    for i, c in enumerate(rep.comparisons):
        k = _BOOT.get(c.boot, 0)
        base = maps.get(rep.against)
        mine = maps.get(c.label)
        body.append(_section(i, c, rep.against, base[k] if base and len(base) > k else None,
                             mine[k] if mine and len(mine) > k else None, end))
    return head + "\n".join(body) + "</body></html>\n"
