# SPDX-License-Identifier: GPL-2.0-only
"""A sweep's table as text, JSON, CSV, parquet or one self-contained HTML page (SVG, no script).

Same rows, same bytes: keys sorted, addresses as the kernel prints them
(``0x%016x`` in JSON and CSV), no timestamps.  The HTML page has, per design
and boot, the outcome along the image address (one mark per KASLR slot,
green where KHO scratch was reserved, red where it failed) and, when a sweep
varies two parameters, a heat map of the share of points that kept scratch
over their values; then the summary and the full table.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path

from ..output import write_output, write_parquet
from ..report.html import CSS, LEFT, WIDTH, axis_scale, gib_axis
from .sweep import Row, SweepResult, summary

__all__ = ["row_json", "sweep_csv", "sweep_html", "sweep_json", "sweep_text", "write_table"]

SCHEMA_VERSION = 1
_ADDR = ("image_at",)
_MIB = ("lowmem", "global_", "pernode", "rsrv_kern")


def _hex(v: int | None) -> str | None:
    return None if v is None else f"0x{v:016x}"


def row_json(r: Row) -> dict[str, object]:
    """One row as JSON values: addresses as ``0x%016x`` strings, sizes and counts as integers."""
    out: dict[str, object] = {}
    for name in Row.columns():
        v = getattr(r, name)
        if name in _ADDR:
            v = _hex(v)
        elif name == "gigantic_addrs":
            v = [_hex(a) for a in v]
        out[name.rstrip("_")] = v
    return out


def sweep_json(res: SweepResult) -> str:
    """The whole sweep as JSON (sorted keys, one trailing newline)."""
    doc = {"schema_version": SCHEMA_VERSION, "trace": res.trace, "strategies": list(res.strategies),
           "kexec": res.kexec, "swept": list(res.swept), "summary": summary(res),
           "rows": [row_json(r) for r in res.rows]}
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def sweep_csv(res: SweepResult) -> str:
    """One CSV line per row; ``gigantic_addrs`` space-separated."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = [c.rstrip("_") for c in Row.columns()]
    w.writerow(cols)
    for r in res.rows:
        d = row_json(r)
        w.writerow(["" if d[c] is None else " ".join(d[c]) if isinstance(d[c], list) else  # type: ignore[arg-type]
                    str(d[c]).lower() if isinstance(d[c], bool) else d[c] for c in cols])
    return buf.getvalue()


def _mib(v: int) -> str:
    return f"{v >> 20}M" if v % (1 << 20) == 0 else f"{v / (1 << 20):.1f}M"


def _text_rows(res: SweepResult) -> list[tuple[str, ...]]:
    rows = [("image_at", "params", "strategy", "boot", "scratch", "lowmem", "global", "pernode",
             "pages", "in scratch", "RSRV_KERN", "max_threads")]
    for r in res.rows:
        sc = "yes" if r.scratch_reserved else (f"FAIL {r.scratch_failed}" if r.scratch_failed else "off")
        rows.append((_hex(r.image_at) or "-", r.params or "-", r.strategy, r.boot, sc, _mib(r.lowmem),
                     _mib(r.global_), _mib(r.pernode), f"{r.gigantic_allocated}/{r.gigantic_requested}",
                     str(r.gigantic_in_scratch), _mib(r.rsrv_kern), str(r.max_threads)))
    if any(r.hugetlb_cma for r in res.rows):
        # the CMA areas in place, only when some point has one (the column is in every file format)
        rows = [(*row, "hugetlb_cma" if i == 0 else _mib(res.rows[i - 1].hugetlb_cma)) for i, row in enumerate(rows)]
    return rows


def sweep_text(res: SweepResult) -> str:
    """The full table, aligned columns."""
    rows = _text_rows(res)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows) + "\n"


# ------------------------------------------------------------------- HTML

def _strip(rows: Sequence[Row], end: int, caption: str) -> str:
    """The outcome along the image address: one tick per slot, green scratch kept, red lost."""
    height, top = 48, 18
    scale = axis_scale(end)
    e = html.escape
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{e(caption)}">']
    parts += gib_axis(end, height)
    parts.append(f'<text x="{LEFT - 6}" y="{top + 14}" font-size="10" text-anchor="end">scratch</text>')
    # Slots closer than a pixel with the same outcome share one mark (and say how many).
    marks: list[list] = []
    for r in sorted(rows, key=lambda r: r.image_at or 0):
        x = LEFT + (r.image_at or 0) * scale
        ok = r.scratch_reserved
        if marks and marks[-1][2] == ok and x - marks[-1][1] < 1:
            marks[-1][1] = x
            marks[-1][3] += 1
            marks[-1][5] = r.image_at or 0
            continue
        marks.append([x, x, ok, 1, r.image_at or 0, r.image_at or 0])
    for x0, x1, ok, n, a0, a1 in marks:
        colour = "#31a354" if ok else "#b3261e"
        what = "KHO scratch reserved" if ok else "KHO scratch failed"
        title = f"image at 0x{a0:x}" + (f"..0x{a1:x} ({n} slots)" if n > 1 else "") + f": {what}"
        parts.append(f'<rect x="{x0:.2f}" y="{top}" width="{max(1.0, x1 - x0 + 1):.2f}" height="20" '
                     f'fill="{colour}"><title>{e(title)}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def _heat(rows: Sequence[Row], keys: tuple[str, str], caption: str) -> str:
    """Share of points that kept KHO scratch over the values of two swept parameters."""
    e = html.escape

    def value(r: Row, key: str) -> str:
        return next((w.partition("=")[2] for w in r.params.split() if w.partition("=")[0] == key), "")

    xs = list(dict.fromkeys(value(r, keys[0]) for r in rows))
    ys = list(dict.fromkeys(value(r, keys[1]) for r in rows))
    cell, left, top = 44, 110, 30
    w, h = left + cell * len(xs) + 10, top + cell * len(ys) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
             f'role="img" aria-label="{e(caption)}">',
             f'<text x="{left}" y="10" font-size="10">{e(keys[0])}</text>',
             f'<text x="4" y="{top - 4}" font-size="10">{e(keys[1])}</text>']
    for i, xv in enumerate(xs):
        parts.append(f'<text x="{left + i * cell + cell / 2}" y="{top - 6}" font-size="9" '
                     f'text-anchor="middle">{e(xv)}</text>')
    for j, yv in enumerate(ys):
        parts.append(f'<text x="{left - 4}" y="{top + j * cell + cell / 2 + 3}" font-size="9" '
                     f'text-anchor="end">{e(yv)}</text>')
        for i, xv in enumerate(xs):
            pts = [r for r in rows if value(r, keys[0]) == xv and value(r, keys[1]) == yv]
            share = sum(r.scratch_reserved for r in pts) / len(pts) if pts else 0.0
            # Red (lost everywhere) to green (kept everywhere).
            red, green = int(200 * (1 - share)) + 40, int(160 * share) + 60
            parts.append(f'<rect x="{left + i * cell}" y="{top + j * cell}" width="{cell - 2}" height="{cell - 2}" '
                         f'fill="rgb({red},{green},70)"><title>{e(keys[0])}={e(xv)} {e(keys[1])}={e(yv)}: '
                         f'scratch kept in {sum(r.scratch_reserved for r in pts)}/{len(pts)}</title></rect>'
                         f'<text x="{left + i * cell + cell / 2 - 1}" y="{top + j * cell + cell / 2 + 3}" '
                         f'font-size="9" text-anchor="middle" fill="#fff">{share:.0%}</text>')
    parts.append("</svg>")
    return "".join(parts)


def sweep_html(res: SweepResult) -> str:
    """One self-contained page: plots per design and boot, the summary and the full table."""
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>kho-replay sweep: {e(res.trace)}</title><style>{CSS}</style></head><body>",
           f"<h1>kho-replay sweep: {e(res.trace)}</h1>",
           "<p>" + "<br>".join(e(x) for x in summary(res)) + "</p>"]
    boots = ("cold", "kexec") if res.kexec else ("cold",)
    keys = tuple(k for k in res.swept if k != "image_at")
    imgs = [r.image_at for r in res.rows if r.image_at is not None]
    end = -(-max(imgs) // (1 << 30)) * (1 << 30) if imgs else 0
    for s in res.strategies:
        for boot in boots:
            rows = [r for r in res.rows if r.strategy == s and r.boot == boot]
            out.append(f"<h2>{e(s)} ({e(boot)} boot)</h2>")
            if end:
                # One strip per parameter combination: a slot's outcome under one command line.
                for params in dict.fromkeys(r.params for r in rows):
                    part = [r for r in rows if r.params == params]
                    label = f" ({params})" if params else ""
                    out.append(f"<figure><figcaption>outcome along the kernel image's address{e(label)}"
                               f"</figcaption>{_strip(part, end, f'{s} {boot} along the image address')}</figure>")
            if len(keys) >= 2:
                out.append(f"<figure><figcaption>share of points keeping KHO scratch</figcaption>"
                           f"{_heat(rows, (keys[0], keys[1]), f'{s} {boot} heat map')}</figure>")
    table = _text_rows(res)
    out.append("<h2>all points</h2><table>")
    out.append("<tr>" + "".join(f"<th>{e(c)}</th>" for c in table[0]) + "</tr>")
    for r in table[1:]:
        out.append("<tr>" + "".join(f"<td><code>{e(c)}</code></td>" for c in r) + "</tr>")
    out.append("</table></body></html>")
    return "\n".join(out) + "\n"


def write_table(res: SweepResult, output: Path | None) -> str:
    """Write *res* to *output* in the format its suffix names; without *output*, return the text table."""
    if output is None:
        return sweep_text(res)
    if output.suffix == ".parquet":
        write_parquet(output, {c.rstrip("_"): [row_json(r)[c.rstrip("_")] for r in res.rows] for c in Row.columns()})
        return ""
    write_output(output, {".json": sweep_json, ".csv": sweep_csv, ".html": sweep_html}[output.suffix](res))
    return ""
