# SPDX-License-Identifier: GPL-2.0-only
"""Every JSON document kho-replay writes, built in one place and to one convention.

The convention (README "JSON documents" gives each document's shape):

* every document is an object with ``schema_version`` (:data:`SCHEMA_VERSION`,
  bumped whenever any shape changes);
* physical addresses are strings as the kernel prints ``phys_addr_t``
  (``"0x000000023ffd2f80"``), null where there is none (a failed request);
* sizes, counts and node ids are integers; flags are lists of the kernel's
  names (``["MEMBLOCK_RSRV_KERN"]``);
* keys are the kernel's words (``reserved``, ``nid``, ``rsrv_kern``,
  ``global`` for the global scratch area), and a record is an object with
  named fields, never a positional list;
* text is written with sorted keys and one-space indent, so the same input
  gives the same bytes.

>>> from kho_replay.replay.memblock.engine import Memblock
>>> from kho_replay.replay.ops import parse_script
>>> mb = Memblock.for_kernel("7.3", "x86_64")
>>> doc = run_document(mb, mb.run(parse_script("add 0x100000 1G\\nalloc memblock_alloc size=4K align=4K")))
>>> doc["allocations"][0]["addr"], doc["reserved"][0]
('0x00000000400ff000', {'base': '0x00000000400ff000', 'size': 4096, 'flags': ['MEMBLOCK_RSRV_KERN'], 'nid': -1})
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ..flags import Flag, flag_names
from ..ops import FAILED, Op, Region, Trace, op_fields
from .units import phys_addr, phys_addr_or_none

if TYPE_CHECKING:
    from ..compare.diff import Change
    from ..compare.validate import ValidationReport
    from ..kho.outcome import Outcome
    from ..memblock.engine import Memblock, RunResult
    from ..memblock.regions import RegionTable
    from .text import Comparison, Report

__all__ = [
    "SCHEMA_VERSION",
    "change_object",
    "diff_document",
    "dumps",
    "flags_object",
    "kho_document",
    "op_object",
    "outcome_object",
    "parse_document",
    "run_document",
    "validate_document",
]

#: The version of every document's shape; bumped whenever any of them changes.
SCHEMA_VERSION = 2

#: Op fields that hold physical addresses (everything else numeric is a size, a count or a nid).
_ADDRESS_FIELDS = frozenset({"base", "addr", "limit", "min_addr", "max_addr", "expect"})


def dumps(doc: dict[str, object]) -> str:
    """*doc* as JSON text: sorted keys, one-space indent, final newline."""
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def flags_object(flags: int) -> list[str]:
    """Flags by the kernel's names (unknown bits as one hex string): ``["MEMBLOCK_RSRV_KERN"]``."""
    names = [f.name or "" for f in flag_names(flags)]
    unknown = int(flags) & ~sum(f.value for f in Flag)
    return [*names, hex(unknown)] if unknown else names


def _region(base: int, size: int, flags: int, nid: int | None) -> dict[str, object]:
    return {"base": phys_addr(base), "size": size, "flags": flags_object(flags), "nid": nid}


def _table(t: RegionTable | Iterable[Region]) -> list[dict[str, object]]:
    return [_region(r.base, r.size, int(r.flags), r.nid) for r in t]


def _nid_sizes(pairs: Iterable[tuple[int, int]], what: str = "size") -> list[dict[str, int]]:
    return [{"nid": n, what: v} for n, v in pairs]


# ------------------------------------------------------------------ run


def run_document(mb: Memblock, res: RunResult) -> dict[str, object]:
    """``kho-replay run --format json``: each allocation's result, the final tables, the messages."""
    return {
        "schema_version": SCHEMA_VERSION,
        "allocations": [{"op_index": r.op_index, "api": r.api, "size": r.size, "nid": r.nid, "caller": r.caller,
                         "addr": phys_addr_or_none(r.addr)} for r in res.results],
        "memory": _table(mb.memory),
        "reserved": _table(mb.reserved),
        "messages": [m.text for m in res.messages],
        "panic": res.panic,
    }


# ---------------------------------------------------------------- parse


def _op_value(key: str, v: object) -> object:
    if key in ("flags", "flag") and isinstance(v, int):
        return flags_object(v)
    if key in _ADDRESS_FIELDS and isinstance(v, int) and not isinstance(v, bool):
        return phys_addr(v)
    if key == "expect" and v == FAILED:
        return "failed"
    if v is None or isinstance(v, bool | int | str):
        return v
    return str(v)


def op_object(op: Op) -> dict[str, object]:
    """One op: ``op`` (the op-script keyword), its own fields, caller, inferred reason, source."""
    return {"op": op.keyword, **{k: _op_value(k, v) for k, v in op_fields(op).items()},
            "caller": op.caller, "inferred": op.inferred, "src": None if op.src is None else str(op.src)}


def parse_document(t: Trace) -> dict[str, object]:
    """``kho-replay parse --format json``: the trace's context, its ops, how many lines were skipped."""
    ctx = t.context
    return {
        "schema_version": SCHEMA_VERSION,
        "context": {"source": ctx.source, "release": ctx.release, "arch": ctx.arch, "cmdline": ctx.cmdline},
        "ops": [op_object(op) for op in t.ops],
        "skipped": len(t.skipped),
    }


# ------------------------------------------------------------- validate


def _boot_object(r: ValidationReport, boot: int | None) -> dict[str, object]:
    def check(ok: int, total: int) -> dict[str, int]:
        return {"matched": ok, "total": total}

    return {
        "boot": boot,
        "source": r.source,
        "ok": r.ok,
        "ops": r.ops,
        "inferred_ops": r.inferred_ops,
        "allocations": check(r.allocations_ok, r.allocations),
        "dumps": check(r.dumps_ok, r.dumps),
        "debugfs": check(r.debugfs_ok, r.debugfs),
        "doublings": check(r.doublings_ok, r.doublings),
        "memory_lines": check(r.memory_lines_ok, r.memory_lines),
        "after_boot_frees": [{"base": phys_addr(b), "size": s} for b, s in r.after_boot_frees],
        "panic": r.panic,
        "mismatches": [{"src": None if m.src is None else str(m.src), "what": m.what, "caller": m.caller,
                        "expected": m.expected, "got": m.got} for m in r.mismatches],
    }


def validate_document(reports: Sequence[ValidationReport], boots: Sequence[int | None]) -> dict[str, object]:
    """``kho-replay validate --format json``: one object per boot checked, and whether all were reproduced."""
    return {
        "schema_version": SCHEMA_VERSION,
        "ok": all(r.ok for r in reports),
        "boots": [_boot_object(r, b) for r, b in zip(reports, boots, strict=True)],
    }


# ------------------------------------------------------------------ kho


def outcome_object(o: Outcome) -> dict[str, object]:
    """One re-executed boot (the ``kho`` command's and the fixtures' unit)."""
    sc, g = o.scratch, o.gigantic
    # hugetlb_cma= areas only when the boot has some: every document without them stays as it was
    cma = {"hugetlb_cma": [{"nid": n, "base": phys_addr(b), "size": s} for n, b, s in o.hugetlb_cma]
           } if o.hugetlb_cma else {}
    return {
        "source": o.source,
        "strategy": o.strategy,
        "boot": o.boot,
        "kho_boot": o.kho_boot,
        "scratch": {
            "enabled": sc.enabled,
            "lowmem": sc.lowmem,
            "global": sc.global_,
            "pernode": _nid_sizes(sc.pernode),
            "rsrv_kern_low": sc.k_low,
            "rsrv_kern_all": sc.k_all,
            "rsrv_kern_pernode": _nid_sizes(sc.k_nodes),
            "areas": [{"name": a.name, "base": phys_addr(a.base), "size": a.size} for a in sc.areas],
            "failed": sc.failed,
        },
        "gigantic": {
            "requested": g.requested,
            "allocated": g.allocated,
            "per_node": _nid_sizes(g.per_node, "count"),
            "fallbacks": g.fallbacks,
            "in_scratch": g.in_scratch,
            "in_extended": g.in_extended,
            "adopted": g.adopted,
            "addrs": [phys_addr(a) for a in g.addrs],
        },
        "rsrv_kern": o.rsrv_kern,
        "rsrv_hugetlb": o.rsrv_hugetlb,
        "preserved_bytes": o.preserved_bytes,
        "extended_bytes": o.extended_bytes,
        "estimated_nr_free_pages": o.estimated_nr_free_pages,
        "max_threads": o.max_threads,
        "reserved_cnt_peak": o.reserved_cnt_peak,
        "reserved_cnt_final": o.reserved_cnt_final,
        "doublings": [{"op_index": d.at, "type": d.name, "max": d.new_max, "base": phys_addr(d.base),
                       "size": d.alloc_size, "in_scratch": o.in_scratch(d)} for d in o.doublings],
        "scratch_left": [{"phase": p, "free": b} for p, b in o.scratch_left],
        "messages": list(o.messages),
        "cost": {"regions_scanned": o.cost.regions_scanned, "memmove_entries": o.cost.memmove_entries,
                 "digest_keys": o.cost.digest_keys},
        "requests": [{"op_index": r.op_index, "api": r.api, "size": r.size, "nid": r.nid, "subsystem": r.subsystem,
                      "addr": phys_addr_or_none(r.addr), "caller": r.caller, "synthesized": r.synthesized,
                      "scratch_only": r.scratch_only} for r in o.requests],
        "panic": o.panic,
        **cma,
    }


def kho_document(outcomes: Iterable[Outcome]) -> dict[str, object]:
    """``kho-replay kho --format json``: every re-executed boot, in the order they ran."""
    return {"schema_version": SCHEMA_VERSION, "outcomes": [outcome_object(o) for o in outcomes]}


# ----------------------------------------------------------------- diff


def change_object(c: Change) -> dict[str, object]:
    """One changed request."""
    return {
        "kind": c.kind.value, "op_index": c.op_index, "api": c.api, "caller": c.caller,
        "subsystem": c.subsystem, "nid": c.nid,
        "old_addr": phys_addr_or_none(c.old_addr), "new_addr": phys_addr_or_none(c.new_addr),
        "old_size": c.old_size, "new_size": c.new_size, "distance": c.distance,
        "old_in_scratch": c.old_in_scratch, "new_in_scratch": c.new_in_scratch,
        "synthesized": c.synthesized, "src": c.src, "words": c.words,
    }


def _comparison_object(c: Comparison) -> dict[str, object]:
    d = c.diff
    first = d.first
    return {
        "strategy": c.label, "boot": c.boot, "diverged": d.diverged, "verdict": d.verdict(),
        "first": None if first is None else change_object(first),
        "changes": [change_object(x) for x in d.shown_changes],
        "metrics": [{"name": m.name, "old": m.old, "new": m.new, "delta": m.delta, "unit": m.unit,
                     "informational": m.informational} for m in d.shown_metrics],
        "messages_added": list(d.messages_added), "messages_gone": list(d.messages_gone),
        "panic": {"old": d.old.panic, "new": d.new.panic},
        "regions": [{"kind": r.kind, "base": phys_addr(r.base), "size": r.size, "parts": r.parts}
                    for r in d.regions],
    }


def diff_document(rep: Report) -> dict[str, object]:
    """The default command's and ``diff``'s JSON: every comparison with its verdict, changes and metrics."""
    return {
        "schema_version": SCHEMA_VERSION, "trace": rep.trace, "against": rep.against, "kexec": rep.kexec,
        "preserve": rep.preserve, "threshold": rep.threshold, "diverged": rep.diverged,
        "comparisons": [_comparison_object(c) for c in rep.comparisons],
    }
