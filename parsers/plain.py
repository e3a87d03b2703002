# SPDX-License-Identifier: GPL-2.0-only
"""What a kernel booted *without* ``memblock=debug`` prints about memory, read into typed facts.

The stripping rule (:func:`strip_debug`)
----------------------------------------
``memblock=debug`` sets ``memblock_debug`` (``early_memblock()`` in
mm/memblock.c).  Everything it adds to the log goes through two gates:

* ``memblock_dbg()`` is ``pr_info()`` under ``if (memblock_debug)``: the lines
  ``memblock_add[_node]:``, ``memblock_remove:``, ``[__]memblock_reserve:``,
  ``memblock_phys_free:`` / ``memblock_free:``, every allocation API line
  (``memblock_alloc_try_nid[_raw]:``, ``memblock_phys_alloc_range:``,
  ``memblock_alloc_exact_nid_raw:``, ``memblock_alloc_hugetlb:`` ...) and
  ``memblock: <type> is doubled to N at [...]``;
* ``memblock_dump_all()`` calls ``__memblock_dump_all()`` only under
  ``memblock_debug``: the ``MEMBLOCK configuration:`` block (its ``memory size
  = ... reserved size = ...``, ``<type>.cnt = ...`` and ``<type>[0x..]`` lines).

The command line the kernel echoes (``Command line:``, ``Kernel command
line:``) loses the ``memblock=debug`` word itself.  Nothing else changes: every
other line of the boot (e820 map, ``NODE_DATA(n) allocated``, ``RAMDISK:``,
ACPI reservations, ``Memory:`` ...) is printed whatever ``memblock_debug`` is.
Lines that are not kernel lines (firmware, a capture script's sections) are
kept as they are; a ``dmesg| `` quote of a memblock line is dropped too.

Reading a plain log (:func:`read_plain`)
----------------------------------------
:class:`PlainBoot` holds, each with the line it came from, what the kernel
printed about memory: banner and command line, the e820 map and its updates,
the SMP MP-table, ``RAMDISK:``, ACPI table reservations, NUMA (SRAT, ``Faking a
node``, ``Initmem setup node``, ``Early memory node ranges``), ``NODE_DATA``,
``crashkernel reserved:``, ``cma: Reserved``, ``software IO TLB: mapped``,
``setup_percpu:``/``percpu: Embedded``, hash tables, ``HugeTLB: registered``,
``KHO:`` lines and ``Memory: ...K/...K available``.  :func:`read_iomem` reads a
``/proc/iomem`` for the kernel image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from kho_replay.replay.errors import FormatError

from .console.prefixes import clean_line

__all__ = [
    "E820Entry",
    "Fact",
    "Iomem",
    "PlainBoot",
    "is_debug_line",
    "parse_plain",
    "read_iomem",
    "read_plain",
    "strip_debug",
]

_DEBUG = re.compile(
    r"^\s*(?:__)?memblock_[a-z_]+: "            # memblock_dbg(): "%s: ..." with __func__
    r"|^\s*memblock: \w+ is doubled to "         # memblock_double_array()'s memblock_dbg()
    r"|^MEMBLOCK configuration:$"                 # __memblock_dump_all()
    r"|^ memory size = 0x[0-9a-f]+ reserved size = "
    r"|^ (?:memory|reserved|physmem)\.cnt\s+= "
    r"|^ (?:memory|reserved|physmem)\[0x[0-9a-f]+\]\s"
)
_CMDLINE_DEBUG = re.compile(r"(^|\s)memblock=\S*debug\S*(?=\s|$)")


def is_debug_line(raw: str) -> bool:
    """True for a line only ``memblock=debug`` prints (``memblock_dbg()`` or a ``MEMBLOCK configuration`` dump)."""
    _, text = clean_line(raw)
    if text.startswith("dmesg| "):
        text = clean_line(text[len("dmesg| "):])[1]
    return bool(_DEBUG.match(text))


def strip_debug(log: str) -> str:
    """*log* as the same boot without ``memblock=debug`` would have printed it (see the module docstring).

    >>> strip_debug("[ 0.1] Command line: console=ttyS0 memblock=debug panic=-1\\n"
    ...             "[ 0.2] memblock_add: [0x1000-0x9fbff] e820__memblock_setup+0x57/0xc0\\n"
    ...             "[ 0.3] MEMBLOCK configuration:\\n[ 0.3]  memory.cnt  = 0x3\\n[ 0.4] RAMDISK: [mem 0x1-0x2]\\n")
    '[ 0.1] Command line: console=ttyS0 panic=-1\\n[ 0.4] RAMDISK: [mem 0x1-0x2]\\n'
    """
    out = []
    for raw in log.splitlines(keepends=True):
        if is_debug_line(raw):
            continue
        if "ommand line:" in raw and "memblock=" in raw:
            head, sep, tail = raw.partition("ommand line:")
            raw = head + sep + _CMDLINE_DEBUG.sub("", tail.rstrip("\n")).replace("  ", " ") + (
                "\n" if raw.endswith("\n") else "")
        out.append(raw)
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Fact:
    """A value the plain log printed, with the 1-based line it came from."""

    line: int
    text: str


@dataclass(frozen=True, slots=True)
class E820Entry:
    """One ``BIOS-e820: [mem base-end] type`` entry, exclusive end."""

    base: int
    end: int
    kind: str
    line: int

    @property
    def ram(self) -> bool:
        """E820_TYPE_RAM: ``System RAM`` (7.x) or ``usable`` (older)."""
        return self.kind in ("System RAM", "usable")


@dataclass(slots=True)
class PlainBoot:
    """What one plain boot printed about memory (addresses exclusive-end, sizes in bytes)."""

    source: str
    banner: str | None = None
    release: str | None = None
    cmdline: str = ""
    cmdline_line: int = 0
    e820: list[E820Entry] = field(default_factory=list)
    #: (base, end, from, to, line): ``e820: update/remove [mem ...] FROM ==> TO`` (to None: removed).
    e820_updates: list[tuple[int, int, str, str | None, int]] = field(default_factory=list)
    mptable: tuple[int, int, int] | None = None
    ramdisk: tuple[int, int, int] | None = None
    #: (signature, base, end, line) of every ``ACPI: Reserving X table memory``.
    acpi: list[tuple[str, int, int, int]] = field(default_factory=list)
    srat: list[tuple[int, int, int, int]] = field(default_factory=list)
    fake_node: tuple[int, int, int] | None = None
    #: nid -> (base, end, line) of ``Initmem setup node``.
    initmem: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    #: (nid, base, end, line) of ``Early memory node ranges``.
    node_ranges: list[tuple[int, int, int, int]] = field(default_factory=list)
    #: nid -> (base, end, line).
    node_data: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    crashkernel: tuple[int, int, int] | None = None
    #: (size, base or None, line).
    cma: list[tuple[int, int | None, int]] = field(default_factory=list)
    swiotlb: tuple[int, int, int] | None = None
    nr_cpu_ids: int | None = None
    nr_node_ids: int | None = None
    #: (pages per cpu, unit size, line).
    percpu: tuple[int, int, int] | None = None
    #: name -> (bytes, line, linear) of ``<name> hash table entries: N (order: k, B bytes, linear|vmalloc)``;
    #: only a ``linear`` table comes from memblock (``hashdist`` on NUMA uses vmalloc).
    hashes: dict[str, tuple[int, int, bool]] = field(default_factory=dict)
    #: (static+reserved+dynamic bytes, unit size, atom size, line) of ``pcpu-alloc: s.. r.. d.. u.. alloc=N*A``.
    pcpu: tuple[int, int, int, int] | None = None
    #: cpus of each percpu group (``pcpu-alloc: [0] 0 1 [1] 2 3``).
    pcpu_groups: list[list[int]] = field(default_factory=list)
    #: page size in bytes -> (pre-allocated pages, line).
    hugetlb: dict[int, tuple[int, int]] = field(default_factory=dict)
    kho: list[Fact] = field(default_factory=list)
    #: (available KiB, total KiB, line, text).
    memory: tuple[int, int, int, str] | None = None
    #: lines the kernel printed only under memblock=debug (a log that was not plain).
    debug_lines: int = 0

    @property
    def nodes(self) -> tuple[int, ...]:
        """Node ids with memory (see :meth:`node_spans`)."""
        return tuple(sorted(self.node_spans()))

    def node_spans(self) -> dict[int, tuple[int, int, int]]:
        """nid -> (first byte, end, line) of each node's memory.

        From ``Initmem setup node``; a log cut before it falls back on
        ``Early memory node ranges``, then the SRAT (clipped to RAM), then one
        node over all of RAM (``No NUMA configuration found``).
        """
        if self.initmem:
            return dict(self.initmem)
        out: dict[int, tuple[int, int, int]] = {}
        for nid, base, end, line in self.node_ranges:
            b, e, ln = out.get(nid, (base, end, line))
            out[nid] = (min(b, base), max(e, end), ln)
        if out:
            return out
        ram = self.ram()
        if not ram:
            return {0: (0, 0, 0)}
        for nid, base, end, line in self.srat:
            inside = [(max(b, base), min(e, end)) for b, e, _ in ram if b < end and base < e]
            if inside:
                b, e, ln = out.get(nid, (inside[0][0], inside[-1][1], line))
                out[nid] = (min(b, inside[0][0]), max(e, inside[-1][1]), ln)
        return out or {0: (ram[0][0], ram[-1][1], ram[0][2])}

    def ram(self) -> list[tuple[int, int, int]]:
        """E820 RAM after the printed updates, as (base, end, line) sorted: what ``e820__memblock_setup()`` adds."""
        ranges = [(e.base, e.end, e.line) for e in self.e820 if e.ram]
        for base, end, _src, to, _line in self.e820_updates:
            if to is not None and to in ("System RAM", "usable"):
                continue
            out = []
            for b, e, ln in ranges:
                if e <= base or b >= end:
                    out.append((b, e, ln))
                    continue
                if b < base:
                    out.append((b, base, ln))
                if e > end:
                    out.append((end, e, ln))
            ranges = out
        return sorted(ranges)


_MEM = r"\[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\]"
_R = {
    "version": re.compile(r"^Linux version (\S+)(.*)$"),
    "cmdline": re.compile(r"^Command line: (.*)$"),
    "e820": re.compile(r"^BIOS-e820: " + _MEM + r"\s+(.*\S)\s*$"),
    "e820_update": re.compile(r"^e820: (update|remove) " + _MEM + r" (.*?)(?: ==> (.*\S))?\s*$"),
    "mptable": re.compile(r"^found SMP MP-table at " + _MEM),
    "ramdisk": re.compile(r"^RAMDISK: " + _MEM),
    "acpi": re.compile(r"^ACPI: Reserving (\S+) table memory at " + _MEM),
    "srat": re.compile(r"^ACPI: SRAT: Node (\d+) PXM \d+ " + _MEM),
    "fake": re.compile(r"^(?:NUMA: )?Faking a node at " + _MEM),
    "initmem": re.compile(r"^Initmem setup node (\d+) " + _MEM),
    "node_range": re.compile(r"^\s+node\s+(\d+): " + _MEM),
    "node_data": re.compile(r"^NODE_DATA\((\d+)\) allocated " + _MEM),
    "crash": re.compile(r"^crashkernel reserved: (0x[0-9a-f]+) - (0x[0-9a-f]+) \("),
    "cma": re.compile(r"^cma: Reserved (\d+) MiB(?: at (0x[0-9a-f]+))?"),
    "swiotlb": re.compile(r"^software IO TLB: mapped " + _MEM),
    "setup_percpu": re.compile(r"^setup_percpu: .*nr_cpu_ids:(\d+) nr_node_ids:(\d+)"),
    "percpu": re.compile(r"^percpu: Embedded (\d+) pages/cpu .* u(\d+)"),
    "hash": re.compile(r"^(.+?) hash table entries: \d+ \(order: -?\d+, (\d+) bytes, (\w+)"),
    "pcpu": re.compile(r"^pcpu-alloc: s(\d+) r(\d+) d(\d+) u(\d+) alloc=\d+\*(\d+)"),
    "pcpu_groups": re.compile(r"^pcpu-alloc: ((?:\[\d+\](?: \d+| -)+ ?)+)$"),
    "hugetlb": re.compile(r"^HugeTLB: registered ([\d.]+) ([GM])iB page size, pre-allocated (\d+) pages"),
    "kho": re.compile(r"^KHO: "),
    "memory": re.compile(r"^Memory: (\d+)K/(\d+)K available"),
}


def parse_plain(text: str, source: str = "<plain>") -> PlainBoot:
    """Read the facts of one plain boot (the first boot of *text*).

    :raises FormatError: when the log holds no memory map (no ``BIOS-e820`` line).
    """
    boot = PlainBoot(source)
    in_ranges = False
    for lineno, raw in enumerate(text.splitlines(), 1):
        _, t = clean_line(raw)
        if not t or t.startswith("dmesg| "):
            continue
        if _DEBUG.match(t):
            boot.debug_lines += 1
            continue
        if t == "Early memory node ranges":
            in_ranges = True
            continue
        m = _R["node_range"].match(t)
        if m and in_ranges:
            boot.node_ranges.append((int(m.group(1)), int(m.group(2), 16), int(m.group(3), 16) + 1, lineno))
            continue
        in_ranges = False
        hit = next(((k, mm) for k, rx in _R.items() if (mm := rx.match(t))), None)
        if hit is None:
            continue
        key, m = hit
        g = m.groups()
        if key == "version":
            if boot.banner is not None:
                break  # a second boot (a kexec) starts here: one boot per plain log
            boot.banner, boot.release = t, g[0]
        elif key == "cmdline" and not boot.cmdline:
            boot.cmdline, boot.cmdline_line = g[0], lineno
        elif key == "e820":
            boot.e820.append(E820Entry(int(g[0], 16), int(g[1], 16) + 1, g[2], lineno))
        elif key == "e820_update":
            boot.e820_updates.append((int(g[1], 16), int(g[2], 16) + 1, g[3],
                                      None if g[0] == "remove" else g[4], lineno))
        elif key in ("mptable", "ramdisk", "swiotlb", "fake"):
            # swiotlb_print_info() prints mem->end, already exclusive; the others print the last byte
            v = (int(g[0], 16), int(g[1], 16) + (key != "swiotlb"), lineno)
            setattr(boot, {"fake": "fake_node"}.get(key, key), v)
        elif key == "acpi":
            boot.acpi.append((g[0], int(g[1], 16), int(g[2], 16) + 1, lineno))
        elif key == "srat":
            boot.srat.append((int(g[0]), int(g[1], 16), int(g[2], 16) + 1, lineno))
        elif key == "initmem":
            boot.initmem[int(g[0])] = (int(g[1], 16), int(g[2], 16) + 1, lineno)
        elif key == "node_data":
            boot.node_data[int(g[0])] = (int(g[1], 16), int(g[2], 16) + 1, lineno)
        elif key == "crash":
            boot.crashkernel = (int(g[0], 16), int(g[1], 16), lineno)
        elif key == "cma":
            boot.cma.append((int(g[0]) << 20, int(g[1], 16) if g[1] else None, lineno))
        elif key == "setup_percpu":
            boot.nr_cpu_ids, boot.nr_node_ids = int(g[0]), int(g[1])
        elif key == "percpu":
            boot.percpu = (int(g[0]), int(g[1]), lineno)
        elif key == "hash":
            boot.hashes.setdefault(g[0], (int(g[1]), lineno, g[2] == "linear"))
        elif key == "pcpu":
            boot.pcpu = (int(g[0]) + int(g[1]) + int(g[2]), int(g[3]), int(g[4]), lineno)
        elif key == "pcpu_groups":
            for part in re.findall(r"\[(\d+)\]((?: \d+| -)+)", g[0]):
                gi = int(part[0])
                while len(boot.pcpu_groups) <= gi:
                    boot.pcpu_groups.append([])
                boot.pcpu_groups[gi] += [int(c) for c in part[1].split() if c != "-"]
        elif key == "hugetlb":
            size = int(float(g[0]) * (1 << (30 if g[1] == "G" else 20)))
            boot.hugetlb[size] = (int(g[2]), lineno)
        elif key == "kho":
            boot.kho.append(Fact(lineno, t))
        elif key == "memory" and boot.memory is None:
            boot.memory = (int(g[0]), int(g[1]), lineno, t)
    if not boot.e820:
        first = next((i for i, ln in enumerate(text.splitlines(), 1) if ln.strip()), 1)
        raise FormatError(source, "no memory map (no 'BIOS-e820: [mem ...]' line): not a boot log, "
                                  "or the start of the boot is cut off", line=first)
    return boot


def read_plain(path: str | Path) -> PlainBoot:
    """:func:`parse_plain` of a file (``.gz``/``.xz`` too)."""
    from . import read_text

    return parse_plain(read_text(path), str(path))


@dataclass(frozen=True, slots=True)
class Iomem:
    """The kernel image as ``/proc/iomem`` shows it (root only: others see zeros)."""

    code: int
    end: int
    source: str
    line: int


_IOMEM = re.compile(r"^\s*([0-9a-f]+)-([0-9a-f]+) : (.*\S)\s*$")


def read_iomem(path: str | Path) -> Iomem:
    """Where ``Kernel code`` starts and the image (``Kernel bss``) ends in a ``/proc/iomem`` dump.

    :raises FormatError: with no ``Kernel code`` line, or addresses hidden (read as non-root).
    """
    from . import read_text

    code = end = None
    line = 0
    for lineno, raw in enumerate(read_text(path).splitlines(), 1):
        m = _IOMEM.match(raw)
        if not m:
            continue
        base, last, name = int(m.group(1), 16), int(m.group(2), 16), m.group(3)
        if name == "Kernel code":
            code, line = base, lineno
        if name.startswith("Kernel ") and (end is None or last + 1 > end):
            end = last + 1
    if code is None or end is None:
        raise FormatError(str(path), "no 'Kernel code' line: not a /proc/iomem dump")
    if code == 0:
        raise FormatError(str(path), "kernel addresses read as 0: /proc/iomem was read without root", line=line)
    return Iomem(code, end, str(path), line)
