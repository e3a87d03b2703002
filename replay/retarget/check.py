# SPDX-License-Identifier: GPL-2.0-only
"""``validate`` for a retargeted trace: every address and total the host's plain log printed.

:func:`check` runs :func:`~..compare.validate.validate` (the allocations the
host printed: ``NODE_DATA``, swiotlb, crashkernel, CMA; the ``Memory:`` total)
and adds what only a retargeted trace carries as ``retarget:*`` observations:

* ``Early memory node ranges``: each printed range is a ``memory[]`` region of
  that node at the end of the replay;
* ``RAMDISK:`` and the ACPI table reservations lie inside ``reserved[]``;
* ``HugeTLB: registered 1.00 GiB page size, pre-allocated N pages``: the replay
  placed N gigantic pages;
* ``KHO: Failed to reserve ...``: the replay's scratch failed too (and did not
  when the log has no such line and ``kho=on``).

Each result is matched N/M; a mismatch names the host line and the op whose
assumption failed (its ``# inferred: ... retarget: ORIGIN``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..compare.validate import ValidationReport, validate
from ..ops import KernelMessage, Op, Src, Trace

__all__ = ["RetargetCheck", "check"]


@dataclass(slots=True)
class RetargetCheck:
    """What was checked against the host's own lines and what matched."""

    validation: ValidationReport
    checked: int = 0
    matched: int = 0
    #: (host line, what, expected, got, op blamed or None)
    mismatches: list[tuple[str, str, str, str, str | None]] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Printed facts checked: allocations with a printed address, Memory: totals, and the rest."""
        v = self.validation
        return v.allocations + v.memory_lines + self.checked

    @property
    def total_matched(self) -> int:
        v = self.validation
        return v.allocations_ok + v.memory_lines_ok + self.matched

    @property
    def ok(self) -> bool:
        """Every printed fact was reproduced."""
        return self.total == self.total_matched and self.validation.panic is None

    def summary(self) -> str:
        """``printed facts matched N/M`` and the first mismatches with the op to blame."""
        lines = [f"{self.validation.source}: printed facts matched {self.total_matched}/{self.total} "
                 f"(addresses {self.validation.allocations_ok}/{self.validation.allocations}, "
                 f"Memory: {self.validation.memory_lines_ok}/{self.validation.memory_lines}, "
                 f"layout/hugetlb/KHO {self.matched}/{self.checked})"]
        for where, what, exp, got, blame in self.mismatches[:5]:
            lines.append(f"  {where}: {what}: expected {exp}, got {got}" + (f"; assumption: {blame}" if blame else ""))
        return "\n".join(lines)


def _origin(op: Op) -> str:
    why = op.inferred or ""
    return why.split("retarget: ", 1)[1] if "retarget: " in why else why


def _find(trace: Trace, src: Src | None) -> int | None:
    if src is None:
        return None
    for i, op in enumerate(trace.ops):
        if op.src == src:
            return i
    return None


def check(trace: Trace) -> RetargetCheck:
    """Validate a retargeted *trace* against every fact its host's plain log printed."""
    from ..kho.boot import run_cold

    v = validate(trace)
    rep = RetargetCheck(v)
    placed = _placements(trace) if v.mismatches else {}
    for m in v.mismatches:
        i = _find(trace, m.src)
        blame = None
        if i is not None:
            blame = f"op {i + 1} {trace.ops[i].keyword} ({_origin(trace.ops[i])})"
            op = trace.ops[i]
            if m.expected.startswith("0x") and hasattr(op, "size"):
                want = int(m.expected, 16)
                # an earlier op that took the printed place is the likelier wrong assumption
                for j in sorted(_live(trace, placed, i), reverse=True):
                    b, e = placed[j]
                    if b < want + op.size and want < e:
                        blame = (f"op {j + 1} {trace.ops[j].keyword} ({_origin(trace.ops[j])}) holds the printed "
                                 f"place; then {blame}")
                        break
        rep.mismatches.append((str(m.src) if m.src else "?", m.what, m.expected, m.got, blame))
    mb = v.model
    obs = [o for o in trace.observations if isinstance(o, KernelMessage) and o.kind.startswith("retarget:")]
    outcome = None
    for o in obs:
        where = f"{o.src.path}:{o.src.line}" if o.src else "?"
        rep.checked += 1
        ok, exp, got, blame = True, o.text, "", None
        if o.kind == "retarget:node_range" and mb is not None:
            m = re.match(r"node (\d+): \[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\]", o.text)
            nid, base, end = int(m.group(1)), int(m.group(2), 16), int(m.group(3), 16) + 1
            regs = [r for r in mb.memory if r.base == base and r.end == end]
            ok = bool(regs) and regs[0].nid == nid
            got = f"nid {regs[0].nid}" if regs else "no such memory[] region"
            blame = _blame(trace, ("e820", "node span"))
        elif o.kind == "retarget:reserved" and mb is not None:
            m = re.search(r"\[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\]", o.text)
            base, end = int(m.group(1), 16), int(m.group(2), 16) + 1
            ok = mb.reserved.is_region_reserved(base, end - base) if hasattr(mb.reserved, "is_region_reserved") \
                else any(r.base <= base and end <= r.end for r in mb.reserved)
            got = "not in reserved[]"
        elif o.kind in ("retarget:hugetlb", "retarget:kho", "retarget:kho_sizes"):
            if outcome is None:
                outcome = run_cold(trace, "baseline")
            if o.kind == "retarget:hugetlb":
                want = int(re.search(r"pre-allocated (\d+)", o.text).group(1))
                ok, got = outcome.gigantic.allocated == want, f"{outcome.gigantic.allocated} pages"
                blame = _blame(trace, ("hugetlb_bootmem_alloc",))
            elif o.kind == "retarget:kho_sizes":
                sc = outcome.scratch
                m = re.search(r"lowmem: (\d+)MiB global: (\d+)MiB pernode: (\d+)MiB", o.text)
                want_sizes = tuple(int(x) for x in m.groups()) if m else ()
                got_sizes = (sc.lowmem >> 20, sc.global_ >> 20, (sc.pernode[0][1] >> 20) if sc.pernode else 0)
                ok = want_sizes == got_sizes
                got = "lowmem: {}MiB global: {}MiB pernode: {}MiB".format(*got_sizes)
                blame = _blame(trace, ("kho_reserve_scratch",))
            else:
                want_on = not o.text.startswith("KHO: Failed") and "disabling" not in o.text
                ok = outcome.scratch.enabled == want_on
                got = "scratch reserved" if outcome.scratch.enabled else f"scratch failed ({outcome.scratch.failed})"
                blame = _blame(trace, ("kho_reserve_scratch",))
        if ok:
            rep.matched += 1
        else:
            rep.mismatches.append((where, o.kind.removeprefix("retarget:"), exp, got, blame))
    return rep


def _placements(trace: Trace) -> dict[int, tuple[int, int]]:
    """Op index -> [base, end) of every allocation and fixed reservation, replayed without resync."""
    from ..memblock.engine import Memblock
    from ..ops import Alloc, Reserve, ReserveKern
    from ..profile import arch_for, profile_for

    ctx = trace.context
    mb = Memblock(profile_for(ctx.release or "7.3"), arch_for(ctx.arch or "x86_64"))
    res = mb.run(trace.ops)
    out = {r.op_index: (r.addr, r.addr + r.size) for r in res.results if r.addr is not None}
    for i, op in enumerate(trace.ops):
        if isinstance(op, Reserve | ReserveKern) and not isinstance(op, Alloc):
            out[i] = (op.base, op.base + op.size)
    return out


def _live(trace: Trace, placed: dict[int, tuple[int, int]], upto: int) -> list[int]:
    """Ops before *upto* whose placement no later free (before *upto*) gave back whole."""
    from ..ops import Free

    live = [j for j in placed if j < upto]
    for k in range(upto):
        op = trace.ops[k]
        if isinstance(op, Free):
            live = [j for j in live if not (j < k and op.base <= placed[j][0] and placed[j][1] <= op.base + op.size)]
    return live


def _blame(trace: Trace, words: tuple[str, ...]) -> str | None:
    for i, op in enumerate(trace.ops):
        origin = _origin(op)
        if any(w in origin for w in words):
            return f"op {i + 1} {op.keyword} ({origin})"
    return None
