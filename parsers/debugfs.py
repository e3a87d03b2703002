# SPDX-License-Identifier: GPL-2.0-only
"""``/sys/kernel/debug/memblock/{memory,reserved}`` dumps into DebugfsTable observations.

Both generations of the file are read, one table per file or several pasted
into one text file (:func:`split_tables`):

* up to v6.4: ``%4d: %pa..%pa`` (no node, no flags; such rows carry
  ``flags = -1`` and ``nid = None``, "not printed");
* since v6.5 (493f349e38d0 "memblock: Add flags and nid info in memblock
  debugfs"): ``%4d: %pa..%pa %4d %s`` with ``x`` for an invalid node and the
  flag names (the lowest only in 6.5, all joined by ``|`` in 7.x).

The end printed is inclusive; regions here are ``[base, base + size)``.  A
directory holding ``memory`` and ``reserved`` (or, as our fixtures name them,
``memblock-memory.txt`` and ``memblock-reserved.txt``) is one input.

>>> parse_debugfs_lines([(1, "   0: 0x0000000040000000..0x000000013fffffff    0 NONE")])
([Region(base=1073741824, size=4294967296, flags=0, nid=0)], [])
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from kho_replay.replay.errors import FormatError
from kho_replay.replay.flags import parse_flags
from kho_replay.replay.ops import Context, DebugfsTable, Region, Skipped, Src, Trace

__all__ = ["DEBUGFS_FILES", "DEBUGFS_LINE", "TABLE_HEADER", "parse_debugfs_lines", "read_debugfs", "split_tables",
           "table_hint"]

#: Table name -> file names that hold it, kernel's first.
DEBUGFS_FILES: dict[str, tuple[str, ...]] = {
    "memory": ("memory", "memblock-memory.txt"),
    "reserved": ("reserved", "memblock-reserved.txt"),
    "physmem": ("physmem", "memblock-physmem.txt"),
}

#: One row, in every generation: ``%4d: base..end`` (<= 6.4), ``%4d: base..end %4d FLAGS`` (6.5+);
#: the index may be missing and ``grep -r`` puts the file's path before it.
DEBUGFS_LINE = re.compile(
    r"^\s*(?:\S*?(?P<file>memory|reserved|physmem):\s*)?(?:(?P<idx>\d+):\s*)?"
    r"(?P<base>0x[0-9a-fA-F]+)\.\.(?P<end>0x[0-9a-fA-F]+)"
    r"(?:\s+(?P<nid>-?\d+|x)\s+(?P<flags>[A-Z_|]+))?\s*$"
)
#: A line naming the table that follows: ``reserved:``, ``==> memory <==``, ``# cat .../memblock/reserved``.
TABLE_HEADER = re.compile(r"^\W*(?:\S*/)?(?P<name>memory|reserved|physmem)\W*$")
_NAMED = re.compile(r"memblock/(?P<name>memory|reserved|physmem)\b")
_MASK = (1 << 64) - 1


def parse_debugfs_lines(
    lines: Iterable[tuple[int, str]],
) -> tuple[list[Region], list[tuple[int, str, str]]]:
    """Parse numbered debugfs rows; return (regions, [(lineno, text, why) not understood]).

    ``UNKNOWN`` (a bit without a name) keeps flags -1: the value was not printed.
    """
    regions: list[Region] = []
    bad: list[tuple[int, str, str]] = []
    for lineno, text in lines:
        if not text.strip():
            continue
        m = DEBUGFS_LINE.match(text)
        if not m:
            bad.append((lineno, text, "not a memblock debugfs row"))
            continue
        if m.group("idx") is not None and int(m.group("idx")) != len(regions):
            bad.append((lineno, text, f"row {m.group('idx')} out of sequence (expected {len(regions)})"))
            continue
        base = int(m.group("base"), 16)
        size = (int(m.group("end"), 16) + 1 - base) & _MASK
        nid: int | None = None
        flags = -1
        if m.group("nid") is not None:
            nid = None if m.group("nid") == "x" else int(m.group("nid"))
            names = m.group("flags")
            if names != "UNKNOWN":
                try:
                    flags = int(parse_flags(names.replace("NONE", "none")))
                except ValueError as e:
                    bad.append((lineno, text, str(e)))
                    continue
        regions.append(Region(base, size, flags, nid))  # type: ignore[arg-type]
    return regions, bad


def table_hint(text: str) -> str | None:
    """The table a header or a comment line names (``memory``, ``reserved``, ``physmem``), if any."""
    m = TABLE_HEADER.match(text) or _NAMED.search(text)
    return m.group("name") if m else None


def split_tables(
    lines: Iterable[tuple[int, str]], first: str = "memory",
) -> tuple[list[tuple[str, int, list[Region]]], list[tuple[int, str, str]]]:
    """Tables pasted one after the other: [(name, first line, regions)] and the rows not understood.

    A table starts at a header, at a row numbered 0, or where ``grep -r``'s path changes.  A table
    nothing names takes the first of *first*, memory, reserved that no other table took: people
    paste ``memory`` before ``reserved``, as the kernel lists them.
    """
    blocks: list[tuple[str | None, list[tuple[int, str]]]] = []
    pending: str | None = None
    bad: list[tuple[int, str, str]] = []
    for lineno, text in lines:
        if not text.strip():
            continue
        m = DEBUGFS_LINE.match(text)
        if m is None:
            name = table_hint(text)
            if name is not None:
                pending = name
            else:
                bad.append((lineno, text, "not a memblock debugfs row"))
            continue
        named = m.group("file") or pending
        if not blocks or m.group("idx") == "0" or pending is not None or (
                m.group("file") and m.group("file") != blocks[-1][0]):
            blocks.append((named, []))
            pending = None
        blocks[-1][1].append((lineno, text))
    taken = {n for n, _ in blocks if n}
    free = [n for n in dict.fromkeys((first, "memory", "reserved", "physmem")) if n not in taken]
    tables = []
    for name, rows in blocks:
        if name is None:
            name = free.pop(0) if free else "memory"
        regions, why = parse_debugfs_lines(rows)
        bad += why
        tables.append((name, rows[0][0], regions))
    return tables, bad


def _files(path: Path) -> list[tuple[str, Path]]:
    if path.is_dir():
        found = []
        for name, candidates in DEBUGFS_FILES.items():
            for c in candidates:
                if (path / c).is_file():
                    found.append((name, path / c))
                    break
        return found
    stem = path.name.removesuffix(".txt").removeprefix("memblock-")
    return [(stem if stem in DEBUGFS_FILES else "memory", path)]


def read_debugfs(path: str | Path, *, strict: bool = False) -> Trace:
    """Read a memblock debugfs file, or a directory of them, into a Trace of DebugfsTable observations.

    :raises FormatError: when no file holds a debugfs row, or in strict mode on a bad row.
    """
    from . import read_text

    p = Path(path)
    files = _files(p)
    if not files:
        raise FormatError(str(p), "no memblock debugfs files (memory, reserved) in this directory")
    obs: list[DebugfsTable] = []
    skipped: list[Skipped] = []
    for name, f in files:
        text = read_text(f)
        # a file may hold both tables pasted one after the other, with or without headers
        numbered = [(i, ln) for i, ln in enumerate(text.splitlines(), 1) if not ln.lstrip().startswith("#")
                    or table_hint(ln)]
        tables, bad = split_tables(numbered, first=name)
        for lineno, raw, why in bad:
            if strict:
                raise FormatError(str(f), why, line=lineno)
            skipped.append(Skipped(str(f), str(lineno), why, raw))
        if not any(regions for _, _, regions in tables) and bad:
            raise FormatError(str(f), f"not a memblock debugfs table: {bad[0][2]}", line=bad[0][0])
        for table, line, regions in tables:
            obs.append(DebugfsTable(at=0, src=Src(str(f), line), name=table, regions=tuple(regions)))
    return Trace(_context(p, [t for f in (f for _, f in files) for t in read_text(f).splitlines()]), (),
                 tuple(obs), tuple(skipped))


def _context(p: Path, texts: list[str]) -> Context:
    """Tables carry no banner: their generation says which releases printed them (one assumption)."""
    from .console.grammar import infer_release

    rows = [m for m in (DEBUGFS_LINE.match(t) for t in texts) if m]
    version, why = infer_release([t for t in texts if DEBUGFS_LINE.match(t)], (7, 3))
    bits = 32 if rows and len(rows[0].group("base")) == 10 else 64
    return Context(source=str(p), release=f"{version[0]}.{version[1]}", phys_addr_bits=bits,
                   facts=(("assumed", f"debugfs tables name no kernel: {why}"),))
