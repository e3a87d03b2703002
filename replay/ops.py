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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import MISSING, dataclass, field, fields
from functools import lru_cache
from itertools import repeat
from typing import Any, ClassVar, NamedTuple

from .errors import FormatError
from .flags import Flag, format_flags, parse_flags

__all__ = [
    "ALLOCATORS",
    "ALLOC_APIS",
    "ARCH_LOW_LIMIT",
    "CALLER",
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
    "AllocApi",
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
    "fast_new",
    "fast_new_many",
    "fast_new_rows",
    "format_script",
    "format_script_chunks",
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


def fast_new(cls: type, *params: str) -> Callable[..., Any]:
    """A constructor for the frozen, slotted dataclass *cls* taking the fields *params* positionally.

    The other fields are keyword-only, with their defaults (required when they have none).  It sets
    the slots the way the dataclass's ``__init__`` does (these classes have no ``__post_init__``),
    without its per-field ``object.__setattr__`` lookups: the same object, made about twice as fast, for readers that
    build hundreds of thousands of ops.  A field renamed here fails at the caller's import.
    """
    names = {f.name: f for f in fields(cls)}
    gone = set(params).difference(names)
    if gone:
        raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(gone))}")
    slots = {n: d for k in reversed(cls.__mro__) for n, d in vars(k).items() if n in names}
    env: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    body, kwonly = [], []
    for i, (name, f) in enumerate(names.items()):
        env[f"_s{i}"] = slots[name].__set__
        if name not in params:
            if f.default is MISSING:
                kwonly.append(name)  # required, by keyword
            else:
                env[f"_d{i}"] = f.default
                kwonly.append(f"{name}=_d{i}")
        body.append(f"    _s{i}(o, {name})\n")
    args = ", ".join([*params, *(["*", *kwonly] if kwonly else [])])
    exec(f"def make({args}):\n    o = _new(_cls)\n{''.join(body)}    return o\n", env)
    return env["make"]  # type: ignore[no-any-return]


def fast_new_many(cls: type, *params: str) -> Callable[..., list[Any]]:
    """A constructor of *n* objects of the frozen, slotted dataclass *cls* at once, from columns.

    ``make(n, col1, col2, ...)`` takes one iterable per field of *params*, each yielding at least *n*
    values; the other fields take their defaults.  The objects are those :func:`fast_new` makes, but
    each slot is filled for all of them by one C-level loop (``map`` over the slot's setter), with no
    Python call per object: about half the time again, for readers that build ops by the column.

    >>> make = fast_new_many(Src, "path", "offset")
    >>> [str(s) for s in make(2, ["a.dat", "b.dat"], [1, 2])]
    ['a.dat@0x00000001', 'b.dat@0x00000002']
    """
    from collections import deque
    from itertools import repeat

    names = {f.name: f for f in fields(cls)}
    gone = set(params).difference(names)
    if gone:
        raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(gone))}")
    missing = [n for n, f in names.items() if n not in params and f.default is MISSING]
    if missing:
        raise TypeError(f"{cls.__name__}: {', '.join(missing)} has no default: pass it as a column")
    slots = {n: d for k in reversed(cls.__mro__) for n, d in vars(k).items() if n in names}
    setters = [slots[n].__set__ for n in params]
    getters = [slots[n].__get__ for n in params]
    defaults = [(slots[n].__set__, f.default) for n, f in names.items() if n not in params]
    new = object.__new__

    def make(n: int, *columns: Iterable[Any]) -> list[Any]:
        if len(columns) != len(setters):
            raise TypeError(f"{cls.__name__}: {len(setters)} columns expected, {len(columns)} given")
        objs = list(map(new, repeat(cls, n)))
        for put, col in zip(setters, columns, strict=True):
            deque(map(put, objs, col), 0)
        if objs:
            for get in getters:
                try:
                    get(objs[-1])
                except AttributeError:  # a short column left the last objects' slot unset
                    raise ValueError(f"{cls.__name__}: a column holds fewer than {n} values") from None
        for put, value in defaults:
            deque(map(put, objs, repeat(value)), 0)
        return objs

    return make


def _unfrozen(cls: type) -> type:
    """A twin of the frozen, slotted dataclass *cls*: the same base and slots, and plain attribute stores.

    CPython lets an object change its ``__class__`` between two such classes, so an object can be filled
    in as the twin, by stores the interpreter specialises to a slot write (``STORE_ATTR_SLOT``), then
    become a *cls*: the same object as *cls*'s ``__init__`` makes.
    """
    slots = cls.__dict__.get("__slots__")
    if slots is None:
        raise TypeError(f"{cls.__name__} has no __slots__")
    # object's own __setattr__ and __delattr__ over the frozen ones: the type's tp_setattro is then the
    # generic one, which the specialised store requires; object's __init__ over a base dataclass's.
    twin = type(f"_{cls.__name__}Unfrozen", (cls.__base__,), {"__slots__": slots, "__init__": object.__init__,
                                                             "__setattr__": object.__setattr__,
                                                             "__delattr__": object.__delattr__})
    trial = twin()
    trial.__class__ = cls  # raises here, at import, if the layouts differ
    return twin


def fast_new_rows(cls: type, *params: str | tuple[str, ...], convert: dict[str, Callable[[Any], Any]] | None = None,
                  **fixed: Any) -> Callable[[Iterable[Any]], list[Any]]:
    """A constructor of many objects of the frozen, slotted dataclass *cls*, one per row.

    ``make(rows)`` takes an iterable of rows, each holding the values of *params* in order (a tuple of
    names in *params* stands for a tuple inside the row, unpacked in place; ``_`` names a value to pass
    over); *convert* maps fields to a function of their row value; *fixed* gives fields one value for
    every object, the other fields take their defaults.  The objects are those :func:`fast_new`
    makes, filled in by one loop of slot writes (see :func:`_unfrozen`): about a third of the cost of
    :func:`fast_new_many` for a class of many fields, and no column to pick out of a row first.

    >>> make = fast_new_rows(Src, "offset", ("line", "timestamp"), path="a.dat")
    >>> [str(s) for s in make([(1, (None, 0.5)), (2, (7, None))])]
    ['a.dat@0x00000001', 'a.dat:7']
    """
    names = {f.name: f for f in fields(cls)}
    flat = [n for p in params for n in ((p,) if isinstance(p, str) else p) if n != "_"]
    convert = convert or {}
    gone = set(flat).union(fixed, convert).difference(names)
    if gone:
        raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(gone))}")
    if len(set(flat)) != len(flat) or set(flat) & fixed.keys() or set(convert).difference(flat):
        raise TypeError(f"{cls.__name__}: a field given twice, or converted but not in the rows")
    missing = [n for n, f in names.items() if n not in flat and n not in fixed and f.default is MISSING]
    if missing:
        raise TypeError(f"{cls.__name__}: {', '.join(missing)} has no default: pass it in the rows")
    env: dict[str, Any] = {"_twin": _unfrozen(cls), "_cls": cls}
    body = []
    for i, (name, f) in enumerate(names.items()):
        if name in convert:
            env[f"_c{i}"] = convert[name]
            body.append(f"        o.{name} = _c{i}({name})\n")
        elif name in flat:
            body.append(f"        o.{name} = {name}\n")
        else:
            env[f"_d{i}"] = fixed.get(name, f.default)
            body.append(f"        o.{name} = _d{i}\n")
    target = ", ".join(p if isinstance(p, str) else f"({', '.join(p)},)" for p in params)
    exec(f"def make(rows):\n    out = []\n    add = out.append\n    for {target}, in rows:\n        o = _twin()\n"
         f"{''.join(body)}        o.__class__ = _cls\n        add(o)\n    return out\n", env)
    return env["make"]  # type: ignore[no-any-return]


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


#: An :class:`AllocApi` argument the wrapper takes from its caller (the op), not a constant.
CALLER = "caller"
#: ``max_addr`` of ``memblock_alloc_low()``: ``ARCH_LOW_ADDRESS_LIMIT``, which the arch decides.
ARCH_LOW_LIMIT = "arch_low_limit"


class AllocApi(NamedTuple):
    """One kernel allocation API, the way memblock.h writes it: a thin wrapper over a core call.

    ``core`` names the core function (a method of the model: ``alloc_try_nid``,
    ``phys_alloc_range``...); ``min_addr``, ``max_addr`` and ``nid`` are what the
    wrapper passes for them: :data:`CALLER` (the op's value, else the core's
    default: 0, ``MEMBLOCK_ALLOC_ACCESSIBLE``, ``NUMA_NO_NODE``), a constant, or
    :data:`ARCH_LOW_LIMIT`.  ``accepts`` lists the op-script keywords of the API.
    ``phys``: it returns a physical address (``phys_addr_t``), not a pointer.
    """

    accepts: frozenset[str]
    core: str
    min_addr: int | str = CALLER
    max_addr: int | str = CALLER
    nid: int | str = CALLER
    phys: bool = False
    #: panics on failure (``memblock_alloc_or_panic()``)
    panics: bool = False


def _api(accepts: str, core: str, **fixed: Any) -> AllocApi:
    return AllocApi(frozenset(accepts.split()), core, **fixed)


_ANY = {"min_addr": 0, "max_addr": MEMBLOCK_ALLOC_ACCESSIBLE, "nid": NUMA_NO_NODE}

#: Every allocation API we replay: one row per kernel wrapper.
ALLOCATORS: dict[str, AllocApi] = {
    "memblock_phys_alloc_range": _api("align min max", "phys_alloc_range", phys=True),
    "memblock_phys_alloc": _api("align", "phys_alloc_range", min_addr=0, max_addr=MEMBLOCK_ALLOC_ACCESSIBLE,
                                phys=True),
    "memblock_phys_alloc_try_nid": _api("align nid", "phys_alloc_try_nid", phys=True),
    "memblock_alloc_range_nid": _api("align min max nid exact", "alloc_range_nid", phys=True),
    "memblock_alloc_try_nid": _api("align min max nid", "alloc_try_nid"),
    "memblock_alloc_try_nid_raw": _api("align min max nid", "alloc_try_nid"),
    "memblock_alloc_exact_nid_raw": _api("align min max nid", "alloc_exact_nid_raw"),
    "memblock_alloc": _api("align", "alloc_try_nid", **_ANY),
    "memblock_alloc_raw": _api("align", "alloc_try_nid", **_ANY),
    "memblock_alloc_from": _api("align min", "alloc_try_nid", max_addr=MEMBLOCK_ALLOC_ACCESSIBLE, nid=NUMA_NO_NODE),
    "memblock_alloc_low": _api("align", "alloc_try_nid", min_addr=0, max_addr=ARCH_LOW_LIMIT, nid=NUMA_NO_NODE),
    "memblock_alloc_node": _api("align nid", "alloc_try_nid", min_addr=0, max_addr=MEMBLOCK_ALLOC_ACCESSIBLE),
    "memblock_alloc_or_panic": _api("align", "alloc_try_nid", **_ANY, panics=True),
    "memblock_alloc_hugetlb": _api("nid exact", "alloc_hugetlb"),
}

#: Allocation APIs we replay, with the op-script keywords each accepts.
ALLOC_APIS: dict[str, frozenset[str]] = {name: api.accepts for name, api in ALLOCATORS.items()}


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
_SUFFIX_OF = {k: v for name, v in _SUFFIX.items() if name for k in (name, name.lower())}
_NUMBER = re.compile(r"^(-?)(0[xX][0-9a-fA-F]+|[0-9]+)([KMGTkmgt]?)$")


def parse_number(text: str) -> int:
    """``4096``, ``0x1000``, ``4K``, ``0x10M``, ``-1``.

    >>> parse_number("2M"), parse_number("0x1000"), parse_number("-1")
    (2097152, 4096, -1)

    :raises ValueError: when *text* is not such a number.
    """
    # Decimal and 0x hex, with or without a suffix, are read by int() without the regex
    # (isalnum: no sign, "_" or space, which int() would take; 0b and 0o are not ours).
    if text.isalnum() and text.isascii() and text[1:2] not in "bBoO":
        unit = _SUFFIX_OF.get(text[-1])
        try:
            return int(text, 0) if unit is None else int(text[:-1], 0) * unit
        except ValueError:
            pass  # "0012", or not a number: the regex decides
    m = _NUMBER.match(text)
    if not m:
        raise ValueError(f"not a number: {text!r}")
    value = int(m.group(2), 0) * _SUFFIX[m.group(3).upper()]
    return -value if m.group(1) else value


def _parse_addr(text: str) -> int:
    """:func:`parse_number` for addresses, which scripts give in ``0x`` hex: those read by one int()
    (no K/M/G/T suffix is a hex digit, so a suffixed or odd one fails there and goes the whole way)."""
    if text[:2] == "0x" and text.isalnum() and text.isascii():
        try:
            return int(text, 16)
        except ValueError:
            pass
    return parse_number(text)


_REPEATED: dict[str, int] = {}


def _repeated_number(text: str) -> int:
    """:func:`parse_number` for sizes, aligns and nids, which a script repeats: each text read once
    (the first 2^14 distinct ones)."""
    value = _REPEATED.get(text)
    if value is None:
        value = parse_number(text)
        if len(_REPEATED) < 1 << 14:
            _REPEATED[text] = value
    return value


def format_number(value: int, *, suffix: bool = True) -> str:
    """Hex, or a K/M/G/T multiple when exact (``2M``), for sizes in scripts."""
    if value < 0:
        return str(value)
    if suffix and value:
        # The largest of T, G, M, K that divides value: read from its trailing zero bits.
        zeros = (value & -value).bit_length() - 1
        if zeros >= 10:
            shift = 40 if zeros >= 40 else 30 if zeros >= 30 else 20 if zeros >= 20 else 10
            return f"{value >> shift}{'KMGT'[shift // 10 - 1]}"
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


def _one_flag(text: str) -> Flag:
    flag = parse_flags(text)
    if flag.bit_count() != 1:
        raise ValueError(f"takes exactly one flag, got {text!r}")
    return flag


def _phase(text: str) -> str:
    if text not in PHASES:
        raise ValueError(f"unknown phase {text!r} (known: {', '.join(sorted(PHASES))})")
    return text


def _api_name(text: str) -> str:
    if text not in ALLOCATORS:
        raise ValueError(f"unknown allocation API {text!r}")
    return text


def _expect(text: str) -> int | str:
    return FAILED if text == FAILED else parse_number(text)


def _format_expect(value: int | str) -> str:
    return FAILED if value == FAILED else hex(value)  # type: ignore[arg-type]


#: format_number() of sizes and aligns, which a run prints again and again: each value formatted once.
_format_size = lru_cache(maxsize=1 << 14)(format_number)

#: Value types of the op script: (parse, format).
_TYPES: dict[str, tuple[Callable[[str], Any], Callable[[Any], str]]] = {
    "addr": (_parse_addr, hex),
    "size": (_repeated_number, _format_size),
    "int": (_repeated_number, str),
    "flag": (_one_flag, format_flags),
    "flags": (parse_flags, format_flags),
    "bool": (_bool, lambda v: "1" if v else "0"),
    "phase": (_phase, str),
    "api": (_api_name, str),
    "expect": (_expect, _format_expect),
}


class _Item(NamedTuple):
    """One element of an op's line: positional, ``key=value`` or a bare word (a bool field)."""

    how: str  # "pos", "opt", "bare" or "rest" (every positional after the others, as a tuple)
    key: str  # keyword in the script (the field name for positionals)
    field: str
    type: str


def _syntax(spec: str) -> tuple[_Item, ...]:
    """``"base:addr size:size nid=:int flags=:flags ?reserved"``: fields in print order; ``*busy:addr``
    takes every positional left, as a tuple."""
    items = []
    for word in spec.split():
        if word.startswith("?"):
            items.append(_Item("bare", word[1:], word[1:], "bool"))
            continue
        if word.startswith("*"):
            name, _, kind = word[1:].partition(":")
            items.append(_Item("rest", name, name, kind))
            continue
        name, _, kind = word.partition(":")
        if "=" in name:
            key, _, field_name = name.partition("=")
            items.append(_Item("opt", key, field_name or key, kind))
        else:
            items.append(_Item("pos", name, name, kind))
    return tuple(items)


_RANGE = "base:addr size:size"
#: The op script's grammar: one row per op kind, fields in the order a line gives them.
#: ``key=field:type`` is an option whose keyword differs from the field name.
OP_SYNTAX: dict[type[Op], tuple[_Item, ...]] = {
    Add: _syntax(f"{_RANGE} nid=:int flags=:flags"),
    Remove: _syntax(_RANGE),
    Reserve: _syntax(f"{_RANGE} nid=:int flags=:flags"),
    ReserveKern: _syntax(f"{_RANGE} nid=:int"),
    Free: _syntax(_RANGE),
    Mark: _syntax(f"flag:flag {_RANGE}"),
    Clear: _syntax(f"flag:flag {_RANGE}"),
    SetNode: _syntax(f"{_RANGE} nid:int ?reserved"),
    SetCurrentLimit: _syntax("addr:addr"),
    SetBottomUp: _syntax("on:bool"),
    AllowResize: (),
    KhoScratchOnly: _syntax("on:bool"),
    MovableNode: _syntax("on:bool"),
    MirroredKernelcore: _syntax("on:bool"),
    TrimMemory: _syntax("align:size"),
    EnforceMemoryLimit: _syntax("limit:size"),
    CapMemoryRange: _syntax(_RANGE),
    Phase: _syntax("name:phase"),
    Alloc: _syntax("api:api size=:size align=:size nid=:int min=min_addr:addr max=max_addr:addr ?exact "
                   "expect=:expect res_nid=:int res_flags=:flags"),
    KhoScratchArea: _syntax(_RANGE),
    KhoExtendScratch: _syntax("*busy:addr"),
}

OP_TYPES: dict[str, type[Op]] = {cls.keyword: cls for cls in OP_SYNTAX}
#: Words that stand alone (``exact``, ``reserved``), never positionals.
_BARE = frozenset(i.key for items in OP_SYNTAX.values() for i in items if i.how == "bare")
#: Per op kind: positional (field, parse) pairs, options by keyword, bare words, field defaults.
_PARSE = {
    kw: (
        tuple((i.field, _TYPES[i.type][0]) for i in OP_SYNTAX[cls] if i.how == "pos"),
        {i.key: (i.field, _TYPES[i.type][0]) for i in OP_SYNTAX[cls] if i.how == "opt"},
        frozenset(i.key for i in OP_SYNTAX[cls] if i.how == "bare"),
        next(((i.field, _TYPES[i.type][0]) for i in OP_SYNTAX[cls] if i.how == "rest"), None),
    )
    for kw, cls in OP_TYPES.items()
}
#: Per allocation API: the keywords and bare words an ``alloc`` line may give.
_ALLOC_WORDS = {name: (frozenset({"size", "expect", "res_nid", "res_flags"} | api.accepts),
                       _PARSE["alloc"][2] & api.accepts)
                for name, api in ALLOCATORS.items()}
_DEFAULTS = {cls: {f.name: f.default for f in fields(cls)} for cls in OP_SYNTAX}
#: Per op kind: (how, key, field, format, default) in print order.
_FORMAT = {
    cls: tuple((i.how, i.key, i.field, _TYPES[i.type][1], _DEFAULTS[cls][i.field]) for i in items)
    for cls, items in OP_SYNTAX.items()
}


#: Per op kind: a constructor taking its positionals, then caller, inferred and src (see fast_new).
_NEW = {cls.keyword: fast_new(cls, *(i.field for i in items if i.how == "pos"), "caller", "inferred", "src")
        for cls, items in OP_SYNTAX.items()}
#: Where an op-script line is (path, line).
_new_line_src = fast_new(Src, "path", "line")

#: Per allocation API: the fields an ``alloc`` line's ``key=value`` words set, and how each is read.
_ALLOC_KEYS = {
    name: {i.key: (i.field, _TYPES[i.type][0]) for i in OP_SYNTAX[Alloc] if i.how == "opt" and i.key in words}
    for name, (words, _) in _ALLOC_WORDS.items()
}


def _alloc_fast(words: list[str], caller: str | None, inferred: str | None, src: Src | None) -> Alloc | None:
    """An ``alloc API key=value...`` line, as most are: None for anything else (a bare word, a key
    given twice or not the API's, a value that does not parse), which the general way reads or words."""
    keys = _ALLOC_KEYS.get(words[1]) if len(words) > 2 else None
    if keys is None:
        return None
    values: dict[str, Any] = {}
    try:
        for w in words[2:]:
            k, eq, v = w.partition("=")
            spec = keys.get(k)
            if spec is None or not eq or spec[0] in values:
                return None
            values[spec[0]] = spec[1](v)
    except (ValueError, KeyError):
        return None
    if "size" not in values:
        return None
    return _NEW["alloc"](words[1], caller, inferred, src, **values)


def parse_op(line: str, *, src: Src | None = None) -> Op | None:
    """Parse one op-script line; ``None`` for a blank or comment-only line.

    >>> parse_op("reserve 0x1000 4K flags=rsrv_kern  # inferred: early")
    Reserve(caller=None, inferred='early', base=4096, size=4096, nid=None, flags=<Flag.MEMBLOCK_RSRV_KERN: 32>)

    :raises ValueError: with a message naming what is wrong.
    """
    if "#" in line:
        code, inferred = _split_comment(line)
    else:
        code, inferred = line.strip(), None
    if not code:
        return None
    caller = None
    if "caller=" in code:
        code, _, caller = code.partition("caller=")
        caller = caller.strip() or None
    words = code.split()
    kw = words[0]
    grammar = _PARSE.get(kw)
    if grammar is None:
        raise ValueError(f"unknown op {kw!r}")
    positional, options, bare_ok, rest = grammar
    if len(words) == len(positional) + 1 and "=" not in code and _BARE.isdisjoint(words) and kw != "alloc":
        # Positionals only (reserve, free, ... most lines): no options to sort out (alloc needs size=).
        try:
            args = [parse(text) for (_, parse), text in zip(positional, words[1:], strict=True)]
        except ValueError as e:
            raise ValueError(f"{kw} {e}" if str(e).startswith("takes ") else str(e)) from None
        return _NEW[kw](*args, caller, inferred, src)
    if kw == "alloc":
        op = _alloc_fast(words, caller, inferred, src)
        if op is not None:
            return op
    pos: list[str] = []
    opts: dict[str, str] = {}
    bare: set[str] = set()
    for w in words[1:]:
        k, eq, v = w.partition("=")
        if eq:
            if k in opts:
                raise ValueError(f"{k}= given twice")
            opts[k] = v
        elif w in _BARE:
            bare.add(w)
        else:
            pos.append(w)
    if kw == "alloc":
        # The API decides which keywords the line may give: parse it first.
        if len(pos) != 1:
            raise ValueError(f"alloc takes 1 positional argument(s), got {len(pos)}")
        allowed, bare_ok = _ALLOC_WORDS[_api_name(pos[0])]
    else:
        allowed = options.keys()
    if not opts.keys() <= allowed or not bare <= bare_ok:
        _unexpected(kw, opts.keys() - allowed, bare - bare_ok)
    if kw == "alloc":
        if "size" not in opts:
            raise ValueError("alloc needs size=")
    elif rest is not None and len(pos) >= len(positional):
        extra, pos = pos[len(positional):], pos[:len(positional)]
    elif len(pos) != len(positional):
        raise ValueError(f"{kw} takes {len(positional)} positional argument(s), got {len(pos)}")
    values: dict[str, Any] = {"caller": caller, "inferred": inferred, "src": src}
    if rest is not None and kw != "alloc":
        values[rest[0]] = tuple(rest[1](text) for text in extra)
    for (name, parse), text in zip(positional, pos, strict=True):
        try:
            values[name] = parse(text)
        except ValueError as e:
            raise ValueError(f"{kw} {e}" if str(e).startswith("takes ") else str(e)) from None
    for k, text in opts.items():
        name, parse = options[k]
        values[name] = parse(text)
    for k in bare:
        values[k] = True
    return OP_TYPES[kw](**values)


def _unexpected(kw: str, keys: set[str], words: set[str]) -> None:
    if keys:
        raise ValueError(f"{kw}: unexpected {', '.join(sorted(k + '=' for k in keys))}")
    raise ValueError(f"{kw}: unexpected {' '.join(sorted(words))}")


def _formatter(cls: type[Op]) -> Callable[[Op], str]:
    """:data:`_FORMAT`'s row for *cls* as one function, the fields read in line (a run prints 10^5 ops);
    the line is concatenated, each word with the space before it (a list and its join cost a third more)."""
    env: dict[str, Any] = {}
    body = [f"def fmt(op):\n    line = {cls.keyword!r}\n"]
    for i, (how, key, name, fmt, default) in enumerate(_FORMAT[cls]):
        env[f"_f{i}"], env[f"_d{i}"] = fmt, default
        if how == "pos":
            body.append(f"    line += ' ' + _f{i}(op.{name})\n")
        elif how == "rest":
            body.append(f"    line += ''.join([' ' + _f{i}(v) for v in op.{name}])\n")
        elif default is MISSING:  # a required option (alloc's size=): always printed
            body.append(f"    line += {' ' + key + '='!r} + _f{i}(op.{name})\n")
        else:
            text = repr(" " + key) if how == "bare" else f"{' ' + key + '='!r} + _f{i}(v)"
            # Most options are left at None, which no value given equals: no __ne__ then.
            test = "v is not None" if default is None else f"v is not _d{i} and v != _d{i}"
            body.append(f"    v = op.{name}\n    if {test}:\n        line += {text}\n")
    body.append("    if op.caller:\n        line += ' caller=' + op.caller\n"
                "    if op.inferred is not None:\n        line += '  # inferred: ' + op.inferred\n    return line\n")
    exec("".join(body), env)
    return env["fmt"]  # type: ignore[no-any-return]


_FORMATTERS = {cls: _formatter(cls) for cls in OP_SYNTAX}


def format_op(op: Op) -> str:
    """The op-script line for *op* (the inverse of :func:`parse_op`).

    >>> format_op(Alloc("memblock_alloc", 4096, align=4096, expect=0x23fffe000))
    'alloc memblock_alloc size=4K align=4K expect=0x23fffe000'
    """
    return _FORMATTERS[type(op)](op)


def _parse_line(line: str, path: str, lineno: int) -> Op | None:
    """:func:`parse_op` on line *lineno* of *path*, its error as a :class:`FormatError` naming both."""
    try:
        return parse_op(line, src=_new_line_src(path, lineno))
    except (ValueError, KeyError) as e:
        # str(KeyError) is the repr of the key: drop its quotes, never a ValueError's
        msg = str(e).strip("'\"") if isinstance(e, KeyError) else str(e)
        raise FormatError(path, msg, line=lineno) from None


def iter_script(lines: Iterable[str], path: str = "<ops>") -> Iterator[Op]:
    """Parse op-script *lines*; errors name ``path:line``.

    :raises FormatError: on the first line that does not parse.
    """
    for lineno, line in enumerate(lines, 1):
        op = _parse_line(line, path, lineno)
        if op is not None:
            yield op


#: Op kinds whose line is often positionals only: (words on the line, constructor, parse per positional).
_HOT = {kw: (len(pos) + 1, _NEW[kw], tuple(parse for _, parse in pos))
        for kw, (pos, _, _, rest) in _PARSE.items() if rest is None and kw != "alloc"}
#: An Alloc's own fields (all but caller, inferred and src), and a constructor taking them in that order.
_ALLOC_FIELDS = tuple(f.name for f in fields(Alloc) if f.name not in ("caller", "inferred", "src"))
_new_alloc = fast_new(Alloc, *_ALLOC_FIELDS, "caller", "inferred", "src")
#: Srcs of op-script lines by the column, and each op's src set by a C loop: ``deque(map(...), 0)``.
_new_line_srcs = fast_new_many(Src, "path", "line")
_src_slot = Op.__dict__["src"].__set__


def _set_src(ops: list[Op], srcs: list[Src]) -> None:
    from collections import deque

    deque(map(_src_slot, ops, srcs), 0)


#: How many distinct alloc lines one read remembers (a few MiB at most).
_ALLOC_SEEN_MAX = 1 << 15


def _read_script(lines: Iterable[str], path: str) -> list[Op]:
    """:func:`iter_script` as a list, the common lines read inline.

    A line without a comment that is positionals only (``reserve 0x1000 4K``) or a plain
    ``alloc API key=value...`` is built here; any other line, and any that fails here, goes
    through :func:`parse_op`, which reads it or says what is wrong.  ~40% of the per-line cost.
    Alloc lines repeat (the same API, size, align and node): each distinct text is read once.
    """
    ops: list[Op] = []
    # Each op's line: their Srcs are made and set all at once at the end, by C loops (a call less per op).
    where: list[int] = []
    add, at, hot, alloc_fast, new_alloc = ops.append, where.append, _HOT, _alloc_fast, _new_alloc
    # An alloc line's text (without its caller) -> its fields, in _ALLOC_FIELDS order.
    alloc_seen: dict[str, tuple[Any, ...]] = {}
    for lineno, line in enumerate(lines, 1):
        if "#" not in line:
            code, caller = line, None
            if "caller=" in line:
                code, _, caller = line.partition("caller=")
                caller = caller.strip() or None
            seen = alloc_seen.get(code)
            if seen is not None:
                add(new_alloc(*seen, caller, None, None))
                at(lineno)
                continue
            words = code.split()
            if words:
                spec = hot.get(words[0])
                try:
                    if spec is not None:
                        if len(words) == spec[0] and "=" not in code:
                            new, parse = spec[1], spec[2]
                            if len(parse) == 2:
                                add(new(parse[0](words[1]), parse[1](words[2]), caller, None, None))
                            else:
                                add(new(*[p(w) for p, w in zip(parse, words[1:], strict=True)], caller, None, None))
                            at(lineno)
                            continue
                    elif words[0] == "alloc":
                        op = alloc_fast(words, caller, None, None)
                        if op is not None:
                            add(op)
                            at(lineno)
                            if len(alloc_seen) < _ALLOC_SEEN_MAX:
                                alloc_seen[code] = tuple([getattr(op, f) for f in _ALLOC_FIELDS])
                            continue
                except (ValueError, KeyError):
                    pass  # parse_op says what is wrong
            elif caller is None:
                continue
        op = _parse_line(line, path, lineno)
        if op is not None:
            add(op)
            at(lineno)
    _set_src(ops, _new_line_srcs(len(ops), repeat(path), where))
    return ops


def parse_script(text: str, path: str = "<ops>") -> tuple[Op, ...]:
    """Parse a whole op script into a tuple of ops."""
    from .gcpause import gc_paused

    with gc_paused():
        return tuple(_read_script(text.splitlines(), path))


def format_script(ops: Iterable[Op]) -> str:
    """Render *ops* as an op script, one line each, newline-terminated."""
    return "".join(format_script_chunks(ops))


def format_script_chunks(ops: Iterable[Op], lines: int = 4096) -> Iterator[str]:
    """:func:`format_script` a chunk of *lines* ops at a time, for writers of millions of ops (one write a chunk).

    >>> list(format_script_chunks([Reserve(0x1000, 4096), AllowResize()], lines=1))
    ['reserve 0x1000 4K\\n', 'allow_resize\\n']
    """
    from itertools import islice

    fmts = _FORMATTERS
    it = iter(ops)
    while chunk := list(islice(it, lines)):
        yield "\n".join([fmts[type(op)](op) for op in chunk]) + "\n"


def op_fields(op: Op) -> dict[str, object]:
    """The op's own fields (not caller/inferred/src), for JSON output."""
    return {f.name: getattr(op, f.name) for f in fields(op) if f.name not in ("caller", "inferred", "src")}


_CALLER_FUNC = re.compile(r"^([A-Za-z0-9_.$]+?)(?:\.(?:isra|constprop|part|cold)\.\d+)*(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?"
                          r"(?:\s+\[\w+\])?$")


@lru_cache(maxsize=1 << 16)  # a boot prints a few hundred distinct callers, each on many lines
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
