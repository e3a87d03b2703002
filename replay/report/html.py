# SPDX-License-Identifier: GPL-2.0-only
"""Diffs as one self-contained HTML file with physical memory maps (SVG, no script, no network).

Per diverging comparison the page shows baseline's map above the strategy's,
each the full page wide with a zoomed view of the small region where most
requests lie, then the tables of the text report; a comparison that found
nothing different is one line.  A map is a few bands over one address axis:

* ``memory``: ``memblock.memory`` coloured by NUMA node, holes hatched;
* ``KHO``: ``kho_scratch[]`` areas, and memory a KHO boot flagged as scratch
  beyond them (extended scratch: flagged memory outside every area, from the
  boot's own tables, so two areas that touch draw no band);
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

from ..compare.diff import Change, requests_phrase
from ..flags import Flag
from ..kho.outcome import Outcome
from ..memblock.engine import Memblock
from .text import Comparison, Report, addr, change_line, metric_delta, metric_value, sorted_metrics
from .units import human, signed

__all__ = ["Map", "extended_ranges", "gib_axis", "legend_items", "report_html", "svg_map", "zoom_window"]

#: (outcome, final model) for each boot a strategy ran: cold, then kexec.
Map = Sequence[tuple[Outcome, Memblock]]

#: The SVG's own coordinate width; CSS stretches it to the page.
WIDTH = 1200
LEFT = 70
RIGHT = 30  # room for the last tick's label
#: A zoom panel is drawn when the busiest window is at most this fraction of the map.
ZOOM_FRACTION = 1 / 8
BANDS = (("memory", 22), ("KHO", 14), ("hugetlb", 14), ("preserved", 14), ("requests", 14), ("reserved", 10))
# One colour per thing drawn, none shared (tests/test_html.py checks): memory by node in pastels,
# the KHO and hugetlb bands in saturated tones, requests by subsystem in a third set.
NODE_COLOURS = ("#c6dbef", "#fdd0a2", "#dadaeb", "#e5d8bd", "#fddaec", "#ccebc5", "#f2f2f2", "#decbe4")
BAND_COLOURS = {
    "scratch": "#1b7837", "extended scratch": "#00bcd4", "gigantic page": "#7f2704", "preserved": "#3f007d",
    "reserved (final)": "#525252",
}
SUBSYSTEM_COLOURS = {
    "hugetlb gigantic pages": "#e6550d", "hugetlb CMA": "#fd8d3c", "KHO scratch": "#74c476",
    "KHO preserved": "#9e9ac8", "memmap/vmemmap": "#3182bd", "percpu": "#6baed6", "page tables": "#c51b7d",
    "hash tables": "#bcbddc", "swiotlb": "#e7ba52", "crashkernel": "#d6616b", "firmware/kernel image": "#8c6d31",
    "memblock arrays": "#843c39", "other": "#969696",
}
CSS = """
body{font:13px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:2em;border-bottom:1px solid #ccc}
.same{color:#2a7d2a}.diverged{color:#b3261e}
.maps figure{margin:0 0 .8em 0}.maps figcaption{font-weight:bold}
.maps svg{width:100%;height:auto;display:block}
.zoom{margin-left:2em}.zoom figcaption{font-weight:normal;font-style:italic}
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


def _merge(shapes: Iterable[_Shape], scale: float, lo: int = 0) -> list[tuple[float, float, _Shape, int, str]]:
    """Shapes in pixels, (x, w, shape, count, title); same-class slivers less than a pixel apart become one."""
    out: list[list] = []
    for s in sorted(shapes, key=lambda s: s.base):
        x0, x1 = LEFT + (s.base - lo) * scale, LEFT + (s.base + s.size - lo) * scale
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


def extended_ranges(o: Outcome, mb: Memblock) -> list[tuple[int, int]]:
    """Memory the boot flagged as scratch outside every ``kho_scratch[]`` area, as (base, size).

    Read from the boot's own memory table: memblock merges two flagged areas
    that touch into one region, which is not an extension; only what lies
    outside all the areas is.
    """
    scratch_flags = Flag.MEMBLOCK_KHO_SCRATCH | Flag.MEMBLOCK_KHO_SCRATCH_EXT
    areas = sorted((b, b + s) for _, b, s in o.scratch.areas)
    out = []
    for r in mb.memory:
        if not r.flags & scratch_flags:
            continue
        pos, end = r.base, r.base + r.size
        for lo, hi in areas:
            if hi <= pos or lo >= end:
                continue
            if lo > pos:
                out.append((pos, lo - pos))
            pos = max(pos, hi)
        if pos < end:
            out.append((pos, end - pos))
    return out


def _shapes(o: Outcome, mb: Memblock) -> dict[str, list[_Shape]]:
    bands: dict[str, list[_Shape]] = {name: [] for name, _ in BANDS}
    for r in mb.memory:
        nid = r.nid if r.nid is not None and r.nid >= 0 else 0
        bands["memory"].append(_Shape(r.base, r.size, f"node{nid}", NODE_COLOURS[nid % len(NODE_COLOURS)],
                                      f"node {nid} memory {_range(r.base, r.size)} flags={Flag(r.flags)!s}"))
    for name, base, size in o.scratch.areas:
        bands["KHO"].append(_Shape(base, size, "scratch", BAND_COLOURS["scratch"],
                                   f"kho_scratch {name} {_range(base, size)}"))
    if o.kho_boot:
        for base, size in extended_ranges(o, mb):
            bands["KHO"].append(_Shape(base, size, "extended", BAND_COLOURS["extended scratch"],
                                       f"extended scratch {_range(base, size)}"))
    for a in o.gigantic.addrs:
        bands["hugetlb"].append(_Shape(a, 1 << 30, "gigantic", BAND_COLOURS["gigantic page"],
                                       f"gigantic page {_range(a, 1 << 30)}"))
    for r in mb.reserved:
        if o.kho_boot and r.flags & Flag.MEMBLOCK_RSRV_NOINIT and not r.flags & Flag.MEMBLOCK_RSRV_KERN:
            bands["preserved"].append(_Shape(r.base, r.size, "preserved", BAND_COLOURS["preserved"],
                                             f"preserved {_range(r.base, r.size)}"))
        bands["reserved"].append(_Shape(r.base, r.size, "reserved", BAND_COLOURS["reserved (final)"],
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


def _ticks(lo: int, hi: int) -> tuple[int, str, int]:
    """Tick step, unit name and unit size for an axis over [lo, hi): about 16 ticks in GiB or MiB."""
    span = hi - lo
    unit, name = (1 << 30, "GiB") if span >= 4 << 30 else (1 << 20, "MiB")
    raw = max(1, span // unit // 16)
    step = 1 << (raw - 1).bit_length()  # a power of two, so ticks fall on round addresses
    return step * unit, name, unit


def axis_scale(end: int, lo: int = 0) -> float:
    """SVG units per byte of a map over addresses *lo*..*end*."""
    return (WIDTH - LEFT - RIGHT) / (end - lo)


def gib_axis(end: int, height: int, lo: int = 0) -> list[str]:
    """SVG grid lines and labels over addresses *lo*..*end* (about 16 ticks), for a figure *height* tall."""
    scale = axis_scale(end, lo)
    step, unit_name, unit = _ticks(lo, end)
    parts = []
    for t in range(-(-lo // step) * step, end + 1, step):
        x = LEFT + (t - lo) * scale
        label = f"{t / unit:g}" if unit_name == "GiB" else f"{t >> 20}"
        parts.append(f'<line x1="{x:.1f}" y1="14" x2="{x:.1f}" y2="{height - 4}" stroke="#eee"/>'
                     f'<text x="{x:.1f}" y="11" font-size="10" text-anchor="middle">{label}</text>')
    parts.append(f'<text x="{LEFT - 20}" y="11" font-size="10" text-anchor="end">{unit_name}</text>')
    return parts


def svg_map(o: Outcome, mb: Memblock, end: int, caption: str, lo: int = 0) -> str:
    """One outcome's physical memory map as an SVG element, addresses *lo*..*end*."""
    scale = axis_scale(end, lo)
    height = 24 + sum(h + 4 for _, h in BANDS) + 4
    e = html.escape
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{e(caption)}">',
             '<defs><pattern id="hole" width="6" height="6" patternUnits="userSpaceOnUse" '
             'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/>'
             '<line x1="0" y1="0" x2="0" y2="6" stroke="#bbb" stroke-width="3"/></pattern></defs>']
    parts += gib_axis(end, height, lo)
    bands = _shapes(o, mb)
    y = 18
    for name, h in BANDS:
        parts.append(f'<text x="{LEFT - 6}" y="{y + h - 3}" font-size="11" text-anchor="end">{name}</text>')
        if name == "memory":
            parts.append(f'<rect x="{LEFT}" y="{y}" width="{(end - lo) * scale:.1f}" height="{h}" fill="url(#hole)">'
                         f'<title>memory hole (not in memblock.memory)</title></rect>')
        clipped = [_clip(sh, lo, end) for sh in bands[name]]
        for x, w, sh, _n, title in _merge((c for c in clipped if c is not None), scale, lo):
            parts.append(f'<rect class="{e(sh.cls)}" x="{x:.2f}" y="{y}" width="{w:.2f}" height="{h}" '
                         f'fill="{sh.colour}"><title>{e(title)}</title></rect>')
        y += h + 4
    parts.append("</svg>")
    return "".join(parts)


def _clip(sh: _Shape, lo: int, hi: int) -> _Shape | None:
    """*sh* cut to [lo, hi) (its hover text keeps the whole range), or None outside it."""
    base, end = max(sh.base, lo), min(sh.base + sh.size, hi)
    if base >= end:
        return None
    return sh if (base, end) == (sh.base, sh.base + sh.size) else _Shape(base, end - base, sh.cls, sh.colour, sh.title)


def _densest(addrs: list[int], size: int) -> tuple[int, int]:
    """(start, count): the window [start, start + size) starting at a request holding the most requests."""
    best, j = (addrs[0], 0), 0
    for i, a in enumerate(addrs):
        j = max(j, i)
        while j < len(addrs) and addrs[j] < a + size:
            j += 1
        if j - i > best[1]:
            best = (a, j - i)
    return best


def zoom_window(outcomes: Iterable[Outcome], end: int) -> tuple[int, int] | None:
    """The address window a zoom panel shows: the narrowest one holding most of the requests, or None.

    Start at an eighth of the map and halve while the densest window still
    holds three quarters of what the wider one did (down to 16MiB); one
    window for all *outcomes*, so that the maps of a comparison line up.
    """
    addrs = sorted(q.addr for o in outcomes for q in o.requests if q.addr is not None and q.size < 1 << 30)
    if len(addrs) < 8:
        return None
    size = 1 << max(24, int(end * ZOOM_FRACTION).bit_length() - 1)
    best = _densest(addrs, size)
    while size > 1 << 24:
        cand = _densest(addrs, size // 2)
        if cand[1] * 4 < best[1] * 3:
            break
        size, best = size // 2, cand
    mib = 1 << 20
    lo = max(0, best[0] - size // 16) // mib * mib
    hi = min(end, -(-(best[0] + size + size // 16) // mib) * mib)
    return (lo, hi) if hi > lo else None


def _figure(label: str, o: Outcome, mb: Memblock, end: int, win: tuple[int, int] | None) -> str:
    """A map figure: the whole address space, and a zoom panel on the busiest window when there is one."""
    e = html.escape
    kind = "KHO boot" if o.kho_boot else ("plain kexec" if o.boot == "kexec" else "cold boot")
    out = [f"<figure><figcaption>{e(label)} — {kind}</figcaption>{svg_map(o, mb, end, f'{label} {o.boot}')}"]
    if win is not None:
        lo, hi = win
        out.append(f'<figure class="zoom"><figcaption>zoom: [{addr(lo)}-{addr(hi - 1)}] {human(hi - lo)}, '
                   f"{sum(1 for q in o.requests if q.addr is not None and lo <= q.addr < hi)} requests"
                   f"</figcaption>{svg_map(o, mb, hi, f'{label} {o.boot} zoom', lo)}</figure>")
    out.append("</figure>")
    return "".join(out)


def _legend(nodes: int = 2) -> str:
    return '<p class="legend">' + "".join(
        f'<span><i style="background:{c};border:1px solid #999"></i>{html.escape(n)}</span>'
        for n, c in legend_items(nodes)) + "</p>"


def legend_items(nodes: int = 2) -> list[tuple[str, str]]:
    """(name, colour) of everything a map draws: memory of *nodes* nodes, the KHO and hugetlb bands, subsystems."""
    items = [(f"node {n} memory", NODE_COLOURS[n % len(NODE_COLOURS)]) for n in range(nodes)]
    items += [("hole", "#fff")]
    items += list(BAND_COLOURS.items())
    items += [(f"request: {s}", c) for s, c in SUBSYSTEM_COLOURS.items()]
    return items


def _change_row(c: Change) -> str:
    e = html.escape
    dist = c.distance
    cells = [c.kind.value, c.caller or c.api, c.api, human(c.new_size if c.new_size is not None else c.old_size or 0),
             str(c.nid), addr(c.old_addr) if c.old_size is not None else "none",
             addr(c.new_addr) if c.new_size is not None else "none",
             "" if not dist else signed(dist), c.scratch_note, c.src or ""]
    return "<tr>" + "".join(f"<td><code>{e(x)}</code></td>" for x in cells) + "</tr>"


def _section(i: int, c: Comparison, against: str, base: tuple[Outcome, Memblock] | None,
             mine: tuple[Outcome, Memblock] | None, end: int) -> str:
    e = html.escape
    d = c.diff
    cls = "diverged" if d.diverged else "same"
    title = f"{e(c.label)} vs {e(against)} ({e(c.boot)} boot)"
    if not d.diverged:  # nothing to look at: one line, no maps
        hidden = f"; {len(d.changes)} smaller than the threshold" if d.changes else ""
        return (f'<section id="c{i}" data-strategy="{e(c.label)}" data-boot="{e(c.boot)}" class="same-line">'
                f'<p>{title}: <span class="same">same</span> — every request where {e(against)} put it, '
                f"{len(d.metrics)} metrics equal{hidden}.</p></section>")
    out = [f'<section id="c{i}" data-strategy="{e(c.label)}" data-boot="{e(c.boot)}">',
           f'<h2>{title}: <span class="{cls}">{e(d.verdict())}</span></h2>']
    if base is not None and mine is not None:
        out.append('<div class="maps">')
        win = zoom_window((base[0], mine[0]), end)
        out += [_figure(label, o, mb, end, win) for label, (o, mb) in ((against, base), (c.label, mine))]
        out.append("</div>")
    if d.shown_metrics:
        out.append(f"<table><tr><th>metric</th><th>{e(against)}</th><th>{e(c.label)}</th><th>delta</th></tr>")
        for m in sorted_metrics(d):
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
        out.append(f"<details><summary>{requests_phrase(len(d.shown_changes), 'changed')}</summary><table>"
                   "<tr><th>kind</th><th>caller</th><th>api</th><th>size</th><th>nid</th><th>old</th><th>new</th>"
                   "<th>distance</th><th>scratch</th><th>source</th></tr>")
        for sub in sorted({x.subsystem for x in d.shown_changes}):
            out.append(f'<tr><th colspan="10">{e(sub)}</th></tr>')
            out += [_change_row(x) for x in d.shown_changes if x.subsystem == sub]
        out.append("</table></details>")
    out.append("</section>")
    return "\n".join(out)


def _boot_map(m: Map | None, boot: str) -> tuple[Outcome, Memblock] | None:
    """The (outcome, model) of *boot* in *m*; a side that ran one boot only (diff's A) is that boot."""
    if not m:
        return None
    return next((p for p in m if p[0].boot == boot), m[0] if len(m) == 1 else None)


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
    nodes = 1 + max((r.nid for _, mb in every for r in mb.memory if r.nid is not None and r.nid >= 0), default=0)
    body.append("</ul>" + _legend(min(nodes, len(NODE_COLOURS))))
    for i, c in enumerate(rep.comparisons):
        body.append(_section(i, c, rep.against, _boot_map(maps.get(rep.against), c.boot),
                             _boot_map(maps.get(c.label), c.boot), end))
    return head + "\n".join(body) + "</body></html>\n"
