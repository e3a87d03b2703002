# SPDX-License-Identifier: GPL-2.0-only
"""What one re-executed boot produced: per-request results and the metrics of kho-spec §11.

Everything here is a frozen dataclass so two outcomes can be lined up by a
differ request by request (:attr:`Outcome.requests`, by op index) and metric
by metric.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "SCHEMA_VERSION",
    "Agreement",
    "ArrayMove",
    "Cost",
    "Gigantic",
    "Outcome",
    "Request",
    "Scratch",
    "agreement",
    "format_outcome",
    "outcome_json",
]


@dataclass(frozen=True, slots=True)
class Request:
    """One allocation request of the boot: where it went (None: failed) and who asked."""

    op_index: int
    api: str
    size: int
    nid: int
    subsystem: str
    addr: int | None
    caller: str | None = None
    #: True when the op was synthesized (KHO scratch of a trace without KHO, extra hugetlb attempts).
    synthesized: bool = False
    #: memblock was scratch-only when the request ran (a KHO boot before memblock_free_all()).
    scratch_only: bool = False


@dataclass(frozen=True, slots=True)
class Scratch:
    """KHO scratch on the cold boot (sizes, areas or the failure), or inherited on a KHO boot.

    Sizes are bytes; ``pernode`` is ``((nid, size), ...)``; ``failed`` is the
    area the kernel could not reserve (``global``, ``node1``...).
    """

    enabled: bool
    lowmem: int
    global_: int
    pernode: tuple[tuple[int, int], ...]
    k_low: int
    k_all: int
    k_nodes: tuple[tuple[int, int], ...]
    areas: tuple[tuple[str, int, int], ...]
    failed: str | None

    @property
    def reserved(self) -> int:
        """Bytes of scratch actually in place."""
        return sum(s for _, _, s in self.areas)


@dataclass(frozen=True, slots=True)
class Gigantic:
    """Gigantic hugetlb pages of the boot.

    ``per_node`` counts pages by the nid their reservation carries (-1: the
    memblock any-node fallback); ``in_scratch`` pages overlap ``kho_scratch[]``
    and cannot be preserved; ``in_extended`` lie in memory a strategy's
    extension flagged; ``adopted`` came from the previous kernel (alternative 3).
    """

    requested: int
    allocated: int
    per_node: tuple[tuple[int, int], ...]
    fallbacks: int
    in_scratch: int
    in_extended: int
    adopted: int
    addrs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ArrayMove:
    """One ``memblock_double_array()``: table, new capacity, where it went, inside scratch or not."""

    name: str
    new_max: int
    base: int
    size: int
    in_scratch: bool


@dataclass(frozen=True, slots=True)
class Cost:
    """Cost proxies: regions the kernel would scan, entries it would memmove, digest keys."""

    regions_scanned: int
    memmove_entries: int
    digest_keys: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """One boot under one strategy (``boot`` is ``cold`` or ``kexec``)."""

    source: str
    strategy: str
    boot: str
    kho_boot: bool
    scratch: Scratch
    gigantic: Gigantic
    rsrv_kern: int
    rsrv_hugetlb: int
    preserved_bytes: int
    estimated_nr_free_pages: int
    max_threads: int
    reserved_cnt_peak: int
    reserved_cnt_final: int
    doublings: tuple[ArrayMove, ...]
    #: (phase, free bytes of KHO_SCRATCH memory) after each early phase of a KHO boot.
    scratch_left: tuple[tuple[str, int], ...]
    extended_bytes: int
    messages: tuple[str, ...]
    cost: Cost
    requests: tuple[Request, ...]
    panic: str | None = None

    def request(self, op_index: int) -> Request | None:
        """The request made by op *op_index*, if the boot made one."""
        for r in self.requests:
            if r.op_index == op_index:
                return r
        return None


@dataclass(frozen=True, slots=True)
class Agreement:
    """How two KHO boots agree on where their scratch-only requests landed.

    Requests are paired by (caller function, size, nid) in order of
    occurrence; ``mismatches`` lists ``(caller, size, addr_a, addr_b)`` for
    pairs that differ, ``unpaired`` counts requests one boot made and the
    other did not.
    """

    paired: int
    same: int
    mismatches: tuple[tuple[str, int, int | None, int | None], ...]
    unpaired: int


def _func(caller: str | None) -> str:
    return (caller or "").split("+", 1)[0]


def agreement(a: Outcome, b: Outcome) -> Agreement:
    """Line up the scratch-only requests of *a* and *b* and count where they agree."""
    def keyed(o: Outcome) -> dict[tuple[str, int, int, int], Request]:
        seen: dict[tuple[str, int, int], int] = {}
        out = {}
        for r in o.requests:
            if not r.scratch_only:
                continue
            k = (_func(r.caller), r.size, r.nid)
            n = seen.get(k, 0)
            seen[k] = n + 1
            out[(*k, n)] = r
        return out

    ka, kb = keyed(a), keyed(b)
    common = [k for k in ka if k in kb]
    mism = tuple((k[0], k[1], ka[k].addr, kb[k].addr) for k in common if ka[k].addr != kb[k].addr)
    unpaired = len(ka) + len(kb) - 2 * len(common)
    return Agreement(len(common), len(common) - len(mism), mism, unpaired)


def _mib(x: int) -> str:
    from ..report.units import human

    return human(x)


def format_outcome(o: Outcome) -> list[str]:
    """The outcome as report lines (hex addresses as the kernel prints them)."""
    sc, g = o.scratch, o.gigantic
    kind = "KHO boot" if o.kho_boot else ("plain kexec (no KHO)" if o.boot == "kexec" else "cold boot")
    lines = [f"{o.source}: {o.strategy}, {kind}"]
    if o.boot == "cold":
        if sc.k_all or sc.k_low:
            lines.append(", ".join([f"  RSRV_KERN for sizing: low {_mib(sc.k_low)}", f"all {_mib(sc.k_all)}"]
                                   + [f"node{n} {_mib(k)}" for n, k in sc.k_nodes]))
        lines.append(", ".join([f"  scratch requested: lowmem {_mib(sc.lowmem)}", f"global {_mib(sc.global_)}"]
                               + [f"node{n} {_mib(s)}" for n, s in sc.pernode]))
        lines.append("  scratch: " + ("reserved" if sc.enabled else
                                      f"not reserved ({'failed: ' + sc.failed if sc.failed else 'KHO off'})"))
    for name, base, size in sc.areas:
        lines.append(f"    {name:8} [{base:#018x}-{base + size - 1:#018x}] {_mib(size)}")
    lines.append(f"  gigantic pages: {g.allocated}/{g.requested} placed, per node "
                 + (", ".join(f"{n}:{c}" for n, c in g.per_node) or "-")
                 + f"; fallbacks {g.fallbacks}; in kho_scratch[] {g.in_scratch}; in extension {g.in_extended}"
                 + (f"; adopted {g.adopted}" if g.adopted else ""))
    lines.append(f"  RSRV_KERN {_mib(o.rsrv_kern)}  RSRV_HUGETLB {_mib(o.rsrv_hugetlb)}  preserved "
                 f"{_mib(o.preserved_bytes)}  est. free pages {o.estimated_nr_free_pages}  max_threads {o.max_threads}")
    lines.append(f"  reserved regions: peak {o.reserved_cnt_peak}, final {o.reserved_cnt_final}; doublings "
                 f"{len(o.doublings)}" + "".join(f" [{d.name} {d.new_max} at {d.base:#018x}"
                                                 f"{' in scratch' if d.in_scratch else ''}]" for d in o.doublings))
    if o.scratch_left:
        lines.append("  scratch left: " + ", ".join(f"after {p} {_mib(b)}" for p, b in o.scratch_left))
    if o.extended_bytes:
        lines.append(f"  extended: {_mib(o.extended_bytes)}")
    lines.append(f"  cost: regions scanned {o.cost.regions_scanned}, memmove entries {o.cost.memmove_entries}, "
                 f"digest keys {o.cost.digest_keys}")
    lines += [f"  | {m}" for m in o.messages]
    if o.panic:
        lines.append(f"  PANIC: {o.panic}")
    return lines


#: Bumped whenever the JSON shape of an Outcome changes.
SCHEMA_VERSION = 1
_HEX_KEYS = frozenset({"addr", "addrs", "base", "areas"})


def outcome_json(o: Outcome) -> dict[str, object]:
    """The outcome as JSON-ready data: addresses as hex strings, everything else as is."""
    from dataclasses import asdict

    def conv(key: str | None, v: object) -> object:
        if isinstance(v, dict):
            return {k: conv(k, x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            if key == "areas":
                return [[n, hex(b), hex(sz)] for n, b, sz in v]
            return [conv(key, x) for x in v]
        if key in _HEX_KEYS and isinstance(v, int):
            return hex(v)
        return v

    return {"schema_version": SCHEMA_VERSION, **conv(None, asdict(o))}  # type: ignore[dict-item]
