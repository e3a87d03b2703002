# SPDX-License-Identifier: GPL-2.0-only
"""The operation stream: the one contract between ``parsers/`` and ``replay/``.

A :class:`Trace` is what every parser produces and all that replay reads:

* ``context`` (:class:`Context`): kernel release, arch, page size, command line,
  NUMA layout learned from the log, the file it came from;
* ``ops``: immutable :class:`Op` records in boot order, one per memblock call
  (named after the kernel function it stands for), each with its caller symbol
  and source position;
* ``observations``: what the kernel printed about its own state (a
  ``MEMBLOCK configuration:`` dump, a debugfs table, an array doubling, other
  kernel messages).  Replay is checked against them; they never drive it;
* ``skipped``: every input line or event a parser did not understand.

Op script
---------
Ops have a plain-text form, one op per line, that round-trips exactly
(``parse_script(format_script(ops)) == ops``)::

    # comment
    add 0x1000 0x9e000 nid=0 flags=none
    reserve 0x1000000 32M flags=rsrv_kern caller=setup_arch+0x848/0xc10
    mark kho_scratch 0x100000000 1G
    set_current_limit 0x100000000          # inferred: x86 init_mem_mapping
    alloc memblock_alloc_try_nid size=64 align=0x40 nid=0 expect=0x23ffd2f80

Numbers are decimal or ``0x`` hex, with an optional K/M/G/T suffix (binary
multiples).  Flags are names joined by ``|`` (``rsrv_kern``, ``MEMBLOCK_NOMAP``,
debugfs's ``RSV_KERN``) or a number.  ``caller=`` takes the rest of the line up
to a ``#``.  A trailing ``# inferred: REASON`` marks an op a parser inferred
rather than read.  The grammar of every op is in README.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import ClassVar, NamedTuple

from .errors import FormatError
from .flags import Flag, format_flags, parse_flags

__all__ = [
    "ALLOC_APIS",
    "caller_function",
    "FAILED",
    "MAX_PHYS_ADDR",
    "MEMBLOCK_ALLOC_ACCESSIBLE",
    "MEMBLOCK_ALLOC_ANYWHERE",
    "MEMBLOCK_ALLOC_NOLEAKTRACE",
    "NUMA_NO_NODE",
    "PHASES",
    "Add",
    "Alloc",
    "AllowResize",
    "CapMemoryRange",
    "Clear",
    "Context",
    "Doubling",
    "EnforceMemoryLimit",
    "Free",
    "KernelMessage",
    "KhoExtendScratch",
    "KhoScratchArea",
    "KhoScratchOnly",
    "Mark",
    "MemblockDump",
    "DebugfsTable",
    "MirroredKernelcore",
    "MovableNode",
    "NodeRanges",
    "Observation",
    "Op",
    "Phase",
    "Region",
    "Remove",
    "Reserve",
    "ReserveKern",
    "SetBottomUp",
    "SetCurrentLimit",
    "SetNode",
    "Skipped",
    "Src",
    "Trace",
    "TrimMemory",
    "ZoneRanges",
    "format_number",
    "format_op",
    "format_script",
    "parse_number",
    "parse_op",
    "parse_script",
]

NUMA_NO_NODE = -1
MAX_PHYS_ADDR = (1 << 64) - 1
MEMBLOCK_ALLOC_ANYWHERE = MAX_PHYS_ADDR
MEMBLOCK_ALLOC_ACCESSIBLE = 0
MEMBLOCK_ALLOC_NOLEAKTRACE = 1
#: ``Alloc.expect`` value for "the kernel's call returned failure".
FAILED = "fail"

#: Phase markers a parser may place in the stream (see DESIGN.md).
PHASES = frozenset(
    {
        "mm_core_init_early",
        "hugetlb_bootmem_begin",
        "hugetlb_bootmem_end",
        "kho_memory_init",
        "kho_reserve_scratch",
        "free_all",
    }
)


class Region(NamedTuple):
    """One ``struct memblock_region``: ``[base, base + size)`` with its flags and node."""

    base: int
    size: int
    flags: int
    nid: int

    @property
    def end(self) -> int:
        """Exclusive end, ``base + size``."""
        return self.base + self.size


@dataclass(frozen=True, slots=True)
class Src:
    """Where an op or observation came from: ``path:line`` or ``path@offset``."""

    path: str
    line: int | None = None
    offset: int | None = None
    timestamp: float | None = None
    #: the kernel's own line, as captured (for reports quoting "the kernel's words").
    text: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.path}:{self.line}"
        if self.offset is not None:
            return f"{self.path}@0x{self.offset:08x}"
        return self.path


# --------------------------------------------------------------------------
# Ops


@dataclass(frozen=True, slots=True, kw_only=True)
class Op:
    """Base of every op: what the kernel was asked, by whom, and how we know.

    ``caller`` is the ``%pS`` the kernel printed (``setup_arch+0x848/0xc10``);
    ``inferred`` is the reason when a parser inferred the op instead of reading
    it; ``src`` is where it was read (not part of equality).
    """

    caller: str | None = None
    inferred: str | None = None
    src: Src | None = field(default=None, compare=False, repr=False)

    keyword: ClassVar[str] = ""


@dataclass(frozen=True, slots=True)
class Add(Op):
    """``memblock_add()`` (``nid`` None) or ``memblock_add_node(base, size, nid, flags)``."""

    base: int
    size: int
    nid: int | None = None
    flags: Flag = Flag.MEMBLOCK_NONE
    keyword: ClassVar[str] = "add"


@dataclass(frozen=True, slots=True)
class Remove(Op):
    """``memblock_remove(base, size)``."""

    base: int
    size: int
    keyword: ClassVar[str] = "remove"


@dataclass(frozen=True, slots=True)
class Reserve(Op):
    """``memblock_reserve()`` (nid/flags None) or ``__memblock_reserve(base, size, nid, flags)``."""

    base: int
    size: int
    nid: int | None = None
    flags: Flag | None = None
    keyword: ClassVar[str] = "reserve"


@dataclass(frozen=True, slots=True)
class ReserveKern(Op):
    """``memblock_reserve_kern(base, size)``: reserved with ``MEMBLOCK_RSRV_KERN``."""

    base: int
    size: int
    nid: int | None = None
    keyword: ClassVar[str] = "reserve_kern"


@dataclass(frozen=True, slots=True)
class Free(Op):
    """``memblock_phys_free(base, size)`` (``memblock_free()`` before 5.16)."""

    base: int
    size: int
    keyword: ClassVar[str] = "free"


@dataclass(frozen=True, slots=True)
class Mark(Op):
    """``memblock_mark_<flag>()`` / ``memblock_reserved_mark_<flag>()``."""

    flag: Flag
    base: int
    size: int
    keyword: ClassVar[str] = "mark"


@dataclass(frozen=True, slots=True)
class Clear(Op):
    """``memblock_clear_<flag>()``."""

    flag: Flag
    base: int
    size: int
    keyword: ClassVar[str] = "clear"


@dataclass(frozen=True, slots=True)
class SetNode(Op):
    """``memblock_set_node(base, size, &memblock.memory or .reserved, nid)``."""

    base: int
    size: int
    nid: int
    reserved: bool = False
    keyword: ClassVar[str] = "set_node"


@dataclass(frozen=True, slots=True)
class SetCurrentLimit(Op):
    """``memblock_set_current_limit(addr)``."""

    addr: int
    keyword: ClassVar[str] = "set_current_limit"


@dataclass(frozen=True, slots=True)
class SetBottomUp(Op):
    """``memblock_set_bottom_up(on)``."""

    on: bool
    keyword: ClassVar[str] = "set_bottom_up"


@dataclass(frozen=True, slots=True)
class AllowResize(Op):
    """``memblock_allow_resize()``: arrays may double from now on."""

    keyword: ClassVar[str] = "allow_resize"


@dataclass(frozen=True, slots=True)
class KhoScratchOnly(Op):
    """``memblock_set_kho_scratch_only()`` (on) / ``memblock_clear_kho_scratch_only()``."""

    on: bool
    keyword: ClassVar[str] = "kho_scratch_only"


@dataclass(frozen=True, slots=True)
class KhoScratchArea(Op):
    """One ``kho_scratch[]`` entry a KHO boot inherited (7.3 ``kho_memory_init_early()`` points
    ``kho_scratch`` at them): ``kho_scratch_overlap()`` and so ``memblock_alloc_hugetlb()`` see it."""

    base: int
    size: int
    keyword: ClassVar[str] = "kho_scratch_area"


@dataclass(frozen=True, slots=True)
class KhoExtendScratch(Op):
    """7.3 ``kho_extend_scratch()``: every 1 GiB block holding no preserved memory (nor a page of the
    incoming radix tree) is marked KHO_SCRATCH, from 0 to ``memblock_end_of_DRAM()``.

    ``busy`` are the base addresses of the busy 1 GiB blocks; the marks print nothing.
    """

    busy: tuple[int, ...] = ()
    keyword: ClassVar[str] = "kho_extend_scratch"


@dataclass(frozen=True, slots=True)
class MovableNode(Op):
    """The ``movable_node`` command-line switch (``movable_node_is_enabled()``)."""

    on: bool
    keyword: ClassVar[str] = "movable_node"


@dataclass(frozen=True, slots=True)
class MirroredKernelcore(Op):
    """``kernelcore=mirror``: makes ``memblock_mark_mirror()`` effective."""

    on: bool
    keyword: ClassVar[str] = "mirrored_kernelcore"


@dataclass(frozen=True, slots=True)
class TrimMemory(Op):
    """``memblock_trim_memory(align)``."""

    align: int
    keyword: ClassVar[str] = "trim_memory"


@dataclass(frozen=True, slots=True)
class EnforceMemoryLimit(Op):
    """``memblock_enforce_memory_limit(limit)`` (``mem=`` on most arches)."""

    limit: int
    keyword: ClassVar[str] = "enforce_memory_limit"


@dataclass(frozen=True, slots=True)
class CapMemoryRange(Op):
    """``memblock_cap_memory_range(base, size)`` (arm64 ``mem=``, crash kernels)."""

    base: int
    size: int
    keyword: ClassVar[str] = "cap_memory_range"


@dataclass(frozen=True, slots=True)
class Phase(Op):
    """A point in boot a strategy may hook (``hugetlb_bootmem_begin``, ``free_all``, ...)."""

    name: str
    keyword: ClassVar[str] = "phase"


#: Allocation APIs we replay, with the keyword arguments each accepts.
ALLOC_APIS: dict[str, frozenset[str]] = {
    "memblock_phys_alloc_range": frozenset({"align", "min", "max"}),
    "memblock_phys_alloc": frozenset({"align"}),
    "memblock_phys_alloc_try_nid": frozenset({"align", "nid"}),
    "memblock_alloc_range_nid": frozenset({"align", "min", "max", "nid", "exact"}),
    "memblock_alloc_try_nid": frozenset({"align", "min", "max", "nid"}),
    "memblock_alloc_try_nid_raw": frozenset({"align", "min", "max", "nid"}),
    "memblock_alloc_exact_nid_raw": frozenset({"align", "min", "max", "nid"}),
    "memblock_alloc": frozenset({"align"}),
    "memblock_alloc_raw": frozenset({"align"}),
    "memblock_alloc_from": frozenset({"align", "min"}),
    "memblock_alloc_low": frozenset({"align"}),
    "memblock_alloc_node": frozenset({"align", "nid"}),
    "memblock_alloc_or_panic": frozenset({"align"}),
    "memblock_alloc_hugetlb": frozenset({"nid", "exact"}),
}


@dataclass(frozen=True, slots=True)
class Alloc(Op):
    """A memblock allocation request, as the named kernel API received it.

    Arguments left as ``None`` take the API's own default (``memblock_alloc()``
    passes ``min_addr=0, max_addr=MEMBLOCK_ALLOC_ACCESSIBLE, nid=NUMA_NO_NODE``).
    ``expect`` is the result the kernel recorded: an address, :data:`FAILED`, or
    ``None`` when the trace does not show it.
    """

    api: str
    size: int
    align: int | None = None
    nid: int | None = None
    min_addr: int | None = None
    max_addr: int | None = None
    exact: bool = False
    expect: int | str | None = None
    #: the nid and flags its reservation line printed (``__memblock_reserve: [..] nid=0 flags=a0``), when shown.
    res_nid: int | None = None
    res_flags: Flag | None = None
    keyword: ClassVar[str] = "alloc"


OP_TYPES: dict[str, type[Op]] = {
    cls.keyword: cls
    for cls in (
        Add, Remove, Reserve, ReserveKern, Free, Mark, Clear, SetNode, SetCurrentLimit,
        SetBottomUp, AllowResize, KhoScratchOnly, MovableNode, MirroredKernelcore,
        TrimMemory, EnforceMemoryLimit, CapMemoryRange, Phase, Alloc, KhoScratchArea, KhoExtendScratch,
    )
}

# Which memblock type each markable flag belongs to (mark/clear checks this).
MEMORY_FLAGS = (
    Flag.MEMBLOCK_HOTPLUG | Flag.MEMBLOCK_MIRROR | Flag.MEMBLOCK_NOMAP
    | Flag.MEMBLOCK_DRIVER_MANAGED | Flag.MEMBLOCK_KHO_SCRATCH | Flag.MEMBLOCK_KHO_SCRATCH_EXT
)
RESERVED_FLAGS = Flag.MEMBLOCK_RSRV_NOINIT | Flag.MEMBLOCK_RSRV_KERN | Flag.MEMBLOCK_RSRV_HUGETLB


# --------------------------------------------------------------------------
# Observations and the trace


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """Something the kernel printed about its own state, after ``ops[:at]`` ran."""

    at: int
    src: Src | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MemblockDump(Observation):
    """A ``MEMBLOCK configuration:`` dump (``memblock_dump_all()``)."""

    memory_size: int
    reserved_size: int
    memory_cnt: int
    reserved_cnt: int
    memory: tuple[Region, ...]
    reserved: tuple[Region, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DebugfsTable(Observation):
    """``/sys/kernel/debug/memblock/<name>`` read after boot (nid None prints ``x``)."""

    name: str
    regions: tuple[Region, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Doubling(Observation):
    """One ``memblock_double_array()``: ``memblock: <name> is doubled to <new_max> at [base-(base + size - 1)]``.

    The console parser reads one from each such line; the engine records one
    each time it doubles a table.  ``at`` is the op during which it happened
    (-1 outside a run); ``size`` is what the kernel prints (the new array's
    bytes); ``alloc_size`` is what it reserved (page aligned), which only the
    engine knows.
    """

    name: str
    new_max: int
    base: int
    size: int
    alloc_size: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRanges(Observation):
    """``Early memory node ranges``: one ``(nid, base, end)`` per memory[] region (exclusive end),
    as ``free_area_init()`` prints them (whole pages only)."""

    ranges: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ZoneRanges(Observation):
    """``Zone ranges:``: ``(zone, base, end)`` of each populated zone (exclusive end); the lowest starts at
    the first page of memory[], the highest ends at the end of DRAM."""

    zones: tuple[tuple[str, int, int], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class KernelMessage(Observation):
    """Any other kernel line replay can be checked against (``KHO: ...``, ``HugeTLB: ...``)."""

    kind: str
    text: str
    #: The size the line states, in KiB, read by the parser: pages freed for ``free_initmem`` and
    #: ``free_initrd`` (``Freeing unused kernel memory: 3904K``), the total for ``memory``
    #: (``Memory: 3.9G/4096000K available``), None for other kinds.
    kib: int | None = None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A line or event a parser did not understand: counted, listable, never silent."""

    path: str
    position: str
    reason: str
    raw: str


@dataclass(frozen=True, slots=True)
class Context:
    """What a trace says about the machine and kernel it came from."""

    source: str = "<ops>"
    release: str | None = None
    arch: str | None = None
    page_size: int | None = None
    phys_addr_bits: int = 64
    cmdline: str = ""
    #: (nid, base, end) node ranges learned from the log, exclusive end.
    nodes: tuple[tuple[int, int, int], ...] = ()
    #: other facts a parser learned, as (key, value) pairs.
    facts: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Trace:
    """A boot: context, ops in boot order, observations and what was skipped."""

    context: Context
    ops: tuple[Op, ...]
    observations: tuple[Observation, ...] = ()
    skipped: tuple[Skipped, ...] = ()


# --------------------------------------------------------------------------
# Op script: numbers

_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_NUMBER = re.compile(r"^(-?)(0[xX][0-9a-fA-F]+|[0-9]+)([KMGTkmgt]?)$")


def parse_number(text: str) -> int:
    """``4096``, ``0x1000``, ``4K``, ``0x10M``, ``-1``.

    >>> parse_number("2M"), parse_number("0x1000"), parse_number("-1")
    (2097152, 4096, -1)

    :raises ValueError: when *text* is not such a number.
    """
    m = _NUMBER.match(text)
    if not m:
        raise ValueError(f"not a number: {text!r}")
    value = int(m.group(2), 0) * _SUFFIX[m.group(3).upper()]
    return -value if m.group(1) else value


def format_number(value: int, *, suffix: bool = True) -> str:
    """Hex, or a K/M/G/T multiple when exact (``2M``), for sizes in scripts."""
    if value < 0:
        return str(value)
    if suffix and value:
        for name in ("T", "G", "M", "K"):
            unit = _SUFFIX[name]
            if value % unit == 0:
                return f"{value // unit}{name}"
    return hex(value)


# --------------------------------------------------------------------------
# Op script: ops


def _bool(text: str) -> bool:
    if text in ("1", "on", "true"):
        return True
    if text in ("0", "off", "false"):
        return False
    raise ValueError(f"expected 0 or 1, got {text!r}")


def _split_comment(line: str) -> tuple[str, str | None]:
    """Split off a ``#`` comment; return (code, inferred-reason or None)."""
    code, sep, comment = line.partition("#")
    inferred = None
    if sep:
        comment = comment.strip()
        if comment.startswith("inferred:"):
            inferred = comment[len("inferred:"):].strip()
    return code.strip(), inferred


def parse_op(line: str, *, src: Src | None = None) -> Op | None:
    """Parse one op-script line; ``None`` for a blank or comment-only line.

    >>> parse_op("reserve 0x1000 4K flags=rsrv_kern  # inferred: early")
    Reserve(caller=None, inferred='early', base=4096, size=4096, nid=None, flags=<Flag.MEMBLOCK_RSRV_KERN: 32>)

    :raises ValueError: with a message naming what is wrong.
    """
    code, inferred = _split_comment(line)
    if not code:
        return None
    caller = None
    if "caller=" in code:
        code, _, caller = code.partition("caller=")
        caller = caller.strip() or None
    words = code.split()
    kw = words[0]
    cls = OP_TYPES.get(kw)
    if cls is None:
        raise ValueError(f"unknown op {kw!r}")
    pos = [w for w in words[1:] if "=" not in w and w not in ("exact", "reserved")]
    opts: dict[str, str] = {}
    bare: set[str] = set()
    for w in words[1:]:
        if "=" in w:
            k, _, v = w.partition("=")
            if k in opts:
                raise ValueError(f"{k}= given twice")
            opts[k] = v
        elif w in ("exact", "reserved"):
            bare.add(w)
    common = {"caller": caller, "inferred": inferred, "src": src}

    def need(n: int) -> list[str]:
        if len(pos) != n:
            raise ValueError(f"{kw} takes {n} positional argument(s), got {len(pos)}")
        return pos

    def allow(keys: set[str], flags_ok: set[str] = frozenset()) -> None:
        extra = set(opts) - keys
        if extra:
            raise ValueError(f"{kw}: unexpected {', '.join(sorted(k + '=' for k in extra))}")
        if bare - flags_ok:
            raise ValueError(f"{kw}: unexpected {' '.join(sorted(bare - flags_ok))}")

    num = parse_number
    if cls in (Add, Reserve):
        allow({"nid", "flags"})
        b, s = need(2)
        nid = num(opts["nid"]) if "nid" in opts else None
        if cls is Add:
            flags = parse_flags(opts["flags"]) if "flags" in opts else Flag.MEMBLOCK_NONE
        else:
            flags = parse_flags(opts["flags"]) if "flags" in opts else None
        return cls(num(b), num(s), nid, flags, **common)
    if cls is ReserveKern:
        allow({"nid"})
        b, s = need(2)
        return cls(num(b), num(s), num(opts["nid"]) if "nid" in opts else None, **common)
    if cls in (Remove, Free, CapMemoryRange, KhoScratchArea):
        allow(set())
        b, s = need(2)
        return cls(num(b), num(s), **common)
    if cls in (Mark, Clear):
        allow(set())
        f, b, s = need(3)
        flag = parse_flags(f)
        if flag.bit_count() != 1:
            raise ValueError(f"{kw} takes exactly one flag, got {f!r}")
        return cls(flag, num(b), num(s), **common)
    if cls is SetNode:
        allow(set(), {"reserved"})
        b, s, n = need(3)
        return cls(num(b), num(s), num(n), "reserved" in bare, **common)
    if cls is SetCurrentLimit:
        allow(set())
        (a,) = need(1)
        return cls(num(a), **common)
    if cls in (SetBottomUp, KhoScratchOnly, MovableNode, MirroredKernelcore):
        allow(set())
        (v,) = need(1)
        return cls(_bool(v), **common)
    if cls is KhoExtendScratch:
        allow(set())
        return cls(tuple(num(b) for b in pos), **common)
    if cls is AllowResize:
        allow(set())
        need(0)
        return cls(**common)
    if cls is TrimMemory:
        allow(set())
        (a,) = need(1)
        return cls(num(a), **common)
    if cls is EnforceMemoryLimit:
        allow(set())
        (a,) = need(1)
        return cls(num(a), **common)
    if cls is Phase:
        allow(set())
        (name,) = need(1)
        if name not in PHASES:
            raise ValueError(f"unknown phase {name!r} (known: {', '.join(sorted(PHASES))})")
        return cls(name, **common)
    # Alloc
    (api,) = need(1)
    if api not in ALLOC_APIS:
        raise ValueError(f"unknown allocation API {api!r}")
    accepted = ALLOC_APIS[api]
    allow({"size", "expect", "res_nid", "res_flags"} | accepted, {"exact"} & accepted)
    if "size" not in opts:
        raise ValueError("alloc needs size=")
    expect: int | str | None = None
    if "expect" in opts:
        expect = FAILED if opts["expect"] == FAILED else num(opts["expect"])
    return Alloc(
        api,
        num(opts["size"]),
        align=num(opts["align"]) if "align" in opts else None,
        nid=num(opts["nid"]) if "nid" in opts else None,
        min_addr=num(opts["min"]) if "min" in opts else None,
        max_addr=num(opts["max"]) if "max" in opts else None,
        exact="exact" in bare,
        expect=expect,
        res_nid=num(opts["res_nid"]) if "res_nid" in opts else None,
        res_flags=parse_flags(opts["res_flags"]) if "res_flags" in opts else None,
        **common,
    )


def format_op(op: Op) -> str:
    """The op-script line for *op* (the inverse of :func:`parse_op`).

    >>> format_op(Alloc("memblock_alloc", 4096, align=4096, expect=0x23fffe000))
    'alloc memblock_alloc size=4K align=4K expect=0x23fffe000'
    """
    kw = op.keyword
    parts: list[str] = [kw]
    h = hex
    sz = format_number
    match op:
        case Add(base=b, size=s, nid=n, flags=f):
            parts += [h(b), sz(s)]
            if n is not None:
                parts.append(f"nid={n}")
            if f:
                parts.append(f"flags={format_flags(f)}")
        case Reserve(base=b, size=s, nid=n, flags=f):
            parts += [h(b), sz(s)]
            if n is not None:
                parts.append(f"nid={n}")
            if f is not None:
                parts.append(f"flags={format_flags(f)}")
        case ReserveKern(base=b, size=s, nid=n):
            parts += [h(b), sz(s)]
            if n is not None:
                parts.append(f"nid={n}")
        case (Remove(base=b, size=s) | Free(base=b, size=s) | CapMemoryRange(base=b, size=s)
              | KhoScratchArea(base=b, size=s)):
            parts += [h(b), sz(s)]
        case KhoExtendScratch(busy=busy):
            parts += [h(b) for b in busy]
        case Mark(flag=f, base=b, size=s) | Clear(flag=f, base=b, size=s):
            parts += [format_flags(f), h(b), sz(s)]
        case SetNode(base=b, size=s, nid=n, reserved=r):
            parts += [h(b), sz(s), str(n)] + (["reserved"] if r else [])
        case SetCurrentLimit(addr=a):
            parts.append(h(a))
        case SetBottomUp(on=v) | KhoScratchOnly(on=v) | MovableNode(on=v) | MirroredKernelcore(on=v):
            parts.append("1" if v else "0")
        case TrimMemory(align=a):
            parts.append(sz(a))
        case EnforceMemoryLimit(limit=a):
            parts.append(sz(a))
        case Phase(name=name):
            parts.append(name)
        case Alloc():
            parts += [op.api, f"size={sz(op.size)}"]
            if op.align is not None:
                parts.append(f"align={sz(op.align)}")
            if op.nid is not None:
                parts.append(f"nid={op.nid}")
            if op.min_addr is not None:
                parts.append(f"min={h(op.min_addr)}")
            if op.max_addr is not None:
                parts.append(f"max={h(op.max_addr)}")
            if op.exact:
                parts.append("exact")
            if op.expect is not None:
                parts.append(f"expect={op.expect if op.expect == FAILED else h(op.expect)}")
            if op.res_nid is not None:
                parts.append(f"res_nid={op.res_nid}")
            if op.res_flags is not None:
                parts.append(f"res_flags={format_flags(op.res_flags)}")
    if op.caller:
        parts.append(f"caller={op.caller}")
    line = " ".join(parts)
    if op.inferred is not None:
        line += f"  # inferred: {op.inferred}"
    return line


def iter_script(lines: Iterable[str], path: str = "<ops>") -> Iterator[Op]:
    """Parse op-script *lines*; errors name ``path:line``.

    :raises FormatError: on the first line that does not parse.
    """
    for lineno, line in enumerate(lines, 1):
        try:
            op = parse_op(line, src=Src(path, lineno))
        except (ValueError, KeyError) as e:
            # str(KeyError) is the repr of the key: drop its quotes, never a ValueError's
            msg = str(e).strip("'\"") if isinstance(e, KeyError) else str(e)
            raise FormatError(path, msg, line=lineno) from None
        if op is not None:
            yield op


def parse_script(text: str, path: str = "<ops>") -> tuple[Op, ...]:
    """Parse a whole op script into a tuple of ops."""
    return tuple(iter_script(text.splitlines(), path))


def format_script(ops: Iterable[Op]) -> str:
    """Render *ops* as an op script, one line each, newline-terminated."""
    return "".join(format_op(op) + "\n" for op in ops)


def op_fields(op: Op) -> dict[str, object]:
    """The op's own fields (not caller/inferred/src), for JSON output."""
    return {f.name: getattr(op, f.name) for f in fields(op) if f.name not in ("caller", "inferred", "src")}


_CALLER_FUNC = re.compile(r"^([A-Za-z0-9_.$]+?)(?:\.(?:isra|constprop|part|cold)\.\d+)*(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?"
                          r"(?:\s+\[\w+\])?$")


def caller_function(caller: str | None) -> str:
    """The function of an op's ``%pS`` caller, without offset, GCC clone suffixes and module ('' for none).

    >>> caller_function("setup_arch+0x848/0xc10"), caller_function("vmemmap_pud_populate.isra.0+0x43/0xc0")
    ('setup_arch', 'vmemmap_pud_populate')
    """
    if not caller:
        return ""
    text = caller.strip()
    m = _CALLER_FUNC.match(text)
    return m.group(1) if m else text.split("+", 1)[0]
