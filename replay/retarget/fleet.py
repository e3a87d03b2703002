# SPDX-License-Identifier: GPL-2.0-only
"""The same question for a whole fleet: one template, many plain logs, one typed row per host and design.

:func:`fleet` retargets every host from the template and re-executes it as a
cold boot under each design (:func:`~..kho.boot.run_cold`), on
:func:`~..parallel.map_points` (all cores, or a Dask scheduler): results come
back in input order, so the rows are the same whatever ran where.  Hosts
already present in a previous output are skipped (:func:`read_rows`), which
makes a run resumable.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..errors import KhoReplayError
from ..parallel import map_points

__all__ = ["ROW_FIELDS", "FleetRow", "fleet", "format_rows", "host_rows", "read_rows", "summary"]


@dataclass(frozen=True, slots=True)
class FleetRow:
    """One host under one design: KHO scratch and gigantic pages on its predicted cold boot."""

    host: str
    strategy: str
    #: ``cold``, or ``kexec``: the KHO boot after it, preserving the cold boot's gigantic pages.
    boot: str
    kho: bool
    failed: str
    lowmem_mib: int
    global_mib: int
    pernode_mib: str
    pages_requested: int
    pages_allocated: int
    pages_in_scratch: int
    assumptions: int
    error: str = ""

    @property
    def outcome(self) -> str:
        """The group this host falls in: error, KHO off (which area failed), or KHO on with pages in scratch."""
        if self.error:
            return "error"
        if not self.kho:
            return f"KHO off ({self.failed or 'kho not enabled'})"
        if self.pages_in_scratch:
            return "KHO on, gigantic pages inside scratch"
        if self.pages_allocated < self.pages_requested:
            return "KHO on, gigantic pages missing"
        return "KHO on"


_TEMPLATES: dict[str, object] = {}


def _template(path: str):
    from . import load_template

    t = _TEMPLATES.get(path)
    if t is None:
        t = _TEMPLATES[path] = load_template(path)
    return t


_STRATEGIES: dict[str, object] = {}


def _strategy(spec: str):
    """``NAME[+OPTION]...`` resolved once per process (entry points are scanned on every lookup)."""
    from ..strategies import get

    s = _STRATEGIES.get(spec)
    if s is None:
        name, *opts = spec.split("+")
        s = _STRATEGIES[spec] = get(name, tuple(opts))
    return s


def host_rows(point: tuple[str, str, tuple[str, ...], bool, bool]) -> list[FleetRow]:
    """Rows of one host: ``(template path, host log, strategies, force, kexec)``; a bad log is an ``error`` row."""
    from ..kho.boot import run_cold, run_kexec
    from . import retarget_files

    tpath, hpath, strategies, force, kexec = point
    boots = ("cold", "kexec") if kexec else ("cold",)
    try:
        r = retarget_files(_template(tpath), hpath, force=force)
    except KhoReplayError as e:
        return [FleetRow(hpath, s, b, False, "", 0, 0, "", 0, 0, 0, 0, str(e)) for s in strategies for b in boots]
    rows = []
    for s in strategies:
        try:
            outs = run_kexec(r.trace, _strategy(s)) if kexec else (run_cold(r.trace, _strategy(s)),)
        except KhoReplayError as e:
            rows += [FleetRow(hpath, s, b, False, "", 0, 0, "", 0, 0, 0, len(r.assumptions), str(e)) for b in boots]
            continue
        cold = outs[0].scratch
        for b, o in zip(boots, outs, strict=True):
            g = o.gigantic
            # the KHO boot runs on the cold boot's scratch: its sizes are those
            rows.append(FleetRow(hpath, s, b, cold.enabled and (b == "cold" or o.kho_boot), cold.failed or "",
                                 cold.lowmem >> 20, cold.global_ >> 20,
                                 " ".join(f"{n}:{v >> 20}" for n, v in cold.pernode), g.requested, g.allocated,
                                 g.in_scratch, len(r.assumptions)))
    return rows


def fleet(template: str | Path, hosts: Sequence[str | Path], strategies: Sequence[str] = ("baseline", "merged"), *,
          jobs: int | None = None, scheduler: str | None = None, force: bool = False,
          progress: Callable[[int], None] | None = None, skip: set[str] = frozenset(),
          kexec: bool = False) -> list[FleetRow]:
    """Rows for every host not in *skip*, host by host in input order, each host's designs in *strategies* order.

    With *kexec*, each design also gets a ``kexec`` row: the KHO boot after the
    cold one, preserving its gigantic pages (how many the KHO boot placed,
    how many inside the inherited scratch).
    """
    for s in strategies:
        _strategy(s)  # an unknown design is one error before any host runs
    points = [(str(template), str(h), tuple(strategies), force, kexec) for h in hosts if str(h) not in skip]
    out = map_points(host_rows, points, jobs=jobs, scheduler=scheduler, progress=progress)
    return [row for rows in out for row in rows]


def summary(rows: Sequence[FleetRow]) -> list[str]:
    """One line per design ("merged keeps KHO on 9,812/10,000 hosts"), then hosts grouped by outcome."""
    lines = []
    designs = list(dict.fromkeys(r.strategy for r in rows))
    for s in designs:
        mine = [r for r in rows if r.strategy == s and r.boot == "cold"]
        on = sum(1 for r in mine if r.kho)
        line = f"{s} keeps KHO on {on:,}/{len(mine):,} hosts"
        ke = [r for r in rows if r.strategy == s and r.boot == "kexec"]
        if ke:
            full = sum(1 for r in ke if r.kho and r.pages_allocated == r.pages_requested)
            inside = sum(1 for r in ke if r.pages_in_scratch)
            line += (f"; after a KHO kexec all gigantic pages placed on {full:,}, some inside scratch on "
                     f"{inside:,}")
        lines.append(line)
    for s in designs:
        for boot in dict.fromkeys(r.boot for r in rows):
            groups: dict[str, list[str]] = {}
            for r in rows:
                if r.strategy == s and r.boot == boot:
                    groups.setdefault(r.outcome, []).append(Path(r.host).name)
            for k, hs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
                shown = ", ".join(hs[:5]) + (f", ... ({len(hs) - 5} more)" if len(hs) > 5 else "")
                lines.append(f"  {s} ({boot}): {k}: {len(hs):,} host(s): {shown}")
    return lines


#: The columns of every fleet report, in order.
ROW_FIELDS = [f.name for f in fields(FleetRow)]


def format_rows(rows: Sequence[FleetRow], fmt: str) -> str:
    """*rows* as ``csv``, ``json`` (a list of objects, keys sorted) or a self-contained ``html`` table."""
    if fmt == "json":
        return json.dumps({"rows": [asdict(r) for r in rows], "summary": summary(rows)}, indent=1,
                          sort_keys=True) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(ROW_FIELDS)
        for r in rows:
            w.writerow([getattr(r, f) for f in ROW_FIELDS])
        return buf.getvalue()
    if fmt == "html":
        head = "".join(f"<th>{html.escape(f)}</th>" for f in ROW_FIELDS)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(getattr(r, f)))}</td>" for f in ROW_FIELDS) + "</tr>"
                       for r in rows)
        summ = "".join(f"<li>{html.escape(s)}</li>" for s in summary(rows))
        return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>kho-replay fleet</title></head><body>"
                f"<h1>kho-replay fleet</h1><ul>{summ}</ul><table border='1'><tr>{head}</tr>{body}</table>"
                "</body></html>\n")
    raise KhoReplayError(f"unknown fleet output format {fmt!r} (csv, json, html)")


def read_rows(path: str | Path) -> list[FleetRow]:
    """Rows of a previous ``fleet -o`` output (csv, json or parquet); none when the file does not exist."""
    p = Path(path)
    # A FIFO or device (-o /dev/null, a pipe) holds no previous report: reading a FIFO would wait for a writer.
    if not p.is_file():
        return []
    if p.suffix == ".parquet":
        from ..output import read_parquet

        return [_row(d) for d in read_parquet(p)]
    text = p.read_text()
    if not text.strip():
        return []
    try:
        if p.suffix == ".json":
            raw = json.loads(text)["rows"]
        elif p.suffix == ".csv":
            raw = list(csv.DictReader(io.StringIO(text)))
        else:
            raise KhoReplayError(f"{p}: cannot resume from a .{p.suffix.lstrip('.')} report (csv, json or parquet)")
    except (ValueError, KeyError) as e:
        raise KhoReplayError(f"{p}: not a fleet report ({e})") from None
    return [_row(d) for d in raw]


def _row(d: dict[str, object]) -> FleetRow:
    """A FleetRow from a report's record: csv gives strings, json and parquet typed values."""
    vals: dict[str, object] = {}
    for f in fields(FleetRow):
        v = d.get(f.name, "")
        if f.type == "bool":
            v = v if isinstance(v, bool) else v == "True"
        elif f.type == "int":
            v = int(v or 0)  # type: ignore[call-overload]
        vals[f.name] = v if v is not None else ""
    return FleetRow(**vals)  # type: ignore[arg-type]
